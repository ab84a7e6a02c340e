"""Tri-plane field, samplers and the nerfacc-based volume renderer (CPU)."""

from __future__ import annotations

import math

import nerfacc
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from igae.fields import (
    CoarseToFineSampler,
    Field,
    RayBundle,
    TriplaneField,
    importance_samples,
    ray_aabb,
    render_image,
    render_rays,
    render_views,
    sample_pdf,
    stratified_samples,
)
from igae.fields.triplane import sample_triplanes
from igae.geometry import focal_from_fov, look_at


class SlabField(Field):
    """Constant density ``sigma`` and features ``colour`` where ``lo <= z <= hi``, empty elsewhere."""

    def __init__(self, sigma: float, colour: Tensor, lo: float, hi: float) -> None:
        super().__init__()
        self.sigma, self.colour, self.lo, self.hi = sigma, colour, lo, hi
        self.out_channels = colour.shape[0]

    def forward(self, points, directions=None, scene_index=None):
        inside = (points[..., 2] >= self.lo) & (points[..., 2] <= self.hi)
        density = torch.where(inside, torch.full_like(points[..., 2], self.sigma), torch.zeros_like(points[..., 2]))
        return density, self.colour.expand(*points.shape[:-1], -1)


def orbit(n: int, radius: float = 3.0, height: float = 1.2) -> Tensor:
    ang = torch.arange(n, dtype=torch.float32) * (2 * math.pi / n) + 0.3
    eye = torch.stack([radius * torch.cos(ang), radius * torch.sin(ang), torch.full((n,), height)], dim=1)
    return look_at(eye, torch.zeros(3))


def intrinsics(size: int, fov: float = 45.0) -> Tensor:
    f = focal_from_fov(fov, size)
    return torch.tensor([f, f, size / 2, size / 2])


# ---------------------------------------------------------------- compositing
def test_slab_opacity_and_features_match_closed_form_with_4_channels() -> None:
    sigma, lo, hi = 1.7, -0.5, 0.5
    colour = torch.tensor([0.3, -0.8, 0.9, 0.1])
    bg = torch.tensor([-0.2, 0.4, 0.0, 1.0])
    field = SlabField(sigma, colour, lo, hi)
    # Rays straight down from z = 3; intervals of 0.01 from t = 1 to 5 put edges on the slab faces.
    r = 5
    origins = torch.stack([torch.linspace(-0.5, 0.5, r), torch.zeros(r), torch.full((r,), 3.0)], 1)
    dirs = torch.tensor([0.0, 0.0, -1.0]).expand(r, 3)
    edges = torch.linspace(1.0, 5.0, 401).expand(r, 401)
    out = render_rays(field, origins, dirs, edges[:, :-1], edges[:, 1:], bg)

    length = hi - lo
    opacity = 1 - math.exp(-sigma * length)
    assert out["opacity"].shape == (r, 1) and out["features"].shape == (r, 4) and out["weights"].shape == (r, 400)
    torch.testing.assert_close(out["opacity"], torch.full((r, 1), opacity), atol=1e-4, rtol=0)
    expected = colour * opacity + bg * (1 - opacity)
    torch.testing.assert_close(out["features"], expected.expand(r, 4), atol=1e-4, rtol=0)
    # Expected depth of an exponential hit truncated to the slab (entered at t0 = 2.5).
    t0 = 3.0 - hi
    depth = t0 + 1 / sigma - length * math.exp(-sigma * length) / opacity
    torch.testing.assert_close(out["depth"], torch.full((r, 1), depth), atol=1e-4, rtol=0)


