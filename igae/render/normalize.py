"""Put an object's parts into a canonical box before rendering."""

from __future__ import annotations

import numpy as np
import trimesh

from igae.errors import InputError


def normalize_parts(parts: list[trimesh.Trimesh], box_size: float) -> list[trimesh.Trimesh]:
    """Centre and scale an object made of several meshes (one per material, say).

    The axis-aligned bounding box of the union of all parts is moved to the origin and
    scaled uniformly so that its longest side equals ``box_size``. The up axis is left
    alone (asset sources already deliver Z-up meshes).

    Args:
        parts: meshes of one object; they are not modified.
        box_size: length of the longest side after normalisation (world units).

    Returns:
        New meshes (copies, visuals included), in the same order as ``parts``.
    """
    if not box_size > 0:
        raise ValueError(f"box_size must be positive, got {box_size}")
    if not parts:
        raise InputError("normalize_parts: no parts given; an object needs at least one mesh")
    for i, part in enumerate(parts):
        if not isinstance(part, trimesh.Trimesh):
            raise InputError(f"normalize_parts: part {i} is a {type(part).__name__}, expected trimesh.Trimesh")
    verts = [np.asarray(p.vertices, dtype=np.float64) for p in parts if len(p.vertices)]
    if not verts:
        raise InputError("normalize_parts: all parts are empty (no vertices)")
    stacked = np.concatenate(verts, axis=0)
    if not np.isfinite(stacked).all():
        raise InputError("normalize_parts: the mesh has non-finite vertex coordinates (NaN or inf)")
    lo, hi = stacked.min(axis=0), stacked.max(axis=0)
    extent = float((hi - lo).max())
    if extent <= 0.0:
        raise InputError("normalize_parts: the object has zero size (all vertices coincide)")
    centre = 0.5 * (lo + hi)
    scale = box_size / extent

    out = []
    for part in parts:
        new = part.copy()
        # Set vertices directly: a translation and a positive uniform scale keep face
        # winding, UVs and colours valid, and avoid apply_transform's cache juggling.
        new.vertices = (np.asarray(part.vertices, dtype=np.float64) - centre) * scale
        out.append(new)
    return out
