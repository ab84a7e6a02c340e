"""How render and training cost grow with resolution: RGB vs latent NeRFs, f4 vs the paper's f8 AE.

Run: ``.venv/bin/python benchmarks/bench_scaling.py [--quick] [--out results/benchmarks/scaling]``

One run, on the device given by ``--device`` (``auto``: CUDA when present), measures side by side,
for every NeRF method of the registry (:data:`igae.fields.registry.METHODS`), every image
resolution (64, 128, 256) and every space (``rgb``; ``f4``: params.yaml's AE; ``f8``: the paper's
f8 / 16-channel AE, block widths 128-256-512-512, 2 layers per block):

- **render**: per-frame time of the field (:func:`igae.fields.volume_renderer.render_views`, the
  function the fits use, ``H/f x W/f`` rays) and of the decode (one frame per call, and 8 frames
  per call, per frame; timed once per AE and resolution, since it does not depend on the
  method); the field's cost per ray, timed on one 64x64 frame (4096 rays) with the field of
  every space (3, 4 or 16 outputs), interleaved, so latent and RGB fields are compared at the
  same rays and load;
- **training step**: an RGB step of ``H x W`` random rays vs a latent stage-1 step of
  ``H/f x W/f`` rays (equal image area, as in params.yaml), and the stage-2 step (render one
  whole latent view, decode, RGB + latent MSE, backward, Adam on the field and the decoder);
- **peak memory** of each cell's render and training parts.

What is synthetic (and why it does not change the cost): field and AE weights are random-init
(every op runs whatever the weights), training targets are random tensors of the right shape,
and the occupancy grid is not learned but made from a real object: a procedural object of the
project's asset source is voxelised into the fit's grid (``nerf.occupancy.resolution``) and
grown around its surface until the occupied fraction is ``--occupancy`` (default 0.27: the
median over the default run's RGB fits, whose grids held 0.03 to 0.65). The fraction is printed
and written. On every device the renderer evaluates ``nerf.samples_per_ray``
samples on every ray (rays through free space get zero-length intervals; on CUDA too, where
nerfacc's packed samples are laid out as a fixed (R, S) table), so the occupied
fraction moves only where those samples fall, not their number; ``empty_ray_fraction`` (rays of
a frame that cross no occupied cell, rendered as background with zero weights) shows how much
a renderer that skipped such rays would save. Grid updates (every
``nerf.occupancy.update_every`` steps in a fit) are left out of the step times.

Peak memory: CUDA: ``torch.cuda.max_memory_allocated`` minus the allocation before the cell
(peak statistics reset per cell). CPU: the process's resident-set high-water mark (``VmHWM``,
reset per cell through ``/proc/self/clear_refs``) minus its resident set before the cell,
after ``malloc_trim`` returned freed heap pages to the system (else memory freed by an earlier
cell would be reused unseen). It counts everything the process touches (tensors, allocator
slack, library buffers), not only tensors; ``nan`` where the kernel does not allow the reset.

Timing: medians over ``--frames`` frames / ``--steps`` steps after one warm-up; CUDA calls are
synchronised. The output states device, threads and machine. On a busy machine the numbers are
indicative only. Outputs in ``--out``: ``scaling.csv`` (one row per method x space x
resolution), ``scaling.json`` (run conditions), ``scaling.md`` (summary table + sentences),
``scaling.png`` (figure). ``igae report`` and ``make readme`` pick them up from
``results/benchmarks/scaling/`` when present.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import math
import os
import platform
import statistics
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from igae.autoencoder.model import AEArchitecture, Autoencoder  # noqa: E402
from igae.config import NerfParams, load_params  # noqa: E402
from igae.fields.occupancy import OccupancySampler  # noqa: E402
from igae.fields.registry import METHODS, build_field  # noqa: E402
from igae.fields.sampling import RayBundle  # noqa: E402
from igae.fields.volume_renderer import render_bundle, render_views  # noqa: E402
from igae.geometry import focal_from_fov, pixel_rays, rays_at_pixels, scale_intrinsics  # noqa: E402
from igae.io import write_json_atomic, write_text_atomic  # noqa: E402
from igae.render.cameras import orbit_camera_positions, sample_cameras  # noqa: E402
from igae.geometry import look_at  # noqa: E402
from igae.train.distributed import resolve_device, set_threads  # noqa: E402

DEFAULT_OUT = REPO / "results" / "benchmarks" / "scaling"
"""``--out`` default: ``<this>/quick`` (read by ``igae report``) or ``<this>/full`` (read by ``make readme``)."""
PAPER_F8 = AEArchitecture(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=16,
                          norm_num_groups=32)
"""The paper's f8 / 16-channel AE shape (SD-VAE widths, 16 latent channels)."""
REAL_FIT_OCCUPANCY = 0.27
"""Occupied fraction of a fit's grid in the default run: the 16 RGB fits (4 methods x 4 held-out
scenes, 200 steps) ranged from 0.03 (small objects) to 0.65 (large ones), median 0.27."""
DECODE_BATCH = 8
PER_RAY_SIDE = 64
"""The field's per-ray cost is timed on one frame of this many rays per side in every space."""
COLUMNS = ["method", "space", "downsampling", "channels", "image_res", "render_res", "rays_per_frame",
           "field_ms", "decode_ms", "decode_ms_batch8", "total_ms", "total_ms_batch8", "speedup_vs_rgb",
           "speedup_vs_rgb_batch8", "field_us_per_ray", "train_rays_per_step", "train_step_ms", "stage2_step_ms",
           "render_peak_mb", "train_peak_mb", "occupied_fraction", "empty_ray_fraction", "device", "threads"]


