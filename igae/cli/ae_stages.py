"""Autoencoder stages: the standard AE, IG-AE, the fine-tuning ablation, AE-quality evaluation."""

from __future__ import annotations

import argparse
import copy
import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from igae.cli.common import log
from igae.config import FINETUNE_JOINT_KEYS, Params, load_params
from igae.errors import InputError
from igae.io import atomic_dir, save_png_atomic, sha256_file, write_json_atomic
from igae.provenance import provenance

if TYPE_CHECKING:  # torch loads in the handlers: `igae check-params` and `--help` stay quick
    import torch


def _stage_params(args: argparse.Namespace) -> Params:
    """The params, with ``seed`` replaced by the stage's AE seed (``--seed``) when one is given."""
    return load_params(args.params, preset=args.preset, overrides=None if args.seed is None else {"seed": args.seed})


def _setup(args: argparse.Namespace) -> tuple[Params, torch.device, Any]:
    """Params, device and data-parallel context; re-launches under torch.distributed.run
    when ``training.processes`` > 1 and this process was not started by it."""
    import torch

    from igae.train.distributed import init_distributed, resolve_device, set_threads
    from igae.train.precision import configure_precision

    params = _stage_params(args)
    procs = params.training.processes
    if procs > 1 and "WORLD_SIZE" not in os.environ:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
               "-m", "igae", *sys.argv[1:]]
        log(f"launching {procs} data-parallel processes")
        raise SystemExit(subprocess.call(cmd))
    set_threads(params.training.threads)
    device = resolve_device(params.training.device, params.training.jobs_per_gpu)
    return params, device, init_distributed(device, configure_precision(params.training.precision, device))


def _load_stage_ae(folder: str | Path, params: Params, calibration_views: Callable[[], tuple[list[torch.Tensor], str]] | None = None):
    """The AE that ``--ae`` names (see ``open_autoencoder``: an AE stage's or import-ae's output, or a
    plain diffusers folder, calibrated on ``calibration_views()`` when its scale is auto).

    The latent channels of an AE trained here from ``autoencoder.architecture`` must be those
    params describe (a stale output otherwise); an imported or pretrained AE keeps its own.
    """
    from igae.autoencoder.importing import MODEL_SUBDIR, ORIGIN_TRAINED, open_autoencoder, origin_of

    cfg = params.autoencoder
    ae = open_autoencoder(folder, cfg.normalizer_scale, cfg.normalizer_target_std, cfg.normalizer_calibration_images,
                          calibration_views)
    expected = cfg.architecture.latent_channels
    if origin_of(ae) == ORIGIN_TRAINED and cfg.pretrained is None and ae.latent_channels != expected:
        where = Path(folder) / MODEL_SUBDIR if (Path(folder) / MODEL_SUBDIR).is_dir() else folder
        raise InputError(f"the autoencoder has {ae.latent_channels} latent channels but params "
                         f"autoencoder.architecture.latent_channels is {expected}; an AE trained here from "
                         "autoencoder.architecture must match it (retrain it or fix the params; an AE brought in "
                         "with igae import-ae keeps its own channels)", where)
    return ae


def _lazy_training_data(args: argparse.Namespace):
    """``load()`` -> (views, photos), read once, on first call (after the AE loaded, so a bad
    AE folder is reported first), and ``views()`` -> ``([views.images], description)`` to calibrate on."""
    load = functools.cache(lambda: _load_training_data(args))
    return load, lambda: ([load()[0].images], f"training-scene views ({args.scenes})")


def _latent_metadata(ae, views: torch.Tensor, params: Params, inherited: dict[str, Any] | None = None) -> dict[str, Any]:
    """``latent_stats`` (raw and normalised latent std) of ``ae`` on its training views, plus what it inherited."""
    from igae.autoencoder.calibration import measure_latents

    stats = measure_latents(ae, [views], params.autoencoder.normalizer_calibration_images)
    log(f"latents on training views: raw std {stats['raw_std']:.4g}, normalised std {stats['normalized_std']:.4g} "
        f"(s = {ae.normalizer.scale:g})")
    return {**(inherited or {}), "latent_stats": stats}


