"""The code paths that only a GPU machine or a cluster takes, exercised on CPU by simulating their
conditions (issue 16): nerfacc's extension failing to load or locked by a killed build, GPU
claims of concurrent jobs, per-device RNG state, the once-per-step NaN guard, precision
switches, uint8 training images, per-fit peak memory, thread counts under a CPU allowance.
The real thing runs in tests/test_gpu.py (``pytest -m gpu``) where CUDA exists."""

from __future__ import annotations

import json
import threading
import time
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from igae.fields import nerfacc_cuda
from igae.fields import occupancy
from igae.fields.occupancy import OccupancySampler, resolve_backend

from test_nerf_fit import params, write_nerfstudio_ball


@pytest.fixture
def fresh_extension_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """No cached extension status, no fallback warning printed yet, a private TORCH_EXTENSIONS_DIR."""
    monkeypatch.setattr(nerfacc_cuda, "_STATUS", None)
    monkeypatch.setattr(occupancy, "_FALLBACK_WARNED", False)
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "9.0")  # lets a machine without a GPU build (see below)
    monkeypatch.setattr(torch.version, "cuda", torch.version.cuda or "12.8")  # as with a CUDA build of torch
    return tmp_path / "ext"


def _failing_import(calls: list[int], exc: Exception):
    def fake():
        calls.append(1)
        raise exc
    return fake


