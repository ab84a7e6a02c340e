"""Camera geometry (igae.geometry) and camera placement (igae.render.cameras)."""

from __future__ import annotations

import math

import pytest
import torch

from igae.geometry import focal_from_fov, fov_from_focal, look_at, pixel_rays, project_points, scale_intrinsics
from igae.render.cameras import orbit_camera_positions, sample_camera_positions, sample_cameras

F64 = torch.float64


def _assert_rotation(c2w: torch.Tensor, atol: float = 1e-6) -> None:
    rot = c2w[:, :3, :3]
    eye3 = torch.eye(3, dtype=rot.dtype).expand_as(rot)
    assert torch.allclose(rot.transpose(1, 2) @ rot, eye3, atol=atol)
    assert torch.allclose(torch.linalg.det(rot), torch.ones(len(rot), dtype=rot.dtype), atol=atol)
    assert torch.equal(c2w[:, 3], torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=c2w.dtype).expand(len(c2w), 4))


def test_look_at_is_rotation_looking_at_target():
    gen = torch.Generator().manual_seed(0)
    eye = torch.randn(50, 3, generator=gen, dtype=F64) * 3
    target = torch.randn(50, 3, generator=gen, dtype=F64) * 0.5
    c2w = look_at(eye, target)
    _assert_rotation(c2w)
    view = (target - eye) / (target - eye).norm(dim=-1, keepdim=True)
    assert torch.allclose(-c2w[:, :3, 2], view, atol=1e-10)  # camera -Z points at the target
    assert torch.allclose(c2w[:, :3, 3], eye)
    # Camera +Y leans towards world +Z (no upside-down cameras) and +X is horizontal.
    assert (c2w[:, 2, 1] > 0).all()
    assert torch.allclose(c2w[:, 2, 0], torch.zeros(50, dtype=F64), atol=1e-10)


def test_look_at_shared_target_and_float32():
    eye = torch.tensor([[2.0, 0.0, 1.0], [0.0, -3.0, 0.5]])
    c2w = look_at(eye, torch.zeros(3))
    assert c2w.dtype == torch.float32 and c2w.shape == (2, 4, 4)
    _assert_rotation(c2w, atol=1e-5)


def test_look_at_pole_views_have_no_nan():
    eye = torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, -2.0], [1e-9, 0.0, 3.0]], dtype=F64)
    c2w = look_at(eye, torch.zeros(3, dtype=F64))
    assert torch.isfinite(c2w).all()
    _assert_rotation(c2w)
    assert torch.allclose(c2w[:, :3, 2], eye / eye.norm(dim=-1, keepdim=True), atol=1e-8)
    # Straight above a Z-up object: +X right, +Y up on screen (Blender's top view).
    assert torch.allclose(c2w[0, :3, 0], torch.tensor([1.0, 0.0, 0.0], dtype=F64))
    assert torch.allclose(c2w[0, :3, 1], torch.tensor([0.0, 1.0, 0.0], dtype=F64))
    c2w32 = look_at(eye.float(), torch.zeros(3))
    assert torch.isfinite(c2w32).all()


def test_look_at_rejects_eye_at_target():
    with pytest.raises(ValueError, match="coincides"):
        look_at(torch.zeros(1, 3), torch.zeros(3))


def test_focal_fov_round_trip():
    assert focal_from_fov(90.0, 64) == pytest.approx(32.0)
    assert fov_from_focal(focal_from_fov(37.5, 200), 200) == pytest.approx(37.5)
    with pytest.raises(ValueError):
        focal_from_fov(180.0, 64)


def test_scale_intrinsics_is_exact():
    k = torch.tensor([70.0, 70.0, 32.0, 32.0])  # W = 64, centred
    k4 = scale_intrinsics(k, 4)
    assert k4[2].item() == 8.0 and k4[3].item() == 8.0  # exact, no floor division
    assert torch.equal(k4, k / 4)
    k_odd = scale_intrinsics(torch.tensor([[10.0, 10.0, 33.0, 31.0]], dtype=F64), 8)
    assert torch.equal(k_odd, torch.tensor([[1.25, 1.25, 4.125, 3.875]], dtype=F64))
    with pytest.raises(ValueError):
        scale_intrinsics(k, 0)


def test_pixel_rays_shapes_and_centre_pixel():
    c2w = look_at(torch.tensor([[0.0, -3.0, 0.0]], dtype=F64), torch.zeros(3, dtype=F64))
    k = torch.tensor([50.0, 50.0, 2.0, 1.5], dtype=F64)  # W=4, H=3, centred
    o, d = pixel_rays(c2w, k, 4, 3)
    assert o.shape == (1, 3, 4, 3) and d.shape == (1, 3, 4, 3) and d.dtype == F64
    assert torch.allclose(d.norm(dim=-1), torch.ones(1, 3, 4, dtype=F64))
    # Row 0 is the top of the image: its rays point up (+Z); column 0 points left (-X).
    assert (d[0, 0, :, 2] > 0).all() and (d[0, 2, :, 2] < 0).all()
    assert (d[0, :, 0, 0] < 0).all() and (d[0, :, 3, 0] > 0).all()
    # The middle row (v=1, centre 1.5 = cy) is horizontal.
    assert torch.allclose(d[0, 1, :, 2], torch.zeros(4, dtype=F64), atol=1e-12)


