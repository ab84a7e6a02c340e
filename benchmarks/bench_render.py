"""Throughput of the CPU mesh renderer (views/s), render only and render + PNG writing.

Run: ``.venv/bin/python benchmarks/bench_render.py [--views 100] [--models oakChair,sofa]``

Objects: one procedural object and a few real catalogue models (BlendSwap-CC-0), loaded
through igae.assets (the catalogue is fetched into data/cache on first use). Target (DESIGN): >= 100 views/s at 64x64 with
2x2 supersampling, PNG writing included, on 2 cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import trimesh

from igae.assets.catalogue import CatalogueSource
from igae.assets.procedural import ProceduralSource
from igae.geometry import focal_from_fov
from igae.io import save_png_atomic
from igae.render.cameras import sample_cameras
from igae.render.normalize import normalize_parts
from igae.render.raycast import MeshRenderer, render_views

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "data/cache"
DEFAULT_MODELS = ("oakchair", "sofa", "cactus", "forklift", "bed1")


def catalogue_parts(names: list[str]) -> list[tuple[str, list[trimesh.Trimesh]]]:
    """Parts of a few BlendSwap-CC-0 catalogue models, through the real catalogue source."""
    source = CatalogueSource(CACHE)
    by_id = {r.object_id: r for r in source.list_objects()}
    out = []
    for name in names:
        record = by_id.get(f"catalogue/blendswap-cc-0/{name.lower()}")
        if record is None:
            raise SystemExit(f"no catalogue model blendswap-cc-0/{name} (after the filter)")
        out.append((name, source.load_parts(record)))
    return out


def bench_object(name: str, parts: list[trimesh.Trimesh], n_views: int, out_dir: Path) -> None:
    parts = normalize_parts(parts, 1.0)
    t0 = time.perf_counter()
    renderer = MeshRenderer(parts)
    build = time.perf_counter() - t0
    c2ws = sample_cameras(n_views, 2.0, (-20.0, 90.0), seed=0).double().numpy()
    for size in (64, 128):
        k = np.array([focal_from_fov(40.0, size)] * 2 + [size / 2, size / 2])
        render_views(renderer, c2ws[:4], k, size, size, 2)  # warm-up: builds the embree BVH
        row = [f"{name:>12s} {renderer.n_faces:>7d} {build * 1e3:8.0f} {size:>5d}"]
        for threads in (1, 2):
            t0, c0 = time.perf_counter(), time.process_time()
            rgb, alpha = render_views(renderer, c2ws, k, size, size, 2, threads=threads)
            t_render = time.perf_counter() - t0
            t0 = time.perf_counter()
            for i in range(n_views):
                save_png_atomic(out_dir / f"{name}_{size}_{i:04d}.png", rgb[i])
            t_png = time.perf_counter() - t0
            cpu = time.process_time() - c0
            row.append(f"{n_views / t_render:9.0f} {n_views / (t_render + t_png):9.0f}")
            if threads == 1:
                # Views per CPU-second: less sensitive than wall time to other load on the machine.
                row.append(f"{n_views / cpu:9.0f}")
        print(" ".join(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=100)
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="BlendSwap-CC-0 model names (lower case)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(
        "views/s (wall clock), 2x2 supersampling; '+png' includes writing every view with "
        "save_png_atomic; 'cpu+png' is 1-thread views per CPU-second"
    )
    columns = ("1thr", "1thr+png", "cpu+png", "2thr", "2thr+png")
    print(f"{'object':>12s} {'faces':>7s} {'build_ms':>8s} {'size':>5s} " + " ".join(f"{c:>9s}" for c in columns))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = ProceduralSource(count=1, seed=0)
        bench_object("procedural", source.load_parts(source.list_objects()[0]), args.views, tmp / "png")
        for name, parts in catalogue_parts(args.models.split(",")):
            bench_object(name, parts, args.views, tmp / "png")


if __name__ == "__main__":
    main()
