"""The nerfstudio scene layout: one ``transforms.json`` beside the images.

Format (from nerfstudio's data conventions documentation):

- Camera: top-level ``fl_x, fl_y, cx, cy, w, h`` and ``camera_model``; any frame may
  override any of them. ``PINHOLE`` and ``SIMPLE_PINHOLE`` are read as they are;
  ``OPENCV`` (``k1, k2, k3, p1, p2``) and ``OPENCV_FISHEYE`` (``k1..k4``) images with nonzero
  coefficients are undistorted on load into pinhole images (:mod:`igae.data.undistort`; the
  intrinsics become the pinhole camera's, recorded in ``Scene.metadata["undistorted"]``).
  Without ``camera_model``, nonzero coefficients mean ``OPENCV``. Missing ``fl_x`` falls back to ``camera_angle_x``,
  missing ``fl_y`` to ``fl_x``, missing ``cx, cy`` to the image centre, missing ``w, h``
  to the first image's size.
- Frames: ``file_path`` relative to the folder, with extension; ``transform_matrix`` a
  4x4 camera-to-world matrix in OpenGL axes (the library's own convention: no conversion).
- Splits: top-level ``train_filenames`` / ``val_filenames`` / ``test_filenames`` lists of
  file paths. Without them every 8th frame (0, 8, 16, ...) is test, the rest train.
  ``Scene.metadata["split_source"]`` says which: ``"transforms"`` or ``"default_every_8th"``.
- ``igae``: this project's block (object info, seed, background, image hashes).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from igae.data.scene_common import (
    SPLIT_NAMES,
    Scene,
    as_number,
    check_focal,
    default_split,
    get_frames,
    igae_block,
    image_size,
    load_images,
    load_json,
    normalise_relpath,
    parse_pose,
    pose_problem,
    require_splits,
    resolve_background,
)
from igae.data.downscale import downscale as downscale_images
from igae.data.undistort import MODEL_COEFFICIENTS, pinhole_zoom, undistort_image
from igae.errors import InputError
from igae.io import atomic_dir, save_png_atomic, sha256_file, write_json_atomic

TRANSFORMS = "transforms.json"
CAMERA_MODELS = ("PINHOLE", "SIMPLE_PINHOLE", "OPENCV", "OPENCV_FISHEYE")
DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "k5", "k6", "p1", "p2")
RESERVED_METADATA = ("background", "image_sha256", "split_source")
"""igae-block keys the writer/reader own; values passed in ``metadata`` are replaced."""


def read_nerfstudio(
    root: Path, background: Sequence[float] | None, splits_required: Sequence[str], downscale: int = 1
) -> Scene:
    """Read ``root/transforms.json`` and its images into a Scene (see the module docstring);
    ``downscale``: see :mod:`igae.data.downscale`."""
    tf = root / TRANSFORMS
    meta = load_json(tf)
    frames = get_frames(meta, tf)
    block = igae_block(meta, tf)
    bg = resolve_background(background, block.get("background"), tf)
    file_paths = [fr["file_path"] for fr in frames]
    labels = [f"frame {i} '{fp}' of {TRANSFORMS}" for i, fp in enumerate(file_paths)]
    files = [root / fp for fp in file_paths]
    distortions = [_distortion(fr, meta, label, tf) for fr, label in zip(frames, labels)]
    poses = np.stack([parse_pose(fr.get("transform_matrix"), label, tf) for fr, label in zip(frames, labels)])

    width, height, size_source = _image_size(meta, frames, files, labels, tf)
    intrinsics = np.array([_intrinsics(meta, fr, width, height, label, tf) for fr, label in zip(frames, labels)])

    split_lists = {name: meta[f"{name}_filenames"] for name in SPLIT_NAMES if f"{name}_filenames" in meta}
    if split_lists:
        split = _split_from_filenames(split_lists, file_paths, tf)
        block["split_source"] = "transforms"
    else:
        split = default_split(len(frames))
        block["split_source"] = "default_every_8th"
    require_splits(split, splits_required, tf)

    scaled = downscale_images(root, file_paths, files, labels, width, height, intrinsics, downscale)
    if downscale != 1:
        block["downscale"] = {"factor": downscale, "source": scaled.source}
        size_source = f"size of the first image {scaled.files[0].name}" if scaled.files is not files else size_source
    images = load_images(scaled.files, labels, *scaled.file_size, bg, size_source, scaled.out_size)
    width, height = scaled.out_size
    intrinsics = scaled.intrinsics
    if any(d is not None for d in distortions):
        images, intrinsics = _undistort(images, intrinsics, distortions, block)
    return Scene(
        images=images,
        camera_to_world=torch.from_numpy(poses.astype(np.float32)),
        intrinsics=torch.from_numpy(intrinsics.astype(np.float32)),
        width=width,
        height=height,
        file_paths=file_paths,
        split=split,
        background=bg,
        metadata=block,
        root=root,
    )


def _lookup(frame: dict, meta: dict, key: str) -> Any:
    """A camera field: the frame's override, else the top-level value, else None."""
    return frame[key] if key in frame else meta.get(key)


