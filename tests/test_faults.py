"""Fault injection: a real kill -9 mid-fit, corrupt checkpoints, bad scene input through the CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from igae.cli import main
from igae.train.checkpoint import load_latest_checkpoint, save_checkpoint

from test_nerf_fit import tiny_ae, write_nerfstudio_ball

REPO = Path(__file__).resolve().parents[1]


def _params_with_long_stage2(tmp_path: Path) -> Path:
    """A copy of params.yaml + presets whose smoke preset's latent fit has a long stage 2."""
    (tmp_path / "presets").mkdir()
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    smoke = (REPO / "presets" / "smoke.yaml").read_text()
    smoke = smoke.replace("stage1: {steps: 6, rays_per_batch: 64}", "stage1: {steps: 20, rays_per_batch: 64}")
    smoke = smoke.replace("stage2: {steps: 2, views_per_batch: 1}", "stage2: {steps: 300, views_per_batch: 1}")
    assert "steps: 300" in smoke
    (tmp_path / "presets" / "smoke.yaml").write_text(smoke)
    return tmp_path / "params.yaml"


def _fit_cmd(params: Path, scene: Path, ae: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "igae", "fit-nerf", "--params", str(params), "--preset", "smoke", "--scene", str(scene),
            "--autoencoder", str(ae), "--method", "ngp", "--out", str(out), "--work", str(out) + ".work",
            "--threads", "1", "--quiet"]


