"""What every object source shares: the record type, the source protocol, and mesh loading.

A source lists :class:`ObjectRecord` s (cheap: metadata only) and turns one record
into a list of ``trimesh.Trimesh`` parts (``load_parts``). The parts follow one
convention whatever the file format, so the renderer never has to ask where an
object came from:

* Geometry is in the object frame (scene-graph transforms applied), **Z-up**, in
  the source's own units; the renderer normalises scale and centre later.
* A part's visual is either

  - ``trimesh.visual.TextureVisuals`` with per-vertex ``uv`` of shape ``(V, 2)``
    and an image (``SimpleMaterial.image`` or ``PBRMaterial.baseColorTexture``,
    PIL mode ``RGB`` or ``RGBA``); its base colour is ``texture(uv) * factor``
    where the factor is ``SimpleMaterial.diffuse`` or ``PBRMaterial.baseColorFactor``
    (white when absent). UVs may leave [0, 1] (textures repeat), or
  - ``trimesh.visual.ColorVisuals`` with face or vertex colours (RGBA uint8).

  A textured material whose part has no usable UVs, and an untextured material,
  become ``ColorVisuals`` filled with the material's main colour.
* Parts with no faces are dropped; an object with no faces at all is an error.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import trimesh
from trimesh.visual.material import PBRMaterial, SimpleMaterial

from igae.errors import InputError

# +90 degrees about X: +Y becomes +Z and +Z becomes -Y (a Y-up model's front,
# +Z, ends up facing -Y, Blender's convention for "front").
Y_UP_TO_Z_UP: np.ndarray = np.array(
    [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)

_ID_BAD_CHARS = re.compile(r"[^a-z0-9_-]+")


@dataclass(frozen=True)
class ObjectRecord:
    """One object a source can load: identity, licence and where it came from.

    Attributes:
        object_id: unique, stable, filesystem-safe id (characters ``[a-z0-9_-]``
            and ``/``), e.g. ``"catalogue/blendswap-cc-0/armchair"``.
        name: human name, e.g. ``"Armchair"``.
        category: catalogue category, primitive kind (procedural) or parent folder.
        source: ``"catalogue"``, ``"procedural"``, ``"folder"`` or ``"objaverse"``.
        licence: e.g. ``"CC0 1.0 (public domain)"``, ``"CC BY 3.0"``.
        creator: author as the source names them.
        attribution: one line a credits page can print.
        origin: archive + model path, file path, uid, or the procedural seed/index.
    """

    object_id: str
    name: str
    category: str
    source: str
    licence: str
    creator: str
    attribution: str
    origin: str

    def to_dict(self) -> dict[str, str]:
        """The record as a plain ``{field: value}`` dict (JSON-ready)."""
        return dataclasses.asdict(self)


@runtime_checkable
class ObjectSource(Protocol):
    """A collection of objects: list them, then load one as textured mesh parts."""

    name: str

    def list_objects(self) -> list[ObjectRecord]:
        """Records after the source's filter, sorted by ``object_id``."""
        ...

    def load_parts(self, record: ObjectRecord) -> list[trimesh.Trimesh]:
        """The object's parts, Z-up, visuals as described in this module's docstring."""
        ...


def sanitise_id_component(text: str) -> str:
    """Lower-case ``text`` and replace each run of characters outside ``[a-z0-9_-]`` by ``_``.

    Examples: ``"oakChair"`` -> ``"oakchair"``, ``"My Chair.obj"`` -> ``"my_chair_obj"``.
    """
    cleaned = _ID_BAD_CHARS.sub("_", text.lower()).strip("_")
    return cleaned or "_"


def sort_records(records: list[ObjectRecord], where: str) -> list[ObjectRecord]:
    """Sort by ``object_id`` and check ids are unique (``where`` names the source in errors)."""
    out = sorted(records, key=lambda r: r.object_id)
    for a, b in zip(out, out[1:]):
        if a.object_id == b.object_id:
            raise InputError(f"two objects share the id {a.object_id!r} ({a.origin} and {b.origin})", where)
    return out


