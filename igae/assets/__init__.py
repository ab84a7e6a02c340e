"""Object sources: where the meshes that scenes are rendered from come from.

``make_source(name, **kwargs)`` builds one by name:

- ``"catalogue"`` (default): :class:`~igae.assets.catalogue.CatalogueSource`, real
  textured furniture models from Debian's ``sweethome3d-furniture``.
- ``"procedural"``: :class:`~igae.assets.procedural.ProceduralSource`, random
  primitive compositions, no files needed.
- ``"folder"``: :class:`~igae.assets.folder.FolderSource`, the user's own meshes.
- ``"objaverse"``: :class:`~igae.assets.objaverse_source.ObjaverseSource`, online only.
"""

from __future__ import annotations

import inspect
from typing import Any

from igae.assets.base import ObjectRecord, ObjectSource
from igae.assets.catalogue import CatalogueSource, is_flat
from igae.assets.folder import FolderSource
from igae.assets.objaverse_source import ObjaverseSource
from igae.assets.procedural import ProceduralSource
from igae.errors import InputError

SOURCES: dict[str, type] = {
    "catalogue": CatalogueSource,
    "procedural": ProceduralSource,
    "folder": FolderSource,
    "objaverse": ObjaverseSource,
}


def make_source(name: str, **kwargs: Any) -> ObjectSource:
    """Build the object source called ``name`` with its keyword arguments.

    Raises:
        InputError: unknown name (the message lists the allowed ones) or
            arguments the source does not take.
    """
    cls = SOURCES.get(name)
    if cls is None:
        raise InputError(f"unknown object source {name!r}; choose one of {', '.join(SOURCES)}")
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as exc:
        raise InputError(f"bad arguments for object source {name!r}: {exc}") from exc
    return cls(**kwargs)


__all__ = [
    "SOURCES",
    "CatalogueSource",
    "FolderSource",
    "ObjaverseSource",
    "ObjectRecord",
    "ObjectSource",
    "ProceduralSource",
    "is_flat",
    "make_source",
]
