"""The real-photo set: random square crops of packaged photos, split by photo.

The autoencoders' real-image loss (``L_ae_real``) needs natural photos; the paper uses
an ImageNet subset. :func:`build_photo_set` turns the photos of
:mod:`igae.data.photo_sources` into ``out_dir/{train,test}/<photo_id>_<k>.png`` plus a
``manifest.json`` with each crop's provenance; :func:`read_photo_set` loads a split
as a tensor.

Determinism: every crop is drawn from a generator seeded by ``(seed, photo_id)``, so
the crops of one photo do not change when other photos or sources are added; the
train/test split is a seeded shuffle of the sorted photo ids. Same arguments, same
package versions -> byte-identical files.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from igae.data.photo_sources import Photo, collect_photos
from igae.errors import InputError
from igae.io import atomic_dir, save_png_atomic, sha256_file, write_json_atomic
from igae.provenance import provenance

SPLITS = ("train", "test")
MANIFEST = "manifest.json"
_DECODE_MARGIN = 2.0  # decoded pixels per output pixel, at least, for the smallest crop


def split_photos(photo_ids: list[str], test_fraction: float, seed: int) -> dict[str, str]:
    """Assign each photo to ``"train"`` or ``"test"``.

    ``round(test_fraction * n)`` photos go to test, at least one when
    ``test_fraction > 0``, and at least one photo always stays in train.

    Returns:
        ``{photo_id: split}``.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise InputError(f"photos.test_fraction must lie in [0, 1), got {test_fraction}")
    ids = sorted(photo_ids)
    n_test = max(1, round(test_fraction * len(ids))) if test_fraction > 0 else 0
    if n_test >= len(ids):
        raise InputError(
            f"photos.test_fraction={test_fraction} leaves no training photo out of {len(ids)}; "
            "add photo sources or lower test_fraction"
        )
    order = np.random.default_rng(seed).permutation(len(ids))
    test = {ids[i] for i in order[:n_test]}
    return {pid: ("test" if pid in test else "train") for pid in ids}


def sample_crop_boxes(
    width: int, height: int, n: int, min_crop_fraction: float, rng: np.random.Generator
) -> list[tuple[int, int, int, int]]:
    """``n`` random square boxes ``(x0, y0, x1, y1)`` inside a ``width x height`` image.

    Side = uniform in ``[min_crop_fraction, 1] x short side`` (rounded, >= 1 px);
    position uniform over all places the square fits.
    """
    short = min(width, height)
    boxes = []
    for _ in range(n):
        side = int(np.clip(round(rng.uniform(min_crop_fraction, 1.0) * short), 1, short))
        x0 = int(rng.integers(0, width - side + 1))
        y0 = int(rng.integers(0, height - side + 1))
        boxes.append((x0, y0, x0 + side, y0 + side))
    return boxes


def _crop_rng(seed: int, photo_id: str) -> np.random.Generator:
    # crc32 is stable across runs and platforms (Python's hash() is salted).
    return np.random.default_rng([seed, zlib.crc32(photo_id.encode("utf-8"))])


def _render_crops(
    photo: Photo, resolution: int, n: int, min_crop_fraction: float, rng: np.random.Generator
) -> tuple[list[np.ndarray], list[tuple[int, int, int, int]], tuple[int, int]]:
    """Decode ``photo`` once and cut ``n`` random crops, each ``(R, R, 3)`` uint8.

    Returns:
        ``(crops, boxes, (W, H))``: boxes in full-size source pixels, W x H the file's size.

    The JPEG is decoded at the smallest DCT scale at which the smallest possible crop
    still has >= 2 x ``resolution`` pixels: measured on the packaged photos at R=64, crops
    then match a full-size decode to >= 48 dB PSNR (33.9 dB at 1 x), and the default
    build stays well under a second. Boxes are drawn in full-size source pixels and mapped onto the decoded
    image with float coordinates (PIL's ``resize(box=...)`` takes them), so the recorded
    box is exact whatever the decode scale.
    """
    need = math.ceil(_DECODE_MARGIN * resolution / min_crop_fraction)
    im, (full_w, full_h) = photo.open(min_short_side=need)
    boxes = sample_crop_boxes(full_w, full_h, n, min_crop_fraction, rng)
    sx, sy = im.size[0] / full_w, im.size[1] / full_h
    crops = []
    for x0, y0, x1, y1 in boxes:
        # LANCZOS with reducing_gap: an exact box-filter reduce first, then LANCZOS over
        # the last factor <= 3; visually the same as pure LANCZOS, several times faster.
        out = im.resize((resolution, resolution), Image.Resampling.LANCZOS,
                        box=(x0 * sx, y0 * sy, x1 * sx, y1 * sy), reducing_gap=3.0)
        crops.append(np.asarray(out, dtype=np.uint8))
    return crops, boxes, (full_w, full_h)


