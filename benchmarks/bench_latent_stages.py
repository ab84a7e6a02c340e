"""Per-step training cost of the latent fit's two stages, and what a stage split costs.

Usage: `python benchmarks/bench_latent_stages.py SCENE_DIR [--steps 30] [--methods vanilla ngp kplanes triplane]`

Stage 1 renders `nerf.stage1.rays_per_batch` random latent rays per step; stage 2 renders whole
latent views and back-propagates through the decoder copy, so its steps cost more. This times
`--steps` steps of each stage per method (default params, one thread, an autoencoder of the
default architecture with random weights: same compute as a trained one), then prints the
training seconds of a fit for several stage1/stage2 splits of the default total, next to the
default split. Numbers depend on the machine and its load: compare them as ratios of one run.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from igae.autoencoder.model import AEArchitecture, Autoencoder
from igae.cli.nerf_stages import scene_aabb_half
from igae.config import load_params
from igae.data.scene import read_scene
from igae.nerf.data import prepare_latent
from igae.nerf.fit import build_method_field, build_sampler, fit_scene

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scene", type=Path)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--methods", nargs="+", default=["vanilla", "ngp", "kplanes", "triplane"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = load_params(REPO / "params.yaml")
    total = base.nerf.stage1.steps + base.nerf.stage2.steps
    arch = AEArchitecture(**base.autoencoder.architecture.model_dump())
    scene = read_scene(args.scene, splits_required=("train", "test"))
    half, _ = scene_aabb_half(scene, None)
    params = load_params(REPO / "params.yaml", overrides={
        "nerf.stage1.steps": args.steps, "nerf.stage2.steps": args.steps, "nerf.eval.curve_points": 1})
    splits = [(base.nerf.stage1.steps, base.nerf.stage2.steps)] + [
        (round(total * f), total - round(total * f)) for f in (0.75, 0.6, 0.5, 0.4)]
    print(f"{scene.root.name}: {args.steps} steps per stage, 1 thread; default split "
          f"{base.nerf.stage1.steps}/{base.nerf.stage2.steps}")
    print("method    s/step stage1  s/step stage2  ratio  | fit training seconds for stage1/stage2 splits")
    for method in args.methods:
        data = prepare_latent(scene, Autoencoder.from_architecture(arch, seed=0), "bench", "cpu",
                              base.nerf.posterior, base.seed)
        cfg = params.nerf.method_params[method]
        field = build_method_field(method, data, cfg, half, seed=0)
        with tempfile.TemporaryDirectory() as work:
            result = fit_scene(field, build_sampler(params.nerf, field, torch.device("cpu")), data, params.nerf,
                               cfg, 0, work)
        s1 = result.stage_seconds["latent"] / args.steps
        s2 = result.stage_seconds["rgb_align"] / args.steps
        costs = "  ".join(f"{a}/{b}: {a * s1 + b * s2:6.1f}" for a, b in splits)
        print(f"{method:9s} {s1:13.4f}  {s2:13.4f}  {s2 / s1:5.1f}  | {costs}")


if __name__ == "__main__":
    main()
