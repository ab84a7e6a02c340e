"""Images from whatever folder a user points at: a scene set, a scene, a photo set, a folder of
images, or one image file (for example to calibrate an imported autoencoder's latent scale).
"""

from __future__ import annotations

from pathlib import Path

import torch

from igae.data.photo_sources import PHOTO_SUFFIXES
from igae.data.photos import MANIFEST, read_photo_set
from igae.data.scene import read_scene
from igae.data.scene_common import image_size, load_images
from igae.errors import InputError

_SCENE_FILES = ("transforms.json", "transforms_train.json")
_WHITE = (1.0, 1.0, 1.0)


def _is_scene(folder: Path) -> bool:
    return any((folder / name).is_file() for name in _SCENE_FILES)


def _scene_images(folder: Path) -> torch.Tensor:
    """A scene's training views (all views when it has no train split): ``(N, 3, H, W)``."""
    scene = read_scene(folder, splits_required=())
    return scene.subset("train").images if scene.split.get("train") else scene.images


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _load_files(files: list[Path], root: Path) -> list[torch.Tensor]:
    """One ``(n, 3, H, W)`` batch per image size, in first-seen order; alpha over white."""
    by_size: dict[tuple[int, int], list[Path]] = {}
    for file in files:
        by_size.setdefault(image_size(file, file.name), []).append(file)
    return [load_images(group, [f.relative_to(root).as_posix() if f != root else f.name for f in group],
                        w, h, _WHITE, "that image's own header")
            for (w, h), group in by_size.items()]


def read_image_groups(path: str | Path) -> tuple[list[torch.Tensor], str]:
    """Every image under ``path``, as float32 batches in [0, 1].

    ``path`` may be:

    - a scene (``transforms.json`` or ``transforms_train.json``): its training views;
    - a scene set (``scene_*`` folders that are scenes): each scene's training views;
    - a photo set written by ``igae build-photos`` (``manifest.json``): its train split;
    - any other folder: every .jpg/.jpeg/.png under it, recursively (hidden files skipped);
    - one image file.

    Returns:
        ``(batches, description)``: ``(N_i, 3, H_i, W_i)`` batches (one per image size or
        scene), and what was read, for records.

    Raises:
        InputError: a path that does not exist, holds no images, or a file that does not read.
    """
    root = Path(path).expanduser()
    if root.is_file():
        if root.suffix.lower() not in PHOTO_SUFFIXES:
            raise InputError(f"not an image file (expected {'/'.join(PHOTO_SUFFIXES)})", root)
        return _load_files([root], root), f"image {root}"
    if not root.is_dir():
        raise InputError("image folder does not exist", root)
    if _is_scene(root):
        return [_scene_images(root)], f"training views of scene {root}"
    scenes = sorted(p for p in root.glob("scene_*") if p.is_dir() and _is_scene(p))
    if scenes:
        return [_scene_images(s) for s in scenes], f"training views of the {len(scenes)} scenes in {root}"
    if (root / MANIFEST).is_file():
        return [read_photo_set(root, "train")], f"train split of photo set {root}"
    files = _image_files(root)
    if not files:
        raise InputError(f"no scene, scene set, photo set or {'/'.join(PHOTO_SUFFIXES)} images here", root)
    return _load_files(files, root), f"{len(files)} images under {root}"
