"""Per-scene NeRF fitting: ``igae fit-nerf`` (one scene x one space x one method per call)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

from igae.cli.common import log
from igae.config import load_params
from igae.errors import InputError
from igae.fields.registry import METHOD_NAMES
from igae.io import write_json_atomic


def _aabb(text: str) -> float | str:
    """``--aabb``: ``auto`` or a number (positivity is checked with the scene, as an InputError)."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None


def cmd_fit_nerf(args: argparse.Namespace) -> None:
    """One scene (``--scene``), or every scene of a set (``--scene-set``: ``--out/<scene>``), in turn."""
    from igae.nerf.run import FitJob, renders_turntable, run_fit
    from igae.train.distributed import set_threads

    params = load_params(args.params, preset=args.preset)
    threads = set_threads(args.threads if args.threads is not None else params.nerf.threads)
    if (args.scene is None) == (args.scene_set is None):
        raise InputError("give exactly one of --scene and --scene-set")
    out = Path(args.out)
    work_root = Path(args.work) if args.work else out.with_name(f".{out.name}.work")
    if args.scene is not None:
        jobs = [(Path(args.scene), out, work_root)]
    else:
        from igae.data.scene import scene_folders

        jobs = [(d, out / d.name, work_root / d.name) for d in scene_folders(args.scene_set)]
    for index, (scene_dir, scene_out, work) in enumerate(jobs):
        run_fit(FitJob(scene_dir, args.autoencoder, args.method, scene_out, work, aabb=args.aabb,
                       space_name=args.space_name, progress=not args.quiet, downscale=args.downscale,
                       allow_unbounded=args.allow_unbounded, ae_seed=args.ae_seed,
                       turntable=renders_turntable(index, params.nerf.eval)),
                params, threads, log)
    if args.scene_set is not None and work_root.is_dir() and not any(work_root.iterdir()):
        work_root.rmdir()


def cmd_tune_nerf(args: argparse.Namespace) -> None:
    """Fit the validation scenes once per value of ``tuning.param``; print the mean PSNR per value."""
    from igae.nerf.tuning import run_tuning
    from igae.train.distributed import set_threads

    params = load_params(args.params, preset=args.preset)
    threads = set_threads(params.nerf.threads)
    record = run_tuning(params, Path(args.scene_set), Path(args.autoencoders), Path(args.out), Path(args.work),
                        threads, log)
    if record["enabled"]:
        print(f"{record['param']}: mean validation PSNR per value ({len(record['scenes'])} validation scenes)")
        for entry in record["values"]:
            print(f"  {json.dumps(entry['value'])}: {entry['psnr']:.3f} dB ({entry['fits']} fits)")
        print(f"chosen: {json.dumps(record['value'])}")
    else:
        print(record["note"])
    log(f"wrote {args.out}")


def cmd_summarize_nerf(args: argparse.Namespace) -> None:
    from igae.eval.equal_time import equal_time_table
    from igae.eval.nerf_summary import (ae_seeds, check_goals, collect_fits, curves_by_space, metrics_tree,
                                        paired_summary, summarize_fits, units_label)
    from igae.io import write_text_atomic

    fits = collect_fits(args.fits)
    summary = summarize_fits(fits)
    paired, units = paired_summary(fits)
    goals = check_goals(fits)
    out = Path(args.out)
    csv = dict(index=False, float_format="%.6g")
    write_text_atomic(out / "per_fit.csv", fits.to_csv(**csv))
    write_text_atomic(out / "summary.csv", summary.to_csv(**csv))
    write_text_atomic(out / "paired.csv", paired.to_csv(**csv))
    write_text_atomic(out / "paired_units.csv", units.to_csv(**csv))
    write_text_atomic(out / "equal_time.csv", equal_time_table(fits).to_csv(**csv))
    seeds = ae_seeds(fits)
    write_json_atomic(out / "goals.json", {
        "goals": goals, "units": units_label(fits), "ae_seeds": seeds,
        "ci": {"level": 0.95, "method": "t", "over": units_label(fits)},
        **({"note": "one AE seed is one draw: the CI covers scenes, not AE training"} if len(seeds) <= 1 else {}),
        "fits": len(fits), "source": f"{args.fits}/<space>/<method>/<scene>/metrics.json"})
    write_json_atomic(out / "metrics.json", metrics_tree(summary))  # `dvc metrics show/diff`
    for space, curve in curves_by_space(fits).items():  # `dvc plots show`: one series per space
        write_text_atomic(out / "plots" / f"psnr_vs_time_{space}.csv", curve.to_csv(**csv))
    with_pd = summary.set_index(["method", "space"])[["psnr", "ssim", "train_s", "render_ms", "scenes"]]
    print(with_pd.to_string(float_format=lambda v: f"{v:.3f}"))
    log(f"wrote {out}/per_fit.csv, summary.csv, paired.csv, paired_units.csv, equal_time.csv, goals.json "
        f"({len(fits)} fits)")


