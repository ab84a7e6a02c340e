"""Fail early when a fit's training step would not fit in memory, naming the param to lower.

The activation memory of a training step is measured, not guessed: a probe step on a few rays
(and, for latent fits, a decode of a small latent patch) records the bytes of every tensor
autograd saves for the backward pass (``torch.autograd.graph.saved_tensors_hooks``), on any
device. Those bytes grow linearly with rays per batch (stage 1, RGB fit) and with decoded
pixels (stage 2), so the probe scales to the configured batch. The estimate is compared with
the memory the process may still use (CUDA: free device memory; CPU: ``MemAvailable`` and the
cgroup limit), with a safety factor for the forward-pass temporaries the hooks do not see.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from igae.config import NerfParams
from igae.errors import InputError
from igae.fields.base import Field
from igae.fields.sampling import RayBundle, Sampler
from igae.fields.volume_renderer import render_bundle
from igae.geometry import pixel_rays
from igae.nerf.data import FitData

PROBE_RAYS = 64
SAFETY = 2.0
"""Estimated bytes are multiplied by this: gradients, optimizer state and forward temporaries."""


class ResourceError(InputError):
    """A configuration that would exhaust the machine's memory."""


def saved_bytes(fn: Callable[[], Tensor]) -> int:
    """Bytes of the tensors autograd saves for backward while ``fn()`` runs (each storage once)."""
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        try:
            key = t.untyped_storage().data_ptr()
            seen[key] = max(seen.get(key, 0), t.untyped_storage().nbytes())
        except (RuntimeError, NotImplementedError):  # tensors without storage (e.g. some views)
            seen[id(t)] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out
    return sum(seen.values())


def available_bytes(device: torch.device) -> int:
    """Memory this process can still allocate on ``device`` (best effort)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    limits = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    cgroup = Path("/sys/fs/cgroup/memory.max")
    if cgroup.is_file():
        raw = cgroup.read_text().strip()
        if raw.isdigit():
            current = Path("/sys/fs/cgroup/memory.current")
            used = int(current.read_text()) if current.is_file() else 0
            limits.append(int(raw) - used)
    return min(limits) if limits else 1 << 62


def estimate_step_bytes(field: Field, sampler: Sampler, data: FitData, cfg: NerfParams) -> dict[str, int]:
    """Estimated peak activation bytes of one training step per stage (``rays`` and ``decode``)."""
    device = data.train_c2w.device
    origins, dirs = pixel_rays(data.train_c2w[:1], data.train_intrinsics[0], data.width, data.height)
    pick = torch.linspace(0, data.width * data.height - 1, PROBE_RAYS, device=device).long()
    rays = RayBundle(origins.reshape(-1, 3)[pick], dirs.reshape(-1, 3)[pick])
    was_training = field.training
    field.train()
    per_ray = saved_bytes(lambda: render_bundle(field, rays, sampler, data.background, train=True,
                                                generator=torch.Generator(device=device).manual_seed(0))["features"]) / PROBE_RAYS
    field.train(was_training)
    out = {"rays": int(per_ray * (cfg.stage1.rays_per_batch if data.is_latent else cfg.rgb.rays_per_batch))}
    if data.ae is not None and cfg.stage2.steps > 0:
        patch = torch.zeros(1, data.channels, 8, 8, device=device, requires_grad=True)
        per_latent_px = saved_bytes(lambda: data.to_rgb(patch)) / 64.0
        pixels = cfg.stage2.views_per_batch * data.width * data.height
        out["decode"] = int(per_latent_px * pixels + per_ray * pixels)
    return out


def check_fit_memory(field: Field, sampler: Sampler, data: FitData, cfg: NerfParams) -> dict[str, int]:
    """Raise :class:`ResourceError` when a stage's step would need more memory than is available.

    Returns the estimates (bytes) for the record.
    """
    estimate = estimate_step_bytes(field, sampler, data, cfg)
    free = available_bytes(data.train_c2w.device)
    advice = {"rays": "nerf.rgb.rays_per_batch" if not data.is_latent else "nerf.stage1.rays_per_batch",
              "decode": "nerf.stage2.views_per_batch"}
    for stage, need in estimate.items():
        if need * SAFETY > free:
            raise ResourceError(
                f"a training step would need about {need * SAFETY / 2**30:.1f} GiB ({stage}: {need / 2**30:.2f} GiB of "
                f"activations x {SAFETY:g}), but only {free / 2**30:.1f} GiB is available on {data.train_c2w.device}; "
                f"lower {advice[stage]} (or nerf.samples_per_ray)")
    return {**estimate, "available": free}