# ------------------------------------------------------------------ nerfacc's extension
def test_a_failed_extension_load_falls_back_to_torch_with_one_warning(fresh_extension_state, monkeypatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(nerfacc_cuda, "_import_backend",
                        _failing_import(calls, OSError("CUDA_HOME environment variable is not set")))
    with pytest.warns(RuntimeWarning, match="CUDA_HOME environment variable is not set") as record:
        assert resolve_backend("auto", "cuda") == "torch"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second sampler: no second warning, no second build attempt
        assert resolve_backend("auto", "cuda:0") == "torch"
    assert len(record) == 1 and "nerf.occupancy.backend" in str(record[0].message)
    assert calls == [1]
    from igae.errors import InputError

    with pytest.raises(InputError, match=r"nerf\.occupancy\.backend is 'nerfacc'.*CUDA_HOME"):
        resolve_backend("nerfacc", "cuda")


def test_nerfacc_without_a_toolkit_is_reported_not_called(fresh_extension_state, monkeypatch) -> None:
    """nerfacc prints "NerfAcc will be disabled" and leaves ``_C = None`` when nvcc is missing."""
    monkeypatch.setattr(nerfacc_cuda, "_import_backend", lambda: types.SimpleNamespace(_C=None))
    status = nerfacc_cuda.nerfacc_cuda_status()
    assert not status.available and "nvcc" in status.reason
    monkeypatch.setattr(nerfacc_cuda, "_import_backend", lambda: types.SimpleNamespace(_C=object()))
    assert not nerfacc_cuda.nerfacc_cuda_status().available  # cached: tried once per process
    assert nerfacc_cuda.nerfacc_cuda_status(refresh=True).available


def test_building_without_a_gpu_needs_an_architecture_list(fresh_extension_state, monkeypatch) -> None:
    """A login node: torch cannot pick GPU architectures and fails with a bare IndexError."""
    monkeypatch.delenv("TORCH_CUDA_ARCH_LIST")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(nerfacc_cuda, "_import_backend", lambda: pytest.fail("a build that cannot succeed was started"))
    status = nerfacc_cuda.nerfacc_cuda_status()
    assert not status.available and "TORCH_CUDA_ARCH_LIST" in status.reason


def test_a_lock_left_by_a_killed_build_is_reported_instead_of_waited_on_forever(fresh_extension_state,
                                                                                  monkeypatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(nerfacc_cuda, "_import_backend", lambda: calls.append(1) or types.SimpleNamespace(_C=object()))
    folder = Path(nerfacc_cuda.build_dir())
    assert folder.is_relative_to(fresh_extension_state)  # TORCH_EXTENSIONS_DIR is honoured
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lock").write_text("")
    t0 = time.monotonic()
    status = nerfacc_cuda.nerfacc_cuda_status(wait_for_lock_s=0.3)
    assert not status.available and str(folder / "lock") in status.reason and calls == []
    assert time.monotonic() - t0 < 5
    # A build that finishes while we wait: its lock goes, and the extension loads.
    threading.Timer(0.2, (folder / "lock").unlink).start()
    assert nerfacc_cuda.nerfacc_cuda_status(wait_for_lock_s=10, refresh=True).available and calls == [1]


def test_build_extensions_records_why_the_extension_is_unavailable(fresh_extension_state, monkeypatch, tmp_path,
                                                                   capsys) -> None:
    from igae.cli import main

    monkeypatch.setattr(nerfacc_cuda, "_import_backend", lambda: types.SimpleNamespace(_C=None))
    assert main(["build-extensions", "--out", str(tmp_path / "ext.json")]) == 0
    record = json.loads((tmp_path / "ext.json").read_text())
    assert record["nerfacc_cuda"]["available"] is False and "nvcc" in record["nerfacc_cuda"]["reason"]
    assert record["TORCH_EXTENSIONS_DIR"] == str(fresh_extension_state)
    assert main(["build-extensions", "--require"]) == 2
    assert "required" in capsys.readouterr().err


def test_the_memory_probe_and_training_use_the_fallback_when_the_extension_fails(
        fresh_extension_state, monkeypatch, tmp_path) -> None:
    """On a GPU machine without nvcc the first OccGridEstimator.sampling call used to fail inside
    the memory probe. Simulated here: the device counts as CUDA, the extension fails to load."""
    from igae.data import read_scene
    from igae.nerf.data import prepare_rgb
    from igae.nerf.fit import build_method_field, build_sampler, fit_scene
    from igae.nerf.memory import check_fit_memory

    monkeypatch.setattr(occupancy, "_is_cuda", lambda device: True)
    monkeypatch.setattr(nerfacc_cuda, "_import_backend", _failing_import([], ImportError("nerfacc_cuda.so")))

    def no_kernel(self):
        raise AssertionError("nerfacc's CUDA traversal must not be called")

    monkeypatch.setattr(OccupancySampler, "estimator", no_kernel)
    p = params(**{"nerf.stage1.steps": 2, "nerf.stage2.steps": 0, "nerf.rgb.rays_per_batch": 64})
    scene = read_scene(write_nerfstudio_ball(tmp_path / "ball", 16, 16, n=4), splits_required=("train", "test"))
    data = prepare_rgb(scene)
    field = build_method_field("ngp", data, p.nerf.method_params["ngp"], 0.5, seed=0)
    with pytest.warns(RuntimeWarning, match="nerfacc_cuda.so"):
        sampler = build_sampler(p.nerf, field, torch.device("cpu"))
    assert sampler.backend == "torch"
    assert check_fit_memory(field, sampler, data, p.nerf)["rays"] > 0
    assert fit_scene(field, sampler, data, p.nerf, p.nerf.method_params["ngp"], 0, tmp_path / "w").steps == {"rgb": 2}
    # The same conditions with a loadable extension would have reached the kernel in the probe:
    monkeypatch.setattr(nerfacc_cuda, "_STATUS", nerfacc_cuda.ExtensionStatus(True, "", None))
    with pytest.raises(AssertionError, match="must not be called"):
        check_fit_memory(field, build_sampler(p.nerf, field, torch.device("cpu")), data, p.nerf)
    # backend: torch never asks for the extension.
    monkeypatch.setattr(nerfacc_cuda, "_STATUS", None)
    monkeypatch.setattr(nerfacc_cuda, "_import_backend", _failing_import(calls := [], OSError("x")))
    torch_only = params(**{"nerf.occupancy.backend": "torch"})
    assert build_sampler(torch_only.nerf, field, torch.device("cpu")).backend == "torch" and calls == []


# ------------------------------------------------------------------ GPU claims of concurrent jobs
def test_concurrent_jobs_spread_over_the_gpus_and_ranks_take_whole_gpus(tmp_path: Path) -> None:
    from igae.train.gpu_slots import try_claim

    gpus = ["gpu-a", "gpu-b"]
    first = try_claim(gpus, 2, False, tmp_path)
    second = try_claim(gpus, 2, False, tmp_path)
    assert (first.index, second.index) == (0, 1)  # slot 0 of every GPU before slot 1 of any
    assert try_claim(gpus, 2, True, tmp_path) is None  # no GPU is wholly free for a data-parallel rank
    third, fourth = try_claim(gpus, 2, False, tmp_path), try_claim(gpus, 2, False, tmp_path)
    assert (third.index, fourth.index) == (0, 1) and try_claim(gpus, 2, False, tmp_path) is None
    for c in (first, third):
        c.release()  # a job ends (its process exits): GPU a is whole again
    rank = try_claim(gpus, 2, True, tmp_path)
    assert rank is not None and rank.index == 0 and rank.slots == [0, 1]
    assert try_claim(gpus, 2, False, tmp_path) is None


def test_a_process_claims_a_gpu_once(tmp_path: Path, monkeypatch) -> None:
    from igae.train import gpu_slots

    monkeypatch.setattr(gpu_slots, "_HELD", [])
    assert gpu_slots.claim_gpu(["g0", "g1"], 1, lock_dir=tmp_path) == 0
    assert gpu_slots.claim_gpu(["g0", "g1"], 1, lock_dir=tmp_path) == 0  # e.g. the next scene of a scene set
    assert gpu_slots.try_claim(["g0", "g1"], 1, False, tmp_path).index == 1
    for claim in gpu_slots._HELD:
        claim.release()


# ------------------------------------------------------------------ data parallel and precision
def test_only_the_current_devices_rng_state_is_saved_and_restored(monkeypatch) -> None:
    from igae.train import checkpoint

    saved, restored = torch.ByteTensor([1, 2, 3]), []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": saved)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: pytest.fail("all devices' states saved"))
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device="cuda": restored.append(state))
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: pytest.fail("all devices' states restored"))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    state = checkpoint.rng_state()
    assert torch.equal(state["cuda_device"], saved) and "cuda" not in state
    checkpoint.set_rng_state(state)
    # A checkpoint of the older format (every device's state), resumed on this process's device 1 ...
    old = {**state, "cuda": [torch.ByteTensor([0]), torch.ByteTensor([7])]}
    del old["cuda_device"]
    checkpoint.set_rng_state(old)
    # ... and on a machine with fewer GPUs than the one that wrote it: nothing to restore.
    checkpoint.set_rng_state({**old, "cuda": [torch.ByteTensor([0])]})
    assert [t.tolist() for t in restored] == [[1, 2, 3], [7]]


