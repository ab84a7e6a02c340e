"""Per-scene NeRF fits: latent data preparation, the two-stage latent fit, the RGB fit, `igae fit-nerf` (CPU)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from igae.autoencoder.model import AEArchitecture, Autoencoder
from igae.cli import main
from igae.config import load_params
from igae.data import read_scene, write_scene
from igae.errors import InputError
from igae.fields import CoarseToFineSampler, Field, render_views
from igae.geometry import focal_from_fov, pixel_rays, project_points, rays_at_pixels
from igae.io import sha256_file
from igae.nerf.data import prepare_latent, prepare_rgb
from igae.nerf.evaluate import orbit_cameras
from igae.nerf.fit import build_method_field, build_sampler, fit_scene, mean_test_psnr
from igae.render.cameras import sample_cameras

REPO = Path(__file__).resolve().parents[1]
ARCH = AEArchitecture((8, 16, 16), 1, 4, 4)  # f4


class Ball(Field):
    """A ball of radius 0.35 coloured by position (the scenes below are renders of it)."""

    out_channels = 3

    def forward(self, points, directions=None, scene_index=None):
        r = points.norm(dim=-1)
        return 60.0 * torch.sigmoid((0.35 - r) / 0.01), (0.5 + 1.2 * points).clamp(0.0, 1.0)


def ball_views(n: int, width: int, height: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``rgb (N, H, W, 3)`` over black, ``alpha (N, H, W)``, ``c2w (N, 4, 4)``, intrinsics ``(4,)``."""
    c2w = sample_cameras(n, 2.6, (-20.0, 60.0), seed=seed)
    f = focal_from_fov(40.0, width)
    k = torch.tensor([f, f, width / 2, height / 2])
    aabb = torch.tensor([[-0.5] * 3, [0.5] * 3])
    with torch.no_grad():
        out = render_views(Ball(), c2w, k, width, height, CoarseToFineSampler(aabb, 64, 64), torch.zeros(3),
                           outputs=("features", "opacity"))
    return out["features"].permute(0, 2, 3, 1), out["opacity"][:, 0], c2w, k


def write_nerfstudio_ball(root: Path, width: int, height: int, n: int = 8) -> Path:
    rgb, alpha, c2w, k = ball_views(n, width, height)
    white = rgb + (1.0 - alpha[..., None])
    split = {"train": list(range(0, n - 2)), "test": [n - 2, n - 1]}
    meta = {"render": {"object_box": 1.0}}
    return write_scene(root, white.clamp(0, 1).numpy(), c2w.numpy(), k.tolist(), split, meta)


def write_blender_ball(root: Path, size: int, n: int = 8) -> Path:
    """NeRF-synthetic layout with RGBA PNGs (straight alpha), train/test split files."""
    rgb, alpha, c2w, _ = ball_views(n, size, size)
    straight = rgb / alpha.clamp_min(1e-6)[..., None]
    rgba = torch.cat([straight.clamp(0, 1), alpha[..., None]], dim=-1)
    rgba = (rgba.numpy() * 255 + 0.5).astype(np.uint8)
    root.mkdir(parents=True)
    for name, ids in (("train", range(0, n - 2)), ("test", range(n - 2, n))):
        (root / name).mkdir()
        frames = []
        for j, i in enumerate(ids):
            Image.fromarray(rgba[i], "RGBA").save(root / name / f"r_{j}.png")
            frames.append({"file_path": f"./{name}/r_{j}", "transform_matrix": c2w[i].tolist()})
        (root / f"transforms_{name}.json").write_text(json.dumps({"camera_angle_x": math.radians(40.0), "frames": frames}))
    return root


def params(**overrides):
    return load_params(REPO / "params.yaml", preset="smoke", overrides=overrides)


def tiny_ae(folder: Path | None = None) -> Autoencoder:
    ae = Autoencoder.from_architecture(ARCH, seed=0)
    if folder is not None:
        ae.save(folder / "model", metadata={"name": "tiny"})
    return ae


@pytest.fixture(scope="module")
def square_scene(tmp_path_factory) -> Path:
    return write_nerfstudio_ball(tmp_path_factory.mktemp("scenes") / "ball", 32, 32)