def _load_training_data(args: argparse.Namespace):
    from igae.data.photos import read_photo_set
    from igae.train.data import load_view_bank

    return load_view_bank(args.scenes, "train"), read_photo_set(args.photos, "train")


TrainBody = Callable[[Params, "torch.device", Any], tuple[Any, dict[str, Any], "Callable[[Path], None] | None"]]
"""``(params, device, ctx) -> (ae, metadata, extra)``: one AE stage's training; ``extra(tmp)`` writes
files beside the model (or None)."""


def _run_ae_stage(args: argparse.Namespace, name: str, recorded: dict[str, Callable[[Params], Any]],
                  train: TrainBody) -> None:
    """The skeleton of every AE training stage: set up, train, then (main process) write
    ``--out`` atomically with metadata naming the params the stage read and the data it used."""
    from igae.train.distributed import shutdown_distributed

    params, device, ctx = _setup(args)
    ae, info, extra = train(params, device, ctx)
    if ctx.is_main:  # after training: a bad --ae folder is reported before a missing manifest
        checksums = {str(p): sha256_file(p) for p in (Path(args.scenes) / "manifest.json",
                                                      Path(args.photos) / "manifest.json")}
        meta = {"name": name, "preset": params.preset, "seed": params.seed,
                "params": {key: value(params) for key, value in recorded.items()}, **info, "data_sha256": checksums}
        _write_ae_output(args.out, ae, meta, Path(args.work) / "losses.csv", extra)
    shutdown_distributed()


def _dump(section: str) -> Callable[[Params], Any]:
    return lambda params: getattr(params, section).model_dump()


def cmd_train_ae(args: argparse.Namespace) -> None:
    def train(params: Params, device: torch.device, ctx: Any):
        from igae.autoencoder.calibration import resolve_normalizer
        from igae.autoencoder.importing import ORIGIN_PRETRAINED, ORIGIN_TRAINED, import_autoencoder
        from igae.autoencoder.model import AEArchitecture, Autoencoder
        from igae.autoencoder.perceptual import load_perceptual
        from igae.train.standard_ae import train_standard_ae

        cfg = params.autoencoder
        load, views = _lazy_training_data(args)
        if cfg.pretrained is not None:
            ae = import_autoencoder(cfg.pretrained, cfg.normalizer_scale, cfg.normalizer_target_std, views,
                                    cfg.normalizer_calibration_images, origin=ORIGIN_PRETRAINED)
            info = {"trained_here": False, "pretrained": cfg.pretrained, **ae.metadata}
        else:
            a = cfg.architecture
            arch = AEArchitecture(tuple(a.block_out_channels), a.layers_per_block, a.latent_channels, a.norm_num_groups)
            ae = Autoencoder.from_architecture(arch, seed=params.seed,
                                               initial_logvar=params.train_ae.initial_logvar).to(device)
            bank, photos = load()
            perceptual = load_perceptual(cfg.perceptual, device=device)
            log(f"standard AE: {sum(p.numel() for p in ae.parameters()) / 1e6:.2f}M parameters, "
                f"{len(bank)} scene views + {len(photos)} photos, perceptual {perceptual.backend}")
            result = train_standard_ae(ae, bank.images, photos, params.train_ae, perceptual, params.seed,
                                       Path(args.work), params.training.nan_policy, ctx)
            info = {"trained_here": True, "origin": ORIGIN_TRAINED, "steps": params.train_ae.steps,
                    "skipped_steps": result.skipped_steps, "resumed_from": result.resumed_from,
                    "perceptual_backend": perceptual.backend}
            if ctx.is_main:  # s from the trained AE's latents of its training views (one calibration function)
                record = resolve_normalizer(ae, cfg.normalizer_scale, cfg.normalizer_target_std, *views(),
                                            max_images=cfg.normalizer_calibration_images)
                info.update(normalizer_calibration=record, latent_stats=record["latent_stats"])
        if ctx.is_main:
            stats = info["latent_stats"]
            log(f"normaliser s = {ae.normalizer.scale:g} ({info['normalizer_calibration']['method']}); "
                f"raw latent std {stats['raw_std']:.4g}, normalised std {stats['normalized_std']:.4g}")
        return ae, info, None

    _run_ae_stage(args, "standard", {k: _dump(k) for k in ("autoencoder", "train_ae", "training")}, train)


