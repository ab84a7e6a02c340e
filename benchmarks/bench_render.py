"""Throughput of the CPU mesh renderer (views/s), render only and render + PNG writing.

Run: ``.venv/bin/python benchmarks/bench_render.py [--views 100] [--models oakChair,sofa]``

Objects: a procedural textured box + sphere built here, and, when the Debian
``sweethome3d-furniture`` package has been unpacked under data/cache, a few real catalogue
models from its BlendSwap-CC-0 archive. Target (DESIGN): >= 100 views/s at 64x64 with
2x2 supersampling, PNG writing included, on 2 cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
import trimesh
from PIL import Image

from igae.geometry import focal_from_fov
from igae.io import save_png_atomic
from igae.render.cameras import sample_cameras
from igae.render.normalize import normalize_parts
from igae.render.raycast import MeshRenderer, render_views

REPO = Path(__file__).resolve().parents[1]
SH3F = REPO / "data/cache/sweethome3d-furniture/usr/share/sweethome3d/furniture/BlendSwap-CC-0.sh3f"
DEFAULT_MODELS = ("oakChair", "sofa", "cactus", "forkLift", "bed1")


def procedural_object(seed: int = 0) -> list[trimesh.Trimesh]:
    """A textured box beside a textured sphere (about 20k faces), Z-up."""
    rng = np.random.default_rng(seed)
    tex = (rng.random((64, 64, 3)) * 80).astype(np.uint8)
    checker = ((np.arange(64)[:, None] // 8 + np.arange(64)[None, :] // 8) % 2).astype(bool)
    tex[checker] += np.array([170, 120, 40], dtype=np.uint8)
    image = Image.fromarray(tex)

    box = trimesh.creation.box(extents=(1.0, 0.8, 0.6))
    box.apply_translation((-0.6, 0.0, 0.0))
    box = box.subdivide().subdivide()
    box.unmerge_vertices()
    # Planar UVs per face, projected along the face's dominant axis.
    axis = np.abs(box.face_normals).argmax(axis=1)
    uv = np.zeros((len(box.vertices), 2))
    for a in range(3):
        rows = box.faces[axis == a].ravel()
        other = [i for i in range(3) if i != a]
        uv[rows] = box.vertices[rows][:, other]
    box.visual = trimesh.visual.TextureVisuals(uv=uv, image=image)

    sphere = trimesh.creation.icosphere(subdivisions=5, radius=0.45)
    sphere.apply_translation((0.5, 0.0, 0.0))
    n = sphere.vertex_normals
    lon = np.arctan2(n[:, 1], n[:, 0]) / (2 * np.pi) + 0.5
    lat = np.arcsin(np.clip(n[:, 2], -1, 1)) / np.pi + 0.5
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=image, baseColorFactor=(200, 220, 255, 255))
    sphere.visual = trimesh.visual.TextureVisuals(uv=np.stack([lon, lat], 1) * 3.0, material=material)
    return [box, sphere]


def load_catalogue_model(name: str, workdir: Path) -> list[trimesh.Trimesh]:
    """Parts of one BlendSwap-CC-0 model, rotated from the catalogue's Y-up to Z-up.

    Kept local to the benchmark on purpose: igae.assets is getting the real catalogue
    source (being written concurrently); switch to it once it is available.
    """
    prefix = f"blendswap-cc-0/{name}/"
    with zipfile.ZipFile(SH3F) as zf:
        members = [m for m in zf.namelist() if m.startswith(prefix)]
        if not members:
            raise SystemExit(f"no model {name!r} in {SH3F}")
        zf.extractall(workdir, members)
    obj = next((workdir / prefix).glob("*.obj"))
    scene = trimesh.load(obj, force="scene")
    parts = [g for g in scene.dump() if isinstance(g, trimesh.Trimesh) and len(g.faces)]
    y_up_to_z_up = trimesh.transformations.rotation_matrix(np.pi / 2, (1, 0, 0))
    for p in parts:
        p.apply_transform(y_up_to_z_up)
    return parts


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
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="BlendSwap-CC-0 model folder names")
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
        bench_object("procedural", procedural_object(), args.views, tmp / "png")
        if SH3F.exists():
            for model in args.models.split(","):
                bench_object(model, load_catalogue_model(model, tmp / "models"), args.views, tmp / "png")
        else:
            print(f"({SH3F} not found: catalogue models skipped)")


if __name__ == "__main__":
    main()
