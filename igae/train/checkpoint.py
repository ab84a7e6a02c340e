"""Training checkpoints: one explicit dict, written atomically, verified on load.

A checkpoint holds everything a run needs to continue as if never stopped: model and
optimizer/scheduler states, the step, every RNG state, and the config. Files are
``step_XXXXXXX.pt`` plus a ``.sha256`` sidecar; a file whose checksum does not match
(the process died while copying it elsewhere, a disk fault) is skipped with a warning
and the previous one is used. Each checkpoint also records the identity of its run (params,
digests of the training data and of the starting weights) so that a rerun with other
params or inputs never continues from it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import random
import socket
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import torch

from igae.errors import BusyError
from igae.io import write_bytes_atomic, write_text_atomic

_PATTERN = "step_*.pt"
SNAPSHOT_DIR = "snapshots"
"""Sub-folder of a checkpoint folder with model snapshots kept after training (see igae_trainer)."""


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states: the CPU one and, when this process uses CUDA, its
    current device's (only that one: a resume with another GPU count or GPU index must work)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda_device"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (the CUDA state onto the current device).

    Checkpoints of older versions hold every device's state (``"cuda"``, a list); the current
    device's entry is used when it exists.
    """
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if not torch.cuda.is_available():
        return
    cuda = state.get("cuda_device")
    if cuda is None and isinstance(state.get("cuda"), (list, tuple)):
        index = torch.cuda.current_device()
        cuda = state["cuda"][index] if index < len(state["cuda"]) else None
    if cuda is not None:
        torch.cuda.set_rng_state(cuda)


def tensor_digest(tensors: Iterable[Any]) -> str:
    """SHA-256 over the dtype, shape and bytes of each tensor, in order (any device or dtype).

    A non-tensor item is hashed through its ``data`` tensor (``igae.train.data.Images``: the
    stored uint8 bytes, without making a float copy of a whole bank).
    """
    h = hashlib.sha256()
    for t in tensors:
        t = (t if isinstance(t, torch.Tensor) else t.data).detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)};".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())  # hashed in place, no copy
    return h.hexdigest()


def modules_digest(modules: Mapping[str, torch.nn.Module]) -> str:
    """SHA-256 of the named modules' state (parameters and buffers, names included)."""
    h = hashlib.sha256()
    for name, module in modules.items():
        state = module.state_dict()
        h.update(f"{name}:{','.join(state)};".encode())
        h.update(tensor_digest(v for v in state.values() if isinstance(v, torch.Tensor)).encode())
    return h.hexdigest()


def checkpoint_path(folder: str | Path, step: int) -> Path:
    return Path(folder) / f"step_{step:07d}.pt"


def save_checkpoint(folder: str | Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``state`` (plus ``step``) as the checkpoint of ``step``; keep the newest ``keep``.

    The tensor file is written first, then its checksum sidecar; both atomically. A
    checkpoint without a valid sidecar is never used, so a crash between the two
    writes only loses this checkpoint.
    """
    buffer = io.BytesIO()
    torch.save({**state, "step": step}, buffer)
    data = buffer.getvalue()
    path = checkpoint_path(folder, step)
    write_bytes_atomic(path, data)
    write_text_atomic(path.with_suffix(".pt.sha256"), hashlib.sha256(data).hexdigest() + "\n")
    # Only checkpoints up to this step are pruned: a newer, unverifiable file left by an
    # earlier crash must not push out the ones just written.
    older = [p for p in sorted(Path(folder).glob(_PATTERN)) if p.name <= path.name]
    for old in older[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
        old.with_suffix(".pt.sha256").unlink(missing_ok=True)
    return path


def discard_checkpoints(folder: str | Path) -> list[Path]:
    """Delete every checkpoint (and sidecar) and snapshot in ``folder``; returns the checkpoint files removed."""
    removed = sorted(Path(folder).glob(_PATTERN))
    for path in removed:
        path.unlink(missing_ok=True)
        path.with_suffix(".pt.sha256").unlink(missing_ok=True)
    for path in sorted((Path(folder) / SNAPSHOT_DIR).glob("*.pt")):  # written by the discarded run
        path.unlink(missing_ok=True)
    return removed


def save_state_atomic(path: str | Path, state: Mapping[str, Any]) -> None:
    """``torch.save(state)`` to ``path`` atomically (temp file, then rename)."""
    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    write_bytes_atomic(path, buffer.getvalue())


def load_latest_checkpoint(folder: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The newest checkpoint in ``folder`` whose checksum verifies, or ``None`` if there is none.

    Corrupt or unverifiable files are skipped with a warning naming them.
    """
    for path in sorted(Path(folder).glob(_PATTERN), reverse=True):
        sidecar = path.with_suffix(".pt.sha256")
        try:
            data = path.read_bytes()
            expected = sidecar.read_text().strip() if sidecar.exists() else None
        except FileNotFoundError:  # pruned by the process writing this folder
            continue
        if expected != hashlib.sha256(data).hexdigest():
            warnings.warn(f"{path}: checksum missing or wrong, skipping this checkpoint", stacklevel=2)
            continue
        try:
            return torch.load(io.BytesIO(data), map_location=map_location, weights_only=False)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means unusable
            warnings.warn(f"{path}: unreadable checkpoint ({exc}), skipping it", stacklevel=2)
    return None


@contextlib.contextmanager
def work_folder_lock(folder: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (a checkpoint folder) while training in it.

    Two trainers sharing a folder would prune and overwrite each other's checkpoints (e.g. a
    job left running by a killed workflow manager, and its rerun). The lock is a ``flock``
    on ``folder/.lock``, which the kernel releases however the holder dies.

    Raises:
        BusyError: another live process holds the lock.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = folder / ".lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock_path.read_text().strip() or "unknown"
            raise BusyError(f"{folder}: another process ({holder}) is training with these checkpoints; "
                            "wait for it to finish or stop it, then run this command again") from None
        except OSError as exc:  # a file system without flock: train unguarded rather than not at all
            warnings.warn(f"{lock_path}: cannot lock ({exc}); concurrent trainers would not be detected",
                          stacklevel=3)
        else:
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        yield
    finally:
        os.close(fd)
