"""User-supplied meshes: every ``.glb/.gltf/.obj/.ply`` file under a folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from igae.assets.base import (
    Y_UP_TO_Z_UP,
    ObjectRecord,
    load_scene_file,
    sanitise_id_component,
    scene_to_parts,
    sort_records,
)
from igae.errors import InputError

MESH_SUFFIXES: tuple[str, ...] = (".glb", ".gltf", ".obj", ".ply")
UP_AXES: dict[str, np.ndarray] = {"y": Y_UP_TO_Z_UP, "z": np.eye(4)}


class FolderSource:
    """Meshes found recursively under ``path`` (sorted by relative path).

    ``object_id`` is ``folder/`` plus the relative path, each component
    lower-cased with characters outside ``[a-z0-9_-]`` replaced by ``_`` (the
    extension is kept, so ``chair.obj`` and ``chair.glb`` stay distinct: ids
    ``folder/chair_obj`` and ``folder/chair_glb``); a clash after that gets
    ``-2``, ``-3``... in path order. ``category`` is the parent folder's name, the
    licence is unknown, so credits say so.

    Args:
        path: the folder.
        up_axis: ``"y"`` when the files are Y-up (glTF's convention, most OBJ
            exporters) or ``"z"`` when already Z-up. Y-up files are turned +90
            degrees about X so that +Y becomes +Z.
    """

    name = "folder"

    def __init__(self, path: str | Path, up_axis: str = "y") -> None:
        if up_axis not in UP_AXES:
            raise InputError(f"up_axis must be one of {sorted(UP_AXES)}, got {up_axis!r}")
        self.path = Path(path)
        self.up_axis = up_axis
        self._files: dict[str, Path] | None = None

    def _scan(self) -> dict[str, Path]:
        """``{object_id: file}`` for every mesh file, in sorted relative-path order."""
        if self._files is not None:
            return self._files
        wanted = ", ".join(MESH_SUFFIXES)
        if not self.path.is_dir():
            raise InputError(f"mesh folder does not exist (looked for {wanted} files in it)", self.path)
        files = sorted(
            (p for p in self.path.rglob("*") if p.is_file() and p.suffix.lower() in MESH_SUFFIXES),
            key=lambda p: p.relative_to(self.path).as_posix(),
        )
        if not files:
            raise InputError(f"no mesh files found (looked recursively for {wanted})", self.path)
        out: dict[str, Path] = {}
        for file in files:
            parts = file.relative_to(self.path).parts
            base = "/".join(["folder", *(sanitise_id_component(p) for p in parts)])
            object_id, n = base, 1
            while object_id in out:
                n += 1
                object_id = f"{base}-{n}"
            out[object_id] = file
        self._files = out
        return out

    def list_objects(self) -> list[ObjectRecord]:
        """One record per mesh file, sorted by ``object_id``."""
        records = []
        for object_id, file in self._scan().items():
            relative = file.relative_to(self.path).as_posix()
            records.append(
                ObjectRecord(
                    object_id=object_id,
                    name=file.stem,
                    category=file.parent.name or "folder",
                    source="folder",
                    licence="unknown (user-supplied)",
                    creator="unknown",
                    attribution=f'"{file.stem}" ({relative}), user-supplied, licence unknown',
                    origin=str(file.resolve()),
                )
            )
        return sort_records(records, str(self.path))

    def load_parts(self, record: ObjectRecord) -> list[trimesh.Trimesh]:
        """Load the file (textures through trimesh's resolver), Z-up."""
        file = self._scan().get(record.object_id)
        if file is None:
            raise InputError(f"no mesh file with id {record.object_id!r} under this folder", self.path)
        scene = load_scene_file(file)
        return scene_to_parts(scene, UP_AXES[self.up_axis], file)
