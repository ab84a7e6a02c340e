"""Occupancy grid and empty-space-skipping sampler (CPU; the nerfacc CUDA traversal is not run here)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from igae.fields.base import Field
from igae.fields.occupancy import (
    OccupancyGrid,
    OccupancySampler,
    march_segments,
    packed_to_segments,
    resolve_backend,
    samples_in_segments,
)
from igae.fields.sampling import RayBundle, ray_aabb, stratified_samples
from igae.fields.volume_renderer import render_rays
from igae.geometry import focal_from_fov, look_at, pixel_rays

AABB = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
CENTRE = torch.tensor([0.2, -0.1, 0.1])
RADIUS = 0.3
SIGMA = 20.0
BG = torch.tensor([0.1, 0.9, -0.5, 0.3])


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


class SphereField(Field):
    """Density ``SIGMA`` inside a ball, 0 outside; 4 feature channels that vary with position."""

    out_channels = 4

    def forward(self, points: Tensor, directions: Tensor | None = None, scene_index=None) -> tuple[Tensor, Tensor]:
        return self.density(points), self.colour(points)

    def density(self, points: Tensor, scene_index=None) -> Tensor:
        inside = (points - CENTRE).norm(dim=-1) < RADIUS
        return torch.where(inside, torch.full_like(points[..., 0], SIGMA), torch.zeros_like(points[..., 0]))

    @staticmethod
    def colour(points: Tensor) -> Tensor:
        x, y, z = points.unbind(-1)
        return torch.stack([torch.sin(6 * x), torch.cos(5 * y), 4 * z, x * y * 8], dim=-1)


def cameras(n: int = 4, size: int = 8, fov: float = 16.0, radius: float = 2.6) -> RayBundle:
    """``n * size^2`` rays from cameras orbiting the sphere, aimed so some rays miss it."""
    ang = torch.arange(n, dtype=torch.float32) * (2 * math.pi / n) + 0.4
    eye = torch.stack([radius * torch.cos(ang), radius * torch.sin(ang), 0.8 * torch.ones(n)], dim=1)
    c2w = look_at(eye, CENTRE)
    f = focal_from_fov(fov, size)
    o, d = pixel_rays(c2w, torch.tensor([f, f, size / 2, size / 2]), size, size)
    return RayBundle(o.reshape(-1, 3), d.reshape(-1, 3))


def fitted_sampler(samples: int = 32, updates: int = 6) -> OccupancySampler:
    """A sampler whose grid has seen the sphere's density a few times (as in training)."""
    sampler = OccupancySampler(AABB, resolution=64, samples_per_ray=samples)
    gen = torch.Generator().manual_seed(0)
    for step in range(0, 16 * updates, 16):
        assert sampler.update(step, SphereField().density, generator=gen)
    return sampler


def render(field: Field, rays: RayBundle, t_starts: Tensor, t_ends: Tensor) -> dict[str, Tensor]:
    return render_rays(field, rays.origins, rays.directions, t_starts, t_ends, BG)


# ---------------------------------------------------------------- grid
def test_grid_starts_fully_occupied_and_update_finds_the_sphere() -> None:
    grid = OccupancyGrid(AABB, resolution=32)
    assert grid.occupied.shape == (32, 32, 32) and bool(grid.occupied.all())
    assert grid.step_size == pytest.approx(1 / 32)
    assert not grid.update(5, SphereField().density)  # not an update step: unchanged
    assert bool(grid.occupied.all())

    assert grid.update(0, SphereField().density, generator=torch.Generator().manual_seed(1))
    dist = (grid.cell_centres() - CENTRE).norm(dim=-1).reshape(grid.resolution)
    half_diag = float(grid.cell_size.norm()) / 2
    assert bool(grid.occupied[dist < RADIUS - half_diag].all())  # cells wholly inside
    assert not bool(grid.occupied[dist > RADIUS + half_diag].any())  # cells wholly outside
    ball = 4 / 3 * math.pi * RADIUS**3 / 8.0  # fraction of the box
    assert 0.5 * ball < grid.occupancy_fraction() < 2.0 * ball

    # Point lookups agree with the cells; outside the box is never occupied.
    pts = torch.stack([CENTRE, torch.tensor([0.9, 0.9, -0.9]), torch.tensor([1.5, 0.0, 0.0])])
    assert grid.occupied_at(pts).tolist() == [True, False, False]
    # The marching fast path reads the same cells for in-box points.
    g = torch.Generator().manual_seed(0)
    o = torch.rand(64, 3, generator=g) * 0.2 - 0.1
    d = torch.nn.functional.normalize(torch.randn(64, 3, generator=g), dim=-1)
    t = torch.rand(64, 50, generator=g) * 0.85
    along = grid.occupied_along(o, d, t)
    assert torch.equal(along, grid.occupied_at(o[:, None] + d[:, None] * t[..., None]))
    assert 0.05 < float(along.float().mean()) < 0.95