def test_sampled_render_of_oblique_rays_matches_closed_form() -> None:
    sigma, lo, hi = 2.0, -0.25, 0.35
    colour = torch.tensor([1.0, 0.0, 0.5, -1.0])
    bg = torch.zeros(4)
    field = SlabField(sigma, colour, lo, hi)
    dirs = F.normalize(torch.tensor([[0.3, 0.1, -1.0], [-0.2, 0.4, -1.0], [0.0, 0.0, -1.0]]), dim=-1)
    origins = torch.tensor([[0.0, 0.0, 3.0]]).expand(3, 3)
    sampler = CoarseToFineSampler(torch.tensor([[-2.0, -2.0, -2.0], [2.0, 2.0, 2.0]]), n_coarse=256, n_fine=256)
    t_starts, t_ends = sampler(RayBundle(origins, dirs), field, train=False)
    out = render_rays(field, origins, dirs, t_starts, t_ends, bg)
    length = (hi - lo) / dirs[:, 2].abs()
    opacity = 1 - torch.exp(-sigma * length)
    torch.testing.assert_close(out["opacity"][:, 0], opacity, atol=5e-3, rtol=0)
    torch.testing.assert_close(out["features"], colour * opacity[:, None], atol=5e-3, rtol=0)


def test_render_rays_agrees_with_nerfacc_rendering_for_rgb() -> None:
    gen = torch.Generator().manual_seed(0)
    r, s = 6, 10
    sig = torch.rand(r, s, generator=gen) * 3
    rgb = torch.rand(r, s, 3, generator=gen)
    edges = torch.sort(torch.rand(r, s + 1, generator=gen) * 4, dim=-1).values
    bg = torch.tensor([0.1, 0.2, 0.3])

    def fn(points, directions=None, scene_index=None):
        return sig, rgb

    dirs = torch.tensor([0.0, 0.0, 1.0]).expand(r, 3)
    ours = render_rays(fn, torch.zeros(r, 3), dirs, edges[:, :-1], edges[:, 1:], bg)
    colours, opac, depth, _ = nerfacc.rendering(edges[:, :-1], edges[:, 1:], rgb_sigma_fn=lambda *a: (rgb, sig),
                                                 render_bkgd=bg)
    torch.testing.assert_close(ours["features"], colours)
    torch.testing.assert_close(ours["opacity"], opac)
    torch.testing.assert_close(ours["depth"], depth)


def test_rays_missing_the_box_render_background() -> None:
    field = TriplaneField(num_scenes=1, resolution=8, features=4, out_channels=4, hidden=8, seed=0)
    sampler = CoarseToFineSampler(field.aabb, 8, 8)
    origins = torch.tensor([[0.0, 0.0, 5.0], [0.0, 0.0, 5.0]])
    dirs = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])  # the first misses the unit box
    bg = torch.tensor([0.5, -0.5, 0.25, 0.0])
    t_starts, t_ends = sampler(RayBundle(origins, dirs), field, train=False)
    out = render_rays(field, origins, dirs, t_starts, t_ends, bg)
    assert out["opacity"][0, 0] == 0.0
    torch.testing.assert_close(out["features"][0], bg)
    assert out["opacity"][1, 0] > 0.1


def test_renderer_rejects_a_background_of_the_wrong_channel_count() -> None:
    field = SlabField(1.0, torch.ones(4), -0.5, 0.5)
    edges = torch.linspace(0, 1, 5).expand(2, 5)
    with pytest.raises(ValueError, match="background"):
        render_rays(field, torch.zeros(2, 3), torch.tensor([0.0, 0.0, 1.0]).expand(2, 3), edges[:, :-1], edges[:, 1:],
                    torch.zeros(3))


# ---------------------------------------------------------------- sampling
def test_ray_aabb_entry_exit_miss_and_inside() -> None:
    box = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    origins = torch.tensor([[0.0, 0.0, 3.0], [0.0, 0.0, 0.0], [3.0, 3.0, 3.0], [0.5, 0.0, 3.0]])
    dirs = torch.tensor([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])
    t_near, t_far, hit = ray_aabb(origins, dirs, box)
    assert hit.tolist() == [True, True, False, True]
    torch.testing.assert_close(t_near[[0, 1, 3]], torch.tensor([2.0, 0.0, 2.0]))
    torch.testing.assert_close(t_far[[0, 1, 3]], torch.tensor([4.0, 1.0, 4.0]))
    assert t_near[2] == t_far[2]


