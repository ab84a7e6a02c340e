"""The interface every radiance field implements: IG-AE's tri-planes and the per-scene NeRF methods of
:mod:`igae.fields.registry` (vanilla NeRF, Instant-NGP, K-Planes, tri-planes).

A field maps 3D points to a non-negative density and ``C`` feature channels. ``C`` is 3 for
RGB NeRFs and the autoencoder's latent channel count for latent NeRFs and IG-AE tri-planes;
the volume renderer (:mod:`igae.fields.volume_renderer`) composites any ``C``.

Output activations (chosen at construction, see :func:`output_activation`):

- ``"sigmoid"``: RGB fields; colours live in ``[0, 1]``.
- ``"tanh"``: latent fields. IG-AE renders *normalised* latents ``tanh(s * z)`` (DESIGN.md,
  ``norm``), which live in ``(-1, 1)``, so a tanh output matches the target's range; the
  composite ``sum_i w_i c_i + (1 - opacity) * bg`` is a convex combination and stays in
  ``(-1, 1)`` whenever the background does.
- ``"none"`` (default): unbounded features, e.g. for raw (unnormalised) latents.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

OUTPUT_ACTIVATIONS = ("none", "sigmoid", "tanh")

SceneIndex = int | Tensor | None
"""Which scene a point belongs to, for multi-scene fields (tri-planes of many scenes).

``None``: the field's only scene (an error for a field that holds several). ``int``: one scene
for all points. ``Tensor`` (long): one index per leading entry of ``points``; its shape must be
a prefix of ``points.shape[:-1]`` (e.g. ``(R,)`` for points ``(R, S, 3)``).
"""


class FieldFn(Protocol):
    """What the volume renderer calls: a :class:`Field`, or any function with this signature."""

    def __call__(
        self, points: Tensor, directions: Tensor | None = None, scene_index: SceneIndex = None
    ) -> tuple[Tensor, Tensor]: ...


def output_activation(name: str) -> torch.nn.Module:
    """The feature activation called ``name`` (one of :data:`OUTPUT_ACTIVATIONS`), as a module
    (not a lambda, so fields stay picklable)."""
    if name == "none":
        return torch.nn.Identity()
    if name == "sigmoid":
        return torch.nn.Sigmoid()
    if name == "tanh":
        return torch.nn.Tanh()
    raise ValueError(f"output_activation must be one of {OUTPUT_ACTIVATIONS}, got {name!r}")


class Field(torch.nn.Module):
    """A radiance field: points -> (density >= 0, ``out_channels`` features).

    Subclasses implement :meth:`forward` and set :attr:`out_channels`; they override
    :meth:`density` when density alone is cheaper, and :meth:`param_groups` /
    :meth:`regularizers` when they have named parameter groups or regularisers. A per-scene NeRF
    method also holds its scene box as a ``(2, 3)`` buffer ``aabb`` (min and max corner), from
    which the fit builds its sampler.
    """

    out_channels: int
    """``C``: 3 for RGB fields, the latent channel count for latent fields."""

    def forward(
        self, points: Tensor, directions: Tensor | None = None, scene_index: SceneIndex = None
    ) -> tuple[Tensor, Tensor]:
        """Evaluate the field.

        Args:
            points: ``(..., 3)`` world-space points.
            directions: ``(..., 3)`` unit viewing directions (the renderer always passes
                them; view-independent fields ignore them).
            scene_index: see :data:`SceneIndex`.

        Returns:
            density: ``(...)`` non-negative volume density (per world unit of length).
            features: ``(..., C)`` feature vectors (colour or latent).
        """
        raise NotImplementedError

    def density(self, points: Tensor, scene_index: SceneIndex = None) -> Tensor:
        """``(...)`` density at ``(..., 3)`` points; for samplers and occupancy grids."""
        return self.forward(points, None, scene_index)[0]

    def param_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """Named, disjoint parameter groups that cover all parameters (one optimizer each)."""
        return {"all": list(self.parameters())}

    def regularizers(self) -> dict[str, Tensor]:
        """Unweighted regularisation terms, e.g. ``{"tv": ...}``; the caller applies weights."""
        return {}


DENSITY_ACTIVATIONS = ("softplus", "trunc_exp")


class _TruncExp(torch.autograd.Function):
    """``exp(x)`` whose backward clamps ``x`` at 15, so one large raw density cannot blow up."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * torch.exp(x.clamp(max=15.0))


def trunc_exp(x: Tensor) -> Tensor:
    """``exp(x)`` with the backward clamped at ``x = 15`` (see :class:`_TruncExp`)."""
    return _TruncExp.apply(x)


def apply_density(raw: Tensor, inside: Tensor, activation: str, bias: float) -> Tensor:
    """``(...)`` density from raw MLP output: ``act(raw + bias)``, zero where ``inside`` is False."""
    x = raw + bias
    sigma = F.softplus(x) if activation == "softplus" else trunc_exp(x)
    return torch.where(inside, sigma, torch.zeros_like(sigma))


def check_density_activation(name: str) -> None:
    if name not in DENSITY_ACTIVATIONS:
        raise ValueError(f"density_activation must be one of {DENSITY_ACTIVATIONS}, got {name!r}")


def check_single_scene(scene_index: SceneIndex) -> None:
    """Single-scene fields accept ``scene_index`` ``None`` or ``0`` (an int or all-zero tensor)."""
    if scene_index is None:
        return
    if isinstance(scene_index, int):
        ok = scene_index == 0
    else:
        ok = bool((torch.as_tensor(scene_index) == 0).all())
    if not ok:
        raise ValueError("this field holds one scene: scene_index must be None or 0")



class EncodedField(Field):
    """A single-scene field whose ``_raw(points)`` returns ``(..., 1 + C)`` raw outputs and a
    ``(...)`` inside-the-box mask: channel 0 is density, channels 1..C the features
    (hash grids, K-Planes).

    Subclasses set ``density_activation``, ``density_bias`` and ``_out_act`` and implement ``_raw``.
    """

    density_activation: str
    density_bias: float

    def _raw(self, points: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError  # abstract: each encoding defines it

    def forward(
        self, points: Tensor, directions: Tensor | None = None, scene_index: SceneIndex = None
    ) -> tuple[Tensor, Tensor]:
        """Density ``(...)`` and features ``(..., C)`` at ``(..., 3)`` points; ``directions`` ignored."""
        check_single_scene(scene_index)
        raw, inside = self._raw(points)
        density = apply_density(raw[..., 0], inside, self.density_activation, self.density_bias)
        return density, self._out_act(raw[..., 1:])

    def density(self, points: Tensor, scene_index: SceneIndex = None) -> Tensor:
        """``(...)`` density at ``(..., 3)`` points."""
        check_single_scene(scene_index)
        raw, inside = self._raw(points)
        return apply_density(raw[..., 0], inside, self.density_activation, self.density_bias)