def test_after_warmup_only_a_subset_is_evaluated_and_emptied_space_decays() -> None:
    grid = OccupancyGrid(AABB, resolution=16)
    grid.update(0, SphereField().density)
    n_calls = []

    def empty(points: Tensor) -> Tensor:
        n_calls.append(points.shape[0])
        return torch.zeros(points.shape[0])

    n_occupied = int(grid.occupied.sum())
    assert grid.update(304, empty, warmup_steps=256, ema_decay=0.5, generator=torch.Generator().manual_seed(0))
    assert n_occupied <= sum(n_calls) <= grid.n_cells // 4 + n_occupied
    # The sphere's cells were all re-evaluated (they were occupied) and decayed by half.
    assert float(grid.density.max()) == pytest.approx(SIGMA * 0.5)


def test_faint_uniform_field_is_not_declared_empty() -> None:
    """A fresh field (softplus(-1) = 0.31 everywhere) must not lose every cell at step 0."""
    grid = OccupancyGrid(AABB, resolution=16)
    grid.update(0, lambda p: torch.full((p.shape[0],), 0.31))
    assert bool(grid.occupied.all())


def test_mark_invisible_cells_frees_what_no_camera_sees() -> None:
    grid = OccupancyGrid(AABB, resolution=16)
    eye = torch.tensor([[0.0, -3.0, 0.0]])
    c2w = look_at(eye, torch.zeros(3))
    size = 16
    f = focal_from_fov(10.0, size)  # narrow: sees a thin cone around the y axis
    n_visible = grid.mark_invisible_cells(c2w, torch.tensor([f, f, size / 2, size / 2]), size, size)
    assert 0 < n_visible < grid.n_cells // 4
    assert grid.occupied_at(torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.9, 0.0]])).all()
    assert not grid.occupied_at(torch.tensor([[0.9, 0.0, 0.9], [-0.9, 0.5, -0.9]])).any()
    # Invisible cells stay free even when the field is dense everywhere.
    grid.update(0, lambda p: torch.full((p.shape[0],), 50.0))
    assert int(grid.occupied.sum()) == n_visible
    assert bool((grid.density[~grid.occupied] == -1).all())


# ---------------------------------------------------------------- sampler
def test_fresh_sampler_is_plain_stratified_sampling() -> None:
    rays = cameras()
    sampler = OccupancySampler(AABB, samples_per_ray=16)
    t_near, t_far, _ = ray_aabb(rays.origins, rays.directions, AABB)
    for train in (False, True):
        got = sampler(rays, SphereField(), train, torch.Generator().manual_seed(3))
        ref = stratified_samples(t_near, t_far, 16, train, torch.Generator().manual_seed(3))
        assert torch.allclose(got[0], ref[0], atol=2e-5) and torch.allclose(got[1], ref[1], atol=2e-5)


def test_sampler_matches_dense_rendering_and_beats_stratified_at_equal_samples() -> None:
    field, rays = SphereField(), cameras()
    sampler = fitted_sampler(samples=32, updates=30)  # enough updates to find the sphere's rim cells
    t_near, t_far, _ = ray_aabb(rays.origins, rays.directions, AABB)

    dense = render(field, rays, *stratified_samples(t_near, t_far, 2048, False))
    occ = render(field, rays, *sampler(rays, field, False))
    plain = render(field, rays, *stratified_samples(t_near, t_far, 32, False))

    hit = dense["opacity"][:, 0] > 0.01
    assert 0.2 < float(hit.float().mean()) < 0.8  # the views hold both sphere and background
    err_occ_a = float((occ["opacity"] - dense["opacity"]).abs().mean())
    err_occ_c = float((occ["features"] - dense["features"]).abs().mean())
    err_plain_a = float((plain["opacity"] - dense["opacity"]).abs().mean())
    err_plain_c = float((plain["features"] - dense["features"]).abs().mean())
    print(f"opacity err: occupancy {err_occ_a:.4f} plain {err_plain_a:.4f}; "
          f"features err: occupancy {err_occ_c:.4f} plain {err_plain_c:.4f}")
    assert err_occ_a < 0.02 and err_occ_c < 0.02
    assert err_occ_a < err_plain_a / 3 and err_occ_c < err_plain_c / 3

    # The samples of rays that hit something sit in or right next to the sphere.
    def dist_to_centre(t_starts: Tensor, t_ends: Tensor) -> Tensor:
        mid = (t_starts + t_ends)[hit] * 0.5
        return (rays.origins[hit, None] + rays.directions[hit, None] * mid[..., None] - CENTRE).norm(dim=-1)

    dist = dist_to_centre(*sampler(rays, field, True, torch.Generator().manual_seed(0)))
    dist_plain = dist_to_centre(*stratified_samples(t_near, t_far, 32, True, torch.Generator().manual_seed(0)))
    cell_diag = float(sampler.grid.cell_size.norm())
    assert bool((dist < RADIUS + cell_diag).all())
    frac, frac_plain = float((dist < RADIUS).float().mean()), float((dist_plain < RADIUS).float().mean())
    print(f"fraction of samples inside the sphere: occupancy {frac:.3f}, plain {frac_plain:.3f}")
    assert frac > 0.8 and frac_plain < 0.3


