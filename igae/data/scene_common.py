"""What both on-disk scene formats share: the in-memory :class:`Scene`, split names, and the
parsing helpers (pose checks, image decoding, splits) that ``nerfstudio_format`` and
``blender_format`` both use. It imports neither format module, so neither imports the other
and :mod:`igae.data.scene` can import both.
"""

from __future__ import annotations

import copy
import json
import math
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from igae.errors import InputError

SPLIT_NAMES = ("train", "val", "test")
"""Split names both formats know (nerfstudio's ``*_filenames`` keys, Blender's files)."""

WHITE = (1.0, 1.0, 1.0)
ORTHONORMAL_TOL = 1e-3
"""Largest allowed ``max |R^T R - I|`` of a pose's rotation block."""
LAST_ROW_TOL = 1e-6
DEFAULT_TEST_EVERY = 8
"""Default split when a file names none: frames 0, 8, 16, ... are test (the LLFF habit)."""


@dataclass
class Scene:
    """Posed views of one scene, all of one size, ready for training.

    Attributes:
        images: ``(N, 3, H, W)`` float32 in [0, 1], alpha already composited on ``background``.
        camera_to_world: ``(N, 4, 4)`` float32, OpenGL axes (camera looks down -Z, +Y up).
        intrinsics: ``(N, 4)`` float32 ``[fx, fy, cx, cy]`` in pixels, pixel centres at
            ``u + 0.5`` (a centred camera has ``cx = W / 2``). Rows are equal when shared.
        width, height: image size ``W``, ``H`` in pixels.
        file_paths: per frame, the image path relative to ``root`` as the transforms file
            writes it (Blender paths get the ``.png`` the file leaves out).
        split: split name (``train``, ``test``, maybe ``val``) -> frame indices into the arrays.
        background: RGB in [0, 1] that transparent pixels were composited onto.
        metadata: the ``igae`` block of the transforms file ({} if absent) plus
            ``split_source``, which says where ``split`` came from.
        root: the scene folder.
    """

    images: torch.Tensor
    camera_to_world: torch.Tensor
    intrinsics: torch.Tensor
    width: int
    height: int
    file_paths: list[str]
    split: dict[str, list[int]]
    background: tuple[float, float, float] = WHITE
    metadata: dict = field(default_factory=dict)
    root: Path = Path(".")

    def __post_init__(self) -> None:
        # Programmer errors (a reader bug or a hand-built Scene), hence ValueError.
        n = self.images.shape[0]
        if self.images.shape != (n, 3, self.height, self.width):
            raise ValueError(f"images must be (N, 3, {self.height}, {self.width}), got {tuple(self.images.shape)}")
        if self.camera_to_world.shape != (n, 4, 4):
            raise ValueError(f"camera_to_world must be ({n}, 4, 4), got {tuple(self.camera_to_world.shape)}")
        if self.intrinsics.shape != (n, 4):
            raise ValueError(f"intrinsics must be ({n}, 4), got {tuple(self.intrinsics.shape)}")
        if len(self.file_paths) != n:
            raise ValueError(f"file_paths has {len(self.file_paths)} entries for {n} frames")
        for name, ids in self.split.items():
            if any(not 0 <= i < n for i in ids):
                raise ValueError(f"split {name!r} has indices outside [0, {n})")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, split: str) -> "Scene":
        """The frames of one split, as a new Scene whose splits are renumbered to match.

        Other splits keep only the frames they share with ``split`` (usually none, so they
        are dropped). Raises InputError when ``split`` is unknown or empty.
        """
        ids = self.split.get(split)
        if not ids:
            present = ", ".join(k for k, v in self.split.items() if v) or "none"
            raise InputError(f"scene has no frames in split {split!r} (splits with frames: {present})", self.root)
        new_index = {old: new for new, old in enumerate(ids)}
        new_split = {}
        for name, members in self.split.items():
            kept = [new_index[i] for i in members if i in new_index]
            if kept:
                new_split[name] = kept
        sel = torch.as_tensor(ids, dtype=torch.long)
        return Scene(
            images=self.images[sel],
            camera_to_world=self.camera_to_world[sel],
            intrinsics=self.intrinsics[sel],
            width=self.width,
            height=self.height,
            file_paths=[self.file_paths[i] for i in ids],
            split=new_split,
            background=self.background,
            metadata=copy.deepcopy(self.metadata),
            root=self.root,
        )


# ----------------------------------------------------------------------------------------
# Helpers shared by the format modules.
# ----------------------------------------------------------------------------------------


