"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The suite runs in two pytest-xdist workers (make test), and its workflow tests run Snakemake jobs
# side by side: several torch processes share the cores. OpenMP's default lets a waiting thread spin,
# and two spinning pools on two cores starve each other: two copies of test_nerf_methods.py +
# test_training.py took 385 s side by side (70 s alone) on the 2-core CPU machine, 124 s with
# PASSIVE (75 s alone). Set before torch loads (libgomp reads it then); subprocesses inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """Where Debian packages are unpacked (``make test`` fetches them first)."""
    return Path(os.environ.get("IGAE_CACHE_DIR", REPO / "data" / "cache"))


# ------------------------------------------------------------------ CPU suite vs GPU tests
# The suite checks CPU determinism (bit-identical reruns, Snakemake == DVC byte for byte): on a GPU
# machine those runs, and every workflow they start, must not pick up the GPU (training.device:
# auto). So the GPU is hidden unless the GPU tests were asked for (`pytest -m gpu`); tests marked
# `gpu` (tests/test_gpu.py) are deselected by default (pyproject.toml) and skipped, with the reason,
# when selected on a machine without CUDA.
def _gpu_tests_selected(config: pytest.Config) -> bool:
    expr = (config.getoption("markexpr") or "").replace(" ", "")
    return "gpu" in expr and "notgpu" not in expr


def pytest_configure(config: pytest.Config) -> None:
    if not _gpu_tests_selected(config):
        os.environ["CUDA_VISIBLE_DEVICES"] = ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    import torch

    if os.environ.get("IGAE_GPU_TEST_DEVICE", "cuda") == "cuda" and not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device (none visible); run `pytest -m gpu` on a GPU machine, "
                                       "or dry-run the test bodies on CPU with IGAE_GPU_TEST_DEVICE=cpu")
        for item in gpu_items:
            item.add_marker(skip)
