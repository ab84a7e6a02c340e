"""Evaluation of a fitted scene on its test views: quality, render speed, memory, pictures.

Everything here uses the scene's **test** split only (views that never trained). Rendering time
per frame is measured after one warm-up frame and split into the field's volume rendering and
the decoding of the latent image (0 for RGB fits); on CUDA both are synchronised.
"""

from __future__ import annotations

import io
import math
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from igae.autoencoder.perceptual import PerceptualMetric
from igae.eval.metrics import image_metrics
from igae.fields.base import Field
from igae.fields.sampling import Sampler
from igae.fields.volume_renderer import render_views
from igae.geometry import look_at
from igae.io import save_png_atomic, write_bytes_atomic
from igae.nerf.data import FitData
from igae.nerf.fit import render_test_views
from igae.nerf.frames import Frames, render_frames


@dataclass
class TestEvaluation:
    """Per-view metrics and the renders they were computed from.

    Attributes:
        per_view: metric name -> ``(M,)`` values (``psnr``, ``ssim``, ``perceptual``).
        rgb: ``(M, 3, H, W)`` decoded (or RGB) renders in [0, 1], on CPU.
        latent: ``(M, C, h, w)`` latent renders (latent fits), else ``None``.
        encoded: ``(M, C, h, w)`` normalised encodings of the ground-truth test images (latent
            fits; what a perfectly 3D-consistent latent NeRF would render), else ``None``.
    """

    per_view: dict[str, Tensor]
    rgb: Tensor
    latent: Tensor | None
    encoded: Tensor | None


@torch.no_grad()
def evaluate_test_views(field: Field, data: FitData, sampler: Sampler, perceptual: PerceptualMetric | None,
                        chunk: int | None = None, rendered: Frames | None = None,
                        encoded: Tensor | None = None) -> TestEvaluation:
    """PSNR / SSIM / perceptual distance of every test view's render against its ground truth.

    ``rendered``: the test views' frames when they exist already (a fit's
    ``FitResult.final_test_render``: the same field, sampler and views in eval mode, so the same
    values); otherwise the views are rendered here. ``encoded``: latent fits' ``(M, C, h, w)``
    normalised posterior-mean encodings of the test images when they exist already (the encoder
    never changes in a fit); otherwise they are encoded here.
    """
    field.eval()
    if data.ae is not None:
        data.ae.eval()
    frames = rendered if rendered is not None else render_test_views(field, data, sampler, chunk)
    rendered, rgb = frames.features, frames.rgb
    per_view = {k: v.cpu() for k, v in image_metrics(rgb, data.test_images, perceptual).items()}
    if data.ae is None:
        return TestEvaluation(per_view, rgb.cpu(), None, None)
    if encoded is None:
        encoded = data.encode_normalized(data.test_images)
    return TestEvaluation(per_view, rgb.cpu(), rendered.cpu(), encoded.cpu())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def time_rendering(field: Field, data: FitData, sampler: Sampler, frames: int, chunk: int | None = None) -> dict[str, float]:
    """Seconds per test frame after one warm-up frame: ``field``, ``decode`` and ``total`` (means)."""
    device = data.test_c2w.device
    field.eval()
    n_views = len(data.test_c2w)
    field_s, decode_s = [], []
    for k in range(frames + 1):
        i = k % n_views
        _sync(device)
        t0 = time.perf_counter()
        latent = render_views(field, data.test_c2w[i : i + 1], data.test_intrinsics[i : i + 1], data.width,
                              data.height, sampler, data.background, chunk=chunk)
        _sync(device)
        t1 = time.perf_counter()
        data.to_rgb(latent)
        _sync(device)
        t2 = time.perf_counter()
        if k > 0:  # frame 0 warms up allocators and kernels
            field_s.append(t1 - t0)
            decode_s.append(t2 - t1)
    f, d = float(np.mean(field_s)), float(np.mean(decode_s))
    return {"field": f, "decode": d, "total": f + d, "frames": frames}


def reset_peak_memory(device: torch.device) -> bool:
    """Start one fit's peak-memory record: a process that fits several scenes in turn (DVC's
    ``--scene-set`` stages) must report each fit's own peak, not the running maximum.

    Resets CUDA's peak statistics of ``device`` and, on Linux, the process's resident-set
    high-water mark (``VmHWM``, via ``/proc/self/clear_refs``). Returns whether the CPU mark was
    reset (else :func:`peak_memory_mb` reports the process-lifetime peak and says so).
    """
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _vm_hwm_kb() is not None


