"""Which GPU a process uses when several jobs share a multi-GPU machine.

A workflow manager that starts several GPU jobs at once on one machine (Snakemake with a
``gpu_slots`` resource, see the README) limits *how many* run, not *which GPU* each takes:
without help they would all use ``cuda:0``. Each process therefore claims a slot: one lock file
per (GPU, slot), ``slots_per_gpu`` slots per GPU, held with ``flock`` for the process's lifetime
(released by the kernel when the process exits, even on ``kill -9``).

- A single-process job claims one free slot, slot-major (slot 0 of every GPU before slot 1 of
  any), so jobs spread over the GPUs.
- A rank of a data-parallel job claims a whole GPU (all its slots): NCCL needs one GPU per rank.

When every slot is taken (e.g. two pipelines on one machine), the claim waits for one to free.
With a single visible GPU nothing is claimed (the only choice is ``cuda:0``); a SLURM job sees
only the GPUs it was granted (``CUDA_VISIBLE_DEVICES``), so claims matter only on shared hosts.
"""

from __future__ import annotations

import fcntl
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def default_lock_dir() -> Path:
    """``$IGAE_GPU_LOCK_DIR``, else ``<tmp>/igae-gpu-slots-<uid>`` (one per user and machine)."""
    return Path(os.environ.get("IGAE_GPU_LOCK_DIR") or Path(tempfile.gettempdir()) / f"igae-gpu-slots-{os.getuid()}")


@dataclass
class GpuClaim:
    """A claimed GPU: its index among the visible devices and the open, locked slot files."""

    index: int
    slots: list[int]
    _files: list = field(default_factory=list, repr=False)

    def release(self) -> None:
        for f in self._files:
            f.close()  # closing the file drops its flock
        self._files.clear()


def _try_lock(path: Path):
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        return None
    return f


def try_claim(gpu_ids: list[str], slots_per_gpu: int, whole_gpu: bool, lock_dir: Path) -> GpuClaim | None:
    """One non-blocking attempt; None when nothing suitable is free.

    Args:
        gpu_ids: a stable identity per visible GPU (UUIDs), in device-index order.
        slots_per_gpu: jobs that may share one GPU.
        whole_gpu: claim every slot of one GPU (data-parallel ranks).
    """
    lock_dir.mkdir(parents=True, exist_ok=True)

    def path(gpu: int, slot: int) -> Path:
        return lock_dir / f"{gpu_ids[gpu].replace('/', '_')}.slot{slot}.lock"

    if whole_gpu:
        for gpu in range(len(gpu_ids)):
            files = []
            for slot in range(slots_per_gpu):
                f = _try_lock(path(gpu, slot))
                if f is None:
                    break
                files.append(f)
            if len(files) == slots_per_gpu:
                return GpuClaim(gpu, list(range(slots_per_gpu)), files)
            for f in files:
                f.close()
        return None
    for slot in range(slots_per_gpu):
        for gpu in range(len(gpu_ids)):
            f = _try_lock(path(gpu, slot))
            if f is not None:
                return GpuClaim(gpu, [slot], [f])
    return None


_HELD: list[GpuClaim] = []
"""Claims of this process, kept open (and so locked) until it exits."""


def claim_gpu(gpu_ids: list[str], slots_per_gpu: int = 1, whole_gpu: bool = False, lock_dir: Path | None = None,
              poll_s: float = 2.0) -> int:
    """Claim a GPU for the rest of this process (waiting while none is free); its device index.

    A process claims once: later calls return the GPU it already holds.
    """
    if _HELD:
        return _HELD[0].index
    if slots_per_gpu < 1:
        raise ValueError(f"slots_per_gpu must be >= 1, got {slots_per_gpu}")
    folder = lock_dir or default_lock_dir()
    waited = False
    while True:
        claim = try_claim(gpu_ids, slots_per_gpu, whole_gpu, folder)
        if claim is not None:
            _HELD.append(claim)
            return claim.index
        if not waited:
            print(f"[igae] every GPU slot in {folder} is taken ({len(gpu_ids)} GPUs x {slots_per_gpu}); waiting for one",
                  file=sys.stderr, flush=True)
            waited = True
        time.sleep(poll_s)


def visible_gpu_ids() -> list[str]:
    """Stable identities (UUIDs where torch gives them) of the visible CUDA devices, in index order."""
    import torch

    ids = []
    for i in range(torch.cuda.device_count()):
        uuid = getattr(torch.cuda.get_device_properties(i), "uuid", None)
        ids.append(f"gpu-{uuid}" if uuid is not None else f"gpu-index{i}")
    return ids
