"""The per-scene NeRF methods (vanilla, Instant-NGP, K-Planes, tri-plane) and their registry (CPU)."""

from __future__ import annotations

import math
import time

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from igae.errors import InputError
from igae.fields import CoarseToFineSampler, Field, render_views
from igae.fields.kplanes import KPlanesField, plane_tv, sample_planes
from igae.fields.ngp import PRIMES, HashGridField, level_resolutions
from igae.fields.registry import METHODS, build_field, hyperparameters
from igae.fields.vanilla import VanillaNeRF, frequency_encoding
from igae.geometry import focal_from_fov
from igae.render.cameras import sample_cameras

# Small configurations so that each overfit below runs in a few seconds on one CPU thread; the
# defaults are exercised (shapes, gradients) by the cheaper tests. A method added to the registry
# is tested too, with its defaults and Adam at 1e-2 unless it is given an entry here.
SMALL = {
    "vanilla": dict(width=64, depth=3, skip=2, pos_freqs=6),
    "ngp": dict(levels=8, max_resolution=128, log2_hashmap_size=14),
    "kplanes": dict(resolutions=(16, 32), features=8),
    "triplane": dict(resolution=32, features=16, hidden=32),
}
# One Adam learning rate per method: grids/planes tolerate large steps, the plain MLP wants
# smaller ones (at 1e-2 its positional-encoded input makes training erratic).
LR = {"vanilla": 5e-3, "ngp": 2e-2, "kplanes": 5e-2, "triplane": 2e-2}
STEPS = 100


class ColouredBall(Field):
    """A ball of radius 0.6 with a soft edge, coloured by position: a smooth but non-constant target."""

    out_channels = 3

    def forward(self, points, directions=None, scene_index=None):
        r = points.norm(dim=-1)
        density = 40.0 * torch.sigmoid((0.6 - r) / 0.02)
        colour = (0.5 + 0.7 * points).clamp(0.0, 1.0)
        return density, colour


def psnr(a: Tensor, b: Tensor) -> float:
    return -10.0 * math.log10(F.mse_loss(a, b).item())


@pytest.fixture(scope="module")
def scene() -> dict:
    """4 views at 16x16 of the ball, rendered by the project's renderer with many samples."""
    size = 16
    c2w = sample_cameras(4, 3.0, (-20.0, 60.0), seed=3)
    f = focal_from_fov(40.0, size)
    k = torch.tensor([f, f, size / 2, size / 2])
    bg = torch.full((3,), 0.2)
    aabb = torch.tensor([[-1.0] * 3, [1.0] * 3])
    with torch.no_grad():
        target = render_views(ColouredBall(), c2w, k, size, size, CoarseToFineSampler(aabb, 128, 128), bg)
    return dict(size=size, c2w=c2w, k=k, bg=bg, target=target)


def all_methods(out_channels: int = 3, activation: str = "sigmoid", seed: int = 0, small: bool = True):
    return {m: build_field(m, out_channels, 1.0, activation, seed, **(SMALL.get(m, {}) if small else {})) for m in METHODS}


# ---------------------------------------------------------------- overfitting
@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_method_overfits_a_small_rgb_scene(method: str, scene: dict) -> None:
    """100 Adam steps on 4 views (1024 rays, 16 + 16 samples) must reach 25 dB PSNR.

    Why 25 dB: predicting each channel's mean colour over the views scores ~15 dB here (asserted
    below), so 25 dB is 10x lower MSE than the best structure-free answer: the ball's shape and
    colour gradient have been fitted. All four methods reach 36-42 dB in these 100 steps, so
    the margin absorbs seeds and platforms; a broken encoding or gradient stays near 15 dB.
    """
    size, c2w, k, bg, target = (scene[x] for x in ("size", "c2w", "k", "bg", "target"))
    structure_free = psnr(target, target.mean(dim=(0, 2, 3), keepdim=True).expand_as(target))
    assert 13.0 < structure_free < 17.0
    field = build_field(method, 3, 1.0, "sigmoid", seed=0, **SMALL.get(method, {}))
    sampler = CoarseToFineSampler(field.aabb, 16, 16)
    eps = 1e-15 if method == "ngp" else 1e-8  # Instant-NGP's Adam epsilon (tiny table gradients)
    opt = torch.optim.Adam([{"params": ps, "lr": LR.get(method, 1e-2)} for ps in field.param_groups().values()], eps=eps)
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(STEPS):
        opt.zero_grad()
        loss = F.mse_loss(render_views(field, c2w, k, size, size, sampler, bg, train=True, generator=gen), target)
        loss.backward()
        opt.step()
    with torch.no_grad():
        score = psnr(render_views(field, c2w, k, size, size, sampler, bg), target)
    print(f"\n{method}: PSNR {score:.2f} dB after {STEPS} steps in {time.perf_counter() - start:.1f} s")
    assert score > 25.0, (method, score)


