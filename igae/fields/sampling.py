"""Where along each ray to evaluate a field: ray/box clipping, stratified and importance sampling.

Pure torch (CPU and CUDA alike): nerfacc 0.5.3's samplers (``ray_aabb_intersect``,
``importance_sampling``, ``OccGridEstimator.sampling``) are CUDA-only kernels, so they are not
used here. Samples are *intervals* ``[t_start, t_end)`` of shape ``(R, S)`` that tile
``[t_near, t_far]`` without gaps (``t_ends[:, i] == t_starts[:, i + 1]``), the layout nerfacc's
batched volume rendering expects; the field is evaluated at interval midpoints.

Extension point: anything implementing :class:`Sampler` plugs into the renderer. The default
:class:`CoarseToFineSampler` is NeRF's hierarchical sampling with **one** network: a coarse
pass of the same field under ``no_grad`` gives weights, inverse-CDF sampling adds fine samples
where the weights are, and the renderer evaluates the field with gradients on the merged set.
A separate proposal network (mip-NeRF 360, nerfacc's ``PropNetEstimator``) would cost a second
model and its training on CPU; reusing the field costs one gradient-free density pass. An
occupancy-grid sampler (:mod:`igae.fields.occupancy`: nerfacc's ``OccGridEstimator`` on CUDA, a
torch grid on CPU) is the second implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import nerfacc
import torch
from torch import Tensor

from igae.fields.base import FieldFn


@dataclass
class RayBundle:
    """Rays to render.

    Attributes:
        origins: ``(R, 3)`` world-space ray origins.
        directions: ``(R, 3)`` unit world-space directions.
        scene_index: ``(R,)`` long scene of each ray for multi-scene fields, or ``None``.
    """

    origins: Tensor
    directions: Tensor
    scene_index: Tensor | None = None

    def __len__(self) -> int:
        return self.origins.shape[0]

    def __getitem__(self, sl: slice) -> "RayBundle":
        idx = None if self.scene_index is None else self.scene_index[sl]
        return RayBundle(self.origins[sl], self.directions[sl], idx)


class Sampler(Protocol):
    """Chooses sample intervals along rays; the renderer's extension point."""

    def __call__(
        self, rays: RayBundle, field: FieldFn, train: bool, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Return ``t_starts, t_ends``, each ``(R, S)``, sorted along ``S``, without gradients."""
        ...


def ray_aabb(origins: Tensor, directions: Tensor, aabb: Tensor, near: float = 0.0) -> tuple[Tensor, Tensor, Tensor]:
    """Where rays enter and leave an axis-aligned box (slab method).

    Args:
        origins: ``(R, 3)``; directions: ``(R, 3)`` (need not be unit; ``t`` is in their units).
        aabb: ``(2, 3)`` ``[min_xyz, max_xyz]``.
        near: smallest ``t`` kept (rays starting inside the box start at ``near``).

    Returns:
        t_near, t_far: ``(R,)``; equal (both ``near``) for rays that miss the box, so their
            sample intervals have zero length and render as pure background.
        hit: ``(R,)`` bool, the ray crosses the box beyond ``near``.
    """
    # Zero direction components would give 0 * inf = nan; a tiny same-signed value gives +-inf
    # slab distances instead, which the min/max below handle.
    d = torch.where(directions.abs() < 1e-12, torch.full_like(directions, 1e-12), directions)
    inv = 1.0 / d
    t0 = (aabb[0] - origins) * inv
    t1 = (aabb[1] - origins) * inv
    t_enter = torch.minimum(t0, t1).amax(dim=-1).clamp_min(near)
    t_exit = torch.maximum(t0, t1).amin(dim=-1)
    hit = t_exit > t_enter
    t_near = torch.where(hit, t_enter, torch.full_like(t_enter, near))
    t_far = torch.where(hit, t_exit, t_near)
    return t_near, t_far, hit


def stratified_samples(
    t_near: Tensor, t_far: Tensor, n: int, train: bool, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """``n`` contiguous intervals tiling ``[t_near, t_far]`` per ray.

    Evaluation (``train=False``): ``n`` equal bins, deterministic. Training: each interior bin
    edge moves uniformly within half a bin either way (edges stay sorted; the ends stay at
    ``t_near``/``t_far``), so every step sees slightly different positions (NeRF's stratified
    jitter, which avoids fitting a fixed set of depths).

    Args:
        t_near, t_far: ``(R,)``.
        n: number of intervals (>= 1).
        train: jitter or not.
        generator: random source for the jitter (on the rays' device) for reproducibility.

    Returns:
        t_starts, t_ends: ``(R, n)``.
    """
    if n < 1:
        raise ValueError(f"need at least 1 sample per ray, got {n}")
    steps = torch.linspace(0.0, 1.0, n + 1, device=t_near.device, dtype=t_near.dtype)  # (n+1,)
    if train and n > 1:
        jitter = torch.rand(t_near.shape[0], n - 1, generator=generator, device=t_near.device, dtype=t_near.dtype)
        interior = steps[1:-1] + (jitter - 0.5) / n
        steps = torch.cat([steps[:1].expand(t_near.shape[0], 1), interior, steps[-1:].expand(t_near.shape[0], 1)], 1)
    edges = t_near[:, None] + (t_far - t_near)[:, None] * steps  # (R, n+1)
    return edges[:, :-1], edges[:, 1:]


def sample_pdf(
    t_starts: Tensor, t_ends: Tensor, weights: Tensor, n: int, train: bool, generator: torch.Generator | None = None
) -> Tensor:
    """``(R, n)`` sorted positions drawn from the piecewise-constant pdf of ``weights``.

    Inverse-CDF sampling over contiguous intervals ``(R, S)``: the pdf is uniform within each
    interval and proportional to its weight (plus a small floor so empty rays sample
    uniformly). Training draws stratified uniforms ``(i + U) / n``; evaluation uses
    ``(i + 0.5) / n``, so evaluation renders are deterministic.
    """
    if n < 1:
        raise ValueError(f"need at least 1 importance sample per ray, got {n}")
    r = weights.shape[0]
    w = weights.detach() + 1e-5
    pdf = w / w.sum(dim=-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, dim=-1)], dim=-1).clamp(max=1.0)  # (R, S+1)
    cdf[:, -1] = 1.0
    offset = (torch.rand(r, n, generator=generator, device=w.device, dtype=w.dtype) if train
              else torch.full((r, n), 0.5, device=w.device, dtype=w.dtype))
    u = (torch.arange(n, device=w.device, dtype=w.dtype) + offset) / n  # (R, n), sorted in [0, 1)
    edges = torch.cat([t_starts, t_ends[:, -1:]], dim=-1)  # (R, S+1)
    above = torch.searchsorted(cdf, u.contiguous(), right=True).clamp(1, cdf.shape[-1] - 1)
    below = above - 1
    c0, c1 = cdf.gather(1, below), cdf.gather(1, above)
    e0, e1 = edges.gather(1, below), edges.gather(1, above)
    frac = ((u - c0) / (c1 - c0).clamp_min(1e-12)).clamp(0.0, 1.0)
    return e0 + frac * (e1 - e0)


def importance_samples(
    t_starts: Tensor, t_ends: Tensor, weights: Tensor, n: int, train: bool, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Coarse intervals refined by ``n`` importance samples (see :func:`sample_pdf`).

    The fine positions are inserted into the coarse edges as extra edges and the union is
    sorted, so the result still tiles ``[t_near, t_far]`` exactly: ``S + n`` intervals, which
    are smallest where the weights are.

    Args:
        t_starts, t_ends: ``(R, S)`` contiguous coarse intervals.
        weights: ``(R, S)`` coarse rendering weights.

    Returns:
        t_starts, t_ends: ``(R, S + n)``, sorted, detached.
    """
    fine = sample_pdf(t_starts, t_ends, weights, n, train, generator)
    edges = torch.cat([t_starts, t_ends[:, -1:], fine], dim=-1).detach()
    edges, _ = torch.sort(edges, dim=-1)
    return edges[:, :-1], edges[:, 1:]


class CoarseToFineSampler:
    """Stratified coarse intervals in the box, refined by importance sampling of the same field.

    Args:
        aabb: ``(2, 3)`` box the samples stay in (usually the field's ``aabb``).
        n_coarse: stratified intervals per ray.
        n_fine: importance samples per ray (0 disables the coarse pass); the renderer then
            evaluates ``n_coarse + n_fine`` intervals.
        near: smallest ``t`` (cameras inside the box).
    """

    def __init__(self, aabb: Tensor, n_coarse: int = 48, n_fine: int = 48, near: float = 0.0) -> None:
        if n_coarse < 1 or n_fine < 0:
            raise ValueError(f"need n_coarse >= 1 and n_fine >= 0, got {n_coarse}, {n_fine}")
        self.aabb = aabb
        self.n_coarse = n_coarse
        self.n_fine = n_fine
        self.near = near

    @property
    def samples_per_ray(self) -> int:
        return self.n_coarse + self.n_fine

    def __call__(
        self, rays: RayBundle, field: FieldFn, train: bool, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        aabb = self.aabb.to(device=rays.origins.device, dtype=rays.origins.dtype)
        t_near, t_far, _ = ray_aabb(rays.origins, rays.directions, aabb, self.near)
        t_starts, t_ends = stratified_samples(t_near, t_far, self.n_coarse, train, generator)
        if self.n_fine == 0:
            return t_starts, t_ends
        with torch.no_grad():
            mid = (t_starts + t_ends) * 0.5
            points = rays.origins[:, None, :] + rays.directions[:, None, :] * mid[..., None]
            density_fn = getattr(field, "density", None)
            if density_fn is not None:
                sigmas = density_fn(points, rays.scene_index)
            else:
                dirs = rays.directions[:, None, :].expand_as(points)
                sigmas = field(points, dirs, rays.scene_index)[0]
            weights, _, _ = nerfacc.render_weight_from_density(t_starts, t_ends, sigmas)
        return importance_samples(t_starts, t_ends, weights, self.n_fine, train, generator)
