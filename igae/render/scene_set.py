"""Render a set of objects into scene folders plus one dataset manifest."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from igae.assets.base import ObjectRecord, ObjectSource
from igae.data.scene import write_scene
from igae.errors import InputError
from igae.geometry import focal_from_fov
from igae.io import atomic_dir, check_replaceable, write_json_atomic
from igae.provenance import provenance
from igae.render.cameras import sample_cameras
from igae.render.normalize import normalize_parts
from igae.render.raycast import MeshRenderer, render_views
from igae.seeding import derive_seed


MANIFEST = "manifest.json"


def scene_id(index: int) -> str:
    """Folder name of the ``index``-th scene of a set (stable, so workflows can list them)."""
    return f"scene_{index:03d}"


def test_view_indices(views: int, test_views: int) -> list[int]:
    """Evenly spaced view indices held out for testing (cameras are i.i.d., so any fixed pick is fair)."""
    if test_views == 0:
        return []
    return sorted({int(i) for i in np.linspace(0, views - 1, test_views).round()})


def check_own_scene_set(out_dir: Path) -> None:
    """InputError unless ``out_dir`` is absent, empty, or a scene set rendered here whose
    ``manifest.json`` lists every scene folder in it (anything else would be deleted on replace)."""
    manifest = out_dir / MANIFEST
    owned: list[str] = []
    if manifest.is_file():
        try:
            data = json.loads(manifest.read_text())
            owned = [str(e["scene_id"]) for e in data["scenes"]]
            data["provenance"]["versions"]
        except (OSError, ValueError, KeyError, TypeError):
            raise InputError("not a scene-set manifest written by igae render-scenes; refusing to replace a "
                             "folder that may hold scenes it did not render", manifest) from None
    try:
        check_replaceable(out_dir, MANIFEST, owned)
    except InputError as err:
        raise InputError(f"{err} (to benchmark your own scenes, leave them where they are and set "
                         "scenes.heldout.source: folder and scenes.heldout.folder: <their folder>)") from None


def render_scene_set(
    records: list[ObjectRecord],
    source: ObjectSource,
    out_dir: str | Path,
    set_name: str,
    *,
    views: int,
    test_views: int,
    resolution: int,
    supersample: int,
    background: tuple[float, float, float],
    object_box: float,
    radius: float,
    fov_deg: float,
    elevation_deg: tuple[float, float],
    seed: int,
    params_snapshot: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Render each object into ``out_dir/scene_XXX`` and write ``out_dir/manifest.json``.

    Each scene gets its own seeded cameras on the sphere band, normalised geometry
    (centred, longest side ``object_box``), and a train/test split recorded in its
    ``transforms.json``. The whole set is written atomically: an interrupted run
    leaves the previous set (or nothing), never a partial one. An existing ``out_dir`` is
    replaced only when it is a set this function wrote (its manifest lists every entry), so
    scenes someone put there are never deleted (:func:`check_own_scene_set`).

    Returns:
        The manifest: per scene its id, object record (licence and creator included),
        view counts, split and image checksums; plus totals and provenance.
    """
    check_own_scene_set(Path(out_dir))
    width = height = resolution
    focal = focal_from_fov(fov_deg, width)
    intrinsics = np.array([focal, focal, width / 2.0, height / 2.0])
    test_idx = test_view_indices(views, test_views)
    split = {"train": [i for i in range(views) if i not in test_idx], "test": test_idx}
    entries = []
    started = time.perf_counter()
    with atomic_dir(out_dir) as tmp:
        for index, record in enumerate(records):
            sid = scene_id(index)
            scene_seed = derive_seed(seed, set_name, index)
            parts = source.load_parts(record)  # its errors name the file
            try:
                renderer = MeshRenderer(normalize_parts(parts, object_box))
            except InputError as exc:  # degenerate geometry: say which object it is
                raise InputError(f"object {record.object_id!r} cannot be rendered: {exc}", record.origin) from exc
            c2w = sample_cameras(views, radius, elevation_deg, scene_seed).numpy()
            rgb, _alpha = render_views(renderer, c2w, intrinsics, width, height, supersample, background)
            meta = {
                "scene_id": sid,
                "set": set_name,
                "object": record.to_dict(),
                "seed": scene_seed,
                "render": {
                    "renderer": "igae.render.raycast (trimesh + embree, CPU)",
                    "supersample": supersample,
                    "object_box": object_box,
                    "radius": radius,
                    "fov_deg": fov_deg,
                    "elevation_deg": list(elevation_deg),
                },
            }
            scene_dir = write_scene(tmp / sid, rgb, c2w, tuple(intrinsics), split, meta, background)
            checksums = _read_checksums(scene_dir)
            entries.append({
                "scene_id": sid,
                **{k: getattr(record, k) for k in ("object_id", "name", "category", "source", "licence", "creator", "attribution")},
                "views": views,
                "train_views": len(split["train"]),
                "test_views": len(split["test"]),
                "image_sha256": checksums,
            })
            if progress:
                progress(f"{set_name}/{sid}: {record.name} ({record.category}), {views} views")
        manifest = {
            "set": set_name,
            "scenes": entries,
            "totals": {"scenes": len(entries), "views": views * len(entries)},
            "provenance": provenance(seed, params=params_snapshot or {}),
        }
        write_json_atomic(tmp / MANIFEST, manifest)
    if progress:
        progress(f"{set_name}: {len(entries)} scenes in {time.perf_counter() - started:.1f} s")
    return manifest