def test_kill_9_during_a_latent_fit_then_rerun_resumes_and_matches_an_uninterrupted_fit(tmp_path: Path) -> None:
    params = _params_with_long_stage2(tmp_path)
    scene = write_nerfstudio_ball(tmp_path / "scene", 32, 32)
    ae = tmp_path / "ae"
    tiny_ae(ae)
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    reference = tmp_path / "reference"
    subprocess.run(_fit_cmd(params, scene, ae, reference), check=True, env=env, capture_output=True)

    out = tmp_path / "killed"
    proc = subprocess.Popen(_fit_cmd(params, scene, ae, out), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    checkpoint = Path(str(out) + ".work") / "checkpoints" / "step_0000020.pt.sha256"  # end of stage 1
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert checkpoint.exists(), "stage 1 never checkpointed"
    time.sleep(0.5)  # well into stage 2
    assert proc.poll() is None, "the fit finished before it could be killed; lengthen stage 2"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()  # nothing half-written in place of the output

    rerun = subprocess.run(_fit_cmd(params, scene, ae, out), env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming from step 20" in rerun.stderr
    resumed = json.loads((out / "metrics.json").read_text())
    assert resumed["resumed_from"] == 20
    a = torch.load(reference / "field.pt")["state_dict"]
    b = torch.load(out / "field.pt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit-exact on CPU
    assert (reference / "per_view.csv").read_text() == (out / "per_view.csv").read_text()
    assert not Path(str(out) + ".work").exists()  # checkpoints removed once the fit is written


def test_a_corrupt_newest_checkpoint_is_skipped_with_a_warning(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, 10, {"value": torch.tensor(1.0)})
    newest = save_checkpoint(tmp_path, 20, {"value": torch.tensor(2.0)})
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])  # a write cut short (without the atomic rename)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state = load_latest_checkpoint(tmp_path)
    assert state is not None and state["step"] == 10 and float(state["value"]) == 1.0
    assert any("step_0000020.pt" in str(w.message) and "checksum" in str(w.message) for w in caught)
    # A checkpoint without its checksum sidecar (the process died between the two writes) is not used either.
    newest.write_bytes(data)
    newest.with_suffix(".pt.sha256").unlink()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert load_latest_checkpoint(tmp_path)["step"] == 10


def _break(scene: Path, how: str) -> None:
    meta_path = scene / "transforms.json"
    meta = json.loads(meta_path.read_text())
    if how == "truncated png":
        png = scene / meta["frames"][0]["file_path"]
        png.write_bytes(png.read_bytes()[:40])
    elif how == "missing image":
        (scene / meta["frames"][1]["file_path"]).unlink()
    elif how == "not json":
        meta_path.write_text("{ this is not json")
    elif how == "no frames":
        meta.pop("frames")
        meta_path.write_text(json.dumps(meta))
    elif how == "nan pose":
        meta["frames"][0]["transform_matrix"][0][3] = float("nan")
        meta_path.write_text(json.dumps(meta))
    elif how == "zero focal":
        meta["fl_x"] = 0.0
        meta_path.write_text(json.dumps(meta))
    elif how == "empty test split":
        meta["test_filenames"] = []
        meta_path.write_text(json.dumps(meta))


@pytest.mark.parametrize("how, words", [
    ("truncated png", "frame_00000.png"), ("missing image", "frame_00001.png"), ("not json", "transforms.json"),
    ("no frames", "frames"), ("nan pose", "frame"), ("zero focal", "fl_x"), ("empty test split", "test"),
])
def test_bad_scenes_fail_fit_nerf_clearly_and_write_nothing(tmp_path: Path, capsys, how: str, words: str) -> None:
    scene = write_nerfstudio_ball(tmp_path / "scene", 32, 32, n=6)
    _break(scene, how)
    code = main(["fit-nerf", "--params", str(REPO / "params.yaml"), "--preset", "smoke", "--scene", str(scene),
                 "--autoencoder", "rgb", "--method", "ngp", "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error:") and words in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


def _smoke_data(tmp_path: Path, params: Path) -> tuple[Path, Path]:
    """A tiny training scene set and photo set made by the pipeline's own data stages."""
    base = ["--params", str(params), "--preset", "smoke"]
    cache = REPO / "data" / "cache"
    assert main(["select-objects", *base, "--out", str(tmp_path / "objects.json")]) == 0
    assert main(["render-scenes", *base, "--objects", str(tmp_path / "objects.json"), "--set", "train",
                 "--out", str(tmp_path / "scenes")]) == 0
    assert main(["build-photos", *base, "--out", str(tmp_path / "photos")]) == 0
    assert cache.is_dir()
    return tmp_path / "scenes", tmp_path / "photos"


def test_kill_9_during_standard_ae_training_then_rerun_resumes_bit_exactly(tmp_path: Path) -> None:
    (tmp_path / "presets").mkdir()
    text = (REPO / "params.yaml").read_text().replace("cache_dir: data/cache", f"cache_dir: {REPO / 'data' / 'cache'}")
    (tmp_path / "params.yaml").write_text(text)
    smoke = (REPO / "presets" / "smoke.yaml").read_text()
    smoke = smoke.replace("train_ae: {steps: 6, batch_size: 4, checkpoint_every: 3}",
                          "train_ae: {steps: 60, batch_size: 4, checkpoint_every: 10}")
    assert "steps: 60" in smoke
    (tmp_path / "presets" / "smoke.yaml").write_text(smoke)
    params = tmp_path / "params.yaml"
    scenes, photos = _smoke_data(tmp_path, params)
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def cmd(name: str) -> list[str]:
        return [sys.executable, "-m", "igae", "train-ae", "--params", str(params), "--preset", "smoke",
                "--scenes", str(scenes), "--photos", str(photos), "--out", str(tmp_path / name),
                "--work", str(tmp_path / f"{name}.work")]

    subprocess.run(cmd("reference"), check=True, env=env, capture_output=True)
    proc = subprocess.Popen(cmd("killed"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    mark = tmp_path / "killed.work" / "checkpoints" / "step_0000020.pt.sha256"
    deadline = time.monotonic() + 120
    while not mark.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert mark.exists() and proc.poll() is None, "training ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed").exists()
    rerun = subprocess.run(cmd("killed"), env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert re.search(r"resuming from step (20|30|40|50)", rerun.stderr), rerun.stderr
    a = load_file(tmp_path / "reference" / "model" / "diffusion_pytorch_model.safetensors")
    b = load_file(tmp_path / "killed" / "model" / "diffusion_pytorch_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "reference" / "losses.csv").read_text() == (tmp_path / "killed" / "losses.csv").read_text()