def cmd_budget_study(args: argparse.Namespace) -> None:
    """Fit the IG-AE snapshots on the test scenes; print IG-AE minus standard per budget and method."""
    from igae.nerf.budget_study import run_budget_study
    from igae.train.distributed import set_threads

    params = load_params(args.params, preset=args.preset)
    threads = set_threads(params.nerf.threads)
    record = run_budget_study(params, Path(args.scene_set), Path(args.autoencoders), Path(args.fits), Path(args.out),
                              Path(args.work), threads, log)
    if "table" in record:
        print("IG-AE minus standard AE, PSNR (dB), mean [95% CI] over scenes x AE seeds, per joint-step budget:")
        for row in record["table"]:
            print(f"  {row['method']:>9} {row['joint_steps']:>6} joint steps: {row['mean']:+.3f} "
                  f"[{row['lo']:+.3f}, {row['hi']:+.3f}] (n={row['n']})")
    else:
        print(record["note"])
    log(f"wrote {args.out}")


def cmd_build_extensions(args: argparse.Namespace) -> None:
    """Load or build nerfacc's CUDA extension once (before parallel fits start) and record the outcome."""
    import os

    import torch

    from igae.fields.nerfacc_cuda import nerfacc_cuda_status

    status = nerfacc_cuda_status(wait_for_lock_s=args.wait_for_lock)
    record = {
        "nerfacc_cuda": {"available": status.available, "reason": status.reason, "build_dir": status.build_dir},
        "torch": torch.__version__, "torch_cuda": torch.version.cuda, "cuda_devices": torch.cuda.device_count(),
        "TORCH_EXTENSIONS_DIR": os.environ.get("TORCH_EXTENSIONS_DIR"),
    }
    if args.out:
        write_json_atomic(args.out, record)
    if status.available:
        log(f"nerfacc's CUDA extension is ready ({status.build_dir})")
    else:
        log(f"nerfacc's CUDA extension is unavailable: {status.reason}; occupancy sampling on CUDA uses the torch "
             f"march (nerf.occupancy.backend: auto)")
        if args.require:
            raise InputError(f"nerfacc's CUDA extension is required (--require) but unavailable: {status.reason}")