def load_scene_file(path: str | Path, file_type: str | None = None) -> trimesh.Scene:
    """Load a mesh file as a ``trimesh.Scene``; a file trimesh cannot read is an InputError."""
    if Path(path).is_file() and Path(path).stat().st_size == 0:
        raise InputError("the mesh file is empty (0 bytes)", path)
    try:
        return trimesh.load_scene(str(path), file_type=file_type)
    except Exception as exc:  # trimesh raises many types (ValueError, KeyError, zlib, json...)
        raise InputError(f"cannot read mesh file ({type(exc).__name__}: {exc})", path) from exc


def scene_to_parts(scene: trimesh.Scene, transform: np.ndarray, where: str | Path) -> list[trimesh.Trimesh]:
    """Flatten a scene into parts in the object frame, then apply ``transform``.

    Args:
        scene: loaded scene; each graph node with geometry becomes one part with
            the node's world transform applied.
        transform: ``(4, 4)`` applied after the scene graph (e.g. :data:`Y_UP_TO_Z_UP`).
        where: the file, named in errors.

    Returns:
        Parts with at least one face, visuals normalised (see module docstring).

    Raises:
        InputError: no part has a face.
    """
    parts: list[trimesh.Trimesh] = []
    for node in scene.graph.nodes_geometry:
        node_transform, geometry_name = scene.graph[node]
        geometry = scene.geometry.get(geometry_name)
        # Point clouds and paths carry no faces to render.
        if not isinstance(geometry, trimesh.Trimesh) or len(geometry.faces) == 0:
            continue
        part = geometry.copy()
        part.apply_transform(np.asarray(transform, dtype=np.float64) @ node_transform)
        normalise_visual(part)
        parts.append(part)
    if not parts:
        raise InputError("the model has no faces (no triangle mesh in it)", where)
    return parts


def normalise_visual(part: trimesh.Trimesh) -> None:
    """Bring ``part.visual`` to this module's convention, in place.

    Keeps ``TextureVisuals`` only when it has an image and one finite UV per
    vertex; otherwise the material's main colour becomes uniform face colours.
    For a textured OBJ/MTL material (``SimpleMaterial``) the diffuse colour is set
    to white, alpha kept: Blender's OBJ importer and Sweet Home 3D show ``map_Kd``
    as the surface colour rather than multiplying it by ``Kd`` (often a dark or
    default grey in exported files).
    """
    visual = part.visual
    if not isinstance(visual, trimesh.visual.TextureVisuals):
        return
    material = visual.material
    image = _material_image(material)
    uv = None if visual.uv is None else np.asarray(visual.uv)
    usable = (
        image is not None
        and uv is not None
        and uv.shape == (len(part.vertices), 2)
        and bool(np.isfinite(uv).all())
    )
    if not usable:
        colour = _material_colour(material)
        part.visual = trimesh.visual.ColorVisuals(part, face_colors=np.tile(colour, (len(part.faces), 1)))
        return
    image = _rgb_or_rgba(image)
    if isinstance(material, PBRMaterial):
        material.baseColorTexture = image
    else:
        material.image = image
        alpha = 255 if material.diffuse is None else int(np.asarray(material.diffuse).ravel()[-1])
        material.diffuse = np.array([255, 255, 255, alpha], dtype=np.uint8)


def has_texture(part: trimesh.Trimesh) -> bool:
    """True when the part is textured by this module's convention (UVs + image)."""
    visual = part.visual
    return (
        isinstance(visual, trimesh.visual.TextureVisuals)
        and visual.uv is not None
        and _material_image(visual.material) is not None
    )


def _material_image(material: Any) -> Any:
    if isinstance(material, PBRMaterial):
        return material.baseColorTexture
    if isinstance(material, SimpleMaterial):
        return material.image
    return None


def _material_colour(material: Any) -> np.ndarray:
    """Main colour as RGBA uint8 ``(4,)``; mid grey when the material has none."""
    try:
        colour = np.asarray(material.main_color, dtype=np.uint8).ravel()
    except Exception:  # missing or malformed material: a neutral colour beats a crash
        colour = np.array([128, 128, 128, 255], dtype=np.uint8)
    if colour.shape != (4,):
        colour = np.array([128, 128, 128, 255], dtype=np.uint8)
    return colour


def _rgb_or_rgba(image: Any) -> Any:
    """Convert a PIL image to ``RGB`` (or ``RGBA`` when it carries transparency)."""
    if image.mode in ("RGB", "RGBA"):
        return image
    keeps_alpha = "A" in image.getbands() or "transparency" in image.info
    return image.convert("RGBA" if keeps_alpha else "RGB")
