"""K-Planes field for static scenes (Fridovich-Keil et al., CVPR 2023): multiplied planes, several scales.

For a 3D scene K-Planes uses the ``C(3, 2) = 3`` planes XY, XZ, YZ at each of ``S`` scales
(resolutions ``R_1 < ... < R_S``), each plane ``(F, R_s, R_s)``. A point normalised to
``q in [-1, 1]^3`` is projected onto the planes and the bilinear samples are **multiplied**
(Hadamard) across the three planes of a scale and **concatenated** across scales:

    f_s(q) = P^s_xy(q_x, q_y) * P^s_xz(q_x, q_z) * P^s_yz(q_y, q_z)        (F,)
    f(q)   = [f_1(q), ..., f_S(q)]                                         (S F,)
    raw    = MLP(f(q))                                                      (1 + C,)

The product (unlike the tri-plane field's sum, :mod:`igae.fields.triplane`) lets a feature be
non-zero only where all three projections agree, which localises signal in 3D; the authors
initialise the planes uniformly in ``[0.1, 0.5]`` so that no factor starts at zero (the
gradient to one plane is scaled by the other two). The coarse scales fill space smoothly, the
fine ones add detail.

Regularisers (paper, section 3.2), returned unweighted by :meth:`KPlanesField.regularizers`:

- ``"tv"``: spatial total variation of every plane, ``mean_planes[ mean (P[i,j] - P[i-1,j])^2 +
  mean (P[i,j] - P[i,j-1])^2 ]`` (the paper's squared-difference form; our means differ from its
  ``1 / (|C| n^2)`` normalisation only by the constant feature count, absorbed by the weight).
  Zero exactly for constant planes.
- The paper's other two terms act only on *time* planes (XT, YT, ZT) of dynamic scenes: the
  time smoothness (a 1D Laplacian along ``t``) and the sparse-transients L1 ``||1 - P_c||_1``
  for ``c in {xt, yt, zt}``. A static scene has no time planes, so both are identically zero
  and are not returned (a key whose value is always 0 would only suggest a weight that does
  nothing). The paper's distortion and histogram (proposal) losses belong to its proposal
  sampler, not the field; this project's fits sample with the occupancy grid
  (:class:`~igae.fields.occupancy.OccupancySampler`, the default ``nerf.sampler``) or with
  :class:`~igae.fields.sampling.CoarseToFineSampler`.

Other choices: the paper's density MLP + colour MLP are merged into one small MLP to ``1 + C``
(latent NeRFs are view-independent, see :mod:`igae.fields.vanilla`); density
``softplus(raw - 1)`` as for every field here (``"trunc_exp"`` is the paper's); bilinear
sampling with ``grid_sample``'s ``align_corners=True`` convention, computed as one weighted
gather over all planes of all scales (as the tri-plane field does; a test checks it equals
``grid_sample``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from igae.fields.base import EncodedField, SceneIndex
from igae.fields.base import output_activation as make_output_activation
from igae.fields.triplane import _WeightedGather, make_aabb
from igae.fields.base import apply_density, check_density_activation, check_single_scene

PLANE_AXES = ((0, 1), (0, 2), (1, 2))
"""Coordinates (width, height) sampled by the XY, XZ and YZ planes, in that order."""
_WIDTH_AXES = [u for u, _ in PLANE_AXES]
_HEIGHT_AXES = [v for _, v in PLANE_AXES]


def sample_planes(planes: list[Tensor], q: Tensor) -> Tensor:
    """Bilinear samples of every plane of every scale, kept separate (not summed).

    Args:
        planes: ``S`` tensors ``(3, F, R_s, R_s)`` (XY, XZ, YZ planes of scale ``s``).
        q: ``(P, 3)`` points in ``[-1, 1]^3`` (clamped here).

    Returns:
        ``(P, S, 3, F)``; entry ``[:, s, k]`` equals ``grid_sample(planes[s][k:k+1], grid,
        align_corners=True)`` with ``grid[..., 0]``/``grid[..., 1]`` the plane's first/second
        coordinate (:data:`PLANE_AXES`).
    """
    p, f = q.shape[0], planes[0].shape[1]
    q = q.clamp(-1.0, 1.0)
    tables, indices, weights = [], [], []
    row = 0
    for plane in planes:  # loop over the few scales only; points are vectorised
        r = plane.shape[-1]
        tables.append(plane.permute(0, 2, 3, 1).reshape(3 * r * r, f))  # row (k, y, x)
        width = (q[:, _WIDTH_AXES] + 1.0) * (0.5 * (r - 1))  # (P, 3): x, x, y
        height = (q[:, _HEIGHT_AXES] + 1.0) * (0.5 * (r - 1))  # (P, 3): y, z, z
        x0 = width.detach().floor().clamp(0, r - 2)  # the last cell includes its far edge
        y0 = height.detach().floor().clamp(0, r - 2)
        fx, fy = width - x0, height - y0
        base = row + y0.long() * r + x0.long() + torch.arange(3, device=q.device) * (r * r)  # (P, 3)
        indices.append(torch.stack([base, base + 1, base + r, base + r + 1], dim=-1))  # (P, 3, 4)
        weights.append(torch.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], dim=-1))
        row += 3 * r * r
    table = torch.cat(tables) if len(tables) > 1 else tables[0]
    index = torch.stack(indices, dim=1).reshape(-1, 4)  # (P * S * 3, 4)
    weight = torch.stack(weights, dim=1).reshape(-1, 4)
    if weight.requires_grad:  # gradients to the points are wanted: the native op gives them
        out = F.embedding_bag(index, table, mode="sum", per_sample_weights=weight)
    else:
        out = _WeightedGather.apply(table, index, weight)
    return out.reshape(p, len(planes), 3, f)


def plane_tv(planes: list[Tensor]) -> Tensor:
    """Mean over all planes of all scales of the mean squared neighbour differences (rows + columns).

    Args:
        planes: ``S`` tensors ``(3, F, R_s, R_s)``.

    Returns:
        scalar, zero exactly for constant planes.
    """
    total = planes[0].new_zeros(())
    for p in planes:
        dh = p[..., 1:, :] - p[..., :-1, :]
        dw = p[..., :, 1:] - p[..., :, :-1]
        total = total + dh.square().mean() + dw.square().mean()  # one scale's 3 planes (same size)
    return total / len(planes)


class KPlanesField(EncodedField):
    """Static K-Planes: 3 planes per scale, multiplied, scales concatenated, small MLP.

    Args:
        out_channels: ``C`` (3 for RGB, the latent channels for latent NeRFs).
        aabb: ``(2, 3)`` scene box or a float half-size of a cube centred at the origin.
        output_activation: ``"none" | "sigmoid" | "tanh"`` (see :mod:`igae.fields.base`).
        seed: seeds the initialisation (the global RNG is left untouched).
        resolutions: plane side per scale (paper: 64, 128, 256, 512).
        features: ``F``, channels per plane (paper: 32).
        hidden: MLP width (paper: 64).
        hidden_layers: MLP hidden layers.
        init_range: the planes start uniform in ``[low, high]`` (paper: ``(0.1, 0.5)``).
        density_activation: ``"softplus"`` (default) or ``"trunc_exp"``.
        density_bias: added to the raw density before the activation.

    Parameter groups: ``{"planes": [one (3, F, R, R) tensor per scale], "mlp": [...]}``.
    """

    def __init__(
        self,
        out_channels: int = 3,
        aabb: Tensor | float = 1.0,
        output_activation: str = "sigmoid",
        seed: int = 0,
        resolutions: tuple[int, ...] | list[int] = (32, 64),
        features: int = 16,
        hidden: int = 64,
        hidden_layers: int = 2,
        init_range: tuple[float, float] | list[float] = (0.1, 0.5),
        density_activation: str = "softplus",
        density_bias: float = -1.0,
    ) -> None:
        super().__init__()
        resolutions = tuple(int(r) for r in resolutions)
        if not resolutions or min(resolutions) < 2:
            raise ValueError(f"resolutions must be a non-empty list of plane sides >= 2, got {list(resolutions)}")
        for name, value in (("out_channels", out_channels), ("features", features), ("hidden", hidden),
                            ("hidden_layers", hidden_layers)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        low, high = (float(v) for v in init_range)
        if not low <= high:
            raise ValueError(f"init_range must be (low, high) with low <= high, got {list(init_range)}")
        check_density_activation(density_activation)
        self.out_channels = out_channels
        self.output_activation_name = output_activation
        self._out_act = make_output_activation(output_activation)
        self.resolutions, self.features = resolutions, features
        self.density_activation = density_activation
        self.density_bias = float(density_bias)
        self.register_buffer("aabb", make_aabb(aabb))

        gen = torch.Generator().manual_seed(seed)
        self.planes = torch.nn.ParameterList(
            torch.nn.Parameter(low + (high - low) * torch.rand(3, features, r, r, generator=gen)) for r in resolutions
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            layers: list[torch.nn.Module] = []
            width = features * len(resolutions)
            for _ in range(hidden_layers):
                layers += [torch.nn.Linear(width, hidden), torch.nn.ReLU(inplace=True)]
                width = hidden
            layers.append(torch.nn.Linear(width, 1 + out_channels))
            self.mlp = torch.nn.Sequential(*layers)

    def normalize(self, points: Tensor) -> Tensor:
        """``(..., 3)`` points mapped from the box to ``[-1, 1]^3``."""
        lo, hi = self.aabb[0], self.aabb[1]
        return (points - lo) * (2.0 / (hi - lo)) - 1.0

    def encode(self, q: Tensor) -> Tensor:
        """``(P, S F)`` features of ``(P, 3)`` normalised points: per-scale plane products, concatenated."""
        samples = sample_planes(list(self.planes), q)  # (P, S, 3, F)
        return samples.prod(dim=2).reshape(q.shape[0], -1)

    def _raw(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """``(..., 1 + C)`` MLP outputs before activations and the ``(...)`` inside-box mask."""
        if points.shape[-1] != 3:
            raise ValueError(f"points must have shape (..., 3), got {tuple(points.shape)}")
        lead = points.shape[:-1]
        q = self.normalize(points).reshape(-1, 3)
        inside = (q.abs() <= 1.0).all(dim=-1).reshape(lead)
        return self.mlp(self.encode(q)).reshape(*lead, 1 + self.out_channels), inside

    def param_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """``{"planes": [per-scale planes], "mlp": [MLP weights and biases]}``."""
        return {"planes": list(self.planes), "mlp": list(self.mlp.parameters())}

    def regularizers(self) -> dict[str, Tensor]:
        """``{"tv": plane_tv(planes)}`` (the time-plane terms do not exist for static scenes)."""
        return {"tv": plane_tv(list(self.planes))}

    def extra_repr(self) -> str:
        return (f"out_channels={self.out_channels}, resolutions={list(self.resolutions)}, features={self.features}, "
                f"output_activation={self.output_activation_name!r}")
