"""Snakemake and DVC build the pipeline on the smoke preset; a second run does nothing.

Runs in a temporary copy of the workflow files so the repo's own data/ is untouched.
Both executors must produce byte-identical outputs (the stages are deterministic).
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WORKFLOW_FILES = ["Snakefile", "dvc.yaml", "params.yaml", "presets", "workflow", "igae"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def _copy_workflow(repo: Path, dest: Path) -> Path:
    dest.mkdir()
    for name in WORKFLOW_FILES:
        src = repo / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def _run(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


DATA_OUTPUTS = ["data/objects.json", "data/scenes/train", "data/scenes/heldout", "data/photos"]
# Trained weights and their metrics too: on CPU the whole pipeline is deterministic.
TRAINED_OUTPUTS = [f"results/autoencoders/{ae}/model" for ae in ("standard", "finetuned", "igae")] + [
    f"results/ae_eval/{ae}/metrics.json" for ae in ("standard", "finetuned", "igae")]
SPACES = ("rgb", "standard", "finetuned", "igae")
METHODS = ("vanilla", "ngp", "kplanes", "triplane")
HELDOUT = ("scene_000", "scene_001")
# Per-scene NeRF fits: everything but the timings (metrics.json, curve.csv) is deterministic.
FIT_OUTPUTS = [f"results/nerf/{space}/{method}/{scene}/{name}" for space in SPACES for method in METHODS
               for scene in HELDOUT for name in ("per_view.csv", "renders", "field.pt", "turntable.gif")]


@pytest.fixture(scope="module")
def snakemake_run(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = _copy_workflow(repo_root, tmp_path_factory.mktemp("smk") / "wf")
    _run([sys.executable, "-m", "snakemake", "--cores", "2", "--config", "preset=smoke"], work)
    return work


def test_snakemake_builds_data(snakemake_run: Path) -> None:
    for out in DATA_OUTPUTS + TRAINED_OUTPUTS + FIT_OUTPUTS:
        assert (snakemake_run / out).exists(), out
    scenes = sorted((snakemake_run / "data/scenes/heldout").glob("scene_*/transforms.json"))
    assert len(scenes) == 2  # presets/smoke.yaml: heldout count 2
    assert (snakemake_run / "results/logs/render_scenes_train.log").exists()


def test_second_snakemake_run_does_nothing(snakemake_run: Path) -> None:
    out = _run([sys.executable, "-m", "snakemake", "--cores", "2", "--config", "preset=smoke", "-n"], snakemake_run)
    assert "Nothing to be done" in out, out


def test_dvc_repro_matches_snakemake_and_second_repro_is_noop(
    repo_root: Path, snakemake_run: Path, tmp_path: Path
) -> None:
    work = _copy_workflow(repo_root, tmp_path / "wf")
    params = work / "params.yaml"
    params.write_text(params.read_text().replace("preset: default", "preset: smoke", 1))
    dvc = [sys.executable, "-m", "dvc"]
    _run(dvc + ["init", "--no-scm", "-q"], work)
    _run(dvc + ["config", "core.analytics", "false"], work)
    _run(dvc + ["repro"], work)
    second = _run(dvc + ["repro"], work)
    assert "didn't change" in second and "Running stage" not in second, second
    for out in DATA_OUTPUTS + TRAINED_OUTPUTS + FIT_OUTPUTS:
        a, b = snakemake_run / out, work / out
        if a.is_file():
            assert a.read_bytes() == b.read_bytes(), out
        else:
            cmp = filecmp.dircmp(a, b)
            _assert_same_tree(cmp, out)


def _assert_same_tree(cmp: filecmp.dircmp, where: str) -> None:
    assert not cmp.left_only and not cmp.right_only, (where, cmp.left_only, cmp.right_only)
    _, mismatch, errors = filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files, shallow=False)
    assert not mismatch and not errors, (where, mismatch, errors)
    for name, sub in cmp.subdirs.items():
        _assert_same_tree(sub, f"{where}/{name}")