def _start_from_ae(args: argparse.Namespace, params: Params, device: torch.device):
    """What the stages that start from ``--ae`` (fine-tuning, IG-AE) load, in this order: the AE (so a
    bad AE folder is reported first), what its metadata passes on, the training data, the perceptual metric.

    Returns:
        ``(ae, inherited metadata, view bank, photos, perceptual)``.
    """
    from igae.autoencoder.importing import inherited_metadata
    from igae.autoencoder.perceptual import load_perceptual

    load, views = _lazy_training_data(args)
    ae = _load_stage_ae(args.ae, params, views).to(device)
    inherited = inherited_metadata(ae, args.ae)
    bank, photos = load()
    return ae, inherited, bank, photos, load_perceptual(params.autoencoder.perceptual, device=device)


def cmd_finetune_ae(args: argparse.Namespace) -> None:
    def train(params: Params, device: torch.device, ctx: Any):
        from igae.train.standard_ae import finetune_ae

        ae, inherited, bank, photos, perceptual = _start_from_ae(args, params, device)
        result = finetune_ae(ae, bank.images, photos, params.igae.joint, perceptual, params.seed, args.work,
                             params.igae.checkpoint_every, params.training.nan_policy, ctx)
        info = {"start": str(args.ae), "steps": params.igae.joint.steps, "skipped_steps": result.skipped_steps,
                "resumed_from": result.resumed_from, "perceptual_backend": perceptual.backend}
        if ctx.is_main:
            info = {**_latent_metadata(ae, bank.images, params, inherited), **info}
        return ae, info, None

    recorded = {k: _dump(k) for k in ("autoencoder", "training")}
    recorded["igae.joint"] = lambda p: {k: getattr(p.igae.joint, k) for k in FINETUNE_JOINT_KEYS}
    recorded["igae.checkpoint_every"] = lambda p: p.igae.checkpoint_every
    _run_ae_stage(args, "finetuned", recorded, train)


def cmd_train_igae(args: argparse.Namespace) -> None:
    import torch

    def train(params: Params, device: torch.device, ctx: Any):
        from igae.train.igae_trainer import make_triplane_field, save_field, snapshot_files, train_igae

        ae, inherited, bank, photos, perceptual = _start_from_ae(args, params, device)
        field = make_triplane_field(bank.num_scenes, params.igae.triplane, ae.latent_channels,
                                    params.scenes.object_box, params.seed)
        log(f"IG-AE: {bank.num_scenes} tri-plane scenes, {len(bank)} views, {len(photos)} photos, "
            f"perceptual {perceptual.backend}")
        result = train_igae(ae, field, bank, photos, params.igae, perceptual, params.seed, args.work,
                            params.training.nan_policy, ctx)

        def extra(tmp: Path) -> None:
            save_field(tmp / "triplanes.pt", field, params.igae.triplane, {"scenes": bank.scene_names, "seed": params.seed})
            _save_training_renders(tmp / "renders", ae, field, bank, params)
            # Budget study: the AE after k joint steps, an AE folder of its own (fit-nerf --autoencoder);
            # index.json always, so the folder is an output under both executors even without snapshots.
            write_json_atomic(tmp / "snapshots" / "index.json", {"joint_steps": sorted(params.igae.snapshots)})
            for k, path in snapshot_files(args.work, params.igae.snapshots).items():
                snap = copy.deepcopy(ae).cpu()
                snap.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
                snap.save(tmp / "snapshots" / f"joint_{k}" / "model",
                          metadata={**inherited, "name": "igae", "start": str(args.ae), "seed": params.seed,
                                    "snapshot_joint_steps": k})

        info = {"start": str(args.ae), "skipped_steps": result.skipped_steps, "resumed_from": result.resumed_from,
                "perceptual_backend": perceptual.backend, "scenes": bank.scene_names}
        if ctx.is_main:
            info = {**_latent_metadata(ae, bank.images, params, inherited), **info}
        return ae, info, extra

    recorded = {k: _dump(k) for k in ("autoencoder", "igae", "training")}
    recorded["scenes.object_box"] = lambda p: p.scenes.object_box
    _run_ae_stage(args, "igae", recorded, train)