# ------------------------------------------------------------------------------ run conditions
def machine() -> str:
    """A one-line description of the processor (and GPU) this runs on."""
    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    text = f"{name}, {os.cpu_count()} logical CPUs"
    if torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name()}"
    return text


def _load() -> float:
    """The 1-minute load average (other work on the machine during the run), or nan."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return float("nan")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


@contextlib.contextmanager
def peak_memory(device: torch.device, out: dict[str, float], key: str) -> Iterator[None]:
    """Set ``out[key]`` to the peak memory (MiB) the block adds (see the module docstring)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        yield
        torch.cuda.synchronize(device)
        out[key] = (torch.cuda.max_memory_allocated(device) - base) / 2**20
        return
    try:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        base = _rss_kb("VmRSS")
    except OSError:
        yield
        out[key] = float("nan")
        return
    yield
    out[key] = (_rss_kb("VmHWM") - base) / 1024.0


def timed(fn: Callable[[], Any], repeats: int, device: torch.device) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ------------------------------------------------------------------------------ occupancy
def object_occupancy(sampler: OccupancySampler, fraction: float, seed: int = 0) -> float:
    """Fill ``sampler``'s grid from a real object grown to ``fraction`` occupied cells; returns it.

    The object is the project's first procedural object, scaled into the scene box as the scene
    renderer does; cells are ranked by their centre's distance to the object (0 inside) and the
    nearest ``fraction`` of them are occupied, so the occupied region is the object dilated
    evenly, the shape a short fit's grid has.
    """
    from scipy.spatial import cKDTree

    from igae.assets.procedural import ProceduralSource
    from igae.render.normalize import normalize_parts

    grid = sampler.grid
    source = ProceduralSource(count=1, seed=seed)
    box = float((grid.aabb[1] - grid.aabb[0]).min())
    parts = normalize_parts(source.load_parts(source.list_objects()[0]), box)
    centres = grid.cell_centres().cpu().numpy().astype(np.float64)
    surface = np.concatenate([p.sample(20000, seed=seed) if hasattr(p, "sample") else p.vertices for p in parts])
    dist, _ = cKDTree(surface).query(centres)
    inside = np.zeros(len(centres), dtype=bool)
    for p in parts:
        if p.is_watertight:
            inside |= p.contains(centres)
    dist = np.where(inside, 0.0, dist)
    n = int(round(fraction * len(centres)))
    occupied = np.zeros(len(centres), dtype=bool)
    occupied[np.argsort(dist, kind="stable")[:n]] = True
    occ = torch.from_numpy(occupied.reshape(grid.resolution)).to(grid.occupied.device)
    grid.occupied = occ
    grid.density = torch.where(occ, torch.ones_like(grid.density), torch.zeros_like(grid.density))
    return grid.occupancy_fraction()


