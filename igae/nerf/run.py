"""One per-scene fit from files to a fit folder: read the scene, prepare the space, fit, evaluate, write.

``igae fit-nerf`` is argument handling around :func:`run_fit`; the folder it writes is described
in :mod:`igae.nerf.artifact`.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from igae.config import WORKFLOW_NERF_KEYS, NerfEvalParams, Params
from igae.errors import InputError
from igae.provenance import provenance

DEFAULT_AABB_HALF = 1.5
"""Scene box half-size when neither ``--aabb`` nor the scene's metadata gives one (NeRF-synthetic's)."""


@dataclass
class FitJob:
    """One fit: which scene, space and method, and where the outputs go.

    Attributes:
        scene_dir: a nerfstudio or NeRF-synthetic scene folder.
        autoencoder: an AE output folder (with ``model/``), or ``"rgb"``.
        method: a NeRF method name (``nerf.method_params`` holds its settings).
        out: the fit folder (replaced atomically); work: checkpoint folder, removed at the end.
        aabb: half-size of the scene box, ``"auto"``, or ``None``: from the scene's metadata,
            else auto (see :func:`scene_aabb_half`).
        space_name: the latent space's name in outputs (default: the AE folder's name).
        progress: show a progress bar.
        downscale: read ``images_N`` (nerfstudio's downscaled copies), see :func:`igae.data.scene.read_scene`.
        allow_unbounded: skip the bounded-scene checks (:func:`igae.data.scene_box.check_bounded`).
        ae_seed: the AE's seed (one of ``ae_seeds``), recorded in ``metrics.json`` so fits pair on it;
            None: the seed the AE folder records, if any (an RGB fit has none).
        turntable: render the orbit GIF (``nerf.eval.turntable_frames``); see :func:`renders_turntable`.
    """

    scene_dir: Path
    autoencoder: str
    method: str
    out: Path
    work: Path
    aabb: float | str | None = None
    space_name: str | None = None
    progress: bool = True
    downscale: int = 1
    allow_unbounded: bool = False
    ae_seed: int | None = None
    turntable: bool = True


def renders_turntable(scene_index: int, eval_cfg: NerfEvalParams) -> bool:
    """Whether the fit of a scene set's ``scene_index``-th scene (name order, from 0) renders the turntable:
    ``nerf.eval.turntable_scenes`` (None: every scene; at least 1, so a single ``--scene`` fit, index 0, does)."""
    return eval_cfg.turntable_scenes is None or scene_index < eval_cfg.turntable_scenes


def scene_aabb_half(scene, override: float | str | None) -> tuple[float | None, str]:
    """Half-size of the fit's box and where it came from; ``None`` means :func:`auto_scene_box`.

    ``override``: a positive number (``--aabb 1.5``), ``"auto"``, or ``None`` (the scene's
    metadata, ``igae.render.object_box / 2``, when it has one, else auto).
    """
    if override == "auto":
        return None, "--aabb auto: cameras' look-at point and distance"
    if override is not None:
        if not float(override) > 0:
            raise InputError(f"--aabb must be positive or 'auto', got {override}")
        return float(override), "--aabb"
    box = scene.metadata.get("render", {}).get("object_box")
    if box is not None:
        return float(box) / 2.0, "scene metadata (igae.render.object_box / 2)"
    return None, "auto (the scene has no box metadata): cameras' look-at point and distance"


def place_scene(scene, job: "FitJob") -> tuple[Any, float, str, dict[str, Any] | None]:
    """Check the scene is bounded and put it in the fit's frame.

    Returns:
        The scene (cameras moved into the fit's frame when the box is automatic), the box
        half-size, where it came from, and the scene transform record (``None``: identity).

    Raises:
        UnboundedSceneError: outward-looking or forward-facing cameras, or content up to the image
            borders (unless ``job.allow_unbounded``).
    """
    from igae.data.scene_box import apply_transform, auto_scene_box, check_bounded

    train = scene.subset("train")
    if not job.allow_unbounded:
        check_bounded(train.camera_to_world, train.intrinsics, scene.width, scene.height, train.images,
                      scene.background)
    aabb_half, source = scene_aabb_half(scene, job.aabb)
    if aabb_half is not None:
        return scene, aabb_half, source, None
    box = auto_scene_box(train.camera_to_world, train.intrinsics, scene.width, scene.height)
    moved = dataclasses.replace(scene, camera_to_world=apply_transform(box.transform, scene.camera_to_world))
    return moved, box.aabb_half, source, box.record()


def fit_ae_seed(given: int | None, recorded: Any, ae_dir: Path) -> int | None:
    """The AE seed a latent fit records: ``--ae-seed`` (``given``) or the seed the AE folder records.

    Raises:
        InputError: both exist and differ (the fit would be paired with another seed's fits).
    """
    if given is not None and isinstance(recorded, int) and recorded != given:
        raise InputError(f"--ae-seed {given}, but this autoencoder records seed {recorded}", ae_dir)
    return given if given is not None else (recorded if isinstance(recorded, int) else None)


def run_fit(job: FitJob, params: Params, threads: int, log: Callable[[str], None] = lambda message: None
            ) -> dict[str, Any]:
    """Fit, evaluate and write one scene's fit folder; returns its ``metrics.json`` content.
    ``log`` gets one progress line before and one after the fit."""
    from igae.autoencoder.importing import open_autoencoder
    from igae.autoencoder.latents import encode_latents
    from igae.autoencoder.perceptual import load_perceptual
    from igae.data.scene import read_scene
    from igae.eval.ae_quality import reconstruction_metrics, summarize
    from igae.io import check_replaceable
    from igae.nerf.artifact import FIT_ENTRIES, METRICS_FILE, FieldSpec, SamplerSpec, write_fit
    from igae.nerf.data import ENCODE_BATCH, prepare_latent, prepare_rgb
    from igae.nerf.evaluate import (evaluate_test_views, peak_memory_mb, render_turntable, reset_peak_memory,
                                    save_test_renders, time_rendering)
    from igae.nerf.fit import build_method_field, build_sampler, fit_scene
    from igae.nerf.memory import check_fit_memory
    from igae.nerf.overhead import Laps
    from igae.train.distributed import resolve_device
    from igae.train.precision import configure_precision

    cfg = params.nerf
    if job.method not in cfg.method_params:
        raise InputError(f"--method {job.method!r}: nerf.method_params has no entry for it "
                         f"(known: {sorted(cfg.method_params)})")
    method_cfg = cfg.method_params[job.method]
    # Before hours of fitting: never replace a folder we did not write. A fit folder without its
    # metrics.json is accepted when it holds only a fit's entries: Snakemake deletes a job's declared
    # outputs (the metrics.json files) before it reruns the job.
    check_replaceable(job.out, METRICS_FILE, owned=FIT_ENTRIES)
    device = resolve_device(params.training.device, params.training.jobs_per_gpu)
    precision = configure_precision(params.training.precision, device)
    peak_reset = reset_peak_memory(device)  # this fit's peaks, not those of earlier fits in this process
    laps = Laps(device)  # the fit's time outside training, part by part (metrics.json: overhead_seconds)
    setup_started = time.perf_counter()
    scene = read_scene(job.scene_dir, splits_required=("train", "test"), downscale=job.downscale)
    scene, aabb_half, aabb_source, scene_transform = place_scene(scene, job)
    ae = None  # the shared AE (latent fits): its own reconstruction is the fit's ceiling
    if job.autoencoder == "rgb":
        if job.ae_seed is not None:
            raise InputError(f"--ae-seed {job.ae_seed}: an RGB fit uses no autoencoder")
        space, ae_dir, ae_seed = "rgb", None, None
        data = prepare_rgb(scene, device)
    else:
        ae_dir = Path(job.autoencoder)
        space = job.space_name or ae_dir.name
        a = params.autoencoder  # a plain diffusers folder is imported here, its scale calibrated on this scene's train views
        ae = open_autoencoder(ae_dir, a.normalizer_scale, a.normalizer_target_std, a.normalizer_calibration_images,
                              lambda: ([scene.subset("train").images], f"training views of {scene.root}"))
        ae_seed = fit_ae_seed(job.ae_seed, ae.metadata.get("seed"), ae_dir)
        data = prepare_latent(scene, ae, space, device, cfg.posterior, params.seed)
    seed = params.seed
    field = build_method_field(job.method, data, method_cfg, aabb_half, seed).to(device)
    sampler = build_sampler(cfg, field, device)
    memory_estimate = check_fit_memory(field, sampler, data, cfg)  # fails early, naming the param to lower
    laps.add("setup", time.perf_counter() - setup_started)
    log(f"fit {job.method} in {space} space: {scene.root.name}, {len(data.train_c2w)} train / "
         f"{len(data.test_c2w)} test views, render {data.width}x{data.height}, box half {aabb_half:g} "
         f"({aabb_source}), {device}, {threads} thread(s)")
    result = fit_scene(field, sampler, data, cfg, method_cfg, seed, job.work, params.training.nan_policy,
                       progress=job.progress, precision=precision)

    laps.add("curve_evaluations", result.eval_seconds)
    chunk = cfg.eval.chunk or None
    with laps("load_perceptual"):
        perceptual = load_perceptual(params.autoencoder.perceptual, device=device)
    raw_test = encoded_test = None
    with laps("test_evaluation"):
        if ae is not None:  # encoded once: the exported test latents and the AE ceiling's input
            raw_test = encode_latents(ae.to(device), data.test_images, ENCODE_BATCH).to(device)
            encoded_test = ae.normalizer.normalize(raw_test)
        evaluation = evaluate_test_views(field, data, sampler, perceptual, chunk, result.final_test_render,
                                         encoded_test)
    ceiling = None
    if ae is not None:
        # What a latent NeRF cannot beat by much: the shared AE's encode -> decode (posterior mean; no
        # per-scene decoder fine-tuning) of the same test views, cropped as the NeRF's are.
        with laps("ae_ceiling"):
            ceiling = summarize(reconstruction_metrics(ae, data.test_images, perceptual, latents=raw_test))
    equal_time = None
    if result.equal_time is not None:
        et = result.equal_time
        laps.add("equal_time_evaluation", et.eval_seconds)
        with laps("equal_time_evaluation"):
            et_summary = summarize(evaluate_test_views(field, data, sampler, perceptual, chunk,
                                                       et.final_test_render, encoded_test).per_view)
        equal_time = {
            "extra_stage2_steps": et.extra_steps, "steps": {**result.steps, "rgb_align_extra": et.extra_steps},
            "train_seconds": {"scheduled": sum(result.stage_seconds.values()), "extra": et.train_seconds,
                              "total": sum(result.stage_seconds.values()) + et.train_seconds},
            "metrics": {k: v["mean"] for k, v in et_summary.items()}, "metrics_summary": et_summary,
            "resumed_from": et.resumed_from,
        }
    with laps("render_timing"):
        timing = time_rendering(field, data, sampler, cfg.eval.timing_frames, chunk)
    with laps("turntable"):
        turntable = (render_turntable(field, data, sampler, cfg.eval.turntable_frames, cfg.eval.turntable_elevation_deg,
                                      chunk) if cfg.eval.turntable_frames and job.turntable else None)
    train_total = sum(result.stage_seconds.values())
    test = scene.subset("test")
    view_names = [Path(p).stem for p in test.file_paths]
    summary = summarize(evaluation.per_view)
    metrics: dict[str, Any] = {
        "scene": scene.root.name, "scene_dir": str(job.scene_dir), "method": job.method, "space": space,
        "autoencoder": str(ae_dir) if ae_dir else None, "ae_seed": ae_seed,
        "normalizer": None if data.ae is None else {"scale": data.ae.normalizer.scale, "eps": data.ae.normalizer.eps},
        "metrics": {k: v["mean"] for k, v in summary.items()}, "metrics_summary": summary,
        "perceptual_backend": perceptual.backend, "evaluated_on": "test split of the scene (never trained on)",
        "test_views": view_names, "train_views": len(data.train_c2w),
        "image_size": [scene.width, scene.height], "render_size": [data.width, data.height], "crop": data.crop,
        "train_seconds": {**result.stage_seconds, "total": train_total},
        # Outside training: setup (scene, space, field), the curve's evaluations, the final evaluation,
        # render timing and turntable; writing the outputs comes after this record (see the log).
        "overhead_seconds": laps.record(train_total),
        "steps": result.steps, "skipped_steps": result.skipped_steps, "resumed_from": result.resumed_from,
        "render_seconds_per_frame": timing,
        "memory": {**peak_memory_mb(device, since_reset=peak_reset), "estimated_step_mb": {k: v / 2**20 for k, v in memory_estimate.items()
                                                                   if k != "available"}},
        "psnr_vs_time": result.curve,
        **({"ae_ceiling": {"metrics": {k: v["mean"] for k, v in ceiling.items()}, "metrics_summary": ceiling,
                           "evaluated_on": "the test views and crop of the NeRF metrics; the shared AE's encode -> "
                                           "decode (posterior mean), before any per-scene decoder fine-tuning"}}
           if ceiling is not None else {}),
        # The same fit continued to an equal wall-clock budget (nerf.equal_time); the rest of this file is
        # the equal-steps fit's.
        **({"equal_time": equal_time} if equal_time is not None else {}),
        "aabb_half": aabb_half, "aabb_source": aabb_source, "threads": threads,
        "occupancy_backend": getattr(sampler, "backend", None), "precision": precision,
        **({"scene_transform": scene_transform} if scene_transform is not None else {}),
        **({"downscale": job.downscale} if job.downscale != 1 else {}),
        "seed": seed, "preset": params.preset,
        # What the fit read (the stage table's fit params): not which other fits the workflow runs.
        "params": {"nerf": cfg.model_dump(exclude=set(WORKFLOW_NERF_KEYS)),
                   "method": method_cfg.model_dump()},
        "provenance": provenance(seed, device=str(device)),
    }
    spec = FieldSpec(method=job.method, hyper=dict(method_cfg.hyper), out_channels=data.channels,
                     output_activation=data.output_activation, aabb_half=aabb_half,
                     background=[float(v) for v in data.background.cpu()], sampler=SamplerSpec.from_params(cfg),
                     scene_transform=None if scene_transform is None else scene_transform["matrix"])
    per_view = [{"view": name, **{k: float(v[i]) for k, v in evaluation.per_view.items()}}
                for i, name in enumerate(view_names)]
    latents = ({"views": view_names, "rendered": evaluation.latent, "encoded": evaluation.encoded}
               if evaluation.latent is not None else None)
    with laps("write_outputs"):
        write_fit(job.out, metrics, spec, field, sampler, data.ae, ae_dir, per_view, result.curve,
                  lambda folder: save_test_renders(folder, evaluation, data, view_names), turntable, latents,
                  Path(job.work) / "losses.csv")
    # Checkpoints only serve to resume an interrupted fit; the finished fit is all in `out`
    # (and a latent fit's checkpoints hold a whole AE copy with its Adam state).
    shutil.rmtree(job.work, ignore_errors=True)
    m = metrics["metrics"]
    log(f"{scene.root.name} {job.method}/{space}: test PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.3f}, "
         f"{perceptual.backend} {m.get('perceptual', float('nan')):.4f}; train {metrics['train_seconds']['total']:.1f} s; "
         + (f"AE ceiling PSNR {ceiling['psnr']['mean']:.2f} dB; " if ceiling is not None else "")
         + (f"after {equal_time['extra_stage2_steps']} more stage-2 steps ({equal_time['train_seconds']['total']:.1f} s): "
            f"PSNR {equal_time['metrics']['psnr']:.2f} dB; " if equal_time is not None else "")
         + f"render {timing['total'] * 1e3:.1f} ms/frame (field {timing['field'] * 1e3:.1f}, decode {timing['decode'] * 1e3:.1f}); "
         f"outside training {laps.record(train_total)['total']:.1f} s ("
         + ", ".join(f"{k} {v:.1f}" for k, v in laps.seconds.items()) + ")")
    return metrics