def _count_host_reads(monkeypatch) -> list[int]:
    count = [0]
    for name in ("__bool__", "item", "tolist", "__float__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *a, _original=original, **k):
            count[0] += 1
            return _original(self, *a, **k)
        monkeypatch.setattr(torch.Tensor, name, counted)
    return count


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_nan_guard_reads_the_device_a_fixed_number_of_times_per_step(tmp_path, monkeypatch, precision) -> None:
    """Host reads (device syncs on CUDA) per step must not grow with the number of parameter tensors."""
    from igae.train.distributed import DistContext
    from igae.train.loop import Phase, run_phases

    def reads(n_tensors: int, steps: int) -> tuple[int, list[float]]:
        torch.manual_seed(0)
        params = [torch.nn.Parameter(torch.randn(3)) for _ in range(n_tensors)]
        module = torch.nn.ParameterList(params)
        opt = torch.optim.SGD(params, lr=0.1)
        phase = Phase("p", steps, lambda i: {"a": sum((p ** 2).sum() for p in params), "b": params[0].sum()},
                      {"opt": opt}, {}, params)
        with monkeypatch.context() as m:
            count = _count_host_reads(m)
            result = run_phases([phase], {"m": module}, tmp_path / f"ck{n_tensors}_{steps}", None, checkpoint_every=10**6,
                                progress=False, ctx=DistContext(precision=precision))
            n = count[0]
        return n, [r["total"] for r in result.history]

    few, _ = reads(3, 4)
    many, _ = reads(40, 4)
    longer, _ = reads(40, 8)
    assert many == few  # independent of the parameter count
    assert (longer - many) / 4 <= 3  # and a few reads per step at most
    # On CPU every precision is fp32: the same numbers.
    assert reads(5, 3)[1] == run_fp32_reference(tmp_path, monkeypatch)


def run_fp32_reference(tmp_path: Path, monkeypatch) -> list[float]:
    from igae.train.loop import Phase, run_phases

    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(3)) for _ in range(5)]
    opt = torch.optim.SGD(params, lr=0.1)
    phase = Phase("p", 3, lambda i: {"a": sum((p ** 2).sum() for p in params), "b": params[0].sum()},
                  {"opt": opt}, {}, params)
    result = run_phases([phase], {"m": torch.nn.ParameterList(params)}, tmp_path / "ref", None, 10**6, progress=False)
    return [r["total"] for r in result.history]


def test_precision_switches_tf32_explicitly_on_cuda_and_is_fp32_on_cpu() -> None:
    from igae.train.precision import autocast, configure_precision, grad_scaler, set_tf32, tf32_enabled

    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    before = tf32_enabled()
    try:
        set_tf32(True)
        assert configure_precision("bf16", cpu) == "fp32" and tf32_enabled() == {"matmul": True, "cudnn_conv": True}
        assert configure_precision("fp32", cuda) == "fp32"
        assert tf32_enabled() == {"matmul": False, "cudnn_conv": False}  # cuDNN's default TF32 is switched off
        assert configure_precision("tf32", cuda) == "tf32" and tf32_enabled() == {"matmul": True, "cudnn_conv": True}
        assert configure_precision("fp16", cuda) == "fp16"
    finally:
        set_tf32(before["matmul"])
    assert grad_scaler("fp16", cpu) is None and grad_scaler("bf16", cuda) is None
    assert type(autocast("fp32", cuda)).__name__ == "nullcontext" and type(autocast("bf16", cpu)).__name__ == "nullcontext"
    with pytest.raises(ValueError, match="training.precision"):
        configure_precision("fp8", cuda)


