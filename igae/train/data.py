"""Training data in memory: every training view of a scene set, and seeded batch draws."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from igae.data.scene import read_scene
from igae.errors import InputError
from igae.seeding import derive_seed


@dataclass
class ViewBank:
    """All views of one split of a scene set, flattened.

    Attributes:
        images: (T, 3, H, W) float32 in [0, 1].
        camera_to_world: (T, 4, 4), OpenGL convention.
        intrinsics: (T, 4) [fx, fy, cx, cy] at image resolution.
        scene_index: (T,) int64, index into ``scene_names``.
        scene_names: folder names of the scenes, in index order.
        background: RGB background the images are composited on.
    """

    images: torch.Tensor
    camera_to_world: torch.Tensor
    intrinsics: torch.Tensor
    scene_index: torch.Tensor
    scene_names: list[str]
    background: tuple[float, float, float]

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def num_scenes(self) -> int:
        return len(self.scene_names)


def load_view_bank(scene_set: str | Path, split: str = "train", max_scenes: int | None = None) -> ViewBank:
    """Read the ``split`` views of every ``scene_*`` folder under ``scene_set``.

    Raises:
        InputError: no scene folders, or scenes of different resolutions/backgrounds.
    """
    folders = sorted(p for p in Path(scene_set).glob("scene_*") if p.is_dir())[:max_scenes]
    if not folders:
        raise InputError("no scene_* folders: build the scenes first (igae render-scenes)", scene_set)
    images, c2w, intr, index = [], [], [], []
    background = None
    for i, folder in enumerate(folders):
        scene = read_scene(folder, splits_required=(split,)).subset(split)
        if images and scene.images.shape[1:] != images[0].shape[1:]:
            raise InputError(f"image size {tuple(scene.images.shape[2:])} differs from the first scene's", folder)
        if background is not None and tuple(scene.background) != background:
            raise InputError("background colour differs from the first scene's", folder)
        background = tuple(scene.background)
        images.append(scene.images)
        c2w.append(scene.camera_to_world)
        intr.append(scene.intrinsics)
        index.append(torch.full((len(scene),), i, dtype=torch.long))
    return ViewBank(
        images=torch.cat(images), camera_to_world=torch.cat(c2w), intrinsics=torch.cat(intr),
        scene_index=torch.cat(index), scene_names=[f.name for f in folders], background=background,
    )


def step_generator(seed: int, tag: str, step: int) -> torch.Generator:
    """A CPU generator for one training step: batches depend on (seed, tag, step) only,
    so a resumed run draws exactly the batches an uninterrupted run would."""
    return torch.Generator().manual_seed(derive_seed(seed, tag, step))


def draw(n_items: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` distinct indices in ``[0, n_items)`` (with replacement if count > n_items)."""
    if count <= n_items:
        return torch.randperm(n_items, generator=generator)[:count]
    return torch.randint(n_items, (count,), generator=generator)