# ---------------------------------------------------------------- latent fields
@pytest.mark.parametrize("method", sorted(METHODS))
def test_latent_field_renders_four_channels_and_every_parameter_gets_a_gradient(method: str, scene: dict) -> None:
    field = build_field(method, 4, 1.0, "tanh", seed=1)  # default hyper-parameters
    assert field.out_channels == 4
    sampler = CoarseToFineSampler(field.aabb, 8, 8)
    out = render_views(field, scene["c2w"][:2], scene["k"] / 2, 8, 8, sampler, torch.zeros(4), train=True,
                       generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 4, 8, 8)
    assert out.abs().max() < 1.0  # tanh features composited over a zero background stay in (-1, 1)
    (out.square().mean() + sum(field.regularizers().values(), torch.zeros(()))).backward()
    for name, p in field.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("method", sorted(METHODS))
def test_density_is_zero_outside_the_box_and_features_match_the_activation(method: str) -> None:
    field = build_field(method, 3, 0.5, "sigmoid", seed=0, **SMALL.get(method, {}))
    points = torch.tensor([[0.0, 0.0, 0.0], [0.2, -0.3, 0.4], [0.7, 0.0, 0.0], [0.0, -0.6, 0.0]])
    density, features = field(points, F.normalize(torch.ones_like(points), dim=-1))
    assert density.shape == (4,) and features.shape == (4, 3)
    assert (density[:2] > 0).all() and (density[2:] == 0).all()
    assert ((features > 0) & (features < 1)).all()
    torch.testing.assert_close(field.density(points), density)
    grid = torch.rand(2, 5, 3) - 0.5  # leading dimensions are kept
    assert field(grid)[0].shape == (2, 5) and field(grid)[1].shape == (2, 5, 3)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_single_scene_fields_accept_scene_zero_only(method: str) -> None:
    field = build_field(method, 3, 1.0, "none", seed=0, **SMALL.get(method, {}))
    points = torch.rand(6, 3) - 0.5
    torch.testing.assert_close(field(points, None, 0)[1], field(points)[1])
    with pytest.raises(ValueError):
        field(points, None, 1)


# ---------------------------------------------------------------- parameters and regularisers
@pytest.mark.parametrize("method", sorted(METHODS))
def test_param_groups_are_disjoint_and_cover_every_parameter(method: str) -> None:
    field = build_field(method, 3, 1.0, "sigmoid", seed=0)
    groups = field.param_groups()
    assert len(groups) >= 1 and all(groups.values())
    ids = [id(p) for ps in groups.values() for p in ps]
    assert len(ids) == len(set(ids)), "a parameter is in two groups"
    assert set(ids) == {id(p) for p in field.parameters()}
    expected = {"vanilla": {"mlp"}, "ngp": {"encoding", "mlp"}, "kplanes": {"planes", "mlp"},
                "triplane": {"triplanes", "mlp"}}[method]
    assert set(groups) == expected


def test_view_dependent_vanilla_nerf_uses_directions_and_the_default_does_not() -> None:
    points = torch.rand(5, 3) - 0.5
    d1 = F.normalize(torch.randn(5, 3, generator=torch.Generator().manual_seed(0)), dim=-1)
    for view_dependent in (False, True):
        field = VanillaNeRF(3, 1.0, "sigmoid", seed=0, view_dependent=view_dependent)
        (s1, c1), (s2, c2) = field(points, d1), field(points, -d1)
        torch.testing.assert_close(s1, s2)  # density never depends on the view
        assert (c1 - c2).abs().max() > 1e-4 if view_dependent else torch.equal(c1, c2)
        ids = [id(p) for ps in field.param_groups().values() for p in ps]
        assert sorted(ids) == sorted(id(p) for p in field.parameters())
    with pytest.raises(ValueError, match="directions"):
        field(points)
    assert frequency_encoding(points, 4).shape == (5, 3 * 9)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_regularizers_are_finite_scalars(method: str) -> None:
    field = build_field(method, 3, 1.0, "sigmoid", seed=0, **SMALL.get(method, {}))
    regs = field.regularizers()
    assert set(regs) == ({"tv"} if method in ("kplanes", "triplane") else set())
    for name, value in regs.items():
        assert value.dim() == 0 and torch.isfinite(value), name