def _distortion(fr: dict, meta: dict, label: str, tf: Path) -> tuple[str, dict[str, float]] | None:
    """A frame's camera model and nonzero distortion coefficients (frame values override the
    top level), or None for a distortion-free pinhole camera."""
    model = _lookup(fr, meta, "camera_model")
    if model is not None and model not in CAMERA_MODELS:
        raise InputError(f"{label}: camera_model {model!r} is not supported (supported: {', '.join(CAMERA_MODELS)})", tf)
    coeffs = {}
    for key in DISTORTION_KEYS:
        value = _lookup(fr, meta, key)
        if value is not None and as_number(value, f"{label}: {key}", tf) != 0.0:
            coeffs[key] = float(value)
    if not coeffs:
        return None
    model = model or "OPENCV"
    if model in ("PINHOLE", "SIMPLE_PINHOLE"):
        raise InputError(f"{label}: camera_model {model} has no distortion, but {sorted(coeffs)} are nonzero "
                         "(use OPENCV or OPENCV_FISHEYE)", tf)
    unknown = sorted(set(coeffs) - set(MODEL_COEFFICIENTS[model]))
    if unknown:
        raise InputError(f"{label}: {model} takes {', '.join(MODEL_COEFFICIENTS[model])}; nonzero {unknown} "
                         "belong to a model this reader does not undistort", tf)
    return model, coeffs


def _undistort(images: torch.Tensor, intrinsics: np.ndarray, distortions: list, block: dict
               ) -> tuple[torch.Tensor, np.ndarray]:
    """Undistort the frames that have distortion into pinhole images; records the models used."""
    out_k = np.array(intrinsics, dtype=np.float64)
    zooms: dict[tuple, float] = {}
    for i, dist in enumerate(distortions):
        if dist is None:
            continue
        model, coeffs = dist
        key = (model, tuple(sorted(coeffs.items())), tuple(out_k[i]))
        if key not in zooms:
            zooms[key] = pinhole_zoom(out_k[i], images.shape[3], images.shape[2], model, coeffs)
        images[i], out_k[i] = undistort_image(images[i], intrinsics[i], model, coeffs, zooms[key])
    block["undistorted"] = {"models": sorted({d[0] for d in distortions if d is not None}),
                            "frames": sum(d is not None for d in distortions),
                            "focal_zoom": sorted(set(zooms.values()))}
    return images, out_k


def _image_size(
    meta: dict, frames: list[dict], files: list[Path], labels: list[str], tf: Path
) -> tuple[int, int, str]:
    """The one ``(W, H, where-it-came-from)`` of the scene; InputError on mixed sizes."""
    sizes = []
    fallback = None
    for fr, file, label in zip(frames, files, labels):
        w, h = _lookup(fr, meta, "w"), _lookup(fr, meta, "h")
        if w is None or h is None:
            if fallback is None:  # Peek at the first image's header only when needed.
                fallback = image_size(files[0], labels[0])
            w = fallback[0] if w is None else w
            h = fallback[1] if h is None else h
        w, h = as_number(w, f"{label}: w", tf), as_number(h, f"{label}: h", tf)
        if not (w == int(w) > 0 and h == int(h) > 0):
            raise InputError(f"{label}: image size w={w:g}, h={h:g} must be positive integers", tf)
        sizes.append((int(w), int(h)))
    first = sizes[0]
    for (w, h), label in zip(sizes, labels):
        if (w, h) != first:
            raise InputError(
                f"mixed image sizes: {labels[0]} is {first[0]}x{first[1]} but {label} is {w}x{h} "
                "(a scene needs one size)",
                tf,
            )
    source = f"size from {TRANSFORMS}" if fallback is None else f"size of the first image {files[0].name}"
    return first[0], first[1], source


