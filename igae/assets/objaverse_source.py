"""Objaverse objects by uid (optional, online): the paper's own object source.

Needs the ``objaverse`` package (``pip install objaverse``, not a dependency of
igae) and the network the first time: annotations and ``.glb`` files are copied
into ``<cache_dir>/objaverse/`` and read from there afterwards, so a rerun works
offline and without the package.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence

import trimesh

from igae.assets.base import (
    Y_UP_TO_Z_UP,
    ObjectRecord,
    load_scene_file,
    sanitise_id_component,
    scene_to_parts,
    sort_records,
)
from igae.errors import InputError, OfflineError
from igae.io import atomic_path, write_json_atomic

_UID = re.compile(r"[A-Za-z0-9_-]+")

# Sketchfab licence codes as Objaverse's annotations give them.
_LICENCES = {
    "cc0": "CC0 1.0 (public domain)",
    "by": "CC BY",
    "by-sa": "CC BY-SA",
    "by-nd": "CC BY-ND",
    "by-nc": "CC BY-NC",
    "by-nc-sa": "CC BY-NC-SA",
    "by-nc-nd": "CC BY-NC-ND",
}


class ObjaverseSource:
    """Objaverse 1.0 objects (Sketchfab ``.glb`` files) named by uid.

    Records take name, licence, creator and first category from the Objaverse
    annotations; files are glTF, so Y-up, turned Z-up on load.

    Args:
        uids: Objaverse uids (32 hex characters in Objaverse 1.0).
        cache_dir: folder under which ``objaverse/annotations/<uid>.json`` and
            ``objaverse/objects/<uid>.glb`` are kept.

    Raises:
        InputError: no uids, or a uid with characters outside ``[A-Za-z0-9_-]``.
    """

    name = "objaverse"

    def __init__(self, uids: Sequence[str], cache_dir: str | Path) -> None:
        if isinstance(uids, str):
            uids = [uids]
        uids = list(uids)
        if not uids:
            raise InputError("the objaverse source needs at least one uid")
        for uid in uids:
            if not isinstance(uid, str) or not _UID.fullmatch(uid):
                raise InputError(f"objaverse uid {uid!r} is not of the form [A-Za-z0-9_-]+")
        self.uids = sorted(set(uids))
        self.root = Path(cache_dir) / "objaverse"

    def list_objects(self) -> list[ObjectRecord]:
        """One record per uid (annotations fetched once, then read from the cache)."""
        missing = [uid for uid in self.uids if not self._annotation_path(uid).exists()]
        if missing:
            what = f"annotations of {len(missing)} object(s)"
            fetched = _call_online(_objaverse_module(), "load_annotations", what, uids=missing)
            for uid in missing:
                if uid not in fetched:
                    raise InputError(f"Objaverse has no object with uid {uid!r}")
                write_json_atomic(self._annotation_path(uid), _keep_fields(fetched[uid]))
        records = [_record(uid, json.loads(self._annotation_path(uid).read_text())) for uid in self.uids]
        return sort_records(records, "objaverse")

    def load_parts(self, record: ObjectRecord) -> list[trimesh.Trimesh]:
        """Download (once) and load the object's ``.glb``, Z-up."""
        uid = self._uid_of(record)
        path = self.root / "objects" / f"{uid}.glb"
        if not path.exists():
            paths = _call_online(_objaverse_module(), "load_objects", f"object {uid}", uids=[uid])
            downloaded = paths.get(uid) if isinstance(paths, dict) else None
            if downloaded is None or not Path(downloaded).is_file():
                raise InputError(f"objaverse.load_objects returned no file for uid {uid!r}")
            with atomic_path(path) as tmp:
                shutil.copyfile(downloaded, tmp)
        scene = load_scene_file(path, file_type="glb")
        return scene_to_parts(scene, Y_UP_TO_Z_UP, path)

    def _annotation_path(self, uid: str) -> Path:
        return self.root / "annotations" / f"{uid}.json"

    def _uid_of(self, record: ObjectRecord) -> str:
        for uid in self.uids:
            if record.object_id == _object_id(uid):
                return uid
        raise InputError(f"object {record.object_id!r} is not one of this objaverse source's uids")


def _objaverse_module() -> ModuleType:
    try:
        return importlib.import_module("objaverse")
    except ImportError as exc:
        raise InputError(
            "the objaverse source needs the 'objaverse' package: run 'pip install objaverse' "
            "(it downloads from the network, so this source works only online the first time)"
        ) from exc


def _call_online(module: ModuleType, function: str, what: str, **kwargs: Any) -> Any:
    """Call ``module.function(**kwargs)``; network failures become OfflineError."""
    try:
        return getattr(module, function)(**kwargs)
    except OSError as exc:  # URLError, ConnectionError, requests' errors, timeouts
        raise OfflineError(
            f"could not download {what} from Objaverse ({type(exc).__name__}: {exc}). "
            "The objaverse source needs the network the first time; use the 'catalogue' "
            "or 'procedural' source offline."
        ) from exc


def _keep_fields(annotation: dict) -> dict:
    """The annotation fields records use (the full ones carry thumbnails and more)."""
    user = annotation.get("user") or {}
    return {
        "name": annotation.get("name"),
        "license": annotation.get("license"),
        "user": {k: user.get(k) for k in ("username", "displayName", "profileUrl")},
        "categories": [
            {"name": c.get("name")} for c in annotation.get("categories") or [] if isinstance(c, dict)
        ],
        "viewerUrl": annotation.get("viewerUrl"),
    }


def _object_id(uid: str) -> str:
    return f"objaverse/{sanitise_id_component(uid)}"


def _record(uid: str, annotation: dict) -> ObjectRecord:
    name = annotation.get("name") or uid
    user = annotation.get("user") or {}
    creator = user.get("displayName") or user.get("username") or "unknown"
    code = str(annotation.get("license") or "").lower()
    licence = _LICENCES.get(code, f"Sketchfab licence {code!r}" if code else "unknown")
    categories = [c["name"] for c in annotation.get("categories") or [] if c.get("name")]
    where = annotation.get("viewerUrl") or f"Sketchfab uid {uid}"
    return ObjectRecord(
        object_id=_object_id(uid),
        name=name,
        category=categories[0] if categories else "uncategorized",
        source="objaverse",
        licence=licence,
        creator=creator,
        attribution=f'"{name}" by {creator} ({where}), {licence}, via Objaverse',
        origin=f"objaverse uid={uid}",
    )
