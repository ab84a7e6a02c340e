"""Radiance fields (tri-planes, vanilla NeRF, Instant-NGP hash grid, K-Planes), samplers, and the
shared volume renderer. ``build_field(method, ...)`` picks a method by name."""

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
from igae.fields.occupancy import OccupancyGrid, OccupancySampler
from igae.fields.registry import METHODS, build_field
from igae.fields.triplane import TriplaneField, TriplaneScene, make_aabb, sample_triplanes, trunc_exp
from igae.fields.volume_renderer import default_chunk, render_bundle, render_image, render_rays, render_views

__all__ = [
    "OUTPUT_ACTIVATIONS", "Field", "FieldFn", "SceneIndex", "output_activation",
    "CoarseToFineSampler", "RayBundle", "Sampler", "importance_samples", "ray_aabb", "sample_pdf",
    "stratified_samples",
    "OccupancyGrid", "OccupancySampler", "METHODS", "build_field",
    "TriplaneField", "TriplaneScene", "make_aabb", "sample_triplanes", "trunc_exp",
    "default_chunk", "render_bundle", "render_image", "render_rays", "render_views",
]
