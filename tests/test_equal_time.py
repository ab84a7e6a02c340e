"""Equal wall-clock comparisons: a latent fit continued to the RGB fit's budget (nerf.equal_time), the
RGB fit's PSNR read off its curve at a latent fit's training time, and the AE ceiling of a latent fit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from igae.data import read_scene
from igae.nerf.data import prepare_latent, prepare_rgb
from igae.nerf.fit import build_method_field, build_sampler, fit_scene

from test_nerf_fit import REPO, params, tiny_ae, write_nerfstudio_ball


@pytest.fixture(scope="module")
def ball(tmp_path_factory) -> Path:
    return write_nerfstudio_ball(tmp_path_factory.mktemp("scenes") / "ball", 32, 32)


def _latent_fit(scene_dir: Path, work: Path, extra: int, fail_at_extra_step: int | None = None):
    p = params(**{"nerf.equal_time.extra_stage2_steps": extra, "nerf.stage2.steps": 3})
    data = prepare_latent(read_scene(scene_dir, splits_required=("train", "test")), tiny_ae(), "tiny")
    cfg = p.nerf.method_params["ngp"]
    field = build_method_field("ngp", data, cfg, 0.5, seed=0)
    sampler = build_sampler(p.nerf, field, torch.device("cpu"))
    if fail_at_extra_step is not None:
        real, calls = data.to_rgb, []

        def failing(rendered):  # training steps only (the evaluations run without gradients)
            if torch.is_grad_enabled():
                calls.append(1)
                if len(calls) == p.nerf.stage2.steps + fail_at_extra_step + 1:
                    raise KeyboardInterrupt
            return real(rendered)
        data.to_rgb = failing  # type: ignore[method-assign]
    result = fit_scene(field, sampler, data, p.nerf, cfg, 0, work)
    return field, data, sampler, result


def _state(field, data, sampler) -> dict[str, torch.Tensor]:
    return {**{f"field.{k}": v for k, v in field.state_dict().items()},
            **{f"ae.{k}": v for k, v in data.ae.state_dict().items()},
            **{f"grid.{k}": v for k, v in sampler.grid.state_dict().items()}}


def test_continuation_leaves_the_equal_steps_fit_bit_identical_and_resumes(ball: Path, tmp_path: Path) -> None:
    plain = _latent_fit(ball, tmp_path / "plain", extra=0)
    longer = _latent_fit(ball, tmp_path / "longer", extra=3)
    assert plain[3].equal_time is None
    et = longer[3].equal_time
    assert et is not None and et.extra_steps == 3 and et.train_seconds > 0
    # Every equal-steps output is the same bit for bit: weights, grid, curve, final renders.
    a, b = _state(*plain[:3]), _state(*longer[:3])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    assert [r["psnr"] for r in plain[3].curve] == [r["psnr"] for r in longer[3].curve]
    assert torch.equal(plain[3].final_test_render.rgb, longer[3].final_test_render.rgb)
    # The continuation trained further: other renders, its own losses after the scheduled steps.
    assert not torch.equal(et.final_test_render.rgb, longer[3].final_test_render.rgb)
    assert et.final_test_render.rgb.shape == longer[3].final_test_render.rgb.shape
    # Interrupted during the continuation, a rerun resumes (the scheduled stages from their last
    # checkpoint, with their optimiser state) and ends where an uninterrupted run ends.
    with pytest.raises(KeyboardInterrupt):
        _latent_fit(ball, tmp_path / "crash", extra=3, fail_at_extra_step=1)
    again = _latent_fit(ball, tmp_path / "crash", extra=3)
    assert again[3].resumed_from == params().nerf.stage1.steps + 3  # end of the scheduled stages
    assert torch.equal(again[3].equal_time.final_test_render.rgb, et.final_test_render.rgb)
    assert torch.equal(again[3].final_test_render.rgb, longer[3].final_test_render.rgb)


def test_continuation_holds_the_decoder_lr_and_keeps_the_optimiser_state(ball: Path, tmp_path: Path) -> None:
    from igae.train.checkpoint import load_latest_checkpoint

    _latent_fit(ball, tmp_path / "w", extra=2)
    scheduled = load_latest_checkpoint(tmp_path / "w" / "checkpoints")
    continued = load_latest_checkpoint(tmp_path / "w" / "checkpoints_equal_time")
    s2 = params().nerf.stage2
    lr = [g["lr"] for g in continued["optimizers"]["decoder"]["param_groups"]]
    assert lr == pytest.approx([s2.lr_decoder * s2.lr_decoder_end_factor] * len(lr), rel=1e-9)
    steps = {int(v["step"]) for v in continued["optimizers"]["field"]["state"].values()}
    assert steps == {3 + 2}  # Adam continued from the 3 scheduled stage-2 steps, not restarted
    assert {int(v["step"]) for v in scheduled["optimizers"]["field"]["state"].values()} == {3}


def test_rgb_fits_ignore_the_continuation_and_take_their_own_curve_density(ball: Path, tmp_path: Path) -> None:
    states = []
    # (points, until) -> curve rows: k / points of the steps for k <= until * points, then the end.
    for k, (points, until, rows) in enumerate(((2, 1.0, 2), (5, 1.0, 5), (8, 0.75, 7))):
        p = params(**{"nerf.equal_time.extra_stage2_steps": 4, "nerf.eval.rgb_curve_points": points,
                      "nerf.eval.rgb_curve_until": until})
        data = prepare_rgb(read_scene(ball, splits_required=("train", "test")))
        cfg = p.nerf.method_params["triplane"]
        field = build_method_field("triplane", data, cfg, 0.5, seed=0)
        result = fit_scene(field, build_sampler(p.nerf, field, torch.device("cpu")), data, p.nerf, cfg, 0,
                           tmp_path / f"w{k}")
        assert result.equal_time is None and len(result.curve) == rows
        total = result.curve[-1]["step"]
        assert [r["step"] for r in result.curve[:-1]] == [round(total * j / points) for j in range(1, rows)]
        states.append(field.state_dict())
    # A denser curve only adds evaluations: the trained field is the same.
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_fit_nerf_records_the_ae_ceiling_and_the_equal_time_block(ball: Path, tmp_path: Path) -> None:
    from igae.cli import main
    from igae.eval.ae_quality import reconstruction_metrics
    from igae.autoencoder.perceptual import load_perceptual

    ae_dir = tmp_path / "ae"
    tiny_ae(ae_dir)
    argv = ["fit-nerf", "--params", str(REPO / "params.yaml"), "--preset", "smoke", "--scene", str(ball),
            "--autoencoder", str(ae_dir), "--method", "kplanes", "--out", str(tmp_path / "fit"), "--quiet"]
    text = (REPO / "params.yaml").read_text().replace("extra_stage2_steps: 0", "extra_stage2_steps: 2")
    assert "extra_stage2_steps: 2" in text
    (tmp_path / "params.yaml").write_text(text)
    shutil.copytree(REPO / "presets", tmp_path / "presets")
    argv[2] = str(tmp_path / "params.yaml")
    assert main(argv) == 0
    m = json.loads((tmp_path / "fit" / "metrics.json").read_text())
    # The ceiling: the shared AE's own encode -> decode of the same (cropped) test views.
    scene = read_scene(ball, splits_required=("train", "test"))
    expected = reconstruction_metrics(tiny_ae(), scene.subset("test").images, load_perceptual("auto"))
    assert m["ae_ceiling"]["metrics"]["psnr"] == pytest.approx(float(expected["psnr"].mean()), abs=1e-5)
    assert set(m["ae_ceiling"]["metrics"]) == {"psnr", "ssim", "perceptual"}
    assert m["ae_ceiling"]["metrics"]["psnr"] != m["metrics"]["psnr"]
    et = m["equal_time"]
    assert et["extra_stage2_steps"] == 2 and et["steps"]["rgb_align_extra"] == 2
    assert et["train_seconds"]["total"] == pytest.approx(m["train_seconds"]["total"] + et["train_seconds"]["extra"])
    assert set(et["metrics"]) == {"psnr", "ssim", "perceptual"} and et["metrics"]["psnr"] != m["metrics"]["psnr"]
    assert {"ae_ceiling", "equal_time_evaluation"} <= set(m["overhead_seconds"])
    assert not (tmp_path / ".fit.work").exists()  # both runs' checkpoints are removed with the work folder


# ------------------------------------------------------------------ the RGB fit at a latent fit's time
def test_psnr_at_time_interpolates_inside_the_curve_and_never_extrapolates() -> None:
    from igae.eval.equal_time import psnr_at_time

    curve = pd.DataFrame({"step": [10, 20, 30], "train_seconds": [2.0, 4.0, 8.0], "psnr": [20.0, 24.0, 26.0]})
    assert psnr_at_time(curve, 3.0) == pytest.approx(22.0)
    assert psnr_at_time(curve, 6.0) == pytest.approx(25.0)
    assert psnr_at_time(curve, 8.0) == pytest.approx(26.0) and psnr_at_time(curve, 2.0) == pytest.approx(20.0)
    assert np.isnan(psnr_at_time(curve, 1.0)) and np.isnan(psnr_at_time(curve, 9.0))