def _save_training_renders(folder: Path, ae, field, bank, params: Params) -> None:
    """Per scene: ground truth (top row) above decoded tri-plane renders (bottom row)."""
    import torch

    from igae.train.igae_trainer import decoded_renders

    for s in range(min(params.igae.render_scenes, bank.num_scenes)):
        views = torch.nonzero(bank.scene_index == s).flatten()[:4]
        pred = decoded_renders(ae, field, bank, views, params.igae.triplane)
        grid = torch.cat([torch.cat(list(bank.images[views]), dim=2), torch.cat(list(pred), dim=2)], dim=1)
        save_png_atomic(folder / f"{bank.scene_names[s]}.png", grid.permute(1, 2, 0).numpy())


def _write_ae_output(out: str, ae, meta: dict[str, Any], losses: Path | None,
                     extra: Callable[[Path], None] | None = None) -> None:
    """``out/model`` (diffusers format + igae_autoencoder.json), ``out/losses.csv``, extras; atomically."""
    from igae.autoencoder.importing import MODEL_SUBDIR

    with atomic_dir(out) as tmp:
        ae.save(tmp / MODEL_SUBDIR, metadata=meta)
        if losses is not None and losses.exists():
            shutil.copyfile(losses, tmp / "losses.csv")
        else:  # a pretrained AE that was not trained here
            (tmp / "losses.csv").write_text("step,phase\n")
        if extra is not None:
            extra(tmp)
    log(f"wrote {out}")


def cmd_eval_ae(args: argparse.Namespace) -> None:
    import torch

    from igae.autoencoder.perceptual import load_perceptual
    from igae.data.photos import read_photo_set
    from igae.eval.ae_quality import evaluate_autoencoder, triplane_fit_quality
    from igae.train.data import load_view_bank
    from igae.train.distributed import resolve_device, set_threads
    from igae.train.precision import configure_precision

    params = _stage_params(args)
    set_threads(params.training.threads)
    device = resolve_device(params.training.device, params.training.jobs_per_gpu)
    configure_precision(params.training.precision, device)  # TF32 switches, stated explicitly
    ae = _load_stage_ae(args.ae, params).to(device)
    perceptual = load_perceptual(params.autoencoder.perceptual, device=device)
    limit = params.eval_ae.max_images
    photos = read_photo_set(args.photos, "test")[:limit]
    heldout = load_view_bank(args.heldout, "train")  # held-out scenes: never seen by any AE
    pick = torch.linspace(0, len(heldout) - 1, min(limit, len(heldout))).round().long().unique()
    sets = {
        "photos_test": (photos, [f"photo_{i:03d}" for i in range(len(photos))]),
        "heldout_scene_views": (heldout.images[pick], [f"{heldout.scene_names[heldout.scene_index[i]]}/view_{int(i)}" for i in pick]),
    }
    meta = {"autoencoder": args.name, "ae_folder": str(args.ae), "seed": params.seed,
            "provenance": provenance(params.seed, device=str(device)), **_eval_latent_stats(ae, sets, limit)}
    triplanes = Path(args.ae) / "triplanes.pt"
    if triplanes.exists() and args.scenes:
        meta["triplane_fit_training_views"] = triplane_fit_quality(ae, triplanes, args.scenes, limit,
                                                                   params.scenes.object_box, perceptual)
    result = evaluate_autoencoder(ae, sets, perceptual, args.out, meta)
    for set_name, m in result["metrics"].items():
        log(f"{args.name} {set_name}: PSNR {m['psnr']['mean']:.2f} dB, SSIM {m['ssim']['mean']:.3f}, "
            f"{result['perceptual_backend']} {m.get('perceptual', {}).get('mean', float('nan')):.4f}")
    if "triplane_fit_training_views" in meta:
        log(f"{args.name} tri-plane fit on training views: PSNR {meta['triplane_fit_training_views']['psnr']['mean']:.2f} dB")