def _vm_hwm_kb() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_memory_mb(device: torch.device, since_reset: bool = False) -> dict[str, float | str]:
    """Peak memory: resident set size (CPU) and, on CUDA, allocated GPU memory.

    Args:
        since_reset: :func:`reset_peak_memory` succeeded for this fit: read the CPU peak since
            then (``VmHWM``), else the process-lifetime peak (``ru_maxrss``). ``cpu_peak_scope``
            says which. The CUDA peak is always since the last reset.
    """
    hwm = _vm_hwm_kb() if since_reset else None
    if hwm is not None:
        out: dict[str, float | str] = {"cpu_peak_rss_mb": hwm / 1024.0, "cpu_peak_scope": "fit"}
    else:
        rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out = {"cpu_peak_rss_mb": rss_kb / 1024.0 if sys.platform != "darwin" else rss_kb / 2**20,
               "cpu_peak_scope": "process"}
    if device.type == "cuda":
        out["gpu_peak_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        out["gpu_peak_reserved_mb"] = torch.cuda.max_memory_reserved(device) / 2**20
    return out


def orbit_cameras(train_c2w: Tensor, frames: int, elevation_deg: float) -> Tensor:
    """``(frames, 4, 4)`` cameras on a circle around the origin, at the training cameras' mean
    distance, about their mean up axis (so it works for z-up and y-up scenes alike), looking
    at the origin. New poses: none of them is a training view."""
    centres = train_c2w[:, :3, 3]
    radius = float(centres.norm(dim=-1).mean())
    up = train_c2w[:, :3, 1].mean(dim=0)
    up = up / up.norm().clamp_min(1e-8)
    helper = torch.tensor([1.0, 0.0, 0.0]) if abs(float(up[0])) < 0.9 else torch.tensor([0.0, 1.0, 0.0])
    a = torch.linalg.cross(up, helper.to(up))
    a = a / a.norm()
    b = torch.linalg.cross(up, a)
    elev = math.radians(elevation_deg)
    phi = 2.0 * math.pi * torch.arange(frames, dtype=up.dtype) / frames
    ring = torch.cos(phi)[:, None] * a + torch.sin(phi)[:, None] * b  # (frames, 3)
    eyes = radius * (math.cos(elev) * ring + math.sin(elev) * up)
    return look_at(eyes, torch.zeros(3, dtype=up.dtype), up)


@torch.no_grad()
def render_turntable(field: Field, data: FitData, sampler: Sampler, frames: int, elevation_deg: float,
                     chunk: int | None = None) -> Tensor:
    """``(frames, 3, H, W)`` decoded renders along :func:`orbit_cameras`, in [0, 1], on CPU."""
    field.eval()
    device = data.test_c2w.device
    cams = orbit_cameras(data.train_c2w.cpu(), frames, elevation_deg).to(device)
    return render_frames(field, sampler, cams, data.test_intrinsics[0], data.width, data.height, data.background,
                         data.to_rgb if data.is_latent else None, chunk=chunk).rgb.cpu()


def to_uint8(images: Tensor) -> np.ndarray:
    """``(N, 3, H, W)`` in [0, 1] -> ``(N, H, W, 3)`` uint8."""
    return (images.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255.0 + 0.5).astype(np.uint8)


def latent_preview(latents: Tensor, size: tuple[int, int], lo: Tensor, hi: Tensor) -> np.ndarray:
    """The first three latent channels as RGB, each stretched from ``lo`` to ``hi`` and upsampled
    (nearest) to ``size = (H, W)``: ``(N, C, h, w)`` -> ``(N, H, W, 3)`` uint8. Fewer than three
    channels repeat the last one."""
    ch = [min(i, latents.shape[1] - 1) for i in range(3)]
    x = (latents[:, ch] - lo[ch, None, None]) / (hi - lo)[ch, None, None].clamp_min(1e-8)
    x = torch.nn.functional.interpolate(x, size=size, mode="nearest")
    return to_uint8(x)


def save_test_renders(folder: Path, evaluation: TestEvaluation, data: FitData, names: list[str]) -> None:
    """Per test view ``<name>.png``: render | ground truth | |error| x 4; latent fits add a second
    row: rendered latent | encoded ground-truth latent (channels 0-2, common colour scale)."""
    pred = to_uint8(evaluation.rgb)
    gt = to_uint8(data.test_images.cpu())
    err = to_uint8((evaluation.rgb - data.test_images.cpu()).abs() * 4.0)
    rows = [np.concatenate([pred, gt, err], axis=2)]  # (M, H, 3W, 3)
    if evaluation.latent is not None and evaluation.encoded is not None:
        target = evaluation.encoded
        both = torch.cat([evaluation.latent, target])
        lo, hi = both.amin(dim=(0, 2, 3)), both.amax(dim=(0, 2, 3))
        size = (data.test_images.shape[2], data.test_images.shape[3])
        row = np.concatenate([latent_preview(evaluation.latent, size, lo, hi), latent_preview(target, size, lo, hi),
                              np.full_like(pred, 255)], axis=2)
        rows.append(row)
    grid = np.concatenate(rows, axis=1)
    for image, name in zip(grid, names):
        save_png_atomic(folder / f"{name}.png", image)


def save_gif(path: Path, frames: Tensor, fps: int = 12) -> None:
    """An endlessly looping GIF of ``(N, 3, H, W)`` frames, written atomically."""
    from PIL import Image

    images = [Image.fromarray(f) for f in to_uint8(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    write_bytes_atomic(path, buffer.getvalue())
