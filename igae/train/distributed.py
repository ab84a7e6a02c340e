"""Data parallelism with torch.distributed: every process computes its shard of the
global batch; gradients are averaged before each optimizer step.

Processes are started by ``torchrun`` (or ``python -m torch.distributed.run``), which
sets RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT. Gradients are all-reduced by hand
instead of wrapping models in DistributedDataParallel because IG-AE's per-scene
tri-planes see different scenes on different ranks, which DDP's bucketing handles
poorly (unused parameters); averaging every gradient explicitly is exact and simple.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a data-parallel run (rank 0 of 1 when single-process)."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    """Where collective tensors live (NCCL reduces only CUDA tensors) and training runs."""
    precision: str = "fp32"
    """Arithmetic of the training steps on ``device`` (see :mod:`igae.train.precision`)."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, items: torch.Tensor) -> torch.Tensor:
        """This rank's share of a global batch (every ``world_size``-th item from ``rank``)."""
        return items[self.rank :: self.world_size]

    def check_divisible(self, batch: int, key: str) -> None:
        """Every process must get an equal share of a global batch (else the averaged
        gradient would not be the global-batch mean)."""
        if batch % self.world_size:
            from igae.errors import InputError

            raise InputError(f"{key} is {batch}, not divisible by the {self.world_size} data-parallel processes "
                             f"(training.processes)")

    def average_gradients(self, params: list[torch.nn.Parameter]) -> None:
        """All-reduce and average the gradients of ``params``.

        A parameter with no gradient on any rank keeps ``grad = None`` (as in a single
        process), so Adam skips it: tri-planes of scenes absent from the global batch must
        not drift with stale momentum. Missing gradients on some ranks count as zero.
        """
        if self.world_size == 1:
            return
        present = torch.tensor([float(p.grad is not None) for p in params], device=self.device)
        dist.all_reduce(present, op=dist.ReduceOp.SUM)
        for p, seen in zip(params, present.tolist()):
            if seen == 0:
                continue
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad.div_(self.world_size)

    def all_true(self, flag: bool) -> bool:
        """True on every rank only if ``flag`` is true on every rank (for NaN decisions)."""
        if self.world_size == 1:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return bool(t.item() > 0.5)

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def init_distributed(device: torch.device, precision: str = "fp32") -> DistContext:
    """Join the process group when launched by torchrun; a single-process context otherwise.

    ``device`` must come from :func:`resolve_device` (which also made it the current CUDA
    device, as NCCL requires); ``precision`` from :func:`igae.train.precision.configure_precision`.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(device=device, precision=precision)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(), device=device, precision=precision)


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def set_threads(threads: int) -> int:
    """Use ``threads`` torch CPU threads (0: all cores) whatever the environment says.

    Executors set OMP_NUM_THREADS differently (Snakemake from a rule's ``threads``, DVC not
    at all), and float reductions differ between thread counts, so the count comes from
    params to keep results identical under every executor.
    """
    n = threads or usable_cpus()
    torch.set_num_threads(n)
    return n


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask (what SLURM's ``--cpus-per-task`` or a
    cgroup cpuset grants), not the node's core count (``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def resolve_device(name: str, jobs_per_gpu: int = 1) -> torch.device:
    """``auto`` -> cuda when available, else cpu; a CUDA device is made the current device.

    With several visible GPUs, the process claims one (:mod:`igae.train.gpu_slots`): a job takes
    a free slot (``jobs_per_gpu`` per GPU), a data-parallel rank a whole GPU, so concurrent jobs and
    ranks spread over the GPUs instead of all landing on ``cuda:0``.
    """
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        from igae.errors import InputError

        raise InputError("training.device is 'cuda' but no CUDA device is available (use 'auto' or 'cpu')")
    from igae.train.gpu_slots import claim_gpu, visible_gpu_ids

    world, gpus = int(os.environ.get("WORLD_SIZE", "1")), torch.cuda.device_count()
    if world > gpus:
        from igae.errors import InputError

        raise InputError(f"training.processes is {world} but only {gpus} GPU(s) are visible: NCCL needs one GPU per "
                         f"data-parallel process (lower training.processes, or use training.device: cpu)")
    index = 0
    if gpus > 1:
        index = claim_gpu(visible_gpu_ids(), jobs_per_gpu, whole_gpu=world > 1)
    device = torch.device("cuda", index)
    torch.cuda.set_device(device)  # NCCL and bare .cuda() calls use the current device
    return device