def test_stratified_samples_jitter_only_in_training_and_are_reproducible() -> None:
    t_near, t_far = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 2.5])
    s0, e0 = stratified_samples(t_near, t_far, 8, train=False)
    s1, e1 = stratified_samples(t_near, t_far, 8, train=False, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(s0, s1)
    torch.testing.assert_close(s0[0], torch.linspace(1.0, 3.0, 9)[:-1])
    a = stratified_samples(t_near, t_far, 8, train=True, generator=torch.Generator().manual_seed(1))
    b = stratified_samples(t_near, t_far, 8, train=True, generator=torch.Generator().manual_seed(1))
    c = stratified_samples(t_near, t_far, 8, train=True, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(a[0], b[0])
    assert not torch.allclose(a[0], s0) and not torch.allclose(a[0], c[0])
    for ts, te in (a, (s0, e0)):
        torch.testing.assert_close(ts[:, 1:], te[:, :-1])  # contiguous
        assert (te >= ts).all()
        torch.testing.assert_close(ts[:, 0], t_near)
        torch.testing.assert_close(te[:, -1], t_far)


def test_importance_sampling_concentrates_in_a_thin_shell() -> None:
    # A thin dense slab crossed by rays at t in [2.9, 2.98] (of [1, 5]; it holds one coarse
    # midpoint, t = 2.9375, so the coarse pass sees it).
    t_in, t_out = 2.9, 2.98
    field = SlabField(40.0, torch.ones(4), 3.0 - t_out, 3.0 - t_in)
    r = 16
    origins = torch.stack([torch.linspace(-0.5, 0.5, r), torch.zeros(r), torch.full((r,), 3.0)], 1)
    dirs = torch.tensor([0.0, 0.0, -1.0]).expand(r, 3)
    t_starts, t_ends = stratified_samples(torch.ones(r), torch.full((r,), 5.0), 32, train=False)
    mid = (t_starts + t_ends) / 2
    sigmas, _ = field(origins[:, None] + dirs[:, None] * mid[..., None])
    weights, _, _ = nerfacc.render_weight_from_density(t_starts, t_ends, sigmas)
    for train in (False, True):
        fine = sample_pdf(t_starts, t_ends, weights, 64, train, torch.Generator().manual_seed(0))
        assert fine.shape == (r, 64)
        assert (fine[:, 1:] >= fine[:, :-1]).all() and (fine >= 1.0).all() and (fine <= 5.0).all()
        step = 4.0 / 32  # the coarse bins holding the shell
        near_shell = ((fine > t_in - step) & (fine < t_out + step)).float().mean()
        assert near_shell > 0.95
        assert ((fine > t_in) & (fine < t_out)).float().mean() > 0.5  # uniform sampling: 0.02
        ts, te = importance_samples(t_starts, t_ends, weights, 64, train, torch.Generator().manual_seed(0))
        assert ts.shape == (r, 96)
        torch.testing.assert_close(ts[:, 1:], te[:, :-1])
        assert (te >= ts).all() and (ts[:, 0] == 1.0).all() and (te[:, -1] == 5.0).all()


def test_coarse_to_fine_sampler_is_deterministic_in_eval_and_seeded_in_training() -> None:
    field = TriplaneField(num_scenes=1, resolution=8, features=4, out_channels=3, hidden=8, seed=3)
    jitter = torch.randn(4, 3, generator=torch.Generator().manual_seed(0)) * 0.1
    rays = RayBundle(torch.tensor([[0.0, 0.0, 3.0]]).expand(4, 3), F.normalize(jitter + torch.tensor([0, 0, -1.0]), dim=-1))
    sampler = CoarseToFineSampler(field.aabb, 16, 16)
    a = sampler(rays, field, train=False)
    b = sampler(rays, field, train=False)
    torch.testing.assert_close(a, b)
    c = sampler(rays, field, train=True, generator=torch.Generator().manual_seed(7))
    d = sampler(rays, field, train=True, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(c, d)
    assert a[0].shape == (4, 32) and not torch.allclose(a[0], c[0])


# ---------------------------------------------------------------- tri-plane field
def small_field(num_scenes: int = 3, seed: int = 0, **kw) -> TriplaneField:
    args = dict(num_scenes=num_scenes, resolution=8, features=6, out_channels=4, hidden=16, seed=seed)
    args.update(kw)
    return TriplaneField(**args)


def test_triplane_shapes_and_output_activations() -> None:
    pts = torch.rand(2, 5, 3) * 2 - 1
    for act, lo, hi in (("none", -math.inf, math.inf), ("sigmoid", 0.0, 1.0), ("tanh", -1.0, 1.0)):
        field = small_field(1, output_activation=act, init_std=2.0)
        density, feats = field(pts)
        assert density.shape == (2, 5) and feats.shape == (2, 5, 4)
        assert (density >= 0).all() and (feats >= lo).all() and (feats <= hi).all()
        torch.testing.assert_close(field.density(pts), density)
    assert small_field(2).planes.shape == (2, 3, 6, 8, 8)
    with pytest.raises(ValueError, match="output_activation"):
        small_field(1, output_activation="relu")


def test_triplane_density_is_zero_outside_its_box() -> None:
    field = small_field(1, aabb=torch.tensor([[-1.0, -1.0, 0.0], [1.0, 1.0, 2.0]]))
    density, _ = field(torch.tensor([[0.0, 0.0, -0.1], [0.0, 0.0, 1.0], [1.5, 0.0, 1.0]]))
    assert density[0] == 0 and density[2] == 0 and density[1] > 0


def test_plane_sampling_equals_grid_sample_align_corners_true() -> None:
    gen = torch.Generator().manual_seed(0)
    planes = torch.randn(3, 5, 7, 7, generator=gen, requires_grad=True)
    q = torch.rand(50, 3, generator=gen) * 2 - 1
    q[:4] = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0], [1.0, -1.0, 0.3], [-1.0, 0.5, 1.0]])
    ours = sample_triplanes([planes], q)
    grid = torch.stack([q[:, [0, 0, 1]], q[:, [1, 2, 2]]], dim=-1).transpose(0, 1).unsqueeze(1)  # (3, 1, P, 2)
    ref = F.grid_sample(planes, grid, mode="bilinear", align_corners=True).sum(0)[:, 0].t()
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)
    g = torch.randn(ref.shape, generator=gen)
    (ga,) = torch.autograd.grad((ours * g).sum(), planes)
    (gb,) = torch.autograd.grad((ref * g).sum(), planes)
    torch.testing.assert_close(ga, gb, atol=1e-5, rtol=0)
    # Points that require grad (e.g. camera refinement) get grid_sample's position gradient too.
    qg = q[4:].clone().requires_grad_()
    grid = torch.stack([qg[:, [0, 0, 1]], qg[:, [1, 2, 2]]], dim=-1).transpose(0, 1).unsqueeze(1)
    ref = F.grid_sample(planes, grid, mode="bilinear", align_corners=True).sum(0)[:, 0].t()
    (qa,) = torch.autograd.grad((sample_triplanes([planes], qg) * g[4:]).sum(), qg)
    (qb,) = torch.autograd.grad((ref * g[4:]).sum(), qg)
    torch.testing.assert_close(qa, qb, atol=1e-4, rtol=1e-4)