def test_kplanes_tv_is_zero_for_constant_planes_and_positive_otherwise() -> None:
    field = KPlanesField(3, 1.0, "sigmoid", seed=0, resolutions=(8, 16), features=4)
    assert field.regularizers()["tv"] > 0  # random init
    with torch.no_grad():
        for i, plane in enumerate(field.planes):
            plane.fill_(0.3 + 0.1 * i)  # constant per scale, different between scales
    assert field.regularizers()["tv"] == 0
    with torch.no_grad():
        field.planes[1][2, 0, 3, 5] += 1.0  # one texel of one plane of one scale
    tv = field.regularizers()["tv"]
    # Hand count: that texel has 4 neighbours in its (16 x 16) plane; each squared difference
    # 1 lands in one of the two means (3 planes x 4 features x 15 x 16 differences each).
    expected = (2 / (3 * 4 * 15 * 16) + 2 / (3 * 4 * 16 * 15)) / 2  # mean over the 2 scales
    assert tv.item() == pytest.approx(expected, rel=1e-5)
    assert plane_tv([torch.ones(3, 2, 4, 4)]) == 0


# ---------------------------------------------------------------- encodings against references
def test_kplanes_plane_samples_equal_grid_sample_and_are_multiplied() -> None:
    gen = torch.Generator().manual_seed(0)
    planes = [torch.randn(3, 5, 7, 7, generator=gen), torch.randn(3, 5, 12, 12, generator=gen)]
    q = torch.rand(40, 3, generator=gen) * 2 - 1
    q[0] = torch.tensor([1.0, -1.0, 1.0])  # corners use the last cell's far edge
    got = sample_planes(planes, q)
    assert got.shape == (40, 2, 3, 5)
    for s, plane in enumerate(planes):
        for k, (u, v) in enumerate(((0, 1), (0, 2), (1, 2))):
            grid = q[:, [u, v]].reshape(1, -1, 1, 2)
            ref = F.grid_sample(plane[k : k + 1], grid, align_corners=True)[0, :, :, 0].T  # (P, F)
            torch.testing.assert_close(got[:, s, k], ref, atol=1e-5, rtol=1e-5)
    field = KPlanesField(2, 1.0, "none", seed=0, resolutions=(7, 12), features=5)
    with torch.no_grad():
        for s, plane in enumerate(planes):
            field.planes[s].copy_(plane)
    torch.testing.assert_close(field.encode(q), got.prod(dim=2).reshape(40, 10))


def _reference_hash_features(field: HashGridField, unit: Tensor) -> Tensor:
    """Instant-NGP encoding by the definition, one point, level and corner at a time (Python ints)."""
    out = []
    t = field.hashmap_size
    offsets = field.offsets.tolist()
    for u in unit.tolist():
        feats = []
        for level, n in enumerate(field.resolutions):
            acc = torch.zeros(field.features_per_level, dtype=torch.float64)
            pos = [c * n for c in u]
            cell = [min(math.floor(x), n - 1) for x in pos]
            for corner in range(8):
                bits = [(corner >> 2) & 1, (corner >> 1) & 1, corner & 1]
                v = [cell[a] + bits[a] for a in range(3)]
                w = math.prod(pos[a] - cell[a] if bits[a] else 1 - (pos[a] - cell[a]) for a in range(3))
                if (n + 1) ** 3 <= t:
                    row = v[0] + v[1] * (n + 1) + v[2] * (n + 1) ** 2
                else:
                    row = ((v[0] * PRIMES[0]) ^ (v[1] * PRIMES[1]) ^ (v[2] * PRIMES[2])) % t
                acc += w * field.table[offsets[level] + row].double()
            feats.append(acc)
        out.append(torch.cat(feats))
    return torch.stack(out).float()


