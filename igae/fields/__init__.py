"""Radiance fields (tri-planes, vanilla NeRF, Instant-NGP hash grid, K-Planes), samplers, and the
shared volume renderer. ``build_field(method, ...)`` picks a method by name (:mod:`igae.fields.registry`).

The names below are imported on first use, so that reading the method registry (params
validation, the Snakefile) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "igae.fields.base": ("OUTPUT_ACTIVATIONS", "Field", "FieldFn", "SceneIndex", "output_activation"),
    "igae.fields.sampling": ("CoarseToFineSampler", "RayBundle", "Sampler", "importance_samples", "ray_aabb",
                             "sample_pdf", "stratified_samples"),
    "igae.fields.occupancy": ("OccupancyGrid", "OccupancySampler"),
    "igae.fields.registry": ("METHODS", "build_field"),
    "igae.fields.triplane": ("TriplaneField", "TriplaneScene", "make_aabb", "sample_triplanes", "trunc_exp"),
    "igae.fields.volume_renderer": ("default_chunk", "render_bundle", "render_image", "render_rays", "render_views"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = list(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'igae.fields' has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULE_OF[name]), name)