# ------------------------------------------------------------------ latent data
def test_latent_intrinsics_are_scaled_exactly_and_rays_hit_block_centres(square_scene: Path) -> None:
    scene = read_scene(square_scene, splits_required=("train", "test"))
    data = prepare_latent(scene, tiny_ae(), "tiny")
    f = 4
    train = scene.subset("train")
    torch.testing.assert_close(data.train_intrinsics, train.intrinsics / f, rtol=0, atol=0)
    assert (data.width, data.height) == (scene.width // f, scene.height // f)
    # The ray of latent pixel (u, v) projects to the centre of its f x f image block, ((u + .5) f, (v + .5) f).
    origins, dirs = pixel_rays(data.train_c2w[:1], data.train_intrinsics[0], data.width, data.height)
    points = origins[0] + 2.0 * dirs[0]  # (h, w, 3)
    uv, _ = project_points(points.reshape(-1, 3), train.camera_to_world[0], train.intrinsics[0])
    v, u = torch.meshgrid(torch.arange(data.height), torch.arange(data.width), indexing="ij")
    expected = torch.stack([(u + 0.5) * f, (v + 0.5) * f], dim=-1).reshape(-1, 2).float()
    torch.testing.assert_close(uv, expected, atol=1e-4, rtol=0)
    # Targets are the normalised posterior means of the training images, encoded once.
    ae = tiny_ae()
    with torch.no_grad():
        expected_targets = ae.normalizer.normalize(ae.encode(train.images))
    torch.testing.assert_close(data.train_targets, expected_targets)
    assert data.background.shape == (4,) and data.background.abs().max() < 1


def test_latent_targets_can_be_seeded_posterior_samples(square_scene: Path) -> None:
    """posterior: sample caches norm(mean + std * eps) per training view (latent-nerfstudio caches
    latent_dist.sample()), eps standard normal, the same on every call with one seed."""
    scene = read_scene(square_scene, splits_required=("train", "test"))
    data = prepare_latent(scene, tiny_ae(), "tiny", posterior="sample", seed=3)
    again = prepare_latent(scene, tiny_ae(), "tiny", posterior="sample", seed=3)
    other = prepare_latent(scene, tiny_ae(), "tiny", posterior="sample", seed=4)
    assert torch.equal(data.train_targets, again.train_targets)
    assert not torch.allclose(data.train_targets, other.train_targets)
    ae = tiny_ae()
    with torch.no_grad():
        mean, logvar = ae.encode_posterior(scene.subset("train").images)
    eps = (torch.atanh(data.train_targets) / ae.normalizer.scale - mean) / torch.exp(0.5 * logvar)
    assert abs(float(eps.mean())) < 0.15 and 0.85 < float(eps.std()) < 1.15, (eps.mean(), eps.std())
    with pytest.raises(InputError, match="posterior"):
        prepare_latent(scene, tiny_ae(), "tiny", posterior="mode")


def test_rays_at_pixels_matches_pixel_rays() -> None:
    c2w = sample_cameras(3, 2.0, (0.0, 40.0), seed=1)
    k = torch.tensor([[20.0, 21.0, 8.0, 6.5], [18.0, 18.0, 7.0, 6.0], [25.0, 25.0, 8.0, 6.0]])
    origins, dirs = pixel_rays(c2w, k, 16, 12)
    view, u, v = torch.tensor([0, 1, 2, 2]), torch.tensor([0, 15, 3, 7]), torch.tensor([0, 11, 5, 2])
    o, d = rays_at_pixels(c2w[view], k[view], u, v)
    torch.testing.assert_close(o, origins[view, v, u])
    torch.testing.assert_close(d, dirs[view, v, u])


def test_sizes_not_divisible_by_the_factor_are_cropped_at_the_bottom_right(tmp_path: Path) -> None:
    scene = read_scene(write_nerfstudio_ball(tmp_path / "odd", 42, 26), splits_required=("train", "test"))
    data = prepare_latent(scene, tiny_ae(), "tiny")
    assert data.crop == (24, 40) and (data.width, data.height) == (10, 6)
    torch.testing.assert_close(data.test_images, scene.subset("test").images[:, :, :24, :40])
    torch.testing.assert_close(data.train_intrinsics, scene.subset("train").intrinsics / 4)  # unchanged by the crop


def test_too_small_images_are_a_clear_error(tmp_path: Path) -> None:
    scene = read_scene(write_nerfstudio_ball(tmp_path / "tiny", 12, 12), splits_required=("train", "test"))
    with pytest.raises(InputError, match="too small"):
        prepare_latent(scene, tiny_ae(), "tiny")


def test_orbit_cameras_circle_the_origin_at_the_training_distance() -> None:
    c2w = sample_cameras(6, 2.6, (-20.0, 60.0), seed=0)
    orbit = orbit_cameras(c2w, 8, 20.0)
    centres = orbit[:, :3, 3]
    torch.testing.assert_close(centres.norm(dim=-1), torch.full((8,), 2.6), atol=1e-4, rtol=0)
    forward = -orbit[:, :3, 2]
    torch.testing.assert_close(forward, -centres / centres.norm(dim=-1, keepdim=True), atol=1e-5, rtol=0)
    assert len({tuple(np.round(c.numpy(), 3)) for c in centres}) == 8


# ------------------------------------------------------------------ fits
def test_latent_fit_runs_both_stages_and_leaves_the_shared_ae_and_encoder_unchanged(square_scene: Path, tmp_path: Path) -> None:
    p = params()
    scene = read_scene(square_scene, splits_required=("train", "test"))
    shared = tiny_ae()
    before = {k: v.clone() for k, v in shared.state_dict().items()}
    data = prepare_latent(scene, shared, "tiny")
    copy_before = {k: v.clone() for k, v in data.ae.state_dict().items()}
    cfg = p.nerf.method_params["triplane"]
    field = build_method_field("triplane", data, cfg, 0.5, seed=0)
    result = fit_scene(field, build_sampler(p.nerf, field, torch.device("cpu")), data, p.nerf, cfg, 0, tmp_path / "work")
    assert result.steps == {"latent": p.nerf.stage1.steps, "rgb_align": p.nerf.stage2.steps}
    assert set(result.stage_seconds) == {"latent", "rgb_align"} and all(t > 0 for t in result.stage_seconds.values())
    assert [r["step"] for r in result.curve][-1] == p.nerf.stage1.steps + p.nerf.stage2.steps
    assert all(math.isfinite(r["psnr"]) for r in result.curve)
    phases = {row["phase"] for row in result.history}
    assert phases == {"latent", "rgb_align"}
    assert {"rgb", "latent"} <= set(next(r for r in result.history if r["phase"] == "rgb_align"))
    # The shared AE object is untouched; in the copy only the decoder moved.
    for k, v in shared.state_dict().items():
        assert torch.equal(v, before[k]), k
    enc_ids = {id(t) for t in data.ae.encoder_parameters()}
    dec_ids = {id(t) for t in data.ae.decoder_parameters()}
    named = dict(data.ae.named_parameters())
    after = data.ae.state_dict()
    enc = [n for n, t in named.items() if id(t) in enc_ids]
    assert enc and all(torch.equal(after[n], copy_before[n]) for n in enc)
    assert any(not torch.equal(after[n], copy_before[n]) for n, t in named.items() if id(t) in dec_ids)


def test_stage2_resets_the_field_optimizer_and_decays_the_decoder_lr(square_scene: Path, tmp_path: Path) -> None:
    """latent-nerfstudio: a fresh field optimiser when RGB alignment starts; the decoder copy's lr
    decays per step to lr_decoder x lr_decoder_end_factor at the end of stage 2."""
    from igae.train.checkpoint import load_latest_checkpoint

    p = params(**{"nerf.stage2.steps": 3})
    scene = read_scene(square_scene, splits_required=("train", "test"))
    data = prepare_latent(scene, tiny_ae(), "tiny")
    cfg = p.nerf.method_params["triplane"]
    field = build_method_field("triplane", data, cfg, 0.5, seed=0)
    fit_scene(field, build_sampler(p.nerf, field, torch.device("cpu")), data, p.nerf, cfg, 0, tmp_path / "work")
    state = load_latest_checkpoint(tmp_path / "work" / "checkpoints")
    s2 = p.nerf.stage2
    decoder = state["optimizers"]["decoder"]["param_groups"][0]["lr"]
    assert decoder == pytest.approx(s2.lr_decoder * s2.lr_decoder_end_factor, rel=1e-9)
    field_opt = state["optimizers"]["field"]
    assert all(g["lr"] == cfg.lr_stage2 for g in field_opt["param_groups"])
    assert {int(v["step"]) for v in field_opt["state"].values()} == {s2.steps}  # Adam restarted at stage 2


def test_rgb_fit_improves_test_psnr_on_a_small_scene(square_scene: Path, tmp_path: Path) -> None:
    p = params(**{"nerf.stage1.steps": 60, "nerf.stage2.steps": 20, "nerf.rgb.rays_per_batch": 256,
                  "nerf.samples_per_ray": 24})
    scene = read_scene(square_scene, splits_required=("train", "test"))
    data = prepare_rgb(scene)
    cfg = p.nerf.method_params["ngp"]
    field = build_method_field("ngp", data, cfg, 0.5, seed=0)
    sampler = build_sampler(p.nerf, field, torch.device("cpu"))
    start = mean_test_psnr(field, data, sampler)
    result = fit_scene(field, sampler, data, p.nerf, cfg, 0, tmp_path / "work")
    assert result.steps == {"rgb": 80}
    assert result.curve[-1]["psnr"] > start + 5.0, (start, result.curve)
    times = [r["train_seconds"] for r in result.curve]
    assert times == sorted(times)


# ------------------------------------------------------------------ CLI
def _fit(tmp_path: Path, scene: Path, autoencoder: str, method: str, out: str, *extra: str) -> int:
    return main(["fit-nerf", "--params", str(REPO / "params.yaml"), "--preset", "smoke", "--scene", str(scene),
                 "--autoencoder", autoencoder, "--method", method, "--out", str(tmp_path / out), "--quiet", *extra])


def test_fit_nerf_on_a_blender_rgba_scene_in_latent_space(tmp_path: Path) -> None:
    scene = write_blender_ball(tmp_path / "lego", 32)
    ae_dir = tmp_path / "ae"
    tiny_ae(ae_dir)
    hashes = {p: sha256_file(p) for p in sorted((ae_dir / "model").iterdir())}
    assert _fit(tmp_path, scene, str(ae_dir), "kplanes", "fit", "--aabb", "0.6") == 0
    out = tmp_path / "fit"
    assert {p: sha256_file(p) for p in sorted((ae_dir / "model").iterdir())} == hashes  # shared AE files unchanged
    m = json.loads((out / "metrics.json").read_text())
    assert m["space"] == "ae" and m["method"] == "kplanes" and m["render_size"] == [8, 8] and m["aabb_half"] == 0.6
    assert m["test_views"] == ["r_0", "r_1"] and m["train_views"] == 6
    assert set(m["metrics"]) == {"psnr", "ssim", "perceptual"} and m["perceptual_backend"]
    assert set(m["train_seconds"]) == {"latent", "rgb_align", "total"}
    assert m["render_seconds_per_frame"]["decode"] > 0 and m["render_seconds_per_frame"]["field"] > 0
    assert m["memory"]["cpu_peak_rss_mb"] > 0 and m["seed"] == 0 and m["provenance"]["versions"]["torch"]
    assert len(m["psnr_vs_time"]) == 2
    assert set(m["ae_ceiling"]["metrics"]) == {"psnr", "ssim", "perceptual"}  # the shared AE's own reconstruction
    over = m["overhead_seconds"]  # the fit's time outside training, part by part
    parts = ("setup", "curve_evaluations", "load_perceptual", "test_evaluation", "ae_ceiling", "render_timing",
             "turntable", *(("equal_time_evaluation",) if "equal_time" in m else ()))
    assert ("equal_time" in m) == (params().nerf.equal_time.extra_stage2_steps > 0)
    assert set(over) == {*parts, "total", "fraction_of_training"} and all(over[k] > 0 for k in parts)
    assert over["total"] == pytest.approx(sum(over[k] for k in parts))
    assert over["fraction_of_training"] == pytest.approx(over["total"] / m["train_seconds"]["total"])
    latents = torch.load(out / "latents.pt")
    assert latents["rendered"].shape == latents["encoded"].shape == (2, 4, 8, 8)
    for name in ("per_view.csv", "curve.csv", "losses.csv", "turntable.gif", "field.pt", "decoder.pt",
                 "renders/r_0.png", "renders/r_1.png"):
        assert (out / name).is_file(), name
    render = np.asarray(Image.open(out / "renders" / "r_0.png"))
    assert render.shape == (64, 96, 3)  # (render | truth | error) over (latent | encoded truth)
    assert Image.open(out / "turntable.gif").n_frames == 4


def test_fit_nerf_on_a_non_square_nerfstudio_scene_in_rgb(tmp_path: Path) -> None:
    scene = write_nerfstudio_ball(tmp_path / "wide", 40, 24)
    assert _fit(tmp_path, scene, "rgb", "vanilla", "fit") == 0
    m = json.loads((tmp_path / "fit" / "metrics.json").read_text())
    assert m["space"] == "rgb" and m["image_size"] == [40, 24] and m["render_size"] == [40, 24]
    assert m["render_seconds_per_frame"]["decode"] < 1e-3
    render = np.asarray(Image.open(tmp_path / "fit" / "renders" / "frame_00006.png"))
    assert render.shape == (24, 120, 3)


@pytest.mark.parametrize("args, words", [
    (("--method", "nerfacto"), "nerfacto"),
    (("--autoencoder", "/nonexistent/ae"), "/nonexistent/ae"),
    (("--scene", "/nonexistent/scene"), "/nonexistent/scene"),
    (("--aabb", "-1"), "--aabb"),
])
def test_fit_nerf_bad_input_fails_clearly(tmp_path: Path, square_scene: Path, capsys, args, words) -> None:
    base = {"--scene": str(square_scene), "--autoencoder": "rgb", "--method": "ngp"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    argv = ["fit-nerf", "--params", str(REPO / "params.yaml"), "--preset", "smoke", "--out", str(tmp_path / "o"), "--quiet"]
    for flag, value in base.items():
        argv += [flag, value]
    if "--aabb" in args:
        argv += ["--aabb", args[1]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error:" in err and words in err
    assert not (tmp_path / "o").exists()


def test_an_interrupted_latent_fit_resumes_from_its_checkpoint_and_matches_an_uninterrupted_one(
        square_scene: Path, tmp_path: Path) -> None:
    p = params()
    scene = read_scene(square_scene, splits_required=("train", "test"))
    cfg = p.nerf.method_params["ngp"]

    def run(work: Path, crash_in_stage2: bool):
        data = prepare_latent(scene, tiny_ae(), "tiny")
        if crash_in_stage2:
            real = data.to_rgb

            def failing(rendered):
                if torch.is_grad_enabled():  # training (stage 2), not the curve's evaluations
                    raise KeyboardInterrupt
                return real(rendered)
            data.to_rgb = failing  # type: ignore[method-assign]
        field = build_method_field("ngp", data, cfg, 0.5, seed=0)
        sampler = build_sampler(p.nerf, field, torch.device("cpu"))
        return field, data, fit_scene(field, sampler, data, p.nerf, cfg, 0, work)

    ref_field, ref_data, _ = run(tmp_path / "ref", False)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "crash", True)
    field, data, result = run(tmp_path / "crash", False)
    assert result.resumed_from == p.nerf.stage1.steps  # the end-of-stage-1 checkpoint
    for (name, a), b in zip(ref_field.state_dict().items(), field.state_dict().values()):
        assert torch.equal(a, b), name
    for (name, a), b in zip(ref_data.ae.state_dict().items(), data.ae.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_batch_too_large_for_memory_fails_before_training_and_names_the_param(
        square_scene: Path, tmp_path: Path, capsys) -> None:
    from igae.nerf.memory import ResourceError, check_fit_memory, saved_bytes

    # saved_bytes counts what autograd keeps: a (1000, 1000) float32 product saves both inputs.
    a, b = torch.ones(1000, 1000, requires_grad=True), torch.ones(1000, 1000, requires_grad=True)
    assert saved_bytes(lambda: a @ b) == 2 * 4 * 10**6
    p = params(**{"nerf.stage1.rays_per_batch": 10**10})
    scene = read_scene(square_scene, splits_required=("train", "test"))
    data = prepare_latent(scene, tiny_ae(), "tiny")
    field = build_method_field("vanilla", data, p.nerf.method_params["vanilla"], 0.5, seed=0)
    with pytest.raises(ResourceError, match=r"nerf\.stage1\.rays_per_batch"):
        check_fit_memory(field, build_sampler(p.nerf, field, torch.device("cpu")), data, p.nerf)
    ok = check_fit_memory(field, build_sampler(params().nerf, field, torch.device("cpu")), data, params().nerf)
    assert 0 < ok["rays"] < ok["available"] and ok["decode"] > 0
    # Through the CLI: exit 2, the param named, nothing written.
    text = (REPO / "params.yaml").read_text().replace("    rays_per_batch: 4096", "    rays_per_batch: 40000000000")
    assert "40000000000" in text
    (tmp_path / "params.yaml").write_text(text)
    code = main(["fit-nerf", "--params", str(tmp_path / "params.yaml"), "--scene", str(square_scene),
                 "--autoencoder", "rgb", "--method", "ngp", "--out", str(tmp_path / "fit"), "--quiet"])
    assert code == 2 and "nerf.rgb.rays_per_batch" in capsys.readouterr().err
    assert not (tmp_path / "fit").exists()


def test_test_view_evaluation_renders_in_chunks_and_chunking_does_not_change_the_metrics(square_scene: Path) -> None:
    """Evaluation holds one chunk of one view's rays at a time, never all test rays at once."""
    from igae.nerf.evaluate import evaluate_test_views

    p = params(**{"nerf.sampler": "coarse_to_fine"})
    data = prepare_rgb(read_scene(square_scene, splits_required=("train", "test")))
    field = build_method_field("ngp", data, p.nerf.method_params["ngp"], 0.5, seed=0)
    sampler = build_sampler(p.nerf, field, torch.device("cpu"))
    points_per_call: list[int] = []
    real_forward = field.forward

    def counting_forward(x, *args, **kwargs):
        points_per_call.append(x.reshape(-1, 3).shape[0])
        return real_forward(x, *args, **kwargs)

    field.forward = counting_forward  # type: ignore[method-assign]
    whole = evaluate_test_views(field, data, sampler, None, chunk=None)
    one_view = data.width * data.height * p.nerf.samples_per_ray
    assert len(data.test_c2w) >= 2 and max(points_per_call) <= one_view
    points_per_call.clear()
    chunked = evaluate_test_views(field, data, sampler, None, chunk=50)
    assert max(points_per_call) <= 50 * p.nerf.samples_per_ray
    for name, values in whole.per_view.items():
        assert torch.allclose(values, chunked.per_view[name], atol=1e-4), name


def test_final_evaluation_reuses_the_last_curve_renders_with_identical_metrics(square_scene: Path, tmp_path: Path) -> None:
    """The fit's last curve point renders the test views once; the test evaluation reuses those
    renders (no second render pass) and gets exactly the metrics a fresh render pass gives."""
    from igae.nerf.evaluate import evaluate_test_views

    p = params()
    data = prepare_rgb(read_scene(square_scene, splits_required=("train", "test")))
    field = build_method_field("triplane", data, p.nerf.method_params["triplane"], 0.5, seed=0)
    sampler = build_sampler(p.nerf, field, torch.device("cpu"))
    result = fit_scene(field, sampler, data, p.nerf, p.nerf.method_params["triplane"], 0, tmp_path / "work")
    assert result.final_test_render is not None
    assert result.final_test_render.features.shape == (len(data.test_c2w), 3, data.height, data.width)
    calls = []
    real_forward = field.forward
    field.forward = lambda *a, **k: calls.append(1) or real_forward(*a, **k)  # type: ignore[method-assign]
    reused = evaluate_test_views(field, data, sampler, None, rendered=result.final_test_render)
    assert not calls  # nothing rendered again
    fresh = evaluate_test_views(field, data, sampler, None)
    assert calls
    assert torch.equal(reused.rgb, fresh.rgb)
    for name, values in fresh.per_view.items():
        assert torch.equal(values, reused.per_view[name]), name
    assert result.curve[-1]["psnr"] == pytest.approx(float(fresh.per_view["psnr"].mean()), abs=1e-4)
    assert result.eval_seconds > 0
