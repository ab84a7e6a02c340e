"""Per-scene NeRF fitting: ``igae fit-nerf`` (one scene x one space x one method per call)."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

from igae.config import load_params
from igae.errors import InputError
from igae.io import write_json_atomic, atomic_dir
from igae.provenance import provenance

DEFAULT_AABB_HALF = 1.5
"""Scene box half-size when neither ``--aabb`` nor the scene's metadata gives one (NeRF-synthetic's)."""


def _log(message: str) -> None:
    print(f"[igae] {message}", file=sys.stderr, flush=True)


def scene_aabb_half(scene, override: float | None) -> tuple[float, str]:
    """Half-size of the fit's box and where it came from."""
    if override is not None:
        if not override > 0:
            raise InputError(f"--aabb must be positive, got {override}")
        return float(override), "--aabb"
    box = scene.metadata.get("render", {}).get("object_box")
    if box is not None:
        return float(box) / 2.0, "scene metadata (igae.render.object_box / 2)"
    return DEFAULT_AABB_HALF, f"default {DEFAULT_AABB_HALF} (NeRF-synthetic); pass --aabb for other scenes"


def cmd_fit_nerf(args: argparse.Namespace) -> None:
    """One scene (``--scene``), or every scene of a set (``--scene-set``: ``--out/<scene>``), in turn."""
    from igae.train.distributed import set_threads

    params = load_params(args.params, preset=args.preset)
    threads = set_threads(args.threads if args.threads is not None else params.nerf.threads)
    if (args.scene is None) == (args.scene_set is None):
        raise InputError("give exactly one of --scene and --scene-set")
    if args.scene is not None:
        work = Path(args.work) if args.work else Path(args.out).with_name(f".{Path(args.out).name}.work")
        fit_one(args, params, Path(args.scene), Path(args.out), work, threads)
        return
    root = Path(args.scene_set)
    scenes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")) if root.is_dir() else []
    if not scenes:
        raise InputError("no scene folders in this scene set", root)
    work_root = Path(args.work) if args.work else Path(args.out).with_name(f".{Path(args.out).name}.work")
    for scene_dir in scenes:
        fit_one(args, params, scene_dir, Path(args.out) / scene_dir.name, work_root / scene_dir.name, threads)
    if work_root.is_dir() and not any(work_root.iterdir()):
        work_root.rmdir()