def _write_photo_crops(
    photo: Photo, split: str, root: Path, resolution: int, n: int, min_crop_fraction: float, seed: int,
    width: int,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Write the crops of one photo under ``root/<split>/``; return its photo and crop records."""
    crops, boxes, (w, h) = _render_crops(photo, resolution, n, min_crop_fraction, _crop_rng(seed, photo.photo_id))
    path = photo.path_or_loader
    meta = {
        "source": photo.source, "title": photo.title, "licence": photo.licence,
        "credit": photo.credit, "origin": photo.origin, "width": w, "height": h, "split": split,
        "source_sha256": None if callable(path) else sha256_file(path),
    }
    records = []
    for k, (crop, box) in enumerate(zip(crops, boxes)):
        rel = f"{split}/{photo.photo_id}_{k:0{width}d}.png"
        save_png_atomic(root / rel, crop)
        records.append({
            "file": rel, "split": split, "photo_id": photo.photo_id, "source": photo.source,
            "title": photo.title, "licence": photo.licence, "credit": photo.credit,
            "box": list(box), "sha256": sha256_file(root / rel),
        })
    return meta, records


def build_photo_set(
    out_dir: str | Path,
    resolution: int,
    sources: list[str],
    crops_per_photo: int,
    test_fraction: float,
    seed: int,
    cache_dir: str | Path,
    folder: str | None = None,
    min_crop_fraction: float = 0.35,
) -> dict[str, Any]:
    """Build the real-photo set in ``out_dir`` (written atomically, whole).

    Args:
        out_dir: destination folder; replaced as a whole when the build succeeds.
        resolution: side R of every crop, in pixels.
        sources: photo source names (see :data:`igae.data.photo_sources.SOURCES`).
        crops_per_photo: random square crops per photo.
        test_fraction: fraction of photos (not crops) held out for ``test``.
        seed: seed of the split and of every crop.
        cache_dir: where Debian packages are unpacked (``fetch_debian_package``).
        folder: photo folder for the ``folder`` source.
        min_crop_fraction: smallest crop side as a fraction of the photo's short side.

    Returns:
        The manifest dict also written to ``out_dir/manifest.json``: ``params``,
        ``provenance``, ``photos`` (per photo: source, title, licence, credit, origin,
        size, split, source sha256), ``crops`` (per crop: file, split, photo_id, source,
        title, licence, credit, box ``[x0, y0, x1, y1]`` in source pixels, sha256) and
        ``totals`` (crops and photos per split and per source).

    Raises:
        InputError: bad arguments, unknown source, unreadable photo (named).
        OfflineError: a source cannot be obtained here.
    """
    if not isinstance(resolution, int) or resolution < 1:
        raise InputError(f"photo set resolution must be a positive integer, got {resolution!r}")
    if not isinstance(crops_per_photo, int) or crops_per_photo < 1:
        raise InputError(f"photos.crops_per_photo must be a positive integer, got {crops_per_photo!r}")
    if not 0.0 < min_crop_fraction <= 1.0:
        raise InputError(f"photos.min_crop_fraction must lie in (0, 1], got {min_crop_fraction}")

    photos = collect_photos(list(sources), cache_dir, folder if "folder" in sources else None)
    split_of = split_photos([p.photo_id for p in photos], test_fraction, seed)
    width = max(3, len(str(crops_per_photo - 1)))  # zero-padded k: file order = crop order

    params = {
        "resolution": resolution, "sources": list(sources), "crops_per_photo": crops_per_photo,
        "test_fraction": test_fraction, "seed": seed, "min_crop_fraction": min_crop_fraction,
        "folder": str(folder) if ("folder" in sources and folder is not None) else None,
    }
    photo_meta: dict[str, Any] = {}
    crops_meta: list[dict[str, Any]] = []
    with atomic_dir(out_dir) as tmp:
        for split in SPLITS:
            (tmp / split).mkdir()

        def one(photo: Photo) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            return _write_photo_crops(photo, split_of[photo.photo_id], tmp, resolution, crops_per_photo,
                                      min_crop_fraction, seed, width)

        # Threads: PNG encoding (zlib) and PIL decode/resize release the GIL, and each
        # photo's files depend only on that photo, so the bytes do not depend on timing.
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            for photo, (meta, crops) in zip(photos, pool.map(one, photos)):
                photo_meta[photo.photo_id] = meta
                crops_meta.extend(crops)
        crops_meta.sort(key=lambda c: c["file"])
        manifest = {
            "params": params,
            "provenance": provenance(seed),
            "photos": photo_meta,
            "crops": crops_meta,
            "totals": _totals(crops_meta),
        }
        write_json_atomic(tmp / MANIFEST, manifest)
    return json.loads(json.dumps(manifest))  # the same plain-JSON view a reader gets


def _totals(crops: list[dict[str, Any]]) -> dict[str, Any]:
    """Crop and photo counts per split and per source (every split key present, even at 0)."""
    def count(key: str, values: list[str]) -> dict[str, dict[str, int]]:
        return {v: {"crops": sum(c[key] == v for c in crops),
                    "photos": len({c["photo_id"] for c in crops if c[key] == v})} for v in values}

    return {
        "crops": len(crops),
        "photos": len({c["photo_id"] for c in crops}),
        "per_split": count("split", list(SPLITS)),
        "per_source": count("source", sorted({c["source"] for c in crops})),
    }


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The ``manifest.json`` of a photo set; InputError if the folder or file is missing/bad."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError("photo set folder does not exist (build it first)", path=directory)
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError("photo set has no manifest.json (incomplete or not a photo set)", path=directory) from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"manifest is not valid JSON ({exc})", path=path) from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("crops"), list):
        raise InputError("manifest has no 'crops' list", path=path)
    return manifest


def read_photo_set(directory: str | Path, split: str) -> torch.Tensor:
    """Load one split of a photo set.

    Args:
        directory: a folder written by :func:`build_photo_set`.
        split: ``"train"`` or ``"test"``.

    Returns:
        ``(N, 3, R, R)`` float32 in [0, 1], crops in sorted file order.

    Raises:
        InputError: unknown split, missing folder/manifest/file, empty split, or a crop
            whose size differs from the manifest's resolution.
    """
    if split not in SPLITS:
        raise InputError(f"unknown photo split {split!r}; expected one of {list(SPLITS)}")
    directory = Path(directory)
    manifest = read_manifest(directory)
    files = sorted(c["file"] for c in manifest["crops"] if c.get("split") == split)
    if not files:
        raise InputError(f"photo set split {split!r} is empty (test_fraction 0, or too few photos?)", path=directory)
    res = manifest.get("params", {}).get("resolution")
    arrays = []
    for rel in files:
        path = directory / rel
        try:
            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read photo crop ({exc})", path=path) from exc
        if res is not None and arr.shape[:2] != (res, res):
            raise InputError(f"crop is {arr.shape[1]}x{arr.shape[0]}, manifest says {res}x{res}", path=path)
        arrays.append(arr)
    batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return batch.to(torch.float32) / 255.0
