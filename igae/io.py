"""Atomic file writes and checksums: nothing is ever left half-written.

Every writer goes to a temporary sibling first, then ``os.replace`` renames it into
place, which is atomic on POSIX within one filesystem.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.
    The temporary name keeps the suffix so writers that infer a format from it work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp makes it 0600; give it the mode a plain open() would
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` whole.

    An existing ``path`` is removed only after the new folder is complete, so a crash
    leaves either the old folder or the new one, never a mix.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; give it the mode mkdir would
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def check_replaceable(path: str | Path, marker: str, owned: Iterable[str] | None = None) -> None:
    """Refuse to replace a folder this project did not write (``atomic_dir`` replaces it whole).

    ``path`` may be absent, an empty folder, or a folder holding ``marker`` (the file the
    writer always puts there); with ``owned``, every entry of the folder must also be
    ``marker`` or one of ``owned`` (so files someone added beside the writer's are not lost),
    and a folder of ``owned`` entries only is accepted without ``marker``: Snakemake deletes a
    job's declared output (the marker) before it reruns the job, and leaves the rest.

    Raises:
        InputError: the folder holds something else; the message names what.
    """
    from igae.errors import InputError

    path = Path(path)
    if not path.exists():
        return
    if not path.is_dir():
        raise InputError("output exists and is not a folder; refusing to replace it", path)
    entries = sorted(e.name for e in path.iterdir())
    if not entries:
        return
    mine = set(owned or ())
    foreign = [] if owned is None else [e for e in entries if e != marker and e not in mine]
    listed = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
    if marker not in entries and (owned is None or foreign):
        held = f", and it holds {listed}" if foreign else ""
        raise InputError(f"output folder exists and was not written by igae (no {marker}{held}); refusing to "
                         f"replace or delete it: choose another output folder", path)
    if foreign:
        raise InputError(f"output folder holds entries igae did not write ({listed}); refusing to replace or "
                         "delete them: move them elsewhere", path)


def _umask() -> int:
    """The process umask (read by setting and restoring it; there is no getter)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON atomically (stable bytes for DVC hashes)."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def save_png_atomic(path: str | Path, image: np.ndarray) -> None:
    """Save an 8-bit image atomically as PNG.

    Args:
        path: destination ``.png`` file.
        image: ``(H, W, 3)`` or ``(H, W, 4)`` uint8, or float in [0, 1] (rounded to uint8).
    """
    from PIL import Image

    if image.dtype != np.uint8:
        image = np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
    with atomic_path(path) as tmp:
        # Fixed compression settings and no metadata chunks keep the bytes deterministic.
        Image.fromarray(image).save(tmp, format="PNG", compress_level=6)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
