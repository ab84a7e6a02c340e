"""Cost of one IG-AE tri-plane rendering step on CPU, and where it goes.

Run: ``.venv/bin/python benchmarks/bench_triplane.py [--threads 2] [--views 8] [--coarse 48 --fine 48]``

Workload (the IG-AE joint/warm-up step's rendering part): ``--views`` whole 16x16 latent
images (C=4) from ``--scenes`` different scenes of a tri-plane field 3x32x64x64 per scene,
MLP hidden 64, coarse-to-fine sampling; forward + backward of an MSE loss.

Prints the median and minimum wall time of the whole step and a breakdown measured on the
same chunks and sample points: sampler (ray/box, stratified, gradient-free coarse pass,
importance), plane sampling (embedding_bag gather; grid_sample shown for reference), MLP and
compositing (nerfacc weights + accumulation), each forward + backward, with the cost per
sample. On a shared machine read the minimum.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from typing import Callable

import nerfacc
import torch

from igae.fields import CoarseToFineSampler, default_chunk, RayBundle, TriplaneField, render_rays, render_views
from igae.fields.triplane import sample_triplanes
from igae.geometry import focal_from_fov, look_at, pixel_rays


def orbit_cameras(n: int, radius: float = 3.0, height: float = 1.0) -> torch.Tensor:
    """``(n, 4, 4)`` cameras on a circle around the origin, looking at it (Z-up)."""
    ang = torch.arange(n, dtype=torch.float32) * (2 * math.pi / n)
    eye = torch.stack([radius * torch.cos(ang), radius * torch.sin(ang), torch.full((n,), height)], dim=1)
    return look_at(eye, torch.zeros(3))


def timeit(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median, min) wall seconds of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--views", type=int, default=8)
    ap.add_argument("--scenes", type=int, default=4, help="distinct scenes among the views")
    ap.add_argument("--size", type=int, default=16, help="latent image side")
    ap.add_argument("--coarse", type=int, default=48)
    ap.add_argument("--fine", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--chunk", type=int, default=default_chunk("cpu"), help="rays per field call")
    ap.add_argument("--step-only", action="store_true", help="time the whole step only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    size = args.size
    focal = focal_from_fov(40.0, size)
    intrinsics = torch.tensor([focal, focal, size / 2, size / 2])
    c2w = orbit_cameras(args.views)
    scene_index = torch.arange(args.views) % args.scenes
    field = TriplaneField(num_scenes=args.scenes, resolution=64, features=32, out_channels=4, hidden=64,
                          aabb=1.0, output_activation="tanh", seed=0)
    sampler = CoarseToFineSampler(field.aabb, args.coarse, args.fine)
    background = torch.zeros(4)
    target = torch.zeros(args.views, 4, size, size)
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        field.zero_grad(set_to_none=True)
        out = render_views(field, c2w, intrinsics, size, size, sampler, background,
                           scene_index=scene_index, train=True, chunk=args.chunk, generator=gen)
        torch.nn.functional.mse_loss(out, target).backward()

    total_med, total_min = timeit(step, args.repeats)
    if args.step_only:
        print(f"chunk {args.chunk}: step fwd+bwd median {total_med * 1e3:.1f} ms, min {total_min * 1e3:.1f} ms")
        return

    # Breakdown on the same rays, chunks and sample intervals as the step.
    origins, dirs = pixel_rays(c2w, intrinsics, size, size)
    all_rays = RayBundle(origins.reshape(-1, 3), dirs.reshape(-1, 3), scene_index.repeat_interleave(size * size))
    chunks = []
    for start in range(0, len(all_rays), args.chunk):
        rays = all_rays[start : start + args.chunk]
        t_starts, t_ends = sampler(rays, field, True, gen)
        mid = (t_starts + t_ends) / 2
        points = rays.origins[:, None] + rays.directions[:, None] * mid[..., None]
        q = field.normalize(points).reshape(-1, 3).clamp(-1, 1)
        ids, tile = field._resolve_scenes(rays.scene_index, points.shape[:-1], points.device)
        tiles = [field.triplanes[i] for i in ids]
        with torch.no_grad():
            feats = sample_triplanes(tiles, q, tile)
        chunks.append(dict(rays=rays, t_starts=t_starts, t_ends=t_ends, q=q, tiles=tiles, tile=tile, feats=feats,
                           sig=torch.rand(t_starts.shape, requires_grad=True),
                           val=torch.rand(*t_starts.shape, 4, requires_grad=True)))
    n_rays = len(all_rays)
    n_points = sum(c["t_starts"].numel() for c in chunks)

    def sampler_only() -> None:
        for c in chunks:
            sampler(c["rays"], field, True, gen)

    def render_fb() -> None:
        for c in chunks:
            r = c["rays"]
            out = render_rays(field, r.origins, r.directions, c["t_starts"], c["t_ends"], background, r.scene_index)
            out["features"].sum().backward()

    def planes_fb() -> None:
        for c in chunks:
            sample_triplanes(c["tiles"], c["q"], c["tile"]).sum().backward()

    def planes_f() -> None:
        with torch.no_grad():
            for c in chunks:
                sample_triplanes(c["tiles"], c["q"], c["tile"])

    def grid_sample_fb(backward: bool = True) -> None:
        """Reference: the same sampling with grid_sample, one call per scene in a chunk."""
        for c in chunks:
            total = 0.0
            for u, planes in enumerate(c["tiles"]):
                pts = c["q"] if c["tile"] is None else c["q"][c["tile"] == u]
                grid = torch.stack([pts[:, [0, 0, 1]], pts[:, [1, 2, 2]]], dim=-1).transpose(0, 1).unsqueeze(1)
                out = torch.nn.functional.grid_sample(planes, grid, mode="bilinear", padding_mode="border",
                                                      align_corners=True)
                total = total + out.sum()
            if backward:
                total.backward()

    def grid_sample_f() -> None:
        with torch.no_grad():
            grid_sample_fb(backward=False)

    def mlp_fb() -> None:
        for c in chunks:
            field.mlp(c["feats"]).sum().backward()

    def composite_fb() -> None:
        for c in chunks:
            w, _, _ = nerfacc.render_weight_from_density(c["t_starts"], c["t_ends"], c["sig"])
            feats = nerfacc.accumulate_along_rays(w, c["val"])
            (feats.sum() + nerfacc.accumulate_along_rays(w, None).sum()).backward()

    parts = {
        "sampler (no grad, incl. coarse pass)": timeit(sampler_only, args.repeats),
        "field+compositing fwd+bwd (render_rays)": timeit(render_fb, args.repeats),
        "  plane sampling fwd+bwd": timeit(planes_fb, args.repeats),
        "  plane sampling fwd only": timeit(planes_f, args.repeats),
        "  (reference: grid_sample fwd+bwd)": timeit(grid_sample_fb, args.repeats),
        "  (reference: grid_sample fwd only)": timeit(grid_sample_f, args.repeats),
        "  MLP fwd+bwd": timeit(mlp_fb, args.repeats),
        "  compositing (nerfacc) fwd+bwd": timeit(composite_fb, args.repeats),
    }

    print(f"torch {torch.__version__}, nerfacc {nerfacc.__version__}, threads {torch.get_num_threads()}, "
          f"chunk {args.chunk} rays")
    print(f"{args.views} views of {args.scenes} scenes, {size}x{size}, C=4, tri-plane 3x32x64x64, MLP hidden 64, "
          f"{args.coarse} coarse + {args.fine} fine samples: {n_rays} rays, {n_points} samples with grad "
          f"(+ {n_rays * args.coarse} in the coarse pass)")
    print(f"step fwd+bwd: median {total_med * 1e3:.1f} ms, min {total_min * 1e3:.1f} ms "
          f"({total_min / n_points * 1e9:.0f} ns per sample)")
    for name, (med, mn) in parts.items():
        print(f"{name:42s} median {med * 1e3:7.1f} ms  min {mn * 1e3:7.1f} ms  {mn / n_points * 1e9:6.0f} ns/sample")


if __name__ == "__main__":
    main()
