"""What jobs ask their executor for (workflow/resources.py): GPUs, GPU slots, threads, memory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from igae.config import load_params

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))
import resources  # noqa: E402


def _params(preset: str = "default", **overrides):
    return load_params(REPO / "params.yaml", preset=preset, overrides=overrides)


def test_gpus_are_counted_from_cuda_visible_devices_or_nvidia_smi(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,2")
    assert resources.detect_gpus() == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # hidden (the CPU test suite does this)
    assert resources.detect_gpus() == 0
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-a)'\necho 'GPU 1: NVIDIA H200 (UUID: GPU-b)'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert resources.detect_gpus() == 2
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert resources.detect_gpus() == 0


def test_gpu_jobs_take_slots_and_request_gpus_only_when_they_run_on_cuda() -> None:
    auto = _params(**{"training.jobs_per_gpu": 2})
    assert resources.gpu_resources("one", auto, gpus_here=0) == {}  # auto on a CPU machine
    assert resources.gpu_resources("one", auto, gpus_here=4) == {"gpu": 1, "gpu_slots": 1}
    assert resources.gpu_slots_pool(auto, 4) == 8  # 4 GPUs x 2 jobs each
    cuda = _params(**{"training.device": "cuda", "training.processes": 2, "training.jobs_per_gpu": 2})
    # a login node without GPUs still requests them for cuda jobs (the cluster provides them)
    assert resources.gpu_resources("per_process", cuda, gpus_here=0) == {"gpu": 2, "gpu_slots": 4}
    assert resources.gpu_resources(None, cuda, gpus_here=4) == {}
    assert resources.gpu_resources("one", _params(**{"training.device": "cpu"}), gpus_here=4) == {}


def test_threads_zero_takes_every_core_given_and_a_number_is_kept() -> None:
    assert resources.job_threads(0, 16) == 16
    assert resources.job_threads(2, 16) == 2
    assert resources.job_threads(32, 16) == 16
    assert resources.job_threads(0, None) == 1


@pytest.mark.parametrize("kind", ["train_ae", "finetune_ae", "train_igae", "fit_nerf_rgb", "fit_nerf_latent",
                                  "render_scenes", "eval_ae"])
def test_memory_requests_follow_the_params(kind: str) -> None:
    default, paper = _params(), _params("paper")
    assert resources.mem_mb(kind, paper, on_gpu=False) > resources.mem_mb(kind, default, on_gpu=False) >= \
        resources.BASE_MB


def test_the_training_bank_is_sized_as_uint8_and_activations_count_only_on_cpu() -> None:
    p = _params()
    more = _params(**{"scenes.train.count": p.scenes.train.count + 1000})
    extra_bytes = 1000 * (p.scenes.train.views - p.scenes.train.test_views) * 3 * p.scenes.resolution**2
    grown = resources.mem_mb("train_ae", more, False) - resources.mem_mb("train_ae", p, False)
    assert abs(grown - resources.SAFETY * extra_bytes / 2**20) <= 100  # uint8 images, not float32
    paper = _params("paper")
    assert resources.mem_mb("fit_nerf_rgb", paper, on_gpu=True) < resources.mem_mb("fit_nerf_rgb", paper, on_gpu=False)
    assert resources.mem_mb("train_igae", paper, on_gpu=True) < resources.mem_mb("train_igae", paper, on_gpu=False)


def _dry_run(tmp_path: Path, *args: str, gpus: str | None) -> str:
    """``snakemake -n`` of a copy of the workflow (no outputs exist: every job is listed)."""
    import os
    import shutil
    import subprocess

    work = tmp_path / "wf"
    work.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "params.yaml"):
        shutil.copy2(REPO / name, work / name)
    for name in ("presets", "workflow"):
        shutil.copytree(REPO / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    if gpus is None:
        env.pop("CUDA_VISIBLE_DEVICES", None)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}/usr/bin{os.pathsep}/bin"  # no nvidia-smi
    else:
        env["CUDA_VISIBLE_DEVICES"] = gpus
    proc = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", *args], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def _job_resources(text: str, rule: str) -> list[str]:
    lines = text.splitlines()
    return [lines[i + j].strip() for i, line in enumerate(lines) if line.strip() in (f"rule {rule}:", f"localrule {rule}:")
            for j in range(1, 12) if i + j < len(lines) and lines[i + j].strip().startswith("resources:")]


def test_snakemake_jobs_request_gpus_memory_and_run_locally_as_the_params_say(tmp_path: Path) -> None:
    two_gpus = _dry_run(tmp_path / "a", "--cores", "4", "--config", "preset=smoke", gpus="0,1")
    fit = _job_resources(two_gpus, "fit_nerf_rgb")
    assert fit and all("gpu=1" in r and "gpu_slots=1" in r for r in fit)
    expected = resources.mem_mb("fit_nerf_rgb", _params("smoke"), on_gpu=True)
    assert all(f"mem_mb={expected}" in r for r in fit)
    no_gpu = _dry_run(tmp_path / "b", "--cores", "4", "--config", "preset=smoke", gpus="")
    assert not any("gpu" in r for r in _job_resources(no_gpu, "fit_nerf_rgb") + _job_resources(no_gpu, "train_ae"))
    # A wrapper that prints which rules a cluster executor would run on the submitting machine.
    (tmp_path / "c" / "wf").mkdir(parents=True)
    (tmp_path / "c" / "wf" / "Local.smk").write_text('include: "Snakefile"\nprint("LOCAL", sorted(workflow._localrules))\n')
    slurm = _dry_run(tmp_path / "c", "-s", "Local.smk", "--profile", "workflow/profiles/slurm", "--config",
                     "preset=smoke", gpus="")
    assert "LOCAL ['fetch_assets', 'select_objects']" in slurm  # apt/dpkg and the network
    assert not any("cpus_per_task=1" in r for r in _job_resources(slurm, "train_ae"))  # CPUs = the job's threads
