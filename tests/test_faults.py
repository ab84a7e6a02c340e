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


@pytest.fixture(scope="module")
def long_training(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Smoke params with trainings long enough to be killed mid-way, the data they train on
    (made by the pipeline's own data stages), and an uninterrupted standard AE run."""
    root = tmp_path_factory.mktemp("long_training")
    (root / "presets").mkdir()
    text = (REPO / "params.yaml").read_text().replace("cache_dir: data/cache", f"cache_dir: {REPO / 'data' / 'cache'}")
    (root / "params.yaml").write_text(text)
    smoke = (REPO / "presets" / "smoke.yaml").read_text()
    for old, new in [("train_ae: {steps: 6, batch_size: 4, checkpoint_every: 3}",
                      "train_ae: {steps: 60, batch_size: 4, checkpoint_every: 10}"),
                     ("warmup: {steps: 4, views_per_batch: 2}", "warmup: {steps: 10, views_per_batch: 2}"),
                     ("joint: {steps: 4, views_per_batch: 2, photos_per_batch: 2}",
                      "joint: {steps: 50, views_per_batch: 2, photos_per_batch: 2}"),
                     ("  checkpoint_every: 3\n", "  checkpoint_every: 10\n")]:
        assert old in smoke, old
        smoke = smoke.replace(old, new)
    (root / "presets" / "smoke.yaml").write_text(smoke)
    params = root / "params.yaml"
    base = ["--params", str(params), "--preset", "smoke"]
    assert main(["select-objects", *base, "--out", str(root / "objects.json")]) == 0
    assert main(["render-scenes", *base, "--objects", str(root / "objects.json"), "--set", "train",
                 "--out", str(root / "scenes")]) == 0
    assert main(["build-photos", *base, "--out", str(root / "photos")]) == 0
    paths = {"root": root, "params": params, "scenes": root / "scenes", "photos": root / "photos"}
    subprocess.run(_train_cmd(paths, "train-ae", "standard"), check=True, env=_env(), capture_output=True)
    return paths


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _train_cmd(paths: dict[str, Path], command: str, name: str) -> list[str]:
    start = ["--ae", str(paths["root"] / "standard")] if command != "train-ae" else []
    return [sys.executable, "-m", "igae", command, "--params", str(paths["params"]), "--preset", "smoke", *start,
            "--scenes", str(paths["scenes"]), "--photos", str(paths["photos"]), "--out", str(paths["root"] / name),
            "--work", str(paths["root"] / f"{name}.work")]


def _kill_after_checkpoint_then_rerun(paths: dict[str, Path], command: str, name: str, step: int) -> str:
    """Start ``command``, kill -9 it once the checkpoint of ``step`` is on disk, rerun it; its stderr."""
    proc = subprocess.Popen(_train_cmd(paths, command, name), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    mark = paths["root"] / f"{name}.work" / "checkpoints" / f"step_{step:07d}.pt.sha256"
    deadline = time.monotonic() + 120
    while not mark.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert mark.exists() and proc.poll() is None, "training ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (paths["root"] / name).exists()  # no half-written output
    rerun = subprocess.run(_train_cmd(paths, command, name), env=_env(), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    return rerun.stderr


def _same_weights(a: Path, b: Path) -> None:
    ta = load_file(a / "model" / "diffusion_pytorch_model.safetensors")
    tb = load_file(b / "model" / "diffusion_pytorch_model.safetensors")
    assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)
    assert (a / "losses.csv").read_text() == (b / "losses.csv").read_text()


def test_kill_9_during_standard_ae_training_then_rerun_resumes_bit_exactly(long_training: dict[str, Path]) -> None:
    err = _kill_after_checkpoint_then_rerun(long_training, "train-ae", "killed_standard", 20)
    assert re.search(r"resuming from step (20|30|40|50)", err), err
    _same_weights(long_training["root"] / "standard", long_training["root"] / "killed_standard")


def test_kill_9_during_igae_training_then_rerun_resumes_bit_exactly(long_training: dict[str, Path]) -> None:
    """Killed in the joint phase (warm-up: 10 steps); AE weights and tri-planes must match."""
    root = long_training["root"]
    subprocess.run(_train_cmd(long_training, "train-igae", "igae"), check=True, env=_env(), capture_output=True)
    err = _kill_after_checkpoint_then_rerun(long_training, "train-igae", "killed_igae", 20)
    assert re.search(r"resuming from step (20|30|40|50)", err), err
    _same_weights(root / "igae", root / "killed_igae")
    a = torch.load(root / "igae" / "triplanes.pt", weights_only=False)
    b = torch.load(root / "killed_igae" / "triplanes.pt", weights_only=False)
    sa, sb = a["state_dict"], b["state_dict"]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _params_copy(tmp_path: Path, old: str = "", new: str = "") -> Path:
    (tmp_path / "presets").mkdir()
    for preset in (REPO / "presets").glob("*.yaml"):
        (tmp_path / "presets" / preset.name).write_text(preset.read_text())
    text = (REPO / "params.yaml").read_text()
    assert old in text
    (tmp_path / "params.yaml").write_text(text.replace(old, new, 1))
    return tmp_path / "params.yaml"


@pytest.mark.parametrize("how, words", [
    ("missing weights", ["diffusion_pytorch_model.safetensors"]),
    ("other latent channels", ["3 latent channels", "autoencoder.architecture.latent_channels is 4"]),
    ("not an AE folder", ["igae_autoencoder.json is missing"]),
])
def test_bad_autoencoder_folders_fail_the_ae_stages_clearly(tmp_path: Path, capsys, how: str,
                                                            words: list[str]) -> None:
    from igae.autoencoder.model import AEArchitecture, Autoencoder

    ae_dir = tmp_path / "ae"
    if how == "other latent channels":
        Autoencoder.from_architecture(AEArchitecture((8, 16, 16), 1, 3, 4), seed=0).save(ae_dir / "model")
    else:
        tiny_ae(ae_dir)
    if how == "missing weights":
        (ae_dir / "model" / "diffusion_pytorch_model.safetensors").unlink()
    elif how == "not an AE folder":
        (ae_dir / "model" / "igae_autoencoder.json").unlink()
    for command in (["eval-ae", "--name", "x", "--photos", str(tmp_path), "--heldout", str(tmp_path)],
                    ["finetune-ae", "--scenes", str(tmp_path), "--photos", str(tmp_path),
                     "--work", str(tmp_path / "work")]):
        code = main([command[0], "--params", str(REPO / "params.yaml"), "--preset", "smoke", "--ae", str(ae_dir),
                     *command[1:], "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error:") and "Traceback" not in err, err
        assert str(ae_dir / "model") in err and all(w in err for w in words), err
        assert not (tmp_path / "out").exists()


def test_a_hub_id_while_offline_fails_train_ae_clearly(tmp_path: Path) -> None:
    params = _params_copy(tmp_path, "pretrained: null", "pretrained: igae-tests/no-such-autoencoder")
    for folder in ("scenes", "photos"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "manifest.json").write_text("{}")
    env = {**_env(), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "igae", "train-ae", "--params", str(params), "--preset", "smoke",
                           "--scenes", str(tmp_path / "scenes"), "--photos", str(tmp_path / "photos"),
                           "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")],
                          env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "igae-tests/no-such-autoencoder" in proc.stderr and "could not download" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_pruning_keeps_the_new_checkpoints_when_a_newer_unverifiable_one_is_left_over(tmp_path: Path) -> None:
    leftover = save_checkpoint(tmp_path, 90, {"value": torch.tensor(9.0)})
    leftover.with_suffix(".pt.sha256").unlink()  # died between the two writes, long ago
    for step in (10, 20, 30):
        save_checkpoint(tmp_path, step, {"value": torch.tensor(float(step))})
    assert sorted(p.name for p in tmp_path.glob("step_*.pt")) == ["step_0000020.pt", "step_0000030.pt",
                                                                   "step_0000090.pt"]
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert load_latest_checkpoint(tmp_path)["step"] == 30
