"""The NeRF-synthetic ("Blender") scene layout: one transforms file per split.

Format (as in the original NeRF synthetic data):

- ``transforms_train.json`` (required), ``transforms_val.json`` and
  ``transforms_test.json`` (optional), each with ``camera_angle_x`` (horizontal field of
  view in radians) and ``frames``.
- ``frames[i].file_path`` relative to the folder, usually without extension
  (``"./train/r_0"``): ``.png`` is appended unless the path already ends in an image
  extension. ``Scene.file_paths`` holds the path with the extension.
- ``frames[i].transform_matrix``: 4x4 camera-to-world in OpenGL axes, the library's own
  convention, so no conversion.
- Intrinsics: ``fx = fy = 0.5 * W / tan(0.5 * camera_angle_x)``, ``cx = W / 2``,
  ``cy = H / 2``; ``W, H`` come from the first image, and all images must share them.
- Images are RGBA PNGs; alpha is composited onto the background (default white).

Frames are ordered train, then val, then test; ``Scene.split`` gives each file's frames
and ``Scene.metadata["split_source"]`` is ``"blender_split_files"``.
"""

from __future__ import annotations

import math
from pathlib import Path, PurePosixPath
from typing import Sequence

import numpy as np
import torch

from igae.data.scene_common import (
    SPLIT_NAMES,
    Scene,
    as_number,
    check_focal,
    get_frames,
    igae_block,
    image_size,
    load_images,
    load_json,
    parse_pose,
    require_splits,
    resolve_background,
)
from igae.data.downscale import downscale as downscale_images
from igae.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def read_blender(root: Path, background: Sequence[float] | None, splits_required: Sequence[str],
                 downscale: int = 1) -> Scene:
    """Read ``root/transforms_{train,val,test}.json`` and their images into a Scene;
    ``downscale``: see :mod:`igae.data.downscale` (``train/r_0.png`` -> ``train_4/r_0.png``)."""
    train_tf = root / "transforms_train.json"
    block = igae_block(load_json(train_tf), train_tf)
    bg = resolve_background(background, block.get("background"), train_tf)

    file_paths: list[str] = []
    labels: list[str] = []
    poses: list[np.ndarray] = []
    angles: list[float] = []  # per frame: each split file has its own camera_angle_x
    split: dict[str, list[int]] = {}
    for name in SPLIT_NAMES:
        tf = root / f"transforms_{name}.json"
        if not tf.is_file():
            continue
        meta = load_json(tf)
        frames = get_frames(meta, tf)
        if "camera_angle_x" not in meta:
            raise InputError("no 'camera_angle_x': the field of view is needed for the focal length", tf)
        angle = as_number(meta["camera_angle_x"], "camera_angle_x", tf)
        if not 0.0 < angle < math.pi:
            raise InputError(f"camera_angle_x must be in (0, pi) radians; focal length would be invalid, got {angle!r}", tf)
        start = len(file_paths)
        for i, fr in enumerate(frames):
            fp = _with_extension(fr["file_path"])
            label = f"frame {i} '{fr['file_path']}' of {tf.name}"
            poses.append(parse_pose(fr.get("transform_matrix"), label, tf))
            file_paths.append(fp)
            labels.append(label)
            angles.append(angle)
        split[name] = list(range(start, len(file_paths)))
    require_splits(split, splits_required, train_tf)

    files = [root / fp for fp in file_paths]
    width, height = image_size(files[0], labels[0])
    fx = np.array([0.5 * width / math.tan(0.5 * a) for a in angles])
    for f, label in zip(fx, labels):
        check_focal(float(f), label, train_tf)
    intrinsics = np.stack([fx, fx, np.full_like(fx, width / 2.0), np.full_like(fx, height / 2.0)], axis=1)

    scaled = downscale_images(root, file_paths, files, labels, width, height, intrinsics, downscale)
    if downscale != 1:
        block["downscale"] = {"factor": downscale, "source": scaled.source}
    images = load_images(scaled.files, labels, *scaled.file_size, bg, f"size of the first image {scaled.files[0].name}",
                         scaled.out_size)
    width, height = scaled.out_size
    intrinsics = scaled.intrinsics
    block["split_source"] = "blender_split_files"
    return Scene(
        images=images,
        camera_to_world=torch.from_numpy(np.stack(poses).astype(np.float32)),
        intrinsics=torch.from_numpy(intrinsics.astype(np.float32)),
        width=width,
        height=height,
        file_paths=file_paths,
        split=split,
        background=bg,
        metadata=block,
        root=root,
    )


def _with_extension(file_path: str) -> str:
    """NeRF-synthetic writes ``./train/r_0`` for ``./train/r_0.png``; keep paths that have one."""
    if PurePosixPath(file_path).suffix.lower() in IMAGE_SUFFIXES:
        return file_path
    return file_path + ".png"
