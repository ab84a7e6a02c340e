"""A whole `snakemake` / `dvc repro` run killed mid-training, then the same command again.

The process group is killed with SIGKILL (as an OOM kill or a lost node would end it) while the
standard AE trains, after a checkpoint is on disk. Rerunning the unchanged command must exit 0,
resume training from that checkpoint, and end with the weights and loss history of an
uninterrupted run (bit-exact on CPU). For Snakemake this needs workflow/stale_locks.py: without
it the rerun stops at the killed run's `.snakemake/locks` ("Directory cannot be locked").

Runs on a temporary copy of the workflow (smoke preset, train_ae lengthened to 80 steps so
that there is time to kill it, one torch thread), and only up to train_ae.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from test_workflow import DVC, _copy_workflow, _env, _run

SHORT = "train_ae: {steps: 6, batch_size: 4, checkpoint_every: 3}"
LONG = "train_ae: {steps: 80, batch_size: 4, checkpoint_every: 10}"
STEPS = 80
# One torch thread: this tiny model trains faster on one, and a machine busy with other work
# slows two spinning threads far more than one. The reference run uses the same preset.
THREADS = "training: {threads: 1}\n"
CHECKPOINTS = "results/checkpoints/standard_s0/checkpoints"  # AE seed 0 (ae_seeds: [0])
OUT = "results/autoencoders/standard_s0"
WEIGHTS = "model/diffusion_pytorch_model.safetensors"
SNAKEMAKE = [sys.executable, "-m", "snakemake", f"{OUT}/model/igae_autoencoder.json", "--cores", "2",
             "--config", "preset=smoke"]


def _workflow_copy(repo: Path, dest: Path, dvc: bool) -> Path:
    work = _copy_workflow(repo, dest)
    smoke = work / "presets" / "smoke.yaml"
    assert SHORT in smoke.read_text()
    assert "\ntraining:" not in smoke.read_text()
    smoke.write_text(smoke.read_text().replace(SHORT, LONG, 1) + THREADS)
    if dvc:
        params = work / "params.yaml"
        params.write_text(params.read_text().replace("preset: default", "preset: smoke", 1))
        _run(DVC + ["init", "--no-scm", "-q"], work)
        _run(DVC + ["config", "core.analytics", "false"], work)
    return work


def _checkpointed_steps(work: Path) -> list[int]:
    return sorted(int(p.name[len("step_"):-len(".pt.sha256")]) for p in (work / CHECKPOINTS).glob("step_*.pt.sha256"))


def _kill_group_mid_training(cmd: list[str], work: Path) -> int:
    """Start ``cmd`` in its own process group; SIGKILL the group once training has
    checkpointed step 20 or later (and not finished). Returns the newest checkpointed step."""
    with open(work / "killed_run.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=work, env=_env(), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 600  # the data stages come first; a busy machine is slow
        while proc.poll() is None and time.monotonic() < deadline:
            steps = _checkpointed_steps(work)
            if steps and steps[-1] >= 20:
                break
            time.sleep(0.02)
        running = proc.poll() is None
        steps = _checkpointed_steps(work)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert running and steps and 20 <= steps[-1] < STEPS, (
        f"not killed mid-training (exit {proc.returncode}, checkpoints {steps}):\n"
        + (work / "killed_run.log").read_text()[-3000:])
    return steps[-1]


def _rerun(cmd: list[str], work: Path) -> str:
    proc = subprocess.run(cmd, cwd=work, env=_env(), capture_output=True, text=True)
    assert proc.returncode == 0, f"rerun of {' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def _assert_resumed_and_matches_uninterrupted(work: Path, log: str, killed_at: int, tmp: Path) -> None:
    resumed = re.findall(r"resuming from step (\d+)", log)
    assert resumed, log[-3000:]
    # the newest checkpoint whose sidecar was written before the kill (or one written after
    # the poll saw it, before the kill landed)
    assert killed_at <= int(resumed[-1]) < STEPS, (killed_at, resumed)
    # the reference: the same stage command, uninterrupted, on the same data, in fresh folders
    igae = shutil.which("igae", path=_env()["PATH"])
    assert igae
    _run([igae, "train-ae", "--params", "params.yaml", "--preset", "smoke", "--seed", "0", "--scenes", "data/scenes/train",
          "--photos", "data/photos", "--out", str(tmp / "reference"), "--work", str(tmp / "reference.work")], work)
    a = load_file(tmp / "reference" / WEIGHTS)
    b = load_file(work / OUT / WEIGHTS)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    assert (tmp / "reference" / "losses.csv").read_text() == (work / OUT / "losses.csv").read_text()


def test_killed_snakemake_run_reruns_with_the_same_command_and_resumes_bit_exactly(repo_root: Path,
                                                                                    tmp_path: Path) -> None:
    work = _workflow_copy(repo_root, tmp_path / "wf", dvc=False)
    killed_at = _kill_group_mid_training(SNAKEMAKE, work)
    assert list((work / ".snakemake" / "locks").glob("*.lock")), "the killed run left no locks: nothing tested"
    assert not (work / OUT / WEIGHTS).exists()
    # The worst moment: the kill lands after igae renamed its outputs into place but before
    # Snakemake recorded the job as done, so they exist and are marked incomplete. The same
    # command must rerun the job (profiles/default: rerun-incomplete), not stop.
    for name in ("model/igae_autoencoder.json", "losses.csv"):
        (work / OUT / name).parent.mkdir(parents=True, exist_ok=True)
        (work / OUT / name).write_text("written just before the kill\n")
    out = _rerun(SNAKEMAKE, work)
    assert "stale Snakemake lock" in out, out
    assert re.findall(r"^(?:local)?rule (\w+):", out, flags=re.M) == ["train_ae"], out  # only train_ae ran
    _assert_resumed_and_matches_uninterrupted(work, (work / "results/logs/train_ae_0.log").read_text(), killed_at,
                                              tmp_path)
    assert "Nothing to be done" in _run(SNAKEMAKE + ["-n"], work)


def test_killed_dvc_repro_reruns_with_the_same_command_and_resumes_bit_exactly(repo_root: Path,
                                                                               tmp_path: Path) -> None:
    work = _workflow_copy(repo_root, tmp_path / "wf", dvc=True)
    cmd = DVC + ["repro", "train_ae"]
    killed_at = _kill_group_mid_training(cmd, work)
    lock = work / "dvc.lock"
    assert not lock.exists() or "train_ae@0:" not in lock.read_text()
    assert not (work / OUT / WEIGHTS).exists()
    out = _rerun(cmd, work)
    # DVC's rwlock records PIDs and drops those of dead processes itself
    assert "Running stage 'train_ae@0'" in out and "Running stage 'render_scenes" not in out, out
    _assert_resumed_and_matches_uninterrupted(work, out, killed_at, tmp_path)
    second = _run(cmd, work)
    assert "Running stage" not in second, second


# ------------------------------------------------------------------ workflow/stale_locks.py itself
HOLD = """
import sys
sys.path.insert(0, sys.argv[1])
from stale_locks import recover_stale_locks
print("removed", sorted(p.name for p in recover_stale_locks(sys.argv[2])), flush=True)
if sys.argv[3] == "hold":
    sys.stdin.read()  # stay alive (holding the run lock) until stdin closes
