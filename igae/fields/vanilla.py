"""Vanilla NeRF (Mildenhall et al., ECCV 2020): a positional-encoded MLP, density + ``C`` channels.

A point ``p`` in the scene box is normalised to ``q in [-1, 1]^3`` and encoded with NeRF's
frequency encoding

    gamma(q) = (q, sin(2^0 pi q), cos(2^0 pi q), ..., sin(2^(L-1) pi q), cos(2^(L-1) pi q))

(``3 + 6 L`` numbers; ``L = pos_freqs``). A ReLU MLP of ``depth`` layers of ``width`` units
reads ``gamma(q)``; the input is concatenated again before layer ``skip`` (NeRF's skip
connection, which keeps the high frequencies reachable from deep layers). Then:

- ``view_dependent=False`` (default): one linear head gives ``1 + C`` raw outputs.
- ``view_dependent=True``: a linear density head, and the features come from a bottleneck of
  the trunk concatenated with ``gamma_dir(d)`` (``dir_freqs`` frequencies of the unit viewing
  direction) through one hidden layer of ``width // 2``, as in NeRF.

View dependence is off by default: IG-AE's own latent scenes (its tri-planes) are
view-independent, and this project fits latent NeRFs the same way, since a latent "colour"
that changed with the view is exactly the 3D inconsistency the IG-AE is trained to remove.
RGB NeRFs use the same default so that RGB/latent comparisons differ only in the space the
field lives in; ``view_dependent=True`` restores NeRF's direction-conditioned colour branch.

Conventions shared with :class:`~igae.fields.triplane.TriplaneField`: density
``softplus(raw - 1)`` (NeRF's ReLU has zero gradient for negative raw density, so a field
that starts empty could never recover; the shifted softplus starts mostly transparent and
always has a gradient), zero density outside the box, output activation chosen at
construction. The samples come from the fit's sampler (``nerf.sampler``): the occupancy grid
(:class:`~igae.fields.occupancy.OccupancySampler`) by default; NeRF's coarse-to-fine sampling
(:class:`~igae.fields.sampling.CoarseToFineSampler`) reuses this one network for both passes (no
second "coarse" MLP).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from igae.fields.base import apply_density, check_density_activation, check_single_scene, Field, SceneIndex
from igae.fields.base import output_activation as make_output_activation
from igae.fields.triplane import make_aabb


def frequency_encoding(x: Tensor, n_freqs: int) -> Tensor:
    """NeRF's positional encoding of ``(..., D)`` inputs -> ``(..., D * (1 + 2 n_freqs))``.

    Layout: ``[x, sin(2^0 pi x), cos(2^0 pi x), ..., sin(2^(L-1) pi x), cos(2^(L-1) pi x)]``
    with the sin/cos blocks each ``D`` wide. ``n_freqs = 0`` returns ``x``.
    """
    if n_freqs == 0:
        return x
    freqs = (2.0 ** torch.arange(n_freqs, device=x.device, dtype=x.dtype)) * math.pi  # (L,)
    angles = (x[..., None, :] * freqs[:, None]).flatten(-2)  # (..., L * D)
    return torch.cat([x, torch.sin(angles), torch.cos(angles)], dim=-1)


class VanillaNeRF(Field):
    """NeRF MLP with positional encoding, for one scene.

    Args:
        out_channels: ``C`` (3 for RGB, the latent channels for latent NeRFs).
        aabb: ``(2, 3)`` scene box or a float half-size of a cube centred at the origin.
        output_activation: ``"none" | "sigmoid" | "tanh"`` (see :mod:`igae.fields.base`).
        seed: seeds the initialisation (the global RNG is left untouched).
        pos_freqs: ``L``, frequencies of the point encoding (NeRF: 10).
        dir_freqs: frequencies of the direction encoding (NeRF: 4; used if view-dependent).
        width: hidden units per layer (NeRF: 256; 128 is cheaper and ample for small scenes).
        depth: trunk layers (NeRF: 8).
        skip: trunk layer whose input is concatenated with ``gamma(q)`` again (NeRF: 4);
            ``None`` disables the skip connection.
        view_dependent: features depend on the viewing direction (see the module docstring).
        density_activation: ``"softplus"`` (default) or ``"trunc_exp"``.
        density_bias: added to the raw density before the activation.

    Parameter groups: ``{"mlp": all weights}`` (the encoding has no parameters).
    """

    def __init__(
        self,
        out_channels: int = 3,
        aabb: Tensor | float = 1.0,
        output_activation: str = "sigmoid",
        seed: int = 0,
        pos_freqs: int = 10,
        dir_freqs: int = 4,
        width: int = 128,
        depth: int = 4,
        skip: int | None = 2,
        view_dependent: bool = False,
        density_activation: str = "softplus",
        density_bias: float = -1.0,
    ) -> None:
        super().__init__()
        for name, value in (("out_channels", out_channels), ("width", width), ("depth", depth)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        for name, value in (("pos_freqs", pos_freqs), ("dir_freqs", dir_freqs)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if skip is not None and not 1 <= skip < depth:
            raise ValueError(f"skip must be a trunk layer in [1, {depth - 1}] or None, got {skip}")
        check_density_activation(density_activation)
        self.out_channels = out_channels
        self.output_activation_name = output_activation
        self._out_act = make_output_activation(output_activation)
        self.pos_freqs, self.dir_freqs = pos_freqs, dir_freqs
        self.skip = skip
        self.view_dependent = view_dependent
        self.density_activation = density_activation
        self.density_bias = float(density_bias)
        self.register_buffer("aabb", make_aabb(aabb))

        enc = 3 * (1 + 2 * pos_freqs)
        # nn.Linear's default init under a forked RNG seeded from ``seed``: reproducible, and
        # building a field neither disturbs nor depends on the global random stream.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.trunk = torch.nn.ModuleList(
                torch.nn.Linear(enc if i == 0 else width + (enc if i == skip else 0), width) for i in range(depth)
            )
            if view_dependent:
                self.density_head = torch.nn.Linear(width, 1)
                self.bottleneck = torch.nn.Linear(width, width)
                self.colour_hidden = torch.nn.Linear(width + 3 * (1 + 2 * dir_freqs), width // 2 or 1)
                self.colour_head = torch.nn.Linear(width // 2 or 1, out_channels)
            else:
                self.head = torch.nn.Linear(width, 1 + out_channels)

    def normalize(self, points: Tensor) -> Tensor:
        """``(..., 3)`` points mapped from the box to ``[-1, 1]^3``."""
        lo, hi = self.aabb[0], self.aabb[1]
        return (points - lo) * (2.0 / (hi - lo)) - 1.0

    def _trunk(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """``(P, width)`` trunk output at flattened points and the ``(P,)`` inside-box mask."""
        if points.shape[-1] != 3:
            raise ValueError(f"points must have shape (..., 3), got {tuple(points.shape)}")
        q = self.normalize(points).reshape(-1, 3)
        inside = (q.abs() <= 1.0).all(dim=-1)
        x = frequency_encoding(q.clamp(-1.0, 1.0), self.pos_freqs)
        h = x
        for i, layer in enumerate(self.trunk):
            if i == self.skip:
                h = torch.cat([h, x], dim=-1)
            h = F.relu(layer(h))
        return h, inside

    def forward(
        self, points: Tensor, directions: Tensor | None = None, scene_index: SceneIndex = None
    ) -> tuple[Tensor, Tensor]:
        """Density ``(...)`` and features ``(..., C)`` at ``(..., 3)`` points.

        ``directions`` ``(..., 3)`` are required when ``view_dependent``, ignored otherwise.
        """
        check_single_scene(scene_index)
        lead = points.shape[:-1]
        h, inside = self._trunk(points)
        if self.view_dependent:
            if directions is None:
                raise ValueError("this VanillaNeRF is view-dependent: pass directions (..., 3)")
            d = frequency_encoding(directions.reshape(-1, 3).to(h), self.dir_freqs)
            raw_density = self.density_head(h)[:, 0]
            c = F.relu(self.colour_hidden(torch.cat([self.bottleneck(h), d], dim=-1)))
            raw_feat = self.colour_head(c)
        else:
            raw = self.head(h)
            raw_density, raw_feat = raw[:, 0], raw[:, 1:]
        density = apply_density(raw_density, inside, self.density_activation, self.density_bias)
        return density.reshape(lead), self._out_act(raw_feat).reshape(*lead, self.out_channels)

    def density(self, points: Tensor, scene_index: SceneIndex = None) -> Tensor:
        """``(...)`` density at ``(..., 3)`` points (skips the feature branch)."""
        check_single_scene(scene_index)
        h, inside = self._trunk(points)
        raw = self.density_head(h)[:, 0] if self.view_dependent else self.head(h)[:, 0]
        return apply_density(raw, inside, self.density_activation, self.density_bias).reshape(points.shape[:-1])

    def param_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """``{"mlp": every parameter}``."""
        return {"mlp": list(self.parameters())}

    def regularizers(self) -> dict[str, Tensor]:
        """None: NeRF trains on the photometric loss alone."""
        return {}

    def extra_repr(self) -> str:
        return (f"out_channels={self.out_channels}, pos_freqs={self.pos_freqs}, dir_freqs={self.dir_freqs}, "
                f"skip={self.skip}, view_dependent={self.view_dependent}, "
                f"output_activation={self.output_activation_name!r}")