def test_intervals_are_sorted_disjoint_and_in_occupied_cells() -> None:
    field, rays = SphereField(), cameras()
    sampler = fitted_sampler(samples=24)
    t_near, t_far, _ = ray_aabb(rays.origins, rays.directions, AABB)
    t_starts, t_ends = sampler(rays, field, True, torch.Generator().manual_seed(2))
    assert t_starts.shape == t_ends.shape == (len(rays), 24)
    assert not t_starts.requires_grad
    assert bool((t_ends >= t_starts).all())
    assert bool((t_starts[:, 1:] >= t_ends[:, :-1] - 1e-5).all())  # sorted, no overlap
    assert bool((t_starts >= t_near[:, None] - 1e-5).all() and (t_ends <= t_far[:, None] + 1e-5).all())
    # Every midpoint lies inside one of its ray's occupied marching steps, and (almost always)
    # in an occupied cell: a step counts as occupied by the cell at its midpoint.
    mid = (t_starts + t_ends) * 0.5
    has = (t_ends > t_starts).any(dim=1)
    seg_s, seg_e = march_segments(sampler.grid, rays.origins, rays.directions, t_near, t_far)
    in_seg = (mid[..., None] >= seg_s[:, None] - 1e-5) & (mid[..., None] <= seg_e[:, None] + 1e-5)
    assert bool((in_seg & (seg_e > seg_s)[:, None]).any(dim=-1)[has].all())
    pts = rays.origins[has, None] + rays.directions[has, None] * mid[has, :, None]
    assert float(sampler.grid.occupied_at(pts).float().mean()) > 0.9


def test_rays_missing_the_occupied_region_render_background_exactly() -> None:
    field = SphereField()
    sampler = fitted_sampler(samples=16, updates=1)
    # Through the box but far from the sphere, and missing the box altogether.
    origins = torch.tensor([[-3.0, 0.8, 0.8], [-3.0, -0.8, -0.7], [-3.0, 5.0, 0.0], [0.0, 0.0, 5.0]])
    dirs = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
    rays = RayBundle(origins, dirs)
    t_starts, t_ends = sampler(rays, field, True, torch.Generator().manual_seed(0))
    out = render(field, rays, t_starts, t_ends)
    assert bool((t_starts[:3] == t_ends[:3]).all())
    assert out["opacity"][:3].eq(0).all() and torch.equal(out["features"][:3], BG.expand(3, 4))
    assert float(out["opacity"][3]) > 0.99  # the control ray straight down through the sphere


def test_jitter_is_deterministic_with_a_generator() -> None:
    field, rays = SphereField(), cameras(n=1)
    sampler = fitted_sampler(samples=16, updates=1)
    a = sampler(rays, field, True, torch.Generator().manual_seed(7))
    b = sampler(rays, field, True, torch.Generator().manual_seed(7))
    c = sampler(rays, field, True, torch.Generator().manual_seed(8))
    e1, e2 = sampler(rays, field, False), sampler(rays, field, False)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert torch.equal(e1[0], e2[0]) and not torch.equal(a[0], e1[0])


def test_state_dict_round_trip() -> None:
    src = fitted_sampler(samples=8, updates=1)
    dst = OccupancySampler(AABB, resolution=64, samples_per_ray=8)
    dst.load_state_dict(src.state_dict())
    rays = cameras(n=1)
    assert torch.equal(dst(rays, SphereField(), False)[0], src(rays, SphereField(), False)[0])


# ---------------------------------------------------------------- nerfacc (CUDA) path
def test_backend_selection_follows_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    from igae.fields import nerfacc_cuda

    # As on a GPU machine where nerfacc's extension loads (the fallback: tests/test_gpu_paths.py).
    monkeypatch.setattr(nerfacc_cuda, "_STATUS", nerfacc_cuda.ExtensionStatus(True, "", None))
    assert resolve_backend("auto", "cpu") == "torch"
    assert resolve_backend("auto", torch.device("cuda")) == "nerfacc"
    assert resolve_backend("torch", "cuda:0") == "torch"
    assert resolve_backend("nerfacc", "cuda") == "nerfacc"
    with pytest.raises(ValueError, match="CUDA"):
        resolve_backend("nerfacc", "cpu")
    with pytest.raises(ValueError, match="backend must be"):
        resolve_backend("occ", "cpu")
    with pytest.raises(ValueError, match="CUDA"):
        OccupancySampler(AABB, backend="nerfacc")
    assert OccupancySampler(AABB).backend == "torch"