def test_hash_encoding_matches_the_definition_on_dense_and_hashed_levels() -> None:
    field = HashGridField(3, 1.0, "none", seed=0, levels=5, features_per_level=2, log2_hashmap_size=10,
                          base_resolution=4, max_resolution=64)
    assert field.resolutions == level_resolutions(5, 4, 64) == [4, 8, 16, 32, 64]
    assert field.num_dense == 2  # 5^3 and 9^3 vertices fit 1024 rows; 17^3 do not
    with torch.no_grad():
        field.table.normal_(generator=torch.Generator().manual_seed(1))  # visible values
    unit = torch.rand(12, 3, generator=torch.Generator().manual_seed(2))
    unit[0] = torch.tensor([1.0, 0.0, 1.0])  # far faces: the last cell includes them
    unit[1] = torch.tensor([0.25, 0.5, 0.75])  # exactly on vertices of every level
    torch.testing.assert_close(field.encode(unit), _reference_hash_features(field, unit), atol=1e-5, rtol=1e-5)
    # On a vertex the interpolation returns that vertex's row: level 0 (dense, stride 5, 25).
    row = 1 + 2 * 5 + 3 * 25
    torch.testing.assert_close(field.encode(unit[1:2])[0, :2], field.table[row])


def test_hash_encoding_backward_matches_autograd_of_the_native_gather() -> None:
    field = HashGridField(3, 1.0, "none", seed=0, levels=4, log2_hashmap_size=8, base_resolution=2,
                          max_resolution=32)
    unit = torch.rand(30, 3, generator=torch.Generator().manual_seed(0))
    upstream = torch.randn(30, 8, generator=torch.Generator().manual_seed(1))
    (field.encode(unit) * upstream).sum().backward()
    fast = field.table.grad.clone()
    field.table.grad = None
    # With a gradient wanted for the points the field takes the native embedding_bag path.
    (field.encode(unit.clone().requires_grad_(True)) * upstream).sum().backward()
    torch.testing.assert_close(fast, field.table.grad, atol=1e-6, rtol=1e-5)


# ---------------------------------------------------------------- registry
def test_registry_builds_every_method_with_defaults_and_hyper_parameters() -> None:
    assert set(METHODS) == {"vanilla", "ngp", "kplanes", "triplane"}
    fields = all_methods(small=False)
    assert isinstance(fields["vanilla"], VanillaNeRF) and isinstance(fields["ngp"], HashGridField)
    assert isinstance(fields["kplanes"], KPlanesField) and fields["triplane"].num_scenes == 1
    for field in fields.values():
        assert field.out_channels == 3 and torch.equal(field.aabb, torch.tensor([[-1.0] * 3, [1.0] * 3]))
    assert "num_scenes" not in hyperparameters("triplane") and "resolution" in hyperparameters("triplane")
    assert hyperparameters("ngp")["levels"] == 12 and hyperparameters("kplanes")["resolutions"] == (32, 64)
    ngp = build_field("ngp", 4, 2.0, "tanh", 0, levels=3, max_resolution=64)
    assert ngp.levels == 3 and ngp.out_channels == 4 and ngp.aabb[1, 0] == 2.0


def test_registry_errors_name_what_is_allowed() -> None:
    with pytest.raises(InputError) as err:
        build_field("nerfacto", 3, 1.0, "sigmoid", 0)
    assert "nerfacto" in str(err.value) and all(m in str(err.value) for m in METHODS)
    with pytest.raises(InputError) as err:
        build_field("ngp", 3, 1.0, "sigmoid", 0, level=8)
    message = str(err.value)
    assert "'ngp'" in message and "level" in message and "log2_hashmap_size" in message and "levels" in message
    with pytest.raises(InputError, match="kplanes"):
        build_field("kplanes", 3, 1.0, "sigmoid", 0, features=0)  # a value the method rejects
    with pytest.raises(InputError, match="output_activation"):
        build_field("vanilla", 3, 1.0, "relu", 0)
    with pytest.raises(InputError, match="num_scenes"):
        build_field("triplane", 3, 1.0, "sigmoid", 0, num_scenes=2)  # fixed by the registry


# ---------------------------------------------------------------- seeding
@pytest.mark.parametrize("method", sorted(METHODS))
def test_initialisation_is_seeded_and_leaves_the_global_rng_alone(method: str) -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = build_field(method, 3, 1.0, "sigmoid", seed=5, **SMALL.get(method, {}))
    b = build_field(method, 3, 1.0, "sigmoid", seed=5, **SMALL.get(method, {}))
    c = build_field(method, 3, 1.0, "sigmoid", seed=6, **SMALL.get(method, {}))
    assert torch.equal(torch.get_rng_state(), before)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[key], sb[key]) for key in sa)
    params = [name for name, _ in a.named_parameters()]
    assert all(not torch.equal(sa[name], sc[name]) for name in params)  # every tensor depends on the seed