def test_scene_index_selects_planes_and_mixed_batches_match_single_scene_calls() -> None:
    field = small_field(3, init_std=1.0)
    pts = torch.rand(4, 7, 3) * 2 - 1
    d0, f0 = field(pts, scene_index=0)
    d1, f1 = field(pts, scene_index=1)
    assert not torch.allclose(f0, f1) and not torch.allclose(d0, d1)
    # Per-ray scenes (rows 0, 2 -> scene 2; rows 1, 3 -> scene 0): one call equals per-scene calls.
    idx = torch.tensor([2, 0, 2, 0])
    dm, fm = field(pts, scene_index=idx)
    d2, f2 = field(pts, scene_index=2)
    torch.testing.assert_close(fm[idx == 2], f2[idx == 2], atol=1e-6, rtol=0)
    torch.testing.assert_close(fm[idx == 0], f0[idx == 0], atol=1e-6, rtol=0)
    torch.testing.assert_close(dm[idx == 0], d0[idx == 0], atol=1e-6, rtol=0)
    torch.testing.assert_close(field.scene(1)(pts)[1], f1)
    with pytest.raises(ValueError, match="scene_index"):
        field(pts)
    with pytest.raises(ValueError, match="scene_index"):
        field(pts, scene_index=torch.tensor([0, 1, 3, 0]))


