"""Rendering N frames of a fitted field: the field view by view, then the decoder in batches.

This is the one place that turns a fit into images: the test-view evaluation, the PSNR-vs-time
curve, the turntable and ``igae render`` all call :func:`iter_frames` / :func:`render_frames`,
so the speed of decoding (``batch`` frames per decoder call) is tuned here and nowhere else.

The field renders one view per call (its rays in chunks of ``chunk``); decoding takes ``batch``
views per call, which bounds the decoder's activation memory (a decoded frame at full image
resolution is the largest tensor of a latent render).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import Tensor

from igae.fields.base import FieldFn
from igae.fields.sampling import Sampler
from igae.fields.volume_renderer import render_views

DECODE_BATCH = 8
"""Frames per decoder call by default (the evaluation decoded 8 test views per call before this module)."""

Decode = Callable[[Tensor], Tensor]
"""``(B, C, h, w)`` render in the field's space -> ``(B, 3, H, W)`` RGB (e.g. ``FitData.to_rgb``)."""


@dataclass
class Frames:
    """A batch of rendered frames.

    Attributes:
        start: index of the first frame in the whole sequence.
        features: ``(B, C, h, w)`` renders in the field's space (normalised latents, or RGB).
        rgb: ``(B, 3, H, W)`` decoded (or RGB) frames clamped to [0, 1].
    """

    start: int
    features: Tensor
    rgb: Tensor


@torch.no_grad()
def iter_frames(field: FieldFn, sampler: Sampler, c2w: Tensor, intrinsics: Tensor, width: int, height: int,
                background: Tensor, decode: Decode | None = None, batch: int = DECODE_BATCH,
                chunk: int | None = None) -> Iterator[Frames]:
    """Render ``N`` cameras, ``batch`` frames at a time (field per view, one decoder call per batch).

    Args:
        field: the fitted field (put it in eval mode first).
        sampler: the fit's sampler (occupancy grid or coarse-to-fine).
        c2w: ``(N, 4, 4)`` cameras (OpenGL axes) in the fit's frame, on the field's device.
        intrinsics: ``(N, 4)`` or ``(4,)`` ``[fx, fy, cx, cy]`` at render resolution ``width x height``.
        background: ``(C,)`` value behind the scene in the field's space.
        decode: latent -> RGB for latent fits; ``None`` for RGB fits.
        batch: frames per decoder call (>= 1).
        chunk: rays per field call (``None``: the renderer's default for the device).

    Yields:
        :class:`Frames` of up to ``batch`` consecutive cameras, on the field's device.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1 frame, got {batch}")
    n = c2w.shape[0]
    k = intrinsics if intrinsics.dim() == 2 else intrinsics.expand(n, 4)
    for start in range(0, n, batch):
        features = torch.cat([render_views(field, c2w[i : i + 1], k[i : i + 1], width, height, sampler, background,
                                           chunk=chunk) for i in range(start, min(start + batch, n))])
        rgb = features if decode is None else decode(features)
        yield Frames(start, features, rgb.clamp(0.0, 1.0))


def render_frames(field: FieldFn, sampler: Sampler, c2w: Tensor, intrinsics: Tensor, width: int, height: int,
                  background: Tensor, decode: Decode | None = None, batch: int = DECODE_BATCH,
                  chunk: int | None = None) -> Frames:
    """All frames of :func:`iter_frames` in one :class:`Frames` (``start = 0``)."""
    parts = list(iter_frames(field, sampler, c2w, intrinsics, width, height, background, decode, batch, chunk))
    return Frames(0, torch.cat([p.features for p in parts]), torch.cat([p.rgb for p in parts]))