# ------------------------------------------------------------------------------ one cell
class Cameras:
    """Training cameras (random on the scene's sphere band) and an orbit of render cameras."""

    def __init__(self, params: Any, n_train: int, n_orbit: int, device: torch.device) -> None:
        s = params.scenes
        self.train = sample_cameras(n_train, s.radius, tuple(s.elevation_deg), seed=0).to(device)
        eyes = orbit_camera_positions(n_orbit, s.radius, 20.0)
        self.orbit = look_at(eyes, torch.zeros(3)).to(device)
        self.fov = s.fov_deg

    def intrinsics(self, res: int, device: torch.device) -> torch.Tensor:
        f = focal_from_fov(self.fov, res)
        return torch.tensor([f, f, res / 2.0, res / 2.0], device=device)


def measure_cell(method: str, space: str, ae: Autoencoder | None, res: int, cfg: NerfParams, cams: Cameras,
                 aabb_half: float, occupancy: float, frames: int, steps: int, device: torch.device,
                 decode_cache: dict[tuple[str, int], dict[str, float]]) -> dict[str, Any]:
    """One row of the table: render, training-step and memory numbers of ``method`` in ``space`` at ``res``.

    The decode does not depend on the method: it is timed once per (space, resolution), with its
    peak memory, and kept in ``decode_cache`` for the other methods' rows.
    """
    f = 1 if ae is None else ae.downsampling
    channels = 3 if ae is None else ae.latent_channels
    r = res // f
    mcfg = cfg.method_params[method]
    field, sampler, bg = field_setup(method, channels, cfg, aabb_half, occupancy, device)
    occ = sampler.grid.occupancy_fraction()
    k = scale_intrinsics(cams.intrinsics(res, device), float(f))
    row: dict[str, Any] = {"method": method, "space": space, "downsampling": f, "channels": channels,
                           "image_res": res, "render_res": r, "rays_per_frame": r * r, "occupied_fraction": occ,
                           "device": str(device), "threads": torch.get_num_threads()}
    mem: dict[str, float] = {}
    field.eval()
    frame = iter(range(10**9))

    def render() -> torch.Tensor:
        i = next(frame) % len(cams.orbit)
        return render_views(field, cams.orbit[i : i + 1], k, r, r, sampler, bg)

    def decode(z: torch.Tensor) -> torch.Tensor:
        return ae.decode(ae.normalizer.denormalize(z))  # what FitData.to_rgb does

    with torch.no_grad(), peak_memory(device, mem, "render"):
        row["field_ms"] = 1e3 * timed(render, frames, device)
        origins, dirs = pixel_rays(cams.orbit[:1], k, r, r)
        t0, t1 = sampler(RayBundle(origins.reshape(-1, 3), dirs.reshape(-1, 3)), field, False)
        row["empty_ray_fraction"] = float(((t1 - t0).sum(dim=-1) <= 0).float().mean())
        if ae is not None and (space, res) not in decode_cache:
            z1 = render()
            z8 = torch.cat([render() for _ in range(DECODE_BATCH)])
            decode_cache[(space, res)] = {
                "decode_ms": 1e3 * timed(lambda: decode(z1), frames, device),
                "decode_ms_batch8": 1e3 * timed(lambda: decode(z8), max(1, frames // 2), device) / DECODE_BATCH}
    dec = decode_cache.setdefault((space, res), {"decode_ms": 0.0, "decode_ms_batch8": 0.0})
    dec.setdefault("peak_mb", mem["render"])  # the cell that decoded: its render peak includes the decode
    row["decode_ms"], row["decode_ms_batch8"] = dec["decode_ms"], dec["decode_ms_batch8"]
    row["render_peak_mb"] = max(mem["render"], dec["peak_mb"])
    row["total_ms"] = row["field_ms"] + row["decode_ms"]
    row["total_ms_batch8"] = row["field_ms"] + row["decode_ms_batch8"]

    # Training: one view's worth of rays per step at the render resolution (equal image area).
    field.train()
    n_rays = r * r
    n_views = len(cams.train)
    targets = torch.rand(n_views * r * r, channels, device=device) * (1.0 if ae is None else 2.0) - (0.0 if ae is None else 1.0)
    opt = torch.optim.Adam(field.parameters(), lr=1e-3, eps=mcfg.adam_eps)
    k_all = k.expand(n_views, 4)
    gen = torch.Generator().manual_seed(0)

    def ray_step() -> None:
        pick = torch.randint(n_views * r * r, (n_rays,), generator=gen).to(device)
        view, pixel = pick // (r * r), pick % (r * r)
        origins, dirs = rays_at_pixels(cams.train[view], k_all[view], pixel % r, pixel // r)
        pred = render_bundle(field, RayBundle(origins, dirs), sampler, bg, train=True)["features"]
        opt.zero_grad(set_to_none=True)
        F.mse_loss(pred, targets[pick]).backward()
        opt.step()

    with peak_memory(device, mem, "train"):
        row["train_rays_per_step"] = n_rays
        row["train_step_ms"] = 1e3 * timed(ray_step, steps, device)
        row["stage2_step_ms"] = float("nan")
        if ae is not None:
            ae.train()
            images = torch.rand(n_views, 3, res, res, device=device)
            latents = targets.reshape(n_views, r, r, channels).permute(0, 3, 1, 2)
            opt_dec = torch.optim.Adam(list(ae.decoder_parameters()), lr=1e-4)

            def align_step() -> None:
                v = int(torch.randint(n_views, (1,), generator=gen))
                latent = render_views(field, cams.train[v : v + 1], k, r, r, sampler, bg, train=True)
                loss = F.mse_loss(decode(latent), images[v : v + 1]) + 0.1 * F.mse_loss(latent, latents[v : v + 1])
                opt.zero_grad(set_to_none=True)
                opt_dec.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                opt_dec.step()

            row["stage2_step_ms"] = 1e3 * timed(align_step, steps, device)
            ae.eval()
    row["train_peak_mb"] = mem["train"]
    return row


def field_setup(method: str, channels: int, cfg: NerfParams, aabb_half: float, occupancy: float,
                device: torch.device) -> tuple[Any, OccupancySampler, torch.Tensor]:
    """The method's field with ``channels`` outputs (RGB: 3, sigmoid; latent: tanh), an occupancy
    sampler over its box filled by :func:`object_occupancy`, and the background (white / zero latent)."""
    field = build_field(method, channels, aabb_half, "sigmoid" if channels == 3 else "tanh", seed=0,
                        **cfg.method_params[method].hyper).to(device)
    sampler = OccupancySampler(field.aabb.detach().to(device), resolution=cfg.occupancy.resolution,
                               samples_per_ray=cfg.samples_per_ray, device=device)
    object_occupancy(sampler, occupancy)
    bg = torch.ones(3, device=device) if channels == 3 else torch.zeros(channels, device=device)
    return field, sampler, bg


def per_ray_costs(method: str, channels: dict[str, int], cfg: NerfParams, cams: Cameras, aabb_half: float,
                  occupancy: float, rounds: int, device: torch.device) -> dict[str, float]:
    """Microseconds per ray of ``method``'s field with each space's channel count, on one frame of
    ``PER_RAY_SIDE**2`` rays in every space (same rays, same grid), timed interleaved: round ``i``
    renders with every field once, in an order rotated by ``i``; medians over rounds."""
    setups = {space: field_setup(method, c, cfg, aabb_half, occupancy, device) for space, c in channels.items()}
    k = cams.intrinsics(PER_RAY_SIDE, device)
    calls = {space: (lambda f=f, s=s, b=b: render_views(f.eval(), cams.orbit[:1], k, PER_RAY_SIDE, PER_RAY_SIDE, s, b))
             for space, (f, s, b) in setups.items()}
    names = list(calls)
    times: dict[str, list[float]] = {n: [] for n in names}
    with torch.no_grad():
        for n in names:
            calls[n]()  # warm-up
        for i in range(rounds):
            for j in range(len(names)):
                n = names[(i + j) % len(names)]
                _sync(device)
                t0 = time.perf_counter()
                calls[n]()
                _sync(device)
                times[n].append(time.perf_counter() - t0)
    return {n: 1e6 * statistics.median(t) / PER_RAY_SIDE**2 for n, t in times.items()}


def fresh_ae(arch: AEArchitecture, device: torch.device) -> Autoencoder:
    return Autoencoder.from_architecture(arch, seed=0).to(device).eval()


def run(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every cell of the grid; returns the rows and the run conditions."""
    params = load_params(args.params, preset=args.preset)
    cfg = params.nerf
    device = resolve_device(args.device)
    threads = set_threads(args.threads if args.threads is not None else cfg.threads)
    methods = list(METHODS)[:1] if args.quick else list(METHODS)
    if args.methods:
        methods = args.methods.split(",")
    resolutions = [int(x) for x in (args.resolutions or ("64,128" if args.quick else "64,128,256")).split(",")]
    f8 = PAPER_F8 if not args.f8_arch else AEArchitecture(*_parse_arch(args.f8_arch))
    archs = {"f4": AEArchitecture(**params.autoencoder.architecture.model_dump()), "f8": f8}
    spaces = ["rgb"] + [s for s in args.spaces.split(",") if s != "rgb"]
    aabb_half = params.scenes.object_box / 2.0
    cams = Cameras(params, n_train=8, n_orbit=16, device=device)
    meta = {"device": str(device), "machine": machine(), "threads": threads, "torch": torch.__version__,
            "methods": methods, "resolutions": resolutions, "spaces": spaces, "quick": bool(args.quick),
            "architectures": {k: v.to_dict() for k, v in archs.items() if k in spaces},
            "occupancy_target": args.occupancy, "samples_per_ray": cfg.samples_per_ray,
            "occupancy_resolution": cfg.occupancy.resolution, "frames": args.frames, "steps": args.steps,
            "preset": args.preset, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "load_average_start": _load()}
    print(f"device {device}, {threads} thread(s), {meta['machine']}, torch {torch.__version__}; "
          f"median of {args.frames} frames / {args.steps} steps; indicative on a busy machine", flush=True)
    rows: list[dict[str, Any]] = []
    decode_cache: dict[tuple[str, int], dict[str, float]] = {}
    channels = {s: 3 if s == "rgb" else archs[s].latent_channels for s in spaces}
    per_ray = {m: per_ray_costs(m, channels, cfg, cams, aabb_half, args.occupancy, args.frames, device) for m in methods}
    for m, costs in per_ray.items():
        print(f"{m:>9} field µs/ray ({PER_RAY_SIDE ** 2} rays, interleaved): "
              + ", ".join(f"{s} ({channels[s]} outputs) {v:.1f}" for s, v in costs.items()), flush=True)
    for space in spaces:
        ae = None if space == "rgb" else fresh_ae(archs[space], device)
        for res in resolutions:
            if ae is not None and res % ae.downsampling:
                raise SystemExit(f"--resolutions: {res} is not a multiple of {space}'s downsampling {ae.downsampling}")
            for method in methods:
                row = measure_cell(method, space, ae, res, cfg, cams, aabb_half, args.occupancy, args.frames,
                                   args.steps, device, decode_cache)
                row["field_us_per_ray"] = per_ray[method][space]
                rows.append(row)
                print(f"{method:>9} {space:>4} {res:>4}: field {row['field_ms']:8.1f} ms + decode {row['decode_ms']:8.1f} "
                      f"(batch8 {row['decode_ms_batch8']:8.1f}) ms/frame; step {row['train_step_ms']:8.1f} ms "
                      f"({row['train_rays_per_step']} rays), stage-2 {row['stage2_step_ms']:8.1f} ms; peak "
                      f"{row['render_peak_mb']:.0f} / {row['train_peak_mb']:.0f} MiB; occupied {row['occupied_fraction']:.3f}",
                      flush=True)
        del ae
    rgb = {(r["method"], r["image_res"]): r["total_ms"] for r in rows if r["space"] == "rgb"}
    for r in rows:
        base = rgb.get((r["method"], r["image_res"]))
        r["speedup_vs_rgb"] = base / r["total_ms"] if base else float("nan")
        r["speedup_vs_rgb_batch8"] = base / r["total_ms_batch8"] if base else float("nan")
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    meta["load_average_end"] = _load()
    return rows, meta


def _parse_arch(text: str) -> tuple[tuple[int, ...], int, int, int]:
    """``"128,256,512,512:2:16:32"`` -> (block widths, layers per block, latent channels, norm groups)."""
    try:
        widths, layers, channels, groups = text.split(":")
        return tuple(int(w) for w in widths.split(",")), int(layers), int(channels), int(groups)
    except ValueError:
        raise SystemExit(f"--f8-arch must look like 128,256,512,512:2:16:32, got {text!r}") from None


# ------------------------------------------------------------------------------ outputs
def summary_lines(rows: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    """Sentences stating the measured ratios (generated from the rows, never typed)."""
    lines = [f"Measured by `benchmarks/bench_scaling.py` on {meta['machine']}, device {meta['device']}, "
             f"{meta['threads']} torch thread(s), {meta['finished']}; occupancy grid {meta['occupancy_resolution']}^3 "
             f"with {np.mean([r['occupied_fraction'] for r in rows]):.2f} occupied, "
             f"{meta['samples_per_ray']} samples per ray; load average {meta['load_average_start']} at the start, "
             f"{meta['load_average_end']} at the end"
             + (" (more runnable processes than CPUs: other work shared the machine, so the times are indicative)."
                if max(meta["load_average_start"], meta["load_average_end"]) > (os.cpu_count() or 1) else ".")]
    for space in [s for s in meta["spaces"] if s != "rgb"]:
        part = [r for r in rows if r["space"] == space]
        for res in meta["resolutions"]:
            sel = [r for r in part if r["image_res"] == res]
            if sel:
                share = statistics.mean(r["decode_ms"] / r["total_ms"] for r in sel)
                lines.append(f"{space} AE at {res}x{res}: latent render (decode included) "
                             f"{_span([r['speedup_vs_rgb'] for r in sel])}x as fast as RGB over {len(sel)} method(s) "
                             f"({_span([r['speedup_vs_rgb_batch8'] for r in sel])}x with 8-frame decode batches); "
                             f"the decoder is {100 * share:.0f}% of a latent frame.")
        ratios = [r["field_us_per_ray"] / b["field_us_per_ray"] for r in part for b in rows
                  if b["space"] == "rgb" and (b["method"], b["image_res"]) == (r["method"], r["image_res"])]
        if ratios:
            lines.append(f"{space}: the latent field ({part[0]['channels']} outputs) costs {_span(ratios)}x the RGB "
                         f"field's time per ray (same method, {PER_RAY_SIDE**2} rays).")
        crossing = [res for res in meta["resolutions"]
                    if all(r["speedup_vs_rgb"] >= 5.0 for r in part if r["image_res"] == res)]
        lines.append(f"{space}: latent render >= 5x faster than RGB for every method at "
                     f"{', '.join(f'{x}x{x}' for x in crossing)} (of {', '.join(str(x) for x in meta['resolutions'])})."
                     if crossing else
                     f"{space}: latent render is not >= 5x faster than RGB for every method at any measured resolution "
                     f"({', '.join(str(r) for r in meta['resolutions'])}).")
    return lines


def _span(values: list[float]) -> str:
    """``"1.23"`` or ``"1.23-4.56"`` (min-max)."""
    lo, hi = min(values), max(values)
    return f"{lo:.2f}" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}-{hi:.2f}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The summary table (ms per frame / per step, MiB)."""
    head = ("| method | space | image | rays/frame | field ms | decode ms (x1 / x8) | total ms | vs RGB | "
            "field µs/ray | train step ms (rays) | stage-2 step ms | peak MiB (render / train) |")
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        stage2 = "–" if math.isnan(r["stage2_step_ms"]) else f"{r['stage2_step_ms']:.0f}"
        out.append(f"| {r['method']} | {r['space']} | {r['image_res']}² | {r['rays_per_frame']} | {r['field_ms']:.1f} | "
                   f"{r['decode_ms']:.1f} / {r['decode_ms_batch8']:.1f} | {r['total_ms']:.1f} | "
                   f"{r['speedup_vs_rgb']:.2f}x | {r['field_us_per_ray']:.2f} | {r['train_step_ms']:.0f} "
                   f"({r['train_rays_per_step']}) | {stage2} | "
                   f"{r['render_peak_mb']:.0f} / {r['train_peak_mb']:.0f} |")
    return "\n".join(out)


def figure(rows: list[dict[str, Any]], meta: dict[str, Any], path: Path) -> None:
    """Render ms/frame (field dashed, total solid), training step ms and peak memory vs resolution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = meta["methods"]
    colours = {"rgb": "tab:red", "f4": "tab:blue", "f8": "tab:green"}
    fig, axes = plt.subplots(3, len(methods), figsize=(max(6.0, 3.6 * len(methods)), 9), squeeze=False, sharex=True)
    for j, method in enumerate(methods):
        for space in meta["spaces"]:
            sel = sorted((r for r in rows if r["method"] == method and r["space"] == space), key=lambda r: r["image_res"])
            if not sel:
                continue
            x = [r["image_res"] for r in sel]
            c = colours.get(space, None)
            ax = axes[0, j]
            ax.plot(x, [r["total_ms"] for r in sel], "o-", color=c, label=f"{space} total")
            if space != "rgb":
                ax.plot(x, [r["field_ms"] for r in sel], "o--", color=c, alpha=0.6, label=f"{space} field")
                ax.plot(x, [r["total_ms_batch8"] for r in sel], "s:", color=c, alpha=0.8, label=f"{space} total, decode x8")
            ax = axes[1, j]
            ax.plot(x, [r["train_step_ms"] for r in sel], "o-", color=c,
                    label="RGB step" if space == "rgb" else f"{space} stage-1 step")
            if space != "rgb":
                ax.plot(x, [r["stage2_step_ms"] for r in sel], "^--", color=c, label=f"{space} stage-2 step")
            ax = axes[2, j]
            ax.plot(x, [r["render_peak_mb"] for r in sel], "o-", color=c, label=f"{space} render")
            ax.plot(x, [r["train_peak_mb"] for r in sel], "^--", color=c, label=f"{space} train")
        axes[0, j].set_title(method)
        for i, label in enumerate(("render ms / frame", "training step ms", "peak MiB added")):
            axes[i, j].set_yscale("log")
            axes[i, j].set_ylabel(label)
            axes[i, j].grid(alpha=0.3, which="both")
        axes[2, j].set_xlabel("image side (pixels)")
        axes[2, j].set_xscale("log", base=2)
        axes[2, j].set_xticks(meta["resolutions"], [str(r) for r in meta["resolutions"]])
    for i in range(3):
        axes[i, -1].legend(fontsize=7, loc="best")
    fig.suptitle(textwrap.fill(f"{meta['device']}, {meta['threads']} thread(s): {meta['machine']}", 90), fontsize=9)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def write_outputs(rows: list[dict[str, Any]], meta: dict[str, Any], out: Path) -> None:
    """``scaling.csv``, ``scaling.json``, ``scaling.md`` and ``scaling.png`` in ``out``."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "scaling.csv", pd.DataFrame(rows, columns=COLUMNS).to_csv(index=False, float_format="%.6g"))
    lines = summary_lines(rows, meta)
    write_json_atomic(out / "scaling.json", {**meta, "summary": lines})
    write_text_atomic(out / "scaling.md", "\n\n".join([" ".join(lines[:1]), markdown_table(rows),
                                                       "\n".join(f"- {x}" for x in lines[1:])]) + "\n")
    figure(rows, meta, out / "scaling.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=str(REPO / "params.yaml"))
    parser.add_argument("--preset", default=None, help="a params preset (e.g. smoke, for tiny fields)")
    parser.add_argument("--quick", action="store_true", help="reduced grid: the registry's first method, 64 and 128")
    parser.add_argument("--methods", default=None, help="comma-separated methods (default: all of the registry)")
    parser.add_argument("--resolutions", default=None, help="image sides (default 64,128,256; --quick: 64,128)")
    parser.add_argument("--spaces", default="rgb,f4,f8", help="rgb is always measured (the speed-up's reference)")
    parser.add_argument("--f8-arch", default=None, help="override the paper f8 AE: widths:layers:channels:groups")
    parser.add_argument("--occupancy", type=float, default=REAL_FIT_OCCUPANCY, help="occupied fraction of the grid")
    parser.add_argument("--frames", type=int, default=5, help="timed frames per render cell (median)")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per cell (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: nerf.threads)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--out", default=None, help=f"output folder (default {DEFAULT_OUT.relative_to(REPO)}/quick "
                        "with --quick, else .../full)")
    args = parser.parse_args(argv)
    if not 0.0 < args.occupancy <= 1.0:
        parser.error(f"--occupancy must be in (0, 1], got {args.occupancy}")
    if args.methods and set(args.methods.split(",")) - set(METHODS):
        parser.error(f"--methods: unknown {sorted(set(args.methods.split(',')) - set(METHODS))}; known {list(METHODS)}")
    unknown = set(args.spaces.split(",")) - {"rgb", "f4", "f8"}
    if unknown:
        parser.error(f"--spaces: unknown {sorted(unknown)}; known rgb, f4, f8")
    args.out = args.out or str(DEFAULT_OUT / ("quick" if args.quick else "full"))
    rows, meta = run(args)
    write_outputs(rows, meta, Path(args.out))
    print("\n".join(summary_lines(rows, meta)))
    print(f"wrote {args.out}/scaling.csv, scaling.json, scaling.md, scaling.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