def test_gradients_reach_only_the_selected_scenes_and_the_mlp() -> None:
    field = small_field(3)
    pts = torch.rand(4, 7, 3) * 1.8 - 0.9
    idx = torch.tensor([2, 0, 2, 0])
    d, f = field(pts, scene_index=idx)
    (d.sum() + f.square().sum()).backward()
    assert field.triplanes[1].grad is None
    assert field.triplanes[0].grad.abs().sum() > 0 and field.triplanes[2].grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in field.mlp.parameters())
    # The mixed batch's plane gradients equal those of one call per scene.
    mixed = [field.triplanes[s].grad.clone() for s in (0, 2)]
    field.zero_grad(set_to_none=True)
    for s in (0, 2):
        d, f = field(pts[idx == s], scene_index=s)
        (d.sum() + f.square().sum()).backward()
    for s, g in zip((0, 2), mixed):
        torch.testing.assert_close(field.triplanes[s].grad, g, atol=1e-5, rtol=1e-5)
    field.zero_grad(set_to_none=True)
    field.scene(1)(pts)[1].sum().backward()
    assert field.triplanes[0].grad is None and field.triplanes[2].grad is None
    assert field.triplanes[1].grad.abs().sum() > 0


def test_tv_loss_and_param_groups() -> None:
    field = small_field(2)
    assert field.tv_loss() > 0
    with torch.no_grad():
        for p in field.triplanes:
            p.copy_(torch.randn(3, 6, 1, 1).expand_as(p))  # constant per channel
    assert field.tv_loss() == 0 and field.tv_loss([1]) == 0
    with torch.no_grad():
        field.triplanes[1][0, 0, 3, 3] += 1.0
    assert field.tv_loss([0]) == 0 and field.tv_loss([1]) > 0 and field.regularizers()["tv"] > 0
    groups = field.param_groups()
    assert set(groups) == {"triplanes", "mlp"}
    ids = [id(p) for g in groups.values() for p in g]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in field.parameters()}
    assert {id(p) for p in groups["triplanes"]} == {id(p) for p in field.triplanes}


def test_initialisation_is_seeded_and_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a, b, c = small_field(2, seed=4), small_field(2, seed=4), small_field(2, seed=5)
    assert torch.equal(torch.rand(3), before)
    for x, y in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(x, y)
    assert not torch.equal(a.planes, c.planes)
    assert not torch.equal(a.mlp[0].weight, c.mlp[0].weight)


# ---------------------------------------------------------------- images
def test_render_image_chunking_matches_one_chunk_and_render_views_layout() -> None:
    field = small_field(2, init_std=1.0, output_activation="tanh")
    sampler = CoarseToFineSampler(field.aabb, 12, 12)
    c2w, k, bg = orbit(2), intrinsics(6), torch.tensor([0.1, 0.2, -0.3, 0.0])
    with torch.no_grad():
        one = render_image(field, c2w[0], k, 6, 5, sampler, bg, chunk=10_000, scene_index=1)
        many = render_image(field, c2w[0], k, 6, 5, sampler, bg, chunk=7, scene_index=1)
        views = render_views(field, c2w, k, 6, 5, sampler, bg, scene_index=torch.tensor([1, 0]), chunk=11,
                             outputs=("features", "opacity"))
        other = render_image(field, c2w[1], k, 6, 5, sampler, bg, scene_index=0)
    assert one["features"].shape == (5, 6, 4) and one["opacity"].shape == (5, 6, 1)
    for key in ("features", "opacity", "depth"):
        torch.testing.assert_close(many[key], one[key], atol=1e-5, rtol=0)
    assert views["features"].shape == (2, 4, 5, 6) and views["opacity"].shape == (2, 1, 5, 6)
    torch.testing.assert_close(views["features"][0], one["features"].permute(2, 0, 1), atol=1e-5, rtol=0)
    torch.testing.assert_close(views["features"][1], other["features"].permute(2, 0, 1), atol=1e-5, rtol=0)
    assert (one["opacity"] > 0.05).any()