def fit_one(args: argparse.Namespace, params, scene_dir: Path, out: Path, work: Path, threads: int) -> None:
    """Fit, evaluate and write one scene's outputs (``out`` is replaced atomically)."""
    from igae.autoencoder.model import Autoencoder
    from igae.autoencoder.perceptual import load_perceptual
    from igae.data.scene import read_scene
    from igae.eval.ae_quality import summarize, write_per_image_csv
    from igae.nerf.data import prepare_latent, prepare_rgb
    from igae.nerf.evaluate import (evaluate_test_views, peak_memory_mb, render_turntable, save_gif,
                                    save_test_renders, time_rendering)
    from igae.nerf.fit import build_method_field, build_sampler, fit_scene
    from igae.nerf.memory import check_fit_memory
    from igae.nerf.overhead import Laps
    from igae.train.distributed import resolve_device

    cfg = params.nerf
    if args.method not in cfg.method_params:
        raise InputError(f"--method {args.method!r}: nerf.method_params has no entry for it "
                         f"(known: {sorted(cfg.method_params)})")
    method_cfg = cfg.method_params[args.method]
    device = resolve_device(params.training.device)
    laps = Laps(device)  # the fit's time outside training, part by part (metrics.json: overhead_seconds)
    setup_started = time.perf_counter()
    scene = read_scene(scene_dir, splits_required=("train", "test"))
    aabb_half, aabb_source = scene_aabb_half(scene, args.aabb)
    if args.autoencoder == "rgb":
        space, ae_dir = "rgb", None
        data = prepare_rgb(scene, device)
    else:
        ae_dir = Path(args.autoencoder)
        space = args.space_name or ae_dir.name
        ae = Autoencoder.load(ae_dir / "model")
        data = prepare_latent(scene, ae, space, device)
    seed = params.seed
    field = build_method_field(args.method, data, method_cfg, aabb_half, seed).to(device)
    sampler = build_sampler(cfg, field, device)
    memory_estimate = check_fit_memory(field, sampler, data, cfg)  # fails early, naming the param to lower
    laps.add("setup", time.perf_counter() - setup_started)
    _log(f"fit {args.method} in {space} space: {scene.root.name}, {len(data.train_c2w)} train / "
         f"{len(data.test_c2w)} test views, render {data.width}x{data.height}, box half {aabb_half:g} "
         f"({aabb_source}), {device}, {threads} thread(s)")
    result = fit_scene(field, sampler, data, cfg, method_cfg, seed, work, params.training.nan_policy,
                       progress=not args.quiet)

    laps.add("curve_evaluations", result.eval_seconds)
    chunk = cfg.eval.chunk or None
    with laps("load_perceptual"):
        perceptual = load_perceptual(params.autoencoder.perceptual, device=device)
    with laps("test_evaluation"):
        evaluation = evaluate_test_views(field, data, sampler, perceptual, chunk, result.final_test_render)
    with laps("render_timing"):
        timing = time_rendering(field, data, sampler, cfg.eval.timing_frames, chunk)
    with laps("turntable"):
        turntable = (render_turntable(field, data, sampler, cfg.eval.turntable_frames,
                                      cfg.eval.turntable_elevation_deg, chunk) if cfg.eval.turntable_frames else None)
    train_total = sum(result.stage_seconds.values())
    test = scene.subset("test")
    view_names = [Path(p).stem for p in test.file_paths]
    summary = summarize(evaluation.per_view)
    metrics: dict[str, Any] = {
        "scene": scene.root.name, "scene_dir": str(scene_dir), "method": args.method, "space": space,
        "autoencoder": str(ae_dir) if ae_dir else None,
        "metrics": {k: v["mean"] for k, v in summary.items()}, "metrics_summary": summary,
        "perceptual_backend": perceptual.backend, "evaluated_on": "test split of the scene (never trained on)",
        "test_views": view_names, "train_views": len(data.train_c2w),
        "image_size": [scene.width, scene.height], "render_size": [data.width, data.height], "crop": data.crop,
        "train_seconds": {**result.stage_seconds, "total": train_total},
        # Outside training: setup (scene, space, field), the curve's evaluations, the final evaluation,
        # render timing and turntable; writing the outputs below comes after this record (see the log).
        "overhead_seconds": laps.record(train_total),
        "steps": result.steps, "skipped_steps": result.skipped_steps, "resumed_from": result.resumed_from,
        "render_seconds_per_frame": timing,
        "memory": {**peak_memory_mb(device), "estimated_step_mb": {k: v / 2**20 for k, v in memory_estimate.items()
                                                                   if k != "available"}},
        "psnr_vs_time": result.curve,
        "aabb_half": aabb_half, "aabb_source": aabb_source, "threads": threads,
        "seed": seed, "preset": params.preset,
        "params": {"nerf": {k: v for k, v in cfg.model_dump().items() if k != "method_params"},
                   "method": method_cfg.model_dump()},
        "provenance": provenance(seed, device=str(device)),
    }
    with laps("write_outputs"), atomic_dir(out) as tmp:
        write_json_atomic(tmp / "metrics.json", metrics)
        write_per_image_csv(tmp / "per_view.csv", [
            {"view": name, **{k: float(v[i]) for k, v in evaluation.per_view.items()}} for i, name in enumerate(view_names)])
        write_per_image_csv(tmp / "curve.csv", [dict(r) for r in result.curve])
        save_test_renders(tmp / "renders", evaluation, data, view_names)
        if turntable is not None:
            save_gif(tmp / "turntable.gif", turntable)
        torch.save({"method": args.method, "hyper": method_cfg.hyper, "out_channels": data.channels,
                    "output_activation": data.output_activation, "aabb_half": aabb_half,
                    "state_dict": field.state_dict(), "sampler_state": getattr(sampler, "state_dict", dict)()},
                   tmp / "field.pt")
        if evaluation.latent is not None:  # for the latent-consistency figure
            torch.save({"views": view_names, "rendered": evaluation.latent, "encoded": evaluation.encoded},
                       tmp / "latents.pt")
        if data.ae is not None:  # the per-scene decoder copy (stage 2); the shared AE is untouched
            torch.save({"decoder_state_dict": {k: v for k, v in data.ae.state_dict().items()},
                        "autoencoder": str(ae_dir)}, tmp / "decoder.pt")
        if (work / "losses.csv").exists():
            (tmp / "losses.csv").write_bytes((work / "losses.csv").read_bytes())
    # Checkpoints only serve to resume an interrupted fit; the finished fit is all in `out`
    # (and a latent fit's checkpoints hold a whole AE copy with its Adam state).
    shutil.rmtree(work, ignore_errors=True)
    m = metrics["metrics"]
    _log(f"{scene.root.name} {args.method}/{space}: test PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.3f}, "
         f"{perceptual.backend} {m.get('perceptual', float('nan')):.4f}; train {metrics['train_seconds']['total']:.1f} s; "
         f"render {timing['total'] * 1e3:.1f} ms/frame (field {timing['field'] * 1e3:.1f}, decode {timing['decode'] * 1e3:.1f}); "
         f"outside training {laps.record(train_total)['total']:.1f} s ("
         + ", ".join(f"{k} {v:.1f}" for k, v in laps.seconds.items()) + ")")


