"""Tests that need a CUDA device (``pytest -m gpu``; deselected in the CPU suite).

- a short fit on CUDA for every NeRF method, RGB and latent, with the occupancy sampler;
- nerfacc's CUDA traversal against the torch march on the same grid;
- one IG-AE joint step on CUDA at every training precision.

``IGAE_GPU_TEST_DEVICE=cpu pytest -m gpu tests/test_gpu.py`` runs the same bodies on CPU as a dry
run of their logic (what ``benchmarks/gpu_check.sh --cpu-smoke`` does); the nerfacc comparison
then skips, since nerfacc has no CPU traversal.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

from igae.config import load_params
from igae.fields.registry import METHODS

from test_nerf_fit import tiny_ae, write_nerfstudio_ball

pytestmark = pytest.mark.gpu
DEVICE = torch.device(os.environ.get("IGAE_GPU_TEST_DEVICE", "cuda"))
REPO = Path(__file__).resolve().parents[1]


def _params(**overrides):
    return load_params(REPO / "params.yaml", preset="smoke", overrides=overrides)


@pytest.fixture(scope="module")
def ball_scene(tmp_path_factory) -> Path:
    return write_nerfstudio_ball(tmp_path_factory.mktemp("gpu") / "ball", 32, 32)


@pytest.mark.parametrize("space", ["rgb", "latent"])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_a_fit_runs_on_the_device_for_every_method(ball_scene: Path, tmp_path: Path, method: str, space: str) -> None:
    from igae.data import read_scene
    from igae.nerf.data import prepare_latent, prepare_rgb
    from igae.nerf.evaluate import evaluate_test_views
    from igae.nerf.fit import build_method_field, build_sampler, fit_scene
    from igae.nerf.memory import check_fit_memory

    p = _params(**{"nerf.stage1.steps": 20, "nerf.stage2.steps": 4, "nerf.rgb.rays_per_batch": 512,
                   "nerf.samples_per_ray": 16})
    scene = read_scene(ball_scene, splits_required=("train", "test"))
    data = prepare_rgb(scene, DEVICE) if space == "rgb" else prepare_latent(scene, tiny_ae().to(DEVICE), "tiny", DEVICE)
    cfg = p.nerf.method_params[method]
    field = build_method_field(method, data, cfg, 0.5, seed=0).to(DEVICE)
    sampler = build_sampler(p.nerf, field, DEVICE)
    assert check_fit_memory(field, sampler, data, p.nerf)["rays"] > 0  # the probe runs the real sampler
    result = fit_scene(field, sampler, data, p.nerf, cfg, 0, tmp_path / "work")
    assert sum(result.steps.values()) == 24 and result.skipped_steps == 0
    assert all(p.device.type == DEVICE.type for p in field.parameters())
    evaluation = evaluate_test_views(field, data, sampler, None, None)
    assert all(math.isfinite(float(v)) for v in evaluation.per_view["psnr"])


def test_nerfaccs_cuda_traversal_matches_the_torch_march_on_the_same_grid() -> None:
    from igae.fields.nerfacc_cuda import nerfacc_cuda_status
    from igae.fields.occupancy import OccupancySampler
    from igae.fields.sampling import RayBundle
    from igae.fields.volume_renderer import render_bundle

    if DEVICE.type != "cuda":
        pytest.skip("nerfacc has no CPU traversal (dry run on CPU)")
    status = nerfacc_cuda_status(wait_for_lock_s=600)
    assert status.available, f"nerfacc's CUDA extension is unavailable: {status.reason}"
    aabb = torch.tensor([[-1.0] * 3, [1.0] * 3])
    centre = torch.tensor([0.2, -0.1, 0.1], device=DEVICE)

    def density(p: torch.Tensor) -> torch.Tensor:
        return 20.0 * ((p - centre).norm(dim=-1) < 0.3).float()

    samplers = {b: OccupancySampler(aabb, resolution=64, samples_per_ray=64, backend=b, device=DEVICE)
                for b in ("torch", "nerfacc")}
    for s in samplers.values():
        s.update(0, density, generator=torch.Generator(device=DEVICE).manual_seed(0))
    assert torch.equal(samplers["torch"].grid.occupied, samplers["nerfacc"].grid.occupied)
    assert samplers["nerfacc"].backend == "nerfacc"
    g = torch.Generator(device=DEVICE).manual_seed(1)
    origins = torch.randn(4096, 3, device=DEVICE, generator=g)
    origins = 3.0 * origins / origins.norm(dim=-1, keepdim=True)
    dirs = -origins + 0.4 * torch.randn(4096, 3, device=DEVICE, generator=g)
    rays = RayBundle(origins, dirs / dirs.norm(dim=-1, keepdim=True))
    segments = {b: s.occupied_segments(rays) for b, s in samplers.items()}
    length = {b: (e - st).clamp_min(0).sum(-1) for b, (_, st, e) in segments.items()}
    step = samplers["torch"].grid.step_size
    # Both march the same cells at the same step from the same entry point: occupied lengths agree
    # to within a step on (nearly) every ray.
    close = (length["torch"] - length["nerfacc"]).abs() <= step + 1e-5
    assert close.float().mean() > 0.99, float(close.float().mean())
    assert float(length["torch"].sum()) > 0

    class Ball(torch.nn.Module):
        out_channels = 3

        def forward(self, points, directions=None, scene_index=None):
            return density(points), (0.5 + points).clamp(0, 1)

    bg = torch.ones(3, device=DEVICE)
    renders = {b: render_bundle(Ball(), rays, s, bg, train=False)["features"] for b, s in samplers.items()}
    mse = float(((renders["torch"] - renders["nerfacc"]) ** 2).mean())
    assert -10 * math.log10(max(mse, 1e-12)) > 35.0, mse


@pytest.mark.parametrize("precision", ["fp32", "tf32", "bf16", "fp16"])
def test_one_igae_joint_step_on_the_device(tmp_path: Path, precision: str) -> None:
    from test_training import ARCH, _bank, _changed, _group_names, _photos, _snapshot

    from igae.autoencoder.model import Autoencoder
    from igae.train.distributed import DistContext
    from igae.train.igae_trainer import make_triplane_field, train_igae
    from igae.train.precision import configure_precision

    p = _params(**{"igae.warmup.steps": 1, "igae.joint.steps": 1, "igae.snapshots": [], "igae.joint.views_per_batch": 2,
                   "igae.joint.photos_per_batch": 2, "igae.warmup.views_per_batch": 2})
    bank = _bank()
    ae = Autoencoder.from_architecture(ARCH, seed=0).to(DEVICE)
    field = make_triplane_field(bank.num_scenes, p.igae.triplane, ARCH.latent_channels, 1.0, seed=0)
    ae_before, field_before = _snapshot(ae), _snapshot(field)
    used = configure_precision(precision, DEVICE)
    try:
        result = train_igae(ae, field, bank, _photos(), p.igae, None, 0, tmp_path,
                            ctx=DistContext(device=DEVICE, precision=used))
    finally:
        configure_precision("fp32", DEVICE)
    assert result.skipped_steps == 0 or used == "fp16"  # fp16: the scaler may skip an overflowing step
    assert all(math.isfinite(v) for row in result.history for k, v in row.items() if k not in ("phase",))
    groups = field.param_groups()
    assert next(field.parameters()).device.type == DEVICE.type
    if result.skipped_steps == 0:
        assert _changed(ae_before, ae, _group_names(ae, ae.encoder_parameters()))
        assert _changed(ae_before, ae, _group_names(ae, ae.decoder_parameters()))
        assert _changed(field_before, field, _group_names(field, groups["mlp"]))