def test_thread_count_zero_means_the_cpus_granted_not_the_nodes(monkeypatch) -> None:
    """SLURM grants --cpus-per-task CPUs through the affinity mask; os.cpu_count() is the whole node."""
    import os

    from igae.train.distributed import set_threads

    before = torch.get_num_threads()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5})
    monkeypatch.setattr(os, "cpu_count", lambda: 128)
    try:
        assert set_threads(0) == 3 and torch.get_num_threads() == 3
        assert set_threads(2) == 2
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------ memory
def test_training_images_are_uint8_in_memory_and_batches_are_bit_identical(tmp_path: Path) -> None:
    from igae.data import read_scene, write_scene
    from igae.train.data import Images, load_view_bank

    rng = np.random.default_rng(0)
    c2w = np.tile(np.eye(4), (3, 1, 1))
    c2w[:, 2, 3] = 2.6
    for i in range(2):
        write_scene(tmp_path / "set" / f"scene_{i:03d}", rng.integers(0, 256, (3, 8, 10, 3), dtype=np.uint8), c2w,
                    [10.0, 10.0, 5.0, 4.0], {"train": [0, 1, 2]}, {})
    bank = load_view_bank(tmp_path / "set", "train")
    assert isinstance(bank.images, Images) and bank.images.data.dtype == torch.uint8
    reference = torch.cat([read_scene(tmp_path / "set" / f"scene_{i:03d}").subset("train").images for i in range(2)])
    assert bank.images.shape == reference.shape and len(bank.images) == 6
    assert torch.equal(bank.images[:], reference)  # bit for bit, not just close
    pick = torch.tensor([4, 0, 4])
    assert torch.equal(bank.images[pick], reference[pick]) and bank.images[pick].dtype == torch.float32
    # Images that are not exactly q / 255 (alpha composited on a grey background) stay float32.
    blended = reference * 0.5 + 0.25
    kept = Images.compact(blended)
    assert kept.data.dtype == torch.float32 and torch.equal(kept[:], blended)
    assert Images.concat([Images.compact(reference), kept]).data.dtype == torch.float32


def test_each_fit_reports_its_own_peak_memory() -> None:
    from igae.nerf.evaluate import peak_memory_mb, reset_peak_memory

    cpu = torch.device("cpu")
    if not reset_peak_memory(cpu):
        pytest.skip("this kernel does not let a process reset its peak RSS (/proc/self/clear_refs)")
    big = torch.ones(96 * 2**20 // 4)  # 96 MiB, touched
    first = peak_memory_mb(cpu, since_reset=True)
    del big
    assert reset_peak_memory(cpu)
    second = peak_memory_mb(cpu, since_reset=True)
    assert first["cpu_peak_scope"] == "fit" and first["cpu_peak_rss_mb"] - second["cpu_peak_rss_mb"] > 64
    assert peak_memory_mb(cpu)["cpu_peak_scope"] == "process"


def test_the_speed_table_reports_gpu_peak_memory_only_for_cuda_fits() -> None:
    import pandas as pd

    from igae.report.tables import speed_table

    row = {"method": "ngp", "space": "rgb", "scene": "scene_000", "train_stage1_s": np.nan, "train_stage2_s": np.nan,
           "train_rgb_s": 1.0, "train_s": 1.0, "render_field_ms": 2.0, "render_decode_ms": 0.0, "render_ms": 2.0,
           "peak_rss_mb": 500.0, "overhead_s": 0.5, "gpu_peak_mb": np.nan}
    assert "GPU peak memory (MB)" not in speed_table(pd.DataFrame([row])).columns
    table = speed_table(pd.DataFrame([{**row, "gpu_peak_mb": 1234.5}]))
    assert table["GPU peak memory (MB)"].iloc[0] == 1234.5


def test_devices_are_claimed_and_made_current_and_too_many_ranks_fail_clearly(monkeypatch, tmp_path) -> None:
    from igae.errors import InputError
    from igae.train import distributed, gpu_slots

    current = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: current.append(torch.device(d)))
    monkeypatch.setattr(gpu_slots, "visible_gpu_ids", lambda: ["gpu-x", "gpu-y"])
    monkeypatch.setattr(gpu_slots, "_HELD", [])
    monkeypatch.setenv("IGAE_GPU_LOCK_DIR", str(tmp_path))
    monkeypatch.setenv("WORLD_SIZE", "2")  # a data-parallel rank: takes a whole GPU
    other = gpu_slots.try_claim(["gpu-x", "gpu-y"], 1, False, tmp_path)  # a fit already holds GPU x
    assert distributed.resolve_device("auto") == torch.device("cuda", 1) and current == [torch.device("cuda", 1)]
    other.release()
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(InputError, match="training.processes is 3 but only 2 GPU"):
        distributed.resolve_device("cuda")
    for claim in gpu_slots._HELD:
        claim.release()
