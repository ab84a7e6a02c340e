"""CI on a self-hosted GPU runner (.github/workflows/gpu-repro.yml) and the Makefile targets it calls."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load((REPO / ".github" / "workflows" / "gpu-repro.yml").read_text())


def _steps(workflow: dict) -> dict[str, str]:
    return {s.get("name", s.get("uses", "")): s.get("run", "") for s in workflow["jobs"]["repro"]["steps"]}


def test_the_self_hosted_runner_never_runs_a_forks_pull_request(workflow: dict) -> None:
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert "pull_request_target" not in triggers  # would run with the base repository's rights
    job = workflow["jobs"]["repro"]
    assert "self-hosted" in job["runs-on"]
    guard = job["if"].replace(" ", "")
    assert "github.event.pull_request.head.repo.full_name==github.repository" in guard
    assert workflow["permissions"] == {"contents": "read"}


def test_metrics_are_diffed_against_origin_main_and_a_failure_is_not_hidden(workflow: dict) -> None:
    run = _steps(workflow)["Metrics diff against origin/main"]
    line = next(l for l in run.splitlines() if "dvc metrics diff" in l)
    assert "origin/main" in line and "||" not in line and "; true" not in line
    assert "set -o pipefail" in run


def test_the_gpu_is_hidden_from_the_cpu_suite_and_gpu_tests_run_separately(workflow: dict) -> None:
    steps = _steps(workflow)
    assert "make test" in steps["CPU test suite (the GPU is hidden from it, see tests/conftest.py)"]
    assert "make test-gpu" in steps["GPU tests (pytest -m gpu)"]
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == ""  # tests/conftest.py hid it for this run
    text = (REPO / "pyproject.toml").read_text()
    assert "-m 'not gpu'" in text and '"gpu:' in text  # the marker is registered and deselected by default


def test_nerfacc_is_built_once_before_anything_runs_in_parallel(workflow: dict) -> None:
    names = list(_steps(workflow))
    build = next(i for i, n in enumerate(names) if n.startswith("Build nerfacc"))
    assert build < names.index("Reproduce") and build < names.index("GPU tests (pytest -m gpu)")
    assert "TORCH_EXTENSIONS_DIR" in _steps(workflow)[names[build]]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("has_apt", [True, False])
def test_system_deps_skip_with_a_message_without_root_or_sudo(tmp_path: Path, has_apt: bool) -> None:
    """A runner without sudo (or without apt) must not fail `make test` at `sudo apt-get`."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "id").write_text("#!/bin/sh\necho 1000\n")  # not root; no sudo, no chromium on this PATH
    if has_apt:
        (fake / "apt-get").write_text("#!/bin/sh\necho apt-get was called >&2\nexit 1\n")
    for f in fake.iterdir():
        f.chmod(0o755)
    proc = subprocess.run([shutil.which("make"), "-s", "-C", str(REPO), "system-deps"], env={"PATH": str(fake)},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "skipping" in proc.stdout and "apt-get was called" not in proc.stderr
    assert ("no root or passwordless sudo" if has_apt else "no apt-get") in proc.stdout


# ------------------------------------------------------------------ benchmarks/gpu_check.py
def _gpu_check():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _alive(pid: int) -> bool:
    """``pid`` runs (a zombie, reaped by nobody yet, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_the_gpu_check_records_each_step_under_one_time_budget(tmp_path: Path) -> None:
    gc = _gpu_check()
    check = gc.Check(budget_s=3.0, work=tmp_path, env=dict(os.environ))
    assert check.run("ok", ["true"])["status"] == "ok"
    failed = check.run("bad", ["sh", "-c", "echo boom >&2; exit 3"])
    assert failed["status"] == "failed" and failed["exit"] == 3 and "boom" in failed["output_tail"]
    slow = check.run("slow", ["sleep", "30"], cap_s=0.5 + 1.0)
    assert slow["status"] == "timeout" and slow["seconds"] < 10
    # A step stopped at its limit takes its children with it (Snakemake's running jobs, say).
    pid_file = tmp_path / "child.pid"
    check.deadline += 2.5
    parent = check.run("parent", ["sh", "-c", f"sleep 30 & echo $! > {pid_file}; wait"], cap_s=1.5)
    assert parent["status"] == "timeout"
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5.0
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
    while check.left() > 1:  # spend the rest of the budget
        check.run("filler", ["sleep", "0.5"])
    assert check.run("late", ["true"])["status"] == "not run: time budget spent"
    (tmp_path / "j.xml").write_text('<testsuites><testsuite tests="5" failures="1" errors="0" skipped="2"/></testsuites>')
    assert gc._junit_counts(tmp_path / "j.xml") == {"tests": 5, "failures": 1, "errors": 0, "skipped": 2}
    assert (REPO / "benchmarks" / "gpu_check.sh").stat().st_mode & 0o111  # executable