def test_packed_to_segments_orders_and_pads() -> None:
    ray_indices = torch.tensor([0, 0, 2, 2, 2])
    starts = torch.tensor([0.1, 0.3, 1.0, 1.1, 1.5])
    ends = starts + 0.1
    s, e = packed_to_segments(ray_indices, starts, ends, 3, fill=torch.tensor([9.0, 8.0, 7.0]))
    assert s.shape == (3, 3)
    assert s.tolist()[0][:2] == pytest.approx([0.1, 0.3]) and s[0, 2] == e[0, 2] == 9.0
    assert bool((s[1] == 8.0).all() and (e[1] == 8.0).all())  # a ray without samples
    assert e[2].tolist() == pytest.approx([1.1, 1.2, 1.6])
    s0, e0 = packed_to_segments(torch.zeros(0, dtype=torch.long), torch.zeros(0), torch.zeros(0), 2,
                                fill=torch.zeros(2))
    assert s0.shape == (2, 1) and bool((s0 == e0).all())


class _TorchMarchEstimator(torch.nn.Module):
    """Stand-in for nerfacc's ``OccGridEstimator`` on CPU: the same packed outputs, from the torch march."""

    def __init__(self, grid: OccupancyGrid) -> None:
        super().__init__()
        self.grid = grid
        self.binaries = grid.occupied[None]

    def sampling(self, rays_o, rays_d, near_plane, t_min, t_max, render_step_size, stratified):
        assert render_step_size == self.grid.step_size and not stratified
        assert self.binaries.data_ptr() == self.grid.occupied.data_ptr()  # sees the live grid
        s, e = march_segments(self.grid, rays_o, rays_d, t_min, t_max)
        keep = e > s
        ray_indices = torch.arange(rays_o.shape[0])[:, None].expand_as(s)[keep]
        return ray_indices.int(), s[keep], e[keep]


def test_nerfacc_branch_with_a_cpu_stand_in_matches_the_torch_backend() -> None:
    """The CUDA branch's glue (estimator call, packed -> batched) on CPU; nerfacc's kernel itself is not run."""
    field, rays = SphereField(), cameras()
    sampler = fitted_sampler(samples=16, updates=2)
    ref = sampler(rays, field, True, torch.Generator().manual_seed(4))
    sampler.backend = "nerfacc"
    stand_in = _TorchMarchEstimator(sampler.grid)
    sampler.estimator = lambda: (setattr(stand_in, "binaries", sampler.grid.occupied[None]), stand_in)[1]
    got = sampler(rays, field, True, torch.Generator().manual_seed(4))
    assert torch.allclose(got[0], ref[0], atol=1e-5) and torch.allclose(got[1], ref[1], atol=1e-5)


def test_real_nerfacc_estimator_is_built_on_the_grid() -> None:
    """nerfacc's constructor runs on CPU: check its box, resolution and that it traverses our cells."""
    sampler = fitted_sampler(samples=8, updates=1)
    est = sampler.estimator()
    assert type(est).__name__ == "OccGridEstimator"
    assert torch.equal(est.aabbs[0], AABB.reshape(-1))
    assert est.binaries.shape == (1, 64, 64, 64)
    assert torch.equal(est.binaries[0], sampler.grid.occupied)
    sampler.update(16, lambda p: torch.zeros(p.shape[0]))  # the grid changes ...
    # ... and the estimator sees the new grid.
    assert torch.equal(sampler.estimator().binaries[0], sampler.grid.occupied)


def test_samples_in_segments_handles_gaps_exactly() -> None:
    """Two occupied segments with a gap: midpoints land inside them, lengths add up to the occupied length."""
    seg_s = torch.tensor([[1.0, 1.5, 3.0, 3.0]])
    seg_e = torch.tensor([[1.5, 2.0, 3.0, 4.0]])  # [1, 2] and [3, 4]; one zero-length segment
    t_s, t_e = samples_in_segments(seg_s, seg_e, torch.tensor([0.5]), 4, train=False)
    assert ((t_s + t_e) / 2).tolist()[0] == pytest.approx([1.25, 1.75, 3.25, 3.75])
    assert float((t_e - t_s).sum()) == pytest.approx(2.0)