def _intrinsics(meta: dict, fr: dict, width: int, height: int, label: str, tf: Path) -> list[float]:
    """``[fx, fy, cx, cy]`` of one frame, with the fallbacks listed in the module docstring."""

    def number(key: str) -> float | None:
        # Name where a bad value sits: the frame's override or the shared top-level field.
        if key in fr:
            return as_number(fr[key], f"{label}: {key}", tf)
        return None if meta.get(key) is None else as_number(meta[key], f"top-level {key}", tf)

    def where(key: str) -> str:
        return f"{label}: {key}" if key in fr else f"top-level {key}"

    fx = number("fl_x")
    if fx is None:
        angle = number("camera_angle_x")
        if angle is None:
            raise InputError(f"{label}: no focal length (need fl_x or camera_angle_x)", tf)
        fx = 0.5 * width / math.tan(0.5 * angle)
        fx = check_focal(fx, f"{where('camera_angle_x')} = {angle!r} gives fl_x = {fx!r}", tf)
    else:
        fx = check_focal(fx, where("fl_x"), tf)
    fy = number("fl_y")
    fy = fx if fy is None else check_focal(fy, where("fl_y"), tf)
    cx, cy = number("cx"), number("cy")
    cx = width / 2.0 if cx is None else cx
    cy = height / 2.0 if cy is None else cy
    if not (math.isfinite(cx) and math.isfinite(cy)):
        raise InputError(f"{label}: principal point cx={cx}, cy={cy} must be finite", tf)
    return [fx, fy, cx, cy]


def _split_from_filenames(lists: dict[str, Any], file_paths: list[str], tf: Path) -> dict[str, list[int]]:
    """Map ``*_filenames`` entries to frame indices by normalised relative path."""
    index: dict[str, int] = {}
    for i, fp in enumerate(file_paths):
        index.setdefault(normalise_relpath(fp), i)
    split: dict[str, list[int]] = {}
    for name, names in lists.items():
        key = f"{name}_filenames"
        if not isinstance(names, list) or not all(isinstance(s, str) for s in names):
            raise InputError(f"{key} must be a list of file paths", tf)
        ids = []
        for s in names:
            i = index.get(normalise_relpath(s))
            if i is None:
                raise InputError(f"{key}: {s!r} matches no frame's file_path", tf)
            if i in ids:
                raise InputError(f"{key}: {s!r} is listed twice", tf)
            ids.append(i)
        split[name] = ids
    return split