def _read_checksums(scene_dir: Path) -> dict[str, str]:
    data = json.loads((scene_dir / "transforms.json").read_text())
    return dict(data["igae"]["image_sha256"])


def user_scene_folders(folder: str | Path, set_name: str = "heldout") -> list[Path]:
    """The scenes of a user's scene set: sorted subfolders holding ``transforms.json`` (nerfstudio)
    or ``transforms_train.json`` (NeRF-synthetic).

    Raises:
        InputError: the folder is missing or holds no scene folders (naming ``scenes.<set_name>.folder``).
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"scenes.{set_name}.folder: not a folder", root)
    scenes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
                    and ((d / "transforms.json").is_file() or (d / "transforms_train.json").is_file()))
    if not scenes:
        raise InputError(f"scenes.{set_name}.folder: no scene folders in it (each scene is a subfolder with "
                         "transforms.json or transforms_train.json)", root)
    return scenes


def scene_ids(scenes: Any, set_name: str = "heldout") -> list[str]:
    """A fitted set's scene ids (``scene_000``, ...) for ``scenes`` params (a ``ScenesParams``):
    ``count`` of them when rendered, one per scene folder of ``scenes.<set_name>.folder`` otherwise."""
    cfg = getattr(scenes, set_name)
    n = cfg.count if cfg.source == "render" else len(user_scene_folders(cfg.folder, set_name))
    return [scene_id(i) for i in range(n)]


def import_scene_set(folder: str | Path, out_dir: str | Path, set_name: str, params_snapshot: dict[str, Any],
                     progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Copy a user's scene folders into ``out_dir/scene_XXX`` (sorted by name) with a manifest.

    The user's folder is only read (each scene is checked by the reader first, so a bad file is
    reported before anything is written); the pipeline then works on its own copies, which it
    may replace or delete at will. ``out_dir`` follows :func:`check_own_scene_set`.

    Returns:
        The manifest: per scene its id, original name and path, view counts and file checksums.
    """
    import shutil

    from igae.data.scene import read_scene
    from igae.io import sha256_file

    out_dir, source = Path(out_dir), Path(folder).resolve()
    if out_dir.resolve() == source or source in out_dir.resolve().parents or out_dir.resolve() in source.parents:
        raise InputError(f"scenes.{set_name}.folder must lie outside the pipeline's {out_dir} (and not contain it)",
                         source)
    check_own_scene_set(out_dir)
    scenes = user_scene_folders(source, set_name)
    entries = []
    with atomic_dir(out_dir) as tmp:
        for index, scene_dir in enumerate(scenes):
            scene = read_scene(scene_dir, splits_required=("train", "test"))
            sid = scene_id(index)
            shutil.copytree(scene_dir, tmp / sid, symlinks=False)
            entries.append({
                "scene_id": sid, "name": scene_dir.name, "source": str(scene_dir),
                "licence": "the user's own scene", "attribution": f"{scene_dir.name} (from {source})",
                "views": len(scene), "train_views": len(scene.split["train"]), "test_views": len(scene.split["test"]),
                "image_size": [scene.width, scene.height],
                "file_sha256": {p.relative_to(tmp / sid).as_posix(): sha256_file(p)
                                for p in sorted((tmp / sid).rglob("*")) if p.is_file()},
            })
            if progress:
                progress(f"{set_name}/{sid}: copied {scene_dir} ({len(scene)} views, {scene.width}x{scene.height})")
        manifest = {
            "set": set_name, "source": "folder", "folder": str(source), "scenes": entries,
            "totals": {"scenes": len(entries), "views": sum(e["views"] for e in entries)},
            "provenance": provenance(None, params=params_snapshot),
        }
        write_json_atomic(tmp / MANIFEST, manifest)
    return manifest
