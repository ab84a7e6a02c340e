"""Training data in memory: every training view of a scene set, and seeded batch draws."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from igae.data.scene import read_scene
from igae.errors import InputError
from igae.seeding import derive_seed


class Images:
    """``(N, 3, H, W)`` images in [0, 1], held in memory as uint8 when that is exact.

    8-bit image files decode to ``q / 255`` (float32), so a bank of them can be kept as the
    bytes ``q`` (4x less memory: the paper preset's 500 scenes x 45 views at 128x128 are 1.1 GB
    instead of 4.4 GB) and converted per batch. Indexing returns float32 computed as
    ``q.to(float32) / 255`` on the CPU: the same correctly rounded division the reader performs,
    so every batch is bit-identical to the float bank (tested). Images that are not exactly
    ``q / 255`` (alpha composited on a background, 16-bit files) stay float32.

    Supports what training code does with an image tensor: ``len``, ``shape``, indexing
    (returns a float32 tensor), and :attr:`data` (what is stored, e.g. for digests).
    """

    def __init__(self, data: torch.Tensor) -> None:
        if data.dim() != 4 or data.dtype not in (torch.uint8, torch.float32):
            raise ValueError(f"images must be (N, C, H, W) uint8 or float32, got {tuple(data.shape)} {data.dtype}")
        self.data = data

    @classmethod
    def compact(cls, images: torch.Tensor) -> "Images":
        """uint8 storage when ``images`` (float32 in [0, 1]) are exactly ``q / 255``, else as they are."""
        q = (images * 255.0).round_().clamp_(0, 255).to(torch.uint8)
        return cls(q if torch.equal(_to_unit_float(q), images) else images)

    @property
    def shape(self) -> torch.Size:
        return self.data.shape

    @property
    def is_compact(self) -> bool:
        return self.data.dtype == torch.uint8

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, index) -> torch.Tensor:
        """float32 images in [0, 1] (a copy when stored as uint8)."""
        part = self.data[index]
        return _to_unit_float(part) if self.is_compact else part

    @staticmethod
    def concat(parts: list["Images"]) -> "Images":
        """One bank; uint8 only when every part is."""
        if all(p.is_compact for p in parts):
            return Images(torch.cat([p.data for p in parts]))
        return Images(torch.cat([p[:] for p in parts]))


def _to_unit_float(q: torch.Tensor) -> torch.Tensor:
    """uint8 -> float32 in [0, 1], as the image reader computes it (``np.float32(q) / 255.0``)."""
    return q.to(torch.float32) / 255.0


@dataclass
class ViewBank:
    """All views of one split of a scene set, flattened.

    Attributes:
        images: (T, 3, H, W) in [0, 1]: :class:`Images` (uint8 in memory where exact; indexing
            gives float32) from :func:`load_view_bank`, or a float32 tensor.
        camera_to_world: (T, 4, 4), OpenGL convention.
        intrinsics: (T, 4) [fx, fy, cx, cy] at image resolution.
        scene_index: (T,) int64, index into ``scene_names``.
        scene_names: folder names of the scenes, in index order.
        background: RGB background the images are composited on.
    """

    images: Images | torch.Tensor
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
    """Read the ``split`` views of every ``scene_*`` folder under ``scene_set`` (images kept as
    uint8 in memory where that is exact, see :class:`Images`).

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
        images.append(Images.compact(scene.images))  # one scene's float copy at a time, not the bank's
        c2w.append(scene.camera_to_world)
        intr.append(scene.intrinsics)
        index.append(torch.full((len(scene),), i, dtype=torch.long))
    return ViewBank(
        images=Images.concat(images), camera_to_world=torch.cat(c2w), intrinsics=torch.cat(intr),
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
