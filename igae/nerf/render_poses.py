"""Render a trained fit at the poses of a transforms file (``igae render``).

Poses come from a nerfstudio ``transforms.json`` or a NeRF-synthetic ``transforms_*.json`` (any
file with ``frames`` of ``transform_matrix`` and a focal length, ``fl_x`` or ``camera_angle_x``),
in the scene's input frame; the fit's recorded scene transform (``--aabb auto``) maps them into
the fit's frame. Images are rendered through the pinhole model (distortion coefficients in the
file are ignored: the fit was trained on undistorted images).

Latents: the field renders normalised latents ``y`` in (-1, 1); ``raw = atanh(y) / s`` (``s`` the
AE's normaliser scale, ``y`` clamped to ``1 - eps``) is the AE's own latent space, exactly what
``AutoencoderKL.decode`` takes. A latent-diffusion model built on that AE expects
``raw * scaling_factor`` (diffusers' convention), recorded in ``latents.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

import torch
from torch import Tensor

from igae.data.scene_common import as_number, get_frames, image_size, load_json, parse_pose
from igae.data.scene_box import apply_transform
from igae.errors import InputError
from igae.geometry import scale_intrinsics
from igae.nerf.artifact import FitArtifact, FitModel
from igae.nerf.frames import DECODE_BATCH, Frames, iter_frames

LATENT_CONVENTIONS = ("raw", "normalized", "none")


@dataclass
class PoseSet:
    """Cameras to render, in the scene's input frame.

    Attributes:
        names: one file-name stem per frame (unique).
        c2w: ``(N, 4, 4)`` camera-to-world, OpenGL axes.
        intrinsics: ``(N, 4)`` ``[fx, fy, cx, cy]`` at ``width x height``.
    """

    names: list[str]
    c2w: Tensor
    intrinsics: Tensor
    width: int
    height: int


def _frame_size(meta: dict, fr: dict, path: Path, root: Path, label: str) -> tuple[float, float] | None:
    """The size the frame's intrinsics refer to: ``w, h`` in the file, else its image's header, else None."""
    w, h = fr.get("w", meta.get("w")), fr.get("h", meta.get("h"))
    if w is not None and h is not None:
        return as_number(w, f"{label}: w", path), as_number(h, f"{label}: h", path)
    file = root / fr["file_path"]
    if not file.suffix:
        file = file.with_name(file.name + ".png")  # NeRF-synthetic leaves the extension out
    return tuple(float(v) for v in image_size(file, label)) if file.is_file() else None  # type: ignore[return-value]


def _focal(meta: dict, fr: dict, key: str, width: float, path: Path, label: str) -> float | None:
    if key in fr or key in meta:
        value = as_number(fr.get(key, meta.get(key)), f"{label}: {key}", path)
    elif key == "fl_x" and ("camera_angle_x" in fr or "camera_angle_x" in meta):
        angle = as_number(fr.get("camera_angle_x", meta.get("camera_angle_x")), f"{label}: camera_angle_x", path)
        if not 0.0 < angle < math.pi:
            raise InputError(f"{label}: camera_angle_x must be in (0, pi) radians, got {angle!r}", path)
        value = 0.5 * width / math.tan(0.5 * angle)
    else:
        return None
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{label}: focal length must be positive and finite, got {value!r}", path)
    return value


def read_poses(path: str | Path, size: tuple[int, int]) -> PoseSet:
    """Cameras of a transforms file, with intrinsics scaled to ``size = (W, H)``.

    Each frame's intrinsics refer to the size the file gives (``w``/``h``), else to its image's
    size when the image is there; a file with neither (NeRF-synthetic poses alone) defines its
    focal length by ``camera_angle_x`` at the output width. ``cx, cy`` default to the centre.

    Raises:
        InputError: unreadable file, bad poses, or no focal length.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError("--poses takes a transforms file (transforms.json or transforms_test.json), not a folder",
                         path)
    if not path.is_file():
        raise InputError("poses file not found", path)
    meta = load_json(path)
    frames = get_frames(meta, path)
    width, height = size
    c2w, intrinsics, names = [], [], []
    for i, fr in enumerate(frames):
        label = f"frame {i} '{fr['file_path']}'"
        c2w.append(torch.from_numpy(parse_pose(fr.get("transform_matrix"), label, path)))
        own = _frame_size(meta, fr, path, path.parent, label) or (float(width), float(height))
        fx = _focal(meta, fr, "fl_x", own[0], path, label)
        if fx is None:
            raise InputError(f"{label}: no focal length (need fl_x or camera_angle_x)", path)
        fy = _focal(meta, fr, "fl_y", own[1], path, label) or fx
        cx = as_number(fr.get("cx", meta.get("cx", own[0] / 2.0)), f"{label}: cx", path)
        cy = as_number(fr.get("cy", meta.get("cy", own[1] / 2.0)), f"{label}: cy", path)
        sx, sy = width / own[0], height / own[1]
        intrinsics.append([fx * sx, fy * sy, cx * sx, cy * sy])
        names.append(PurePosixPath(fr["file_path"]).stem)
    if len(set(names)) != len(names):
        names = [f"frame_{i:05d}" for i in range(len(names))]
    return PoseSet(names, torch.stack(c2w).float(), torch.tensor(intrinsics, dtype=torch.float32), width, height)


def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` -> ``(W, H)``; InputError naming ``--size`` otherwise."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"--size must be WIDTHxHEIGHT (e.g. 256x256), got {text!r}") from None
    if w < 1 or h < 1:
        raise InputError(f"--size must be positive, got {text!r}")
    return w, h


def render_size(fit: FitArtifact, model: FitModel, size: tuple[int, int] | None) -> tuple[int, int]:
    """Output image size: ``size``, else the fit's training image size (cropped as it was);
    checked to be a multiple of the AE's downsampling factor for latent fits."""
    if size is None:
        crop = fit.metrics.get("crop")
        size = (int(crop[1]), int(crop[0])) if crop else tuple(int(v) for v in fit.metrics["image_size"])  # type: ignore
    f = model.downsampling
    if size[0] % f or size[1] % f:
        raise InputError(f"--size {size[0]}x{size[1]}: a latent fit renders images whose width and height are "
                         f"multiples of its AE's downsampling factor {f}")
    return size  # type: ignore[return-value]


def render_poses(model: FitModel, poses: PoseSet, device: torch.device | str = "cpu", batch: int = DECODE_BATCH,
                 chunk: int | None = None) -> Iterator[Frames]:
    """Render every camera of ``poses`` (input frame) with the fit: :class:`Frames` of up to ``batch``
    frames (``features`` normalised latents or RGB at render resolution, ``rgb`` images in [0, 1])."""
    c2w = poses.c2w
    if model.spec.scene_transform is not None:
        c2w = apply_transform(torch.tensor(model.spec.scene_transform, dtype=torch.float64), c2w)
    f = model.downsampling
    k = scale_intrinsics(poses.intrinsics, float(f))
    decode = model.decode if model.ae is not None else None
    yield from iter_frames(model.field, model.sampler, c2w.to(device), k.to(device), poses.width // f,
                           poses.height // f, model.background, decode, batch, chunk)