def write_nerfstudio(
    out_dir: str | Path,
    images: np.ndarray,
    camera_to_world: np.ndarray,
    intrinsics: Sequence[float],
    split: dict[str, list[int]],
    metadata: dict,
    background: Sequence[float] = (1.0, 1.0, 1.0),
) -> Path:
    """Write ``out_dir/images/frame_00000.png ...`` and ``out_dir/transforms.json`` atomically.

    Args:
        out_dir: the scene folder; replaced whole if it exists (a crash leaves the old one).
        images: ``(N, H, W, 3)`` uint8, or float in [0, 1] (rounded to 8 bits).
        camera_to_world: ``(N, 4, 4)`` rigid transforms, OpenGL axes.
        intrinsics: shared ``(fx, fy, cx, cy)`` in pixels.
        split: ``train`` / ``val`` / ``test`` -> frame indices (written as ``*_filenames``).
        metadata: JSON-serialisable facts for the ``igae`` block (object, seed, ...). Its
            ``background``, ``image_sha256`` and ``split_source`` keys are replaced.
        background: RGB in [0, 1] the images were rendered on, stored for the reader.

    Returns:
        ``Path(out_dir)``.

    Output bytes depend only on the inputs: PNGs use fixed settings and floats are written
    with Python's shortest round-trip repr (full float64 precision).
    """
    out_dir = Path(out_dir)
    images = _check_images(images)
    n, height, width, _ = images.shape
    poses = np.asarray(camera_to_world, dtype=np.float64)
    if poses.shape != (n, 4, 4):
        raise ValueError(f"camera_to_world must be ({n}, 4, 4) to match images, got {poses.shape}")
    for i, pose in enumerate(poses):
        problem = pose_problem(pose)
        if problem:
            raise ValueError(f"camera_to_world[{i}]: {problem}")
    fx, fy, cx, cy = _check_intrinsics(intrinsics)
    _check_split(split, n)
    bg = [float(v) for v in background]
    if len(bg) != 3 or not all(0.0 <= v <= 1.0 for v in bg):
        raise ValueError(f"background must be 3 numbers in [0, 1], got {background!r}")

    file_paths = [f"images/frame_{i:05d}.png" for i in range(n)]
    block = {k: v for k, v in metadata.items() if k not in RESERVED_METADATA}
    with atomic_dir(out_dir) as tmp:
        (tmp / "images").mkdir()
        hashes = {}
        for fp, image in zip(file_paths, images):
            save_png_atomic(tmp / fp, image)
            hashes[fp] = sha256_file(tmp / fp)
        block.update(background=bg, image_sha256=hashes)
        transforms: dict[str, Any] = {
            "camera_model": "OPENCV",
            "fl_x": fx,
            "fl_y": fy,
            "cx": cx,
            "cy": cy,
            "w": int(width),
            "h": int(height),
            "k1": 0.0,
            "k2": 0.0,
            "p1": 0.0,
            "p2": 0.0,
            # Redundant with fl_x; kept for tools that only read the Blender field.
            "camera_angle_x": 2.0 * math.atan(width / (2.0 * fx)),
            "frames": [
                {"file_path": fp, "transform_matrix": [[float(v) for v in row] for row in pose]}
                for fp, pose in zip(file_paths, poses)
            ],
            "igae": block,
        }
        for name, ids in split.items():
            transforms[f"{name}_filenames"] = [file_paths[i] for i in ids]
        write_json_atomic(tmp / TRANSFORMS, transforms)
    return out_dir


def _check_images(images: np.ndarray) -> np.ndarray:
    """``(N, H, W, 3)`` uint8, or float in [0, 1]; ValueError otherwise."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[0] == 0:
        raise ValueError(f"images must be (N, H, W, 3) with N >= 1, got {images.shape}")
    if images.dtype == np.uint8:
        return images
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images must be uint8 or float in [0, 1], got dtype {images.dtype}")
    if not np.isfinite(images).all() or images.min() < 0.0 or images.max() > 1.0:
        raise ValueError("float images must be finite and in [0, 1]")
    return images


def _check_intrinsics(intrinsics: Sequence[float]) -> tuple[float, float, float, float]:
    values = [float(v) for v in intrinsics]
    if len(values) != 4:
        raise ValueError(f"intrinsics must be (fx, fy, cx, cy), got {intrinsics!r}")
    fx, fy, cx, cy = values
    if not all(math.isfinite(v) for v in values) or fx <= 0 or fy <= 0:
        raise ValueError(f"intrinsics must be finite with positive focal lengths, got {values}")
    return fx, fy, cx, cy


def _check_split(split: dict[str, list[int]], n: int) -> None:
    for name, ids in split.items():
        if name not in SPLIT_NAMES:
            raise ValueError(f"split names must be among {SPLIT_NAMES}, got {name!r}")
        ids = [int(i) for i in ids]
        if any(not 0 <= i < n for i in ids):
            raise ValueError(f"split {name!r} has indices outside [0, {n})")
        if len(set(ids)) != len(ids):
            raise ValueError(f"split {name!r} lists a frame twice")