def test_triplane_overfits_a_latent_image_target() -> None:
    torch.manual_seed(0)
    size, c2w, k = 16, orbit(4), intrinsics(16)
    bg = torch.zeros(4)
    gt = TriplaneField(1, resolution=16, features=8, out_channels=4, hidden=32, output_activation="tanh",
                       init_std=1.0, seed=11)
    sampler = CoarseToFineSampler(gt.aabb, 24, 24)
    with torch.no_grad():
        target = render_views(gt, c2w, k, size, size, sampler, bg)
    assert target.shape == (4, 4, size, size) and target.std() > 0.02
    field = TriplaneField(1, resolution=16, features=8, out_channels=4, hidden=32, output_activation="tanh", seed=0)
    opt = torch.optim.Adam(field.parameters(), lr=2e-2)
    gen = torch.Generator().manual_seed(0)

    def loss() -> Tensor:
        return F.mse_loss(render_views(field, c2w, k, size, size, sampler, bg, train=True, generator=gen), target)

    first = loss().item()
    for _ in range(150):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
    with torch.no_grad():
        final = F.mse_loss(render_views(field, c2w, k, size, size, sampler, bg), target).item()
    assert final < first / 10, (first, final)
    assert final < target.var().item() / 10  # more than the mean: the structure is fitted too


def test_rays_without_sampled_length_skip_the_field_and_match_full_compositing() -> None:
    """Empty rays (all intervals of zero length) give the background exactly; the field never
    sees them; live rays, and the gradients, agree with compositing every ray."""
    torch.manual_seed(0)
    r, s, c = 12, 8, 4
    mlp = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1 + c))
    seen: list[int] = []

    def field_fn(points, directions=None, scene_index=None):
        seen.append(points.shape[0])
        out = mlp(points)
        return F.softplus(out[..., 0]), torch.tanh(out[..., 1:])

    origins, dirs = torch.randn(r, 3), F.normalize(torch.randn(r, 3), dim=-1)
    edges = torch.sort(torch.rand(r, s + 1) * 3.0, dim=1).values
    t_starts, t_ends = edges[:, :-1].clone(), edges[:, 1:].clone()
    dead = torch.tensor([i % 3 == 0 for i in range(r)])
    t_ends[dead] = t_starts[dead]  # what the occupancy sampler emits for rays through empty cells
    bg = torch.tensor([0.1, -0.2, 0.3, 0.9])
    out = render_rays(field_fn, origins, dirs, t_starts, t_ends, bg)
    assert seen == [int((~dead).sum())]
    # Reference: composite every ray, the field evaluated everywhere.
    mid = (t_starts + t_ends) * 0.5
    sig, feat = field_fn(origins[:, None] + dirs[:, None] * mid[..., None])
    w, _, _ = nerfacc.render_weight_from_density(t_starts, t_ends, sig)
    opacity = w.sum(1, keepdim=True)
    ref = (w[..., None] * feat).sum(1) + (1 - opacity) * bg
    assert torch.allclose(out["features"], ref, atol=1e-6) and torch.allclose(out["opacity"], opacity, atol=1e-6)
    assert torch.equal(out["features"][dead], bg.expand(int(dead.sum()), c))
    assert torch.equal(out["opacity"][dead], torch.zeros(int(dead.sum()), 1))
    grads = torch.autograd.grad(out["features"].square().sum(), list(mlp.parameters()))
    ref_grads = torch.autograd.grad(ref.square().sum(), list(mlp.parameters()))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads, ref_grads))
    # No live ray at all: background everywhere, the field not called.
    seen.clear()
    none = render_rays(field_fn, origins, dirs, t_starts, t_starts, bg)
    assert seen == [] and torch.equal(none["features"], bg.expand(r, c))