def load_json(path: Path) -> dict:
    """Parse a transforms file into a dict; InputError with the position when it is not JSON."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"not valid JSON (not UTF-8 text: {e})", path) from None
    except OSError as e:
        raise InputError(f"cannot read file ({e.strerror})", path) from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"not valid JSON (line {e.lineno} column {e.colno}: {e.msg})", path) from None
    if not isinstance(obj, dict):
        raise InputError(f"not a transforms file: top level is a JSON {type(obj).__name__}, expected an object", path)
    return obj


def get_frames(meta: dict, path: Path) -> list[dict]:
    """The non-empty ``frames`` list of a transforms file, each entry an object."""
    if "frames" not in meta:
        raise InputError("no 'frames' key: a transforms file lists its views under 'frames'", path)
    frames = meta["frames"]
    if not isinstance(frames, list):
        raise InputError(f"'frames' must be a list, got {type(frames).__name__}", path)
    if not frames:
        raise InputError("'frames' is empty: the scene has no views", path)
    for i, fr in enumerate(frames):
        if not isinstance(fr, dict):
            raise InputError(f"frame {i} must be an object, got {type(fr).__name__}", path)
        if not isinstance(fr.get("file_path"), str) or not fr["file_path"]:
            raise InputError(f"frame {i} has no 'file_path' string", path)
    return frames


def igae_block(meta: dict, path: Path) -> dict:
    """The ``igae`` metadata block of a transforms file, or {} when absent."""
    block = meta.get("igae", {})
    if not isinstance(block, dict):
        raise InputError(f"'igae' must be an object, got {type(block).__name__}", path)
    return copy.deepcopy(block)


def as_number(value: Any, what: str, path: Path) -> float:
    """A JSON number as float; InputError naming ``what`` otherwise (bools are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{what} must be a number, got {value!r}", path)
    return float(value)


def check_focal(value: float, what: str, path: Path) -> float:
    """A focal length must be finite and positive."""
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{what}: focal length must be positive and finite, got {value!r}", path)
    return value


def resolve_background(arg: Sequence[float] | None, stored: Any, path: Path) -> tuple[float, float, float]:
    """Background colour: the argument, else the value stored in the igae block, else white."""
    value, source = (arg, "background argument") if arg is not None else (stored, "igae.background")
    if value is None:
        return WHITE
    try:
        bg = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{source} must be 3 numbers in [0, 1], got {value!r}", path) from None
    if len(bg) != 3 or not all(0.0 <= v <= 1.0 for v in bg):
        raise InputError(f"{source} must be 3 numbers in [0, 1], got {value!r}", path)
    return bg  # type: ignore[return-value]


def pose_problem(matrix: np.ndarray) -> str | None:
    """What is wrong with a camera-to-world matrix, or None when it is a rigid 4x4 transform.

    Checks, in order: shape (4, 4), finite values, last row ``[0, 0, 0, 1]``, an
    orthonormal rotation block (within ``ORTHONORMAL_TOL``) with determinant +1.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (4, 4):
        return f"pose is not 4x4 (shape {m.shape})"
    if not np.isfinite(m).all():
        return "pose contains NaN or inf"
    if np.abs(m[3] - (0.0, 0.0, 0.0, 1.0)).max() > LAST_ROW_TOL:
        return f"pose last row is {m[3].tolist()}, expected [0, 0, 0, 1]"
    r = m[:3, :3]
    err = float(np.abs(r.T @ r - np.eye(3)).max())
    if err > ORTHONORMAL_TOL:
        return f"pose rotation is not orthonormal (max |R^T R - I| = {err:.3g} > {ORTHONORMAL_TOL:g})"
    if np.linalg.det(r) < 0:
        return "pose rotation has determinant -1 (a reflection, not a rotation)"
    return None


def parse_pose(value: Any, label: str, path: Path) -> np.ndarray:
    """A frame's ``transform_matrix`` as a checked ``(4, 4)`` float64 array."""
    if value is None:
        raise InputError(f"{label}: no 'transform_matrix'", path)
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{label}: transform_matrix is not a 4x4 array of numbers", path) from None
    problem = pose_problem(m)
    if problem:
        raise InputError(f"{label}: {problem}", path)
    return m


def default_split(n: int) -> dict[str, list[int]]:
    """Every ``DEFAULT_TEST_EVERY``-th frame (0, 8, 16, ...) is test, the others train."""
    return {
        "train": [i for i in range(n) if i % DEFAULT_TEST_EVERY != 0],
        "test": [i for i in range(n) if i % DEFAULT_TEST_EVERY == 0],
    }


def require_splits(split: dict[str, list[int]], required: Sequence[str], path: Path) -> None:
    """InputError when one of the ``required`` splits is missing or has no frames."""
    for name in required:
        if not split.get(name):
            have = ", ".join(f"{k}={len(v)}" for k, v in split.items()) or "none"
            raise InputError(f"required split {name!r} is empty or missing (frames per split: {have})", path)


def image_size(file: Path, label: str) -> tuple[int, int]:
    """``(W, H)`` of an image from its header, without decoding the pixels."""
    _check_exists(file, label)
    try:
        with Image.open(file) as im:
            return im.size
    except UnidentifiedImageError:
        raise InputError(f"not a recognised image file ({label})", file) from None
    except OSError as e:
        raise InputError(f"cannot read image ({label}): {e}", file) from None


def load_images(
    files: Sequence[Path],
    labels: Sequence[str],
    width: int,
    height: int,
    background: tuple[float, float, float],
    size_source: str,
    out_size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Decode images into one preallocated ``(N, 3, H, W)`` float32 tensor in [0, 1].

    Alpha is composited: ``rgb * a + background * (1 - a)``. Every image must be
    ``width x height``; ``size_source`` says where that size came from, for the error.
    ``out_size = (W', H')``: each image is area-averaged to that size after compositing.
    8-bit and 16-bit PNG, JPEG and anything else Pillow reads are accepted; note that
    Pillow reduces 16-bit RGB(A) PNGs to 8 bits (16-bit grey keeps full precision).
    """
    bg = np.asarray(background, dtype=np.float32).reshape(3, 1, 1)
    if out_size is None or out_size == (width, height):
        out = np.empty((len(files), 3, height, width), dtype=np.float32)
        for i, (file, label) in enumerate(zip(files, labels)):
            _decode_into(out[i], file, label, width, height, bg, size_source)
        return torch.from_numpy(out)
    small = torch.empty((len(files), 3, out_size[1], out_size[0]), dtype=torch.float32)
    full = np.empty((3, height, width), dtype=np.float32)
    for i, (file, label) in enumerate(zip(files, labels)):
        _decode_into(full, file, label, width, height, bg, size_source)
        small[i] = torch.nn.functional.interpolate(torch.from_numpy(full)[None], size=(out_size[1], out_size[0]),
                                                   mode="area")[0]
    return small


def _check_exists(file: Path, label: str) -> None:
    if not file.is_file():
        raise InputError(f"image file not found ({label})", file)


def _decode_into(
    out: np.ndarray, file: Path, label: str, width: int, height: int, bg: np.ndarray, size_source: str
) -> None:
    """Decode one image into ``out`` ``(3, H, W)``, compositing alpha onto ``bg`` ``(3, 1, 1)``."""
    _check_exists(file, label)
    try:
        with Image.open(file) as im:
            # The header gives the size, so a wrong size is reported before decoding.
            if im.size != (width, height):
                raise InputError(
                    f"image size {im.size[0]}x{im.size[1]} differs from {width}x{height} ({size_source}; {label})",
                    file,
                )
            im.load()
            rgb, alpha = _to_float(im)
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(f"not a recognised image file ({label})", file) from None
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as e:
        # Pillow reports a cut-off file as "image file is truncated" or a broken stream.
        raise InputError(f"cannot decode image: truncated or corrupt file ({e}; {label})", file) from None
    if alpha is None:
        out[...] = rgb
    else:
        out[...] = rgb * alpha + bg * (1.0 - alpha)


def _to_float(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """``(3, H, W)`` float32 colour in [0, 1] and ``(1, H, W)`` alpha (None when opaque)."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grey PNG: Pillow keeps all 16 bits.
        grey = np.asarray(im, dtype=np.float32)[None] / 65535.0
        return np.repeat(grey, 3, axis=0), None
    if mode not in ("RGB", "RGBA", "L", "LA"):
        has_alpha = "A" in mode or "transparency" in im.info
        im = im.convert("RGBA" if has_alpha else "RGB")
        mode = im.mode
    arr = np.asarray(im, dtype=np.float32) / 255.0
    if arr.ndim == 2:  # L
        return np.repeat(arr[None], 3, axis=0), None
    chw = arr.transpose(2, 0, 1)
    if mode == "LA":
        return np.repeat(chw[:1], 3, axis=0), chw[1:2]
    if mode == "RGBA":
        return chw[:3], chw[3:4]
    return chw, None


def normalise_relpath(p: str) -> str:
    """A path as written in a transforms file, normalised for matching (``./a//b`` -> ``a/b``)."""
    return Path(os.path.normpath(p)).as_posix()