"""


def _recover(repo: Path, state: Path, hold: bool = False) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", HOLD, str(repo / "workflow"), str(state), "hold" if hold else "no"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stale_locks(state: Path) -> list[Path]:
    (state / "locks").mkdir(parents=True)
    locks = [state / "locks" / "0.input.lock", state / "locks" / "0.output.lock"]
    for lock in locks:
        lock.write_text("results/x\n")
    return locks


def test_stale_locks_are_removed_when_no_other_run_is_alive(repo_root: Path, tmp_path: Path) -> None:
    state = tmp_path / ".snakemake"
    locks = _stale_locks(state)
    (state / "igae_runs").mkdir()
    (state / "igae_runs" / f"999999@{socket.gethostname()}").touch()  # a killed run's record, this host
    out, err = _recover(repo_root, state).communicate(timeout=60)
    assert "removed ['0.input.lock', '0.output.lock']" in out, (out, err)
    assert "stale Snakemake lock" in err
    assert not any(lock.exists() for lock in locks)
    assert not list((state / "igae_runs").iterdir())  # its own record went at exit, the dead one with the locks


@pytest.mark.parametrize("other", ["live run here", "record from another host", "submitted cluster job"])
def test_locks_of_a_possibly_live_run_are_kept(repo_root: Path, tmp_path: Path, other: str) -> None:
    state = tmp_path / ".snakemake"
    holder = None
    if other == "live run here":
        holder = _recover(repo_root, state, hold=True)
        assert holder.stdout.readline().strip() == "removed []"
    elif other == "record from another host":
        (state / "igae_runs").mkdir(parents=True)
        (state / "igae_runs" / "4242@elsewhere.example").touch()
    else:  # Snakemake's marker of a job submitted to SLURM that may outlive the killed run
        (state / "incomplete" / "cmVzdWx0cw").mkdir(parents=True)
        (state / "incomplete" / "cmVzdWx0cw" / "eA").write_text('{"external_jobid": "4242"}')
        (state / "incomplete" / "bG9jYWw").write_text('{"external_jobid": null}')
    locks = _stale_locks(state)
    try:
        out, err = _recover(repo_root, state).communicate(timeout=60)
    finally:
        if holder is not None:
            holder.communicate(timeout=60)
    assert "removed []" in out, (out, err)
    assert all(lock.exists() for lock in locks)
    if other == "record from another host":
        assert "4242@elsewhere.example" in err and "--unlock" in err, err
    elif other == "submitted cluster job":
        assert "cluster jobs (4242)" in err and "--unlock" in err, err
