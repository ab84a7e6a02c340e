"""Reading a scene's images downscaled ``N`` times (``--downscale N``).

nerfstudio's convention (``ns-process-data --num-downscales``, the dataparser's
``downscale_factor``): beside ``images/`` lie ``images_2/``, ``images_4/``, ``images_8/`` with the
same file names at ``1/N`` of the size. Here the rule is applied to the first folder of each
frame's path, so ``images/frame_00001.png`` is read from ``images_4/frame_00001.png`` and a
NeRF-synthetic ``train/r_0.png`` from ``train_4/r_0.png``. When no such copies exist the
full-size images are area-averaged to ``(W // N, H // N)`` on load. Intrinsics are scaled by the
exact ratio of the sizes, per axis (``fx * W'/W``, ``cx * W'/W``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from igae.data.scene_common import image_size, normalise_relpath
from igae.errors import InputError


@dataclass
class Downscaled:
    """Where to read a scene's images from, at what size.

    Attributes:
        files: the image files to decode; file_size: their ``(W, H)`` on disk.
        out_size: the ``(W', H')`` the scene gets (resized on load when it differs from file_size).
        intrinsics: ``(N, 4)`` scaled to ``out_size``.
        source: how, for the metadata and messages.
    """

    files: list[Path]
    file_size: tuple[int, int]
    out_size: tuple[int, int]
    intrinsics: np.ndarray
    source: str


def _copy_path(root: Path, file_path: str, factor: int) -> Path:
    parts = PurePosixPath(normalise_relpath(file_path)).parts
    if len(parts) < 2:
        return root / f"images_{factor}" / parts[-1]
    return root.joinpath(f"{parts[0]}_{factor}", *parts[1:])


def downscale(root: Path, file_paths: list[str], files: list[Path], labels: list[str], width: int, height: int,
              intrinsics: np.ndarray, factor: int) -> Downscaled:
    """The files, size and intrinsics of the scene at ``1/factor`` (see the module docstring).

    Raises:
        InputError: ``factor < 1``, an image too small for it, or only some downscaled copies present.
    """
    if factor < 1:
        raise InputError(f"--downscale must be a positive integer, got {factor}", root)
    if factor == 1:
        return Downscaled(files, (width, height), (width, height), intrinsics, "full size")
    copies = [_copy_path(root, fp, factor) for fp in file_paths]
    present = [c.is_file() for c in copies]
    if any(present) and not all(present):
        missing = copies[present.index(False)]
        raise InputError(f"--downscale {factor}: some downscaled copies exist but {missing} does not", root)
    if all(present):
        size = image_size(copies[0], labels[0])
        source = f"{copies[0].parent.relative_to(root).as_posix()}/ (downscaled copies)"
        files, file_size = copies, size
    else:
        size = (width // factor, height // factor)
        if min(size) < 1:
            raise InputError(f"--downscale {factor}: images of {width}x{height} are too small", root)
        source = f"resized on load by 1/{factor} (no {copies[0].parent.relative_to(root).as_posix()}/ folder)"
        file_size = (width, height)
    sx, sy = size[0] / width, size[1] / height
    scaled = np.asarray(intrinsics, dtype=np.float64) * np.array([sx, sy, sx, sy])
    return Downscaled(files, file_size, size, scaled, source)