def _add_scene_set_fit_args(p: argparse.ArgumentParser, add_params_args: Callable[[argparse.ArgumentParser], None],
                            scene_set: str, outputs: str, work: str) -> None:
    """The arguments of a stage that fits a whole scene set with the pipeline's AE runs."""
    add_params_args(p)
    p.add_argument("--scene-set", required=True, help=scene_set)
    p.add_argument("--autoencoders", required=True, help="folder of the AE runs <ae>_s<seed> (results/autoencoders)")
    p.add_argument("--out", required=True, help=f"output folder (replaced whole): {outputs}")
    p.add_argument("--work", default=work,
                   help="checkpoint folder of the fits, to resume an interrupted fit (default: %(default)s)")


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
    p.add_argument("--method", required=True, help=" | ".join(METHOD_NAMES) + " (igae/fields/registry.py; hyper-parameters: nerf.method_params)")
    p.add_argument("--out", required=True, help="output folder: metrics.json, per_view.csv, curve.csv, renders/, turntable.gif, field.pt")
    p.add_argument("--work", default=None, help="checkpoint folder (default: .<out>.work beside --out); a rerun "
                   "after an interruption resumes from it; removed once the fit's outputs are written")
    p.add_argument("--space-name", default=None, help="name of the latent space in outputs (default: the AE folder's name)")
    p.add_argument("--aabb", type=_aabb, default=None,
                   help="half-size of the scene box, or 'auto': centre and scale the poses on the cameras' look-at "
                   "point and distance (recorded in metrics.json as scene_transform). Default: the scene's own box "
                   "metadata (scenes rendered here), else auto")
    p.add_argument("--downscale", type=int, default=1, help="use the images downscaled N times: nerfstudio's "
                   "images_N folders when present, else the images resized on load (default: %(default)s)")
    p.add_argument("--allow-unbounded", action="store_true", help="skip the checks that the scene is bounded and "
                   "object-centred (cameras facing one point, background at the image borders)")
    p.add_argument("--ae-seed", type=int, default=None, help="the autoencoder's seed (one of ae_seeds), recorded in "
                   "metrics.json as ae_seed so fits pair on it (default: the seed the AE folder records; none for rgb)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: nerf.threads)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_fit_nerf)

    help_ = ("Choose a fit hyper-parameter on the validation scenes: fit them once per value of tuning.param "
             "(spaces, methods: tuning) and write summary.csv and choice.json (the best mean validation PSNR).")
    p = sub.add_parser("tune-nerf", help=help_, description=help_)
    _add_scene_set_fit_args(p, add_params_args, "the validation scene set (data/scenes/validation)", "summary.csv, choice.json, fits/",
                            "results/checkpoints/tuning")
    p.set_defaults(handler=cmd_tune_nerf)

    help_ = ("Collect every fit's metrics.json into per_fit.csv, per-(space, method) means, paired differences "
             "with confidence intervals, equal-time comparisons and the goal checks.")
    p = sub.add_parser("summarize-nerf", help=help_, description=help_)
    p.add_argument("--fits", required=True, help="folder of <space>/<method>/<scene>/metrics.json (results/nerf)")
    p.add_argument("--out", required=True, help="output folder: per_fit.csv, summary.csv, paired.csv (IG-AE minus "
                   "each other space per method and metric, mean and 95%% CI over units), paired_units.csv, "
                   "equal_time.csv, goals.json, metrics.json, plots/psnr_vs_time_<space>.csv")
    p.set_defaults(handler=cmd_summarize_nerf)

    help_ = ("Budget study: fit the IG-AE snapshots (igae.snapshots) on the test scenes with budget.methods and "
             "compare each joint-step budget with the standard AE (mean, 95%% CI): budget.csv, budget.png/pdf.")
    p = sub.add_parser("budget-study", help=help_, description=help_)
    _add_scene_set_fit_args(p, add_params_args, "the test scene set (data/scenes/heldout)", "budget.json, budget.csv, budget.png/pdf, fits/",
                            "results/checkpoints/budget")
    p.add_argument("--fits", required=True, help="the workflow's fits (results/nerf): standard AE and final IG-AE")
    p.set_defaults(handler=cmd_budget_study)

    help_ = ("Load, or JIT-build, nerfacc's CUDA extension once, before fits run in parallel (it builds into "
             "$TORCH_EXTENSIONS_DIR; concurrent first builds race). Without a CUDA toolkit it records why and exits 0.")
    p = sub.add_parser("build-extensions", help=help_, description=help_)
    p.add_argument("--out", default=None, help="write the outcome here as JSON")
    p.add_argument("--wait-for-lock", type=float, default=600.0,
                   help="seconds to wait for another process's build (its lock file) to finish (default: %(default)s)")
    p.add_argument("--require", action="store_true", help="exit with an error when the extension is unavailable")
    p.set_defaults(handler=cmd_build_extensions)