def test_pixel_rays_project_points_round_trip():
    n, w, h = 3, 7, 5
    c2w = sample_cameras(n, 2.5, (-90.0, 90.0), seed=3, dtype=F64)
    k = torch.tensor([[6.0, 5.0, 3.2, 2.9], [9.0, 9.0, 3.5, 2.5], [4.0, 7.0, 1.0, 4.0]], dtype=F64)
    o, d = pixel_rays(c2w, k, w, h)
    t = torch.rand(n, h, w, 1, generator=torch.Generator().manual_seed(1), dtype=F64) * 4 + 0.1
    pts = o + t * d
    vv, uu = torch.meshgrid(torch.arange(h, dtype=F64) + 0.5, torch.arange(w, dtype=F64) + 0.5, indexing="ij")
    for i in range(n):
        uv, depth = project_points(pts[i].reshape(-1, 3), c2w[i], k[i])
        assert torch.allclose(uv[:, 0], uu.reshape(-1), atol=1e-4)
        assert torch.allclose(uv[:, 1], vv.reshape(-1), atol=1e-4)
        forward = -c2w[i, :3, 2]
        assert torch.allclose(depth, (t[i] * d[i]).reshape(-1, 3) @ forward, atol=1e-9)
        assert (depth > 0).all()
    # Batched cameras give the same answer; float32 round trip holds to 1e-4 too.
    uv_b, _ = project_points(pts[0].reshape(-1, 3), c2w, k)
    assert uv_b.shape == (n, h * w, 2)
    o32, d32 = pixel_rays(c2w.float(), k.float(), w, h)
    uv32, _ = project_points((o32 + t.float() * d32)[2].reshape(-1, 3), c2w[2].float(), k[2].float())
    assert torch.allclose(uv32[:, 0], uu.reshape(-1).float(), atol=1e-4)


def test_project_points_behind_camera_has_negative_depth():
    c2w = look_at(torch.tensor([[0.0, -3.0, 0.0]]), torch.zeros(3))[0]
    k = torch.tensor([10.0, 10.0, 8.0, 8.0])
    uv, depth = project_points(torch.tensor([[0.0, 0.0, 0.0], [0.0, -5.0, 0.0]]), c2w, k)
    assert depth[0].item() == pytest.approx(3.0) and depth[1].item() == pytest.approx(-2.0)
    assert torch.allclose(uv[0], torch.tensor([8.0, 8.0]))


def test_sample_camera_positions_radius_band_and_seed():
    pos = sample_camera_positions(2000, 2.5, (10.0, 60.0), seed=7)
    assert pos.shape == (2000, 3) and pos.dtype == torch.float32
    assert torch.allclose(pos.norm(dim=-1), torch.full((2000,), 2.5), rtol=1e-6, atol=0)
    elev = torch.rad2deg(torch.asin(pos[:, 2].double() / 2.5))
    assert elev.min() >= 10.0 - 1e-4 and elev.max() <= 60.0 + 1e-4
    assert elev.max() - elev.min() > 45.0  # fills the band
    assert torch.equal(pos, sample_camera_positions(2000, 2.5, (10.0, 60.0), seed=7))
    assert not torch.allclose(pos, sample_camera_positions(2000, 2.5, (10.0, 60.0), seed=8))


def test_sample_camera_positions_uniform_over_area():
    pos = sample_camera_positions(20000, 1.0, (-90.0, 90.0), seed=0, dtype=F64)
    # A cap above 30 deg elevation holds (1 - sin 30)/2 = 25% of the sphere's area
    # (a sampler uniform in elevation angle would put 33% there).
    assert abs((pos[:, 2] > 0.5).double().mean().item() - 0.25) < 0.015
    assert abs(pos.mean(dim=0)).max().item() < 0.03
    upper = sample_camera_positions(500, 1.0, (0.0, 90.0), seed=0)
    assert (upper[:, 2] >= 0).all()


def test_sample_camera_positions_leaves_global_rng_alone():
    state = torch.get_rng_state()
    sample_camera_positions(10, 1.0, (-90.0, 90.0), seed=1)
    assert torch.equal(state, torch.get_rng_state())


def test_sample_camera_positions_rejects_bad_band():
    with pytest.raises(ValueError, match="elevation_deg"):
        sample_camera_positions(4, 1.0, (30.0, 10.0), seed=0)
    with pytest.raises(ValueError, match="elevation_deg"):
        sample_camera_positions(4, 1.0, (-100.0, 10.0), seed=0)
    with pytest.raises(ValueError, match="radius"):
        sample_camera_positions(4, 0.0, (0.0, 10.0), seed=0)


def test_orbit_positions_turntable():
    pos = orbit_camera_positions(8, 3.0, 30.0, dtype=F64)
    assert torch.allclose(pos.norm(dim=-1), torch.full((8,), 3.0, dtype=F64))
    assert torch.allclose(pos[:, 2], torch.full((8,), 1.5, dtype=F64))  # 3 sin 30
    assert torch.allclose(pos[0, :2], torch.tensor([0.0, -3.0 * math.cos(math.radians(30))], dtype=F64), atol=1e-12)
    az = torch.atan2(pos[:, 1], pos[:, 0])
    step = torch.remainder(az.roll(-1) - az, 2 * math.pi)
    assert torch.allclose(step, torch.full((8,), 2 * math.pi / 8, dtype=F64))


def test_sample_cameras_look_at_origin():
    c2w = sample_cameras(16, 2.0, (-90.0, 90.0), seed=5)
    assert c2w.shape == (16, 4, 4) and torch.isfinite(c2w).all()
    _assert_rotation(c2w, atol=1e-5)
    eye = c2w[:, :3, 3]
    assert torch.allclose(c2w[:, :3, 2], eye / 2.0, atol=1e-6)  # +Z points away from the origin
    assert torch.equal(eye, sample_camera_positions(16, 2.0, (-90.0, 90.0), seed=5))
