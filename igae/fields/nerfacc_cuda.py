"""nerfacc's CUDA extension: load (or JIT-build) it once per process and say why when it cannot.

nerfacc 0.5.3 from the registry ships no compiled kernels. The first import of
``nerfacc.cuda._backend`` JIT-compiles them with ``torch.utils.cpp_extension.load`` into
``$TORCH_EXTENSIONS_DIR/py311_cu<ver>/nerfacc_cuda`` (default ``~/.cache/torch_extensions``), which
needs ``nvcc`` matching torch's CUDA version and ``ninja``. Without ``nvcc`` it prints "NerfAcc
will be disabled" and leaves its kernels ``None`` (the first ``OccGridEstimator.sampling`` then
fails with ``AttributeError: 'NoneType' ...``); without ``CUDA_HOME`` the import raises.

Two failure modes matter on clusters, and both are handled here rather than hit inside a fit:

- **Concurrent builds.** Jobs that start together all find an empty build folder and build into
  it at once. Build once before the fits start (``igae build-extensions``; the workflows run it
  as a local step), and give each cluster a ``TORCH_EXTENSIONS_DIR`` on a file system its nodes
  share, built once per torch/CUDA/Python combination.
- **A killed build** leaves ``<build dir>/lock`` behind, and torch's loader waits for that file
  to disappear forever. :func:`nerfacc_cuda_status` never enters the loader while the lock
  exists: it reports the lock (optionally after waiting for it to go), and the caller falls
  back or fails with that message.

The result is cached for the process: the build is attempted at most once.
"""

from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass
from types import ModuleType

EXTENSION_NAME = "nerfacc_cuda"


@dataclass(frozen=True)
class ExtensionStatus:
    """Whether nerfacc's CUDA kernels can be called in this process.

    Attributes:
        available: the compiled module is loaded.
        reason: why not ("" when available), for the warning or error.
        build_dir: where torch builds/loads the extension (None when unknown).
    """

    available: bool
    reason: str
    build_dir: str | None


_STATUS: ExtensionStatus | None = None


def build_dir() -> str | None:
    """The folder torch's JIT loader uses for nerfacc's extension (honours ``TORCH_EXTENSIONS_DIR``)."""
    try:
        from torch.utils.cpp_extension import _get_build_directory  # what nerfacc itself calls

        return str(_get_build_directory(EXTENSION_NAME, verbose=False))
    except Exception:  # a private torch helper: never let it break the fallback
        return None


def _import_backend() -> ModuleType:
    """Import nerfacc's loader module, which builds or loads the extension (seam for tests)."""
    return importlib.import_module("nerfacc.cuda._backend")


def _wait_for_lock(lock: str, wait_s: float, poll_s: float = 2.0) -> bool:
    """Wait up to ``wait_s`` seconds for ``lock`` to disappear; True when it is gone."""
    deadline = time.monotonic() + wait_s
    while os.path.exists(lock):
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(poll_s, max(deadline - time.monotonic(), 0.0)))
    return True


def nerfacc_cuda_status(wait_for_lock_s: float = 0.0, refresh: bool = False) -> ExtensionStatus:
    """Load nerfacc's CUDA extension (building it when its build folder is empty), once per process.

    Args:
        wait_for_lock_s: when another build holds ``<build dir>/lock``, wait this long for it
            to finish before reporting the lock (0: report at once).
        refresh: forget a cached result and try again (tests; a rebuild after fixing the toolkit).

    Returns:
        The status; never raises for a missing toolkit, a failed build or a stale lock.
    """
    global _STATUS
    if _STATUS is not None and not refresh:
        return _STATUS
    import torch

    folder = build_dir()
    if torch.version.cuda is None:
        _STATUS = ExtensionStatus(False, f"torch {torch.__version__} is a CPU-only build", folder)
        return _STATUS
    if not torch.cuda.is_available() and not os.environ.get("TORCH_CUDA_ARCH_LIST"):
        # torch picks the GPU architectures to compile for from the visible GPUs; with none and no
        # TORCH_CUDA_ARCH_LIST its build fails with a bare IndexError (a cluster's login node).
        _STATUS = ExtensionStatus(False, "no CUDA device is visible and TORCH_CUDA_ARCH_LIST is unset, so torch cannot "
                                         "choose the GPU architectures to compile nerfacc for; build on a GPU node, or "
                                         "set TORCH_CUDA_ARCH_LIST (e.g. '8.0;9.0') to build without one", folder)
        return _STATUS
    if folder is not None:
        lock = os.path.join(folder, "lock")
        if os.path.exists(lock) and not _wait_for_lock(lock, wait_for_lock_s):
            _STATUS = ExtensionStatus(
                False, f"{lock} exists: another process is building nerfacc's extension, or a killed build left "
                       f"the lock (torch would wait for it forever); remove it when no build is running, then run "
                       f"`igae build-extensions` once", folder)
            return _STATUS
    try:
        module = _import_backend()
    except Exception as exc:  # OSError (no CUDA_HOME), ImportError, a compiler error, ...
        _STATUS = ExtensionStatus(False, f"building/loading it failed: {type(exc).__name__}: "
                                         f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}", folder)
        return _STATUS
    if getattr(module, "_C", None) is None:
        _STATUS = ExtensionStatus(False, "nerfacc found no CUDA toolkit (nvcc on PATH) to build its kernels", folder)
        return _STATUS
    _STATUS = ExtensionStatus(True, "", folder)
    return _STATUS
