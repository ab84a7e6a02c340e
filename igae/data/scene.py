"""A multi-view scene in memory, and the entry points that read and write one on disk.

Two on-disk layouts are read (see ``nerfstudio_format`` and ``blender_format``); one is
written (nerfstudio). Both layouts store camera-to-world matrices in the OpenGL/Blender
convention (camera looks down -Z, +Y up), which is also this library's convention, so
no reader converts poses: a matrix on disk is the matrix in ``Scene.camera_to_world``.

The :class:`Scene` container and the helpers both format modules share live in
:mod:`igae.data.scene_common`, so that neither format module imports the other or this one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from igae.data import blender_format, nerfstudio_format
from igae.data.scene_common import SPLIT_NAMES, WHITE, Scene
from igae.errors import InputError

__all__ = ["SPLIT_NAMES", "WHITE", "Scene", "read_scene", "scene_folders", "write_scene"]


def scene_folders(scene_set: str | Path) -> list[Path]:
    """The scene folders of a scene set (its sub-folders, sorted by name; hidden ones skipped).

    Raises:
        InputError: the set is missing or holds no folders.
    """
    root = Path(scene_set)
    scenes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")) if root.is_dir() else []
    if not scenes:
        raise InputError("no scene folders in this scene set", root)
    return scenes


def read_scene(
    path: str | Path,
    background: tuple[float, float, float] | None = None,
    splits_required: tuple[str, ...] = ("train",),
    downscale: int = 1,
) -> Scene:
    """Read a scene folder, detecting its format.

    ``transforms.json`` means nerfstudio (checked first); ``transforms_train.json`` (with
    optional ``transforms_val.json`` / ``transforms_test.json``) means NeRF-synthetic/Blender.
    ``path`` may also name one of those files directly.

    Args:
        path: the scene folder.
        background: RGB in [0, 1] for compositing alpha; default: the ``background`` in the
            file's ``igae`` block, else white.
        splits_required: splits that must have at least one frame.
        downscale: read the images at ``1/downscale`` of their size (``images_N`` copies when
            present, else resized on load; see :mod:`igae.data.downscale`).

    Raises:
        InputError: unknown format, or any problem in the files (the message names the file).
    """
    root = Path(path)
    if root.is_file() and root.name in ("transforms.json", "transforms_train.json"):
        root = root.parent
    if not root.is_dir():
        raise InputError("scene folder does not exist", root)
    if (root / "transforms.json").is_file():
        return nerfstudio_format.read_nerfstudio(root, background, splits_required, downscale)
    if (root / "transforms_train.json").is_file():
        return blender_format.read_blender(root, background, splits_required, downscale)
    raise InputError(
        "unknown scene format: expected transforms.json (nerfstudio) or transforms_train.json (NeRF-synthetic)", root
    )


def write_scene(
    out_dir: str | Path,
    images: np.ndarray,
    camera_to_world: np.ndarray,
    intrinsics: Sequence[float],
    split: dict[str, list[int]],
    metadata: dict,
    background: tuple[float, float, float] = WHITE,
) -> Path:
    """Write a scene folder in the nerfstudio layout, atomically; see ``nerfstudio_format.write_nerfstudio``."""
    return nerfstudio_format.write_nerfstudio(out_dir, images, camera_to_world, intrinsics, split, metadata, background)