def cmd_summarize_nerf(args: argparse.Namespace) -> None:
    from igae.eval.nerf_summary import check_goals, collect_fits, curves_by_space, metrics_tree, summarize_fits
    from igae.io import write_text_atomic

    fits = collect_fits(args.fits)
    summary = summarize_fits(fits)
    goals = check_goals(summary)
    out = Path(args.out)
    write_text_atomic(out / "per_fit.csv", fits.to_csv(index=False, float_format="%.6g"))
    write_text_atomic(out / "summary.csv", summary.to_csv(index=False, float_format="%.6g"))
    write_json_atomic(out / "goals.json", {"goals": goals, "fits": len(fits),
                                           "source": f"{args.fits}/<space>/<method>/<scene>/metrics.json"})
    write_json_atomic(out / "metrics.json", metrics_tree(summary))  # `dvc metrics show/diff`
    for space, curve in curves_by_space(fits).items():  # `dvc plots show`: one series per space
        write_text_atomic(out / "plots" / f"psnr_vs_time_{space}.csv", curve.to_csv(index=False, float_format="%.6g"))
    with_pd = summary.set_index(["method", "space"])[["psnr", "ssim", "train_s", "render_ms", "scenes"]]
    print(with_pd.to_string(float_format=lambda v: f"{v:.3f}"))
    _log(f"wrote {out}/per_fit.csv, summary.csv, goals.json ({len(fits)} fits)")


def register(sub: argparse._SubParsersAction, add_params_args: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``fit-nerf`` to the ``igae`` parser."""
    help_ = ("Fit one NeRF method to one scene, in RGB or in an autoencoder's latent space, and evaluate it "
             "on the scene's test views.")
    p = sub.add_parser("fit-nerf", help=help_, description=help_)
    add_params_args(p)
    p.add_argument("--scene", default=None, help="scene folder: nerfstudio transforms.json or NeRF-synthetic transforms_*.json")
    p.add_argument("--scene-set", default=None, help="instead of --scene: fit every scene folder in this folder, "
                   "one after the other, into --out/<scene>")
    p.add_argument("--autoencoder", required=True, help="an AE output folder (with model/), or 'rgb' for the RGB baseline")
    p.add_argument("--method", required=True, help="vanilla | ngp | kplanes | triplane (hyper-parameters: nerf.method_params)")
    p.add_argument("--out", required=True, help="output folder: metrics.json, per_view.csv, curve.csv, renders/, turntable.gif, field.pt")
    p.add_argument("--work", default=None, help="checkpoint folder (default: .<out>.work beside --out); a rerun "
                   "after an interruption resumes from it; removed once the fit's outputs are written")
    p.add_argument("--space-name", default=None, help="name of the latent space in outputs (default: the AE folder's name)")
    p.add_argument("--aabb", type=float, default=None, help="half-size of the scene box (default: from the scene, else 1.5)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: nerf.threads)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_fit_nerf)

    help_ = "Collect every fit's metrics.json into per_fit.csv, per-(space, method) means and the goal checks."
    p = sub.add_parser("summarize-nerf", help=help_, description=help_)
    p.add_argument("--fits", required=True, help="folder of <space>/<method>/<scene>/metrics.json (results/nerf)")
    p.add_argument("--out", required=True, help="output folder: per_fit.csv, summary.csv, goals.json, metrics.json, "
                   "plots/psnr_vs_time_<space>.csv")
    p.set_defaults(handler=cmd_summarize_nerf)