def _eval_latent_stats(ae, sets: dict[str, tuple[torch.Tensor, list[str]]], limit: int) -> dict[str, Any]:
    """The AE's normaliser and its raw / normalised latent statistics, on each evaluation set and on its
    training views (as recorded when it was made), for ``metrics.json``."""
    from igae.autoencoder.calibration import measure_latents

    per_set = {name: measure_latents(ae, [images], limit) for name, (images, _) in sets.items()}
    for name, stats in per_set.items():
        log(f"{name}: raw latent std {stats['raw_std']:.4g}, normalised std {stats['normalized_std']:.4g} "
             f"(s = {ae.normalizer.scale:g})")
    return {"normalizer": {"scale": ae.normalizer.scale, "eps": ae.normalizer.eps,
                           "calibration": ae.metadata.get("normalizer_calibration")},
            "latent_stats": per_set, "latent_stats_training_views": ae.metadata.get("latent_stats")}


def register(sub: argparse._SubParsersAction, add_params_args: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the autoencoder subcommands to the ``igae`` parser."""

    def add(name: str, handler, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        add_params_args(p)
        p.add_argument("--seed", type=int, default=None,
                       help="the AE seed (one of ae_seeds): used instead of params' seed wherever this stage draws "
                       "(init, batches, samples) and recorded in its outputs (default: params' seed)")
        p.set_defaults(handler=handler)
        return p

    def data_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--scenes", required=True, help="training scene set (data/scenes/train)")
        p.add_argument("--photos", required=True, help="photo set (data/photos)")
        p.add_argument("--out", required=True, help="output folder: model/ (diffusers format), losses.csv, ...")
        p.add_argument("--work", required=True, help="checkpoint folder; a rerun resumes from it")

    p = add("train-ae", cmd_train_ae,
            "Train the standard AE from scratch on photos + training-scene views (or take autoencoder.pretrained).")
    data_args(p)
    p = add("finetune-ae", cmd_finetune_ae,
            "Ablation: fine-tune the standard AE with IG-AE's autoencoding losses only (no tri-planes).")
    p.add_argument("--ae", required=True, help="the standard AE's output folder")
    data_args(p)
    p = add("train-igae", cmd_train_igae,
            "Train IG-AE: tri-plane warm-up on cached latents, then joint training of AE + tri-planes.")
    p.add_argument("--ae", required=True, help="the standard AE's output folder (IG-AE starts from it)")
    data_args(p)
    p = add("eval-ae", cmd_eval_ae,
            "Reconstruction PSNR/SSIM/perceptual of an AE on held-out photos and held-out scene views "
            "(and, for IG-AE, the tri-plane fit on training views).")
    p.add_argument("--ae", required=True, help="an AE output folder (with model/)")
    p.add_argument("--name", required=True, help="name in tables, e.g. standard, finetuned, igae")
    p.add_argument("--photos", required=True, help="photo set (its test split is used)")
    p.add_argument("--heldout", required=True, help="held-out scene set (data/scenes/heldout)")
    p.add_argument("--scenes", default=None, help="training scene set, for the tri-plane fit of IG-AE")
    p.add_argument("--out", required=True, help="output folder: metrics.json, per_image.csv")
