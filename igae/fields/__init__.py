"""Radiance fields (tri-planes; later vanilla NeRF, NGP, K-Planes) and the shared volume renderer."""

from igae.fields.base import OUTPUT_ACTIVATIONS, Field, FieldFn, SceneIndex, output_activation
from igae.fields.sampling import (
    CoarseToFineSampler,
    RayBundle,
    Sampler,
    importance_samples,
    ray_aabb,
    sample_pdf,
    stratified_samples,
)
from igae.fields.triplane import TriplaneField, TriplaneScene, make_aabb, sample_triplanes, trunc_exp
from igae.fields.volume_renderer import default_chunk, render_bundle, render_image, render_rays, render_views

__all__ = [
    "OUTPUT_ACTIVATIONS", "Field", "FieldFn", "SceneIndex", "output_activation",
    "CoarseToFineSampler", "RayBundle", "Sampler", "importance_samples", "ray_aabb", "sample_pdf",
    "stratified_samples",
    "TriplaneField", "TriplaneScene", "make_aabb", "sample_triplanes", "trunc_exp",
    "default_chunk", "render_bundle", "render_image", "render_rays", "render_views",
]
