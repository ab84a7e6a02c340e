"""Sweet Home 3D furniture catalogue: 820 artist-made, textured models from Debian.

The Debian package ``sweethome3d-furniture`` holds five ``.sh3f`` archives (zips):
BlendSwap-CC-0, BlendSwap-CC-BY, KatorLegaz, Reallusion and Scopia. Each archive
has a ``PluginFurnitureCatalog.properties`` (Java properties, ISO-8859-1) with one
block of ``key#N=value`` lines per model (name, category, creator, model path,
size in cm, ...) and one folder per model (OBJ + MTL + textures).

Listing reads only the properties files; loading a model extracts its folder once
into ``cache_dir`` and reads the OBJ with trimesh.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

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
from igae.assets.debian import fetch_debian_package
from igae.errors import InputError

PACKAGE = "sweethome3d-furniture"
FURNITURE_DIR = Path("usr/share/sweethome3d/furniture")
PROPERTIES_NAME = "PluginFurnitureCatalog.properties"
EXTRACT_DIR_NAME = "sweethome3d-models"

# Free-text licence statements (properties header or LICENSE.TXT) -> short names.
# Checked in order: the more specific wording first.
_LICENCE_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"public domain|creative commons zero|\bcc-?0\b", "CC0 1.0 (public domain)"),
    (r"attribution 3\.0 united states", "CC BY 3.0 US"),
    (r"attribution 3\.0", "CC BY 3.0"),
)

# What a damaged zip raises while it is opened or a member is read: a bad central
# directory or CRC (BadZipFile), a corrupt deflate stream (zlib.error), a mangled
# compression-method field (NotImplementedError), a cut-off member (EOFError).
_ZIP_DATA_ERRORS: tuple[type[Exception], ...] = (zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError)


# --------------------------------------------------------------------------- #
# Java properties
# --------------------------------------------------------------------------- #

_SIMPLE_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def parse_java_properties(text: str) -> dict[str, str]:
    """Parse a ``.properties`` file the way ``java.util.Properties.load`` does.

    Handles ``#``/``!`` comments, line continuations (an odd number of trailing
    backslashes), key terminators (first unescaped ``=``, ``:`` or whitespace,
    with whitespace around the separator ignored), and escapes in keys and values
    (``\\t \\n \\r \\f``, ``\\uXXXX``, and ``\\x`` -> ``x`` for any other ``x``).

    Args:
        text: the file decoded as ISO-8859-1 (the Java default for properties).

    Returns:
        ``{key: value}``; a later duplicate key wins, as in Java.

    Raises:
        ValueError: a malformed ``\\uXXXX`` escape.
    """
    out: dict[str, str] = {}
    for logical in _logical_lines(text):
        key_raw, value_raw = _split_key_value(logical)
        out[_unescape(key_raw)] = _unescape(value_raw)
    return out


def _logical_lines(text: str) -> Iterable[str]:
    """Join continued lines; drop blank and comment lines. Leading whitespace is stripped."""
    pending: str | None = None
    for raw in re.split(r"\r\n|\r|\n", text):
        line = raw.lstrip(" \t\f")
        if pending is None and (not line or line[0] in "#!"):
            continue
        trailing = len(line) - len(line.rstrip("\\"))
        continued = trailing % 2 == 1
        if continued:
            line = line[:-1]
        pending = line if pending is None else pending + line
        if not continued:
            yield pending
            pending = None
    if pending is not None:
        yield pending


def _split_key_value(line: str) -> tuple[str, str]:
    """Split a logical line at the first unescaped separator (``=``, ``:`` or whitespace)."""
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c == "\\":
            i += 2
            continue
        if c in "=: \t\f":
            break
        i += 1
    key = line[:i]
    j = i
    while j < n and line[j] in " \t\f":
        j += 1
    if j < n and line[j] in "=:":
        j += 1
        while j < n and line[j] in " \t\f":
            j += 1
    return key, line[j:]


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "\\" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        e = text[i + 1]
        if e == "u":
            digits = text[i + 2 : i + 6]
            if len(digits) != 4 or not all(ch in "0123456789abcdefABCDEF" for ch in digits):
                raise ValueError(f"malformed \\uXXXX escape: {text[i:i + 6]!r}")
            out.append(chr(int(digits, 16)))
            i += 6
        else:
            out.append(_SIMPLE_ESCAPES.get(e, e))
            i += 2
    # Surrogate pairs written as two \u escapes (non-BMP characters) become one character.
    return "".join(out).encode("utf-16", "surrogatepass").decode("utf-16")


# --------------------------------------------------------------------------- #
# Catalogue entries
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class CatalogueEntry:
    """One model of one archive, with what loading and filtering need.

    Attributes:
        record: the public record.
        archive: the ``.sh3f`` file.
        model_path: path of the OBJ inside the zip (no leading ``/``).
        size_cm: ``(3,)`` catalogue ``(width, depth, height)`` in cm, i.e. the
            model's extent along X, Z and Y of Sweet Home 3D's Y-up frame.
        model_rotation: ``(3, 3)`` rotation applied to column vectors of the raw
            model (``p' = R @ p``) before it is shown in Sweet Home 3D.
        door_or_window: the catalogue's ``doorOrWindow`` flag.
    """

    record: ObjectRecord
    archive: Path
    model_path: str
    size_cm: tuple[float, float, float]
    model_rotation: np.ndarray
    door_or_window: bool


def is_flat(extents: Sequence[float], min_thickness_ratio: float = 0.08) -> bool:
    """True when the thinnest side of a box is under ``min_thickness_ratio`` of its longest.

    Args:
        extents: ``(3,)`` box sides in any order and unit, e.g. ``(width, depth, height)``.
        min_thickness_ratio: smallest accepted ``min(extents) / max(extents)``.

    Examples: a 100 x 100 x 1 panel is flat (0.01); a 50 x 50 x 90 chair is not (0.56).
    """
    sides = np.abs(np.asarray(extents, dtype=np.float64).ravel())
    if sides.shape != (3,) or not np.isfinite(sides).all():
        raise InputError(f"extents must be 3 finite numbers, got {list(extents)!r}")
    longest = sides.max()
    return bool(longest <= 0 or sides.min() / longest < min_thickness_ratio)


def read_archive(archive: Path, deb_name: str = PACKAGE) -> list[CatalogueEntry]:
    """Every model declared in one ``.sh3f`` archive, unfiltered, in catalogue order.

    Args:
        archive: the ``.sh3f`` (zip) file.
        deb_name: the Debian file it came from, written into each record's origin.

    Raises:
        InputError: not a zip, no properties file, no licence statement, or a
            model block with a missing/malformed key; the message names the archive.
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            names = set(zf.namelist())
            if PROPERTIES_NAME not in names:
                raise InputError(f"no {PROPERTIES_NAME} inside (not a furniture library?)", archive)
            props = parse_java_properties(zf.read(PROPERTIES_NAME).decode("latin-1"))
            licence_text = zf.read("LICENSE.TXT").decode("latin-1") if "LICENSE.TXT" in names else ""
    except (*_ZIP_DATA_ERRORS, OSError) as exc:
        raise InputError(f"cannot read furniture archive ({type(exc).__name__}: {exc})", archive) from exc
    except ValueError as exc:
        raise InputError(f"bad {PROPERTIES_NAME}: {exc}", archive) from exc

    licence = _pack_licence(props.get("license", ""), licence_text, archive)
    pack_name = props.get("name", archive.stem)
    indices = sorted({int(m.group(1)) for k in props if (m := re.fullmatch(r"model#(\d+)", k))})
    entries = []
    for index in indices:
        entries.append(_entry(props, index, archive, names, licence, pack_name, deb_name))
    return entries


def _entry(
    props: dict[str, str],
    index: int,
    archive: Path,
    names: set[str],
    licence: str,
    pack_name: str,
    deb_name: str,
) -> CatalogueEntry:
    def get(key: str, default: str | None = None) -> str:
        value = props.get(f"{key}#{index}", default)
        if value is None:
            raise InputError(f"model #{index} has no {key}#{index} in {PROPERTIES_NAME}", archive)
        return value.strip()

    def number(key: str) -> float:
        try:
            value = float(get(key))
        except ValueError as exc:
            raise InputError(f"{key}#{index} is not a number: {get(key)!r}", archive) from exc
        if not np.isfinite(value) or value <= 0:
            raise InputError(f"{key}#{index} must be a positive size in cm, got {value}", archive)
        return value

    model_path = get("model").lstrip("/")
    if model_path not in names:
        raise InputError(f"model#{index} names {model_path!r}, which is not in the archive", archive)
    parts = PurePosixPath(model_path).parts
    if len(parts) < 2 or ".." in parts:
        raise InputError(f"model#{index} path {model_path!r} is not inside a model folder", archive)
    name = get("name")
    creator = get("creator", "unknown")
    object_id = "/".join(["catalogue", *(sanitise_id_component(p) for p in parts[:-1])])
    record = ObjectRecord(
        object_id=object_id,
        name=name,
        category=get("category", "Miscellaneous"),
        source="catalogue",
        licence=licence,
        creator=creator,
        attribution=f'"{name}" by {creator} ({pack_name}), {licence}, via Sweet Home 3D',
        origin=f"{deb_name}:{archive.name}:/{model_path}",
    )
    return CatalogueEntry(
        record=record,
        archive=archive,
        model_path=model_path,
        size_cm=(number("width"), number("depth"), number("height")),
        model_rotation=_model_rotation(props.get(f"modelRotation#{index}"), index, archive),
        door_or_window=get("doorOrWindow", "false").lower() == "true",
    )


def _model_rotation(text: str | None, index: int, archive: Path) -> np.ndarray:
    """Parse ``modelRotation#N``: 9 numbers, row-major, applied as ``p' = R @ p``.

    Sweet Home 3D reads the numbers row by row into ``float[3][3]`` and builds a
    Java 3D ``Matrix3f(m00, m01, m02, m10, ...)`` from it, which transforms column
    vectors. The catalogue confirms the order: the headphones'
    ``0 0 1 -1 0 0 0 -1 0`` maps the raw OBJ extents (8.2, 20.0, 18.9) onto the
    catalogue's (width, height, depth) = (18.9, 8.2, 20) only with ``R @ p``.
    """
    if text is None:
        return np.eye(3)
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        values = []
    if len(values) != 9:
        raise InputError(f"modelRotation#{index} must be 9 numbers, got {text!r}", archive)
    rotation = np.array(values, dtype=np.float64).reshape(3, 3)
    if abs(np.linalg.det(rotation)) < 1e-6:
        raise InputError(f"modelRotation#{index} is singular: {text!r}", archive)
    return rotation


def _pack_licence(header: str, licence_file: str, archive: Path) -> str:
    """Short licence name from the ``license=`` header, else from LICENSE.TXT."""
    for text in (header, licence_file):
        lowered = " ".join(text.lower().split())
        for pattern, short in _LICENCE_PATTERNS:
            if lowered and re.search(pattern, lowered):
                return short
    if header.strip():
        return header.strip()
    raise InputError("no licence found (no license= header and no known LICENSE.TXT wording)", archive)


# --------------------------------------------------------------------------- #
# The source
# --------------------------------------------------------------------------- #


class CatalogueSource:
    """Real furniture models from Debian's ``sweethome3d-furniture`` (the default source).

    Filter (applied in :meth:`list_objects`, from the catalogue alone, no mesh
    loading): a model is dropped when

    1. its ``doorOrWindow`` flag is true (doors and windows are holes in walls,
       often a flat frame);
    2. its category is in ``exclude_categories`` (by default "Doors and windows"
       and "Staircases");
    3. its catalogue box is flat: ``min(width, depth, height) / max(...) <
       min_thickness_ratio`` (:func:`is_flat`). With the default 0.08 this
       removes 69 near-2D models (rugs, mats, banknotes, road markings, flat
       clothes, cutlery, wall plates...), which show little but a line from the
       side.

    Loading applies the catalogue's ``modelRotation`` (as Sweet Home 3D does),
    then turns Sweet Home 3D's Y-up frame into Z-up (+90 degrees about X): the
    catalogue's width, depth and height become the mesh's X, Y and Z extents, and
    the model's front faces -Y. Units are the OBJ's own (the renderer rescales).
    Unlike Sweet Home 3D, the model is *not* stretched to the catalogue's width,
    depth and height: the artist's proportions are kept. For 688 of the 714 kept
    models the two agree within 5 %; a few catalogue entries deliberately deform
    their model (e.g. ``scopia/armchair``) and two (``scopia/black_table``,
    ``scopia/table4``) have a ``modelRotation`` that swaps their width and depth,
    which only turns them 90 degrees about the vertical.

    Args:
        cache_dir: where the Debian package is unpacked (``<cache_dir>/sweethome3d-furniture``)
            and model folders are extracted (``<cache_dir>/sweethome3d-models``).
        min_thickness_ratio: flatness threshold of rule 3.
        exclude_categories: categories dropped by rule 2.
    """

    name = "catalogue"

    def __init__(
        self,
        cache_dir: str | Path,
        min_thickness_ratio: float = 0.08,
        exclude_categories: Sequence[str] = ("Doors and windows", "Staircases"),
    ) -> None:
        if not 0.0 <= float(min_thickness_ratio) < 1.0:
            raise InputError(f"min_thickness_ratio must be in [0, 1), got {min_thickness_ratio}")
        if isinstance(exclude_categories, str):
            raise InputError("exclude_categories must be a list of category names, not one string")
        self.cache_dir = Path(cache_dir)
        self.min_thickness_ratio = float(min_thickness_ratio)
        self.exclude_categories = tuple(exclude_categories)

    @cached_property
    def all_entries(self) -> list[CatalogueEntry]:
        """Every model of every archive, unfiltered (fetches the Debian package if needed)."""
        root = fetch_debian_package(PACKAGE, self.cache_dir)
        folder = root / FURNITURE_DIR
        archives = sorted(folder.glob("*.sh3f"))
        if not archives:
            raise InputError(f"no .sh3f archives in the unpacked package (remove {root} to re-fetch)", folder)
        marker = root / ".complete"
        deb_name = marker.read_text().strip() if marker.exists() else PACKAGE
        return [entry for archive in archives for entry in read_archive(archive, deb_name)]

    def rejection_reason(self, entry: CatalogueEntry) -> str | None:
        """Why the filter drops ``entry`` (``"door_or_window"``, ``"category"``, ``"flat"``), or None."""
        if entry.door_or_window:
            return "door_or_window"
        if entry.record.category in self.exclude_categories:
            return "category"
        if is_flat(entry.size_cm, self.min_thickness_ratio):
            return "flat"
        return None

    @cached_property
    def _kept(self) -> dict[str, CatalogueEntry]:
        kept = [e for e in self.all_entries if self.rejection_reason(e) is None]
        records = sort_records([e.record for e in kept], "catalogue")
        by_id = {e.record.object_id: e for e in kept}
        return {r.object_id: by_id[r.object_id] for r in records}

    def list_objects(self) -> list[ObjectRecord]:
        """Records that pass the filter, sorted by ``object_id``."""
        return [e.record for e in self._kept.values()]

    def entry(self, record: ObjectRecord | str) -> CatalogueEntry:
        """The catalogue entry behind a record or object id (filtered-out ones included)."""
        object_id = record if isinstance(record, str) else record.object_id
        if object_id in self._kept:
            return self._kept[object_id]
        for e in self.all_entries:
            if e.record.object_id == object_id:
                return e
        raise InputError(f"no catalogue object with id {object_id!r}")

    def load_parts(self, record: ObjectRecord) -> list[trimesh.Trimesh]:
        """Extract (once) and load the model: parts Z-up, textures attached."""
        entry = self.entry(record)
        obj_path = self._extract(entry)
        rotation = np.eye(4)
        rotation[:3, :3] = entry.model_rotation
        scene = load_scene_file(obj_path, file_type="obj")
        return scene_to_parts(scene, Y_UP_TO_Z_UP @ rotation, obj_path)

    def _extract(self, entry: CatalogueEntry) -> Path:
        """Unzip the model's folder into the cache once (temp folder, then rename) and reuse it.

        Parallel jobs may extract the same model: the first rename wins and the
        others drop their copy, so a folder in use is never replaced (unlike
        ``igae.io.atomic_dir``, which swaps an existing folder out).
        """
        model = PurePosixPath(entry.model_path)
        target = self.cache_dir / EXTRACT_DIR_NAME / entry.archive.stem / Path(*model.parent.parts)
        obj_path = target / model.name
        if obj_path.exists():
            return obj_path
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        try:
            self._unzip_folder(entry, f"{model.parent}/", tmp)
            try:
                os.rename(tmp, target)
            except OSError:
                if not obj_path.exists():  # not a lost race: a real failure
                    raise
        except OSError as exc:
            message = f"cannot extract {entry.model_path!r} into {target}: {exc}"
            raise InputError(message, entry.archive) from exc
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
        if not obj_path.exists():
            raise InputError(f"{entry.model_path!r} was not extracted from the archive", entry.archive)
        return obj_path

    @staticmethod
    def _unzip_folder(entry: CatalogueEntry, prefix: str, out_dir: Path) -> None:
        """Write every zip member under ``prefix`` into ``out_dir``, keeping sub-paths."""
        try:
            with zipfile.ZipFile(entry.archive) as zf:
                for info in zf.infolist():
                    if info.is_dir() or not info.filename.startswith(prefix):
                        continue
                    relative = PurePosixPath(info.filename[len(prefix):])
                    # Never write outside the folder, whatever the zip says.
                    if relative.is_absolute() or ".." in relative.parts:
                        raise InputError(f"unsafe path {info.filename!r} in the archive", entry.archive)
                    out = out_dir / Path(*relative.parts)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(zf.read(info))
        except _ZIP_DATA_ERRORS as exc:  # OSError (writing) is left to _extract, which names the target
            raise InputError(
                f"cannot extract {entry.model_path!r} ({type(exc).__name__}: {exc})", entry.archive
            ) from exc
