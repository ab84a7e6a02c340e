"""Per-scene NeRF fitting in RGB or latent space, with a PSNR-vs-time record.

RGB fit (the baseline): ``stage1.steps + stage2.steps`` steps of ``rgb.rays_per_batch`` random
pixels of the training views, MSE against the image plus the method's weighted regularisers.

Latent fit (Latent NeRF, paper Sec. 4):

- stage 1, latent supervision: ``stage1.steps`` steps of ``stage1.rays_per_batch`` random latent
  pixels, MSE against the cached normalised latents ``norm(z)`` plus regularisers;
- stage 2, RGB alignment: ``stage2.steps`` steps rendering ``stage2.views_per_batch`` whole
  latent views, decoded by the per-scene decoder copy, ``MSE(D(denorm(R)), x)`` plus
  ``stage2.latent_weight`` times the stage-1 loss on the same views; the field and the decoder
  copy update, the encoder never does.

Why ``latent_weight`` defaults to 0.1 and not the paper code's 0: with the RGB loss alone the
decoder copy and the field can drift together to latents the encoder would never produce
(the render stops being a latent of the scene); a small latent term anchors it, and it costs
nothing since the targets are cached. Set it to 0 to follow the paper code.

As in latent-nerfstudio: the stage-1 targets are cached posterior samples (``nerf.posterior``,
:func:`igae.nerf.data.prepare_latent`); stage 2 starts a fresh field optimiser (its Adam moments
reset; fields here have no lr scheduler to reset), and the decoder copy's learning rate decays
exponentially per step to ``lr_decoder * lr_decoder_end_factor`` at the end of stage 2 (the
reference's 0.99969 per step over its 15000 stage-2 steps, converted to this step count).

Training runs through :func:`igae.train.loop.run_phases` (checkpoints at the end of each phase,
resume, NaN guard, loss CSV). Training time excludes the test-view evaluations of the curve.

Equal wall-clock budget (``nerf.equal_time.extra_stage2_steps`` > 0, latent fits): once the
scheduled steps ran and the test views were rendered, stage 2 continues for that many steps (the
same optimisers and their state, the decoder copy's lr held at its end-of-schedule value, the
next seeded draws of the stage-2 sequence) in a second resumable run with its own checkpoints;
the test views are rendered again, then the field, decoder copy and occupancy grid go back to
their end-of-schedule state, so every equal-steps output is the same whether the continuation
ran or not.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from igae.config import NerfMethodParams, NerfParams
from igae.eval.metrics import psnr
from igae.fields.base import Field
from igae.fields.occupancy import OccupancySampler
from igae.fields.registry import build_field
from igae.fields.sampling import RayBundle, Sampler
from igae.fields.volume_renderer import render_bundle, render_views
from igae.geometry import rays_at_pixels
from igae.nerf.artifact import SamplerSpec
from igae.nerf.data import FitData
from igae.nerf.frames import Frames, render_frames
from igae.seeding import derive_seed
from igae.train.checkpoint import tensor_digest
from igae.train.data import step_generator
from igae.train.distributed import DistContext
from igae.train.loop import Phase, run_phases
from igae.train.schedules import decay_to


@dataclass
class EqualTimeResult:
    """The continuation of a latent fit's stage 2 to an equal wall-clock budget.

    Attributes:
        extra_steps: stage-2 steps run after the scheduled ones.
        train_seconds: wall time of those steps (the scheduled stages' time not included).
        final_test_render: the continued field's test-view :class:`~igae.nerf.frames.Frames` (eval mode).
        eval_seconds: wall time of that render.
        resumed_from: step of the continuation's checkpoint a rerun resumed from, else ``None``.
    """

    extra_steps: int
    train_seconds: float
    final_test_render: Frames
    eval_seconds: float
    resumed_from: int | None


@dataclass
class FitResult:
    """What a fit produced besides the trained field (and decoder copy in ``data.ae``).

    Attributes:
        stage_seconds: wall time of each training phase, evaluations excluded.
        eval_seconds: wall time of the curve's test-view evaluations (paused from the training clock).
        curve: rows ``{"step", "train_seconds", "psnr"}``: mean test-view PSNR during training.
        final_test_render: the trained field's test-view :class:`~igae.nerf.frames.Frames` (eval mode),
            from the curve's last point; :func:`igae.nerf.evaluate.evaluate_test_views` reuses them.
        steps: steps per phase; skipped_steps / resumed_from: from the training loop.
        history: per-step loss rows.
        equal_time: the stage-2 continuation (``nerf.equal_time``), else ``None``; the field and
            decoder copy are back in their end-of-schedule state.
    """

    stage_seconds: dict[str, float]
    curve: list[dict[str, float]]
    steps: dict[str, int]
    skipped_steps: int
    resumed_from: int | None
    history: list[dict[str, Any]] = dc_field(default_factory=list)
    eval_seconds: float = 0.0
    final_test_render: Frames | None = None
    equal_time: EqualTimeResult | None = None


def build_method_field(method: str, data: FitData, cfg: NerfMethodParams, aabb_half: float, seed: int) -> Field:
    """The method's field for ``data``'s space (``C`` channels, its output activation)."""
    return build_field(method, data.channels, aabb_half, data.output_activation,
                       derive_seed(seed, "nerf/init", method), **cfg.hyper)


def build_sampler(cfg: NerfParams, field: Field, device: torch.device) -> Sampler:
    """The sampler named by ``nerf.sampler`` over the field's box."""
    return SamplerSpec.from_params(cfg).build(field.aabb, device)


def _run_identity(cfg: NerfParams, method_cfg: NerfMethodParams, seed: int, data: FitData) -> dict[str, Any]:
    """What decides a fit's result besides the modules' starting state (checkpoint identity).

    Only inputs read from disk are hashed (images, cameras), not tensors the AE computed from
    them: those differ in the last bits between devices, and a resume on another GPU must work.
    """
    tensors = [data.train_c2w, data.train_intrinsics, data.train_images, data.test_c2w, data.test_intrinsics,
               data.test_images]
    return {
        # equal_time only adds a run after this one (its own checkpoints): it does not change this run.
        "nerf": cfg.model_dump(exclude={"methods", "autoencoders", "method_params", "eval", "threads", "equal_time"}),
        "method": method_cfg.model_dump(), "seed": seed, "space": data.space,
        "normalizer": None if data.ae is None else [data.ae.normalizer.scale, data.ae.normalizer.eps],
        "data_sha256": tensor_digest(tensors if data.is_latent else [*tensors, data.background]),
    }


def render_test_views(field: Field, data: FitData, sampler: Sampler, chunk: int | None = None) -> Frames:
    """The test views rendered (``features``, ``(M, C, h, w)`` in the field's space) and decoded
    (``rgb``, ``(M, 3, H, W)`` in [0, 1]) by the one frame renderer, :func:`igae.nerf.frames.render_frames`."""
    return render_frames(field, sampler, data.test_c2w, data.test_intrinsics, data.width, data.height,
                         data.background, data.to_rgb if data.is_latent else None, chunk=chunk)


@torch.no_grad()
def mean_test_psnr(field: Field, data: FitData, sampler: Sampler, chunk: int | None = None,
                   keep: list[Frames] | None = None) -> float:
    """Mean PSNR of the (decoded) test renders against the ground-truth test images.

    ``keep``: when given, the test views' :class:`~igae.nerf.frames.Frames` are appended to it (the final
    evaluation reuses the last curve point's renders instead of rendering the same views again).
    """
    field.eval()
    # The decoder copy in eval mode too: stage 2 leaves it in train mode, in which diffusers decodes
    # differently in the last bits, and a resumed fit (whose copy starts in eval mode) must evaluate alike.
    decoder_was_training = data.ae is not None and data.ae.training
    if data.ae is not None:
        data.ae.eval()
    frames = render_test_views(field, data, sampler, chunk)
    if keep is not None:
        keep.append(frames)
    rgb = frames.rgb
    field.train()
    if decoder_was_training:
        data.ae.train()
    return float(psnr(rgb, data.test_images).mean())


class _Clock:
    """Training wall time with evaluation pauses removed."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.paused = 0.0

    def train_seconds(self) -> float:
        return time.perf_counter() - self.start - self.paused

    def pause(self, fn: Callable[[], float]) -> float:
        t0 = time.perf_counter()
        value = fn()
        self.paused += time.perf_counter() - t0
        return value


def fit_scene(
    field: Field,
    sampler: Sampler,
    data: FitData,
    cfg: NerfParams,
    method_cfg: NerfMethodParams,
    seed: int,
    work_dir: str | Path,
    nan_policy: str = "stop",
    progress: bool = False,
    precision: str = "fp32",
) -> FitResult:
    """Fit ``field`` to ``data`` in place (and ``data.ae``'s decoder for latent fits).

    Args:
        field: from :func:`build_method_field`, on the data's device.
        sampler: from :func:`build_sampler`; an occupancy grid is updated during training
            (and saved in the checkpoints) and then serves the test renders.
        work_dir: gets ``checkpoints/`` and ``losses.csv``; rerunning resumes from the newest
            checkpoint there.
        precision: training-step arithmetic on CUDA (:mod:`igae.train.precision`; CPU: fp32).

    Returns:
        Per-stage training times, the PSNR-vs-time curve and the loss history.
    """
    device = data.train_targets.device
    chunk = cfg.eval.chunk or None
    if isinstance(sampler, OccupancySampler):
        sampler.mark_invisible_cells(data.train_c2w, data.train_intrinsics, data.width, data.height)

    def field_optimizer(lr: float) -> torch.optim.Optimizer:
        return torch.optim.Adam([{"params": ps, "name": name} for name, ps in field.param_groups().items()],
                                lr=lr, eps=method_cfg.adam_eps)

    def regularizers() -> dict[str, Tensor]:
        regs = field.regularizers()
        return {name: w * regs[name] for name, w in method_cfg.regularizers.items() if w > 0 and name in regs}

    unknown = sorted(set(method_cfg.regularizers) - set(field.regularizers()))
    if unknown:
        from igae.errors import InputError

        raise InputError(f"nerf.method_params: regularizers {unknown} do not exist for this method; "
                         f"it has {sorted(field.regularizers()) or 'none'}")

    h, w = data.height, data.width
    n_train = len(data.train_c2w)
    flat_targets = data.train_targets.permute(0, 2, 3, 1).reshape(-1, data.channels)  # (N*h*w, C)

    def update_grid(global_step: int) -> None:
        if isinstance(sampler, OccupancySampler):
            g = torch.Generator(device=device).manual_seed(derive_seed(seed, "nerf/grid", global_step))
            sampler.update(global_step, field.density, every_n=cfg.occupancy.update_every,
                           threshold=cfg.occupancy.threshold, warmup_steps=cfg.occupancy.warmup_steps, generator=g)

    def ray_step(tag: str, offset: int, rays_per_batch: int) -> Callable[[int], dict[str, Tensor]]:
        def step(i: int) -> dict[str, Tensor]:
            update_grid(offset + i)
            g = step_generator(seed, tag, i)
            pick = torch.randint(n_train * h * w, (rays_per_batch,), generator=g).to(device)
            view, pixel = pick // (h * w), pick % (h * w)
            origins, dirs = rays_at_pixels(data.train_c2w[view], data.train_intrinsics[view], pixel % w, pixel // w)
            jitter = torch.Generator(device=device).manual_seed(derive_seed(seed, tag, "jitter", i))
            pred = render_bundle(field, RayBundle(origins, dirs), sampler, data.background, train=True,
                                 generator=jitter)["features"]
            return {"mse": F.mse_loss(pred, flat_targets[pick]), **regularizers()}
        return step

    s1, s2 = cfg.stage1, cfg.stage2
    if data.is_latent:
        ae = data.ae
        assert ae is not None
        decoder_params = list(ae.decoder_parameters())

        def align_step(i: int) -> dict[str, Tensor]:
            update_grid(s1.steps + i)
            g = step_generator(seed, "nerf/stage2", i)
            views = torch.randperm(n_train, generator=g)[: s2.views_per_batch].to(device)
            jitter = torch.Generator(device=device).manual_seed(derive_seed(seed, "nerf/stage2/jitter", i))
            ae.train()
            latent = render_views(field, data.train_c2w[views], data.train_intrinsics[views], w, h, sampler,
                                  data.background, train=True, generator=jitter)
            terms = {"rgb": F.mse_loss(data.to_rgb(latent), data.train_images[views])}
            if s2.latent_weight > 0:
                terms["latent"] = s2.latent_weight * F.mse_loss(latent, data.train_targets[views])
            terms.update(regularizers())
            return terms

        opt_decoder = torch.optim.Adam(decoder_params, lr=s2.lr_decoder)
        # A fresh field optimiser per stage: latent-nerfstudio resets the field's optimiser (and its
        # scheduler; fields here have none) when RGB alignment starts.
        phases = [Phase("latent", s1.steps, ray_step("nerf/stage1", 0, s1.rays_per_batch),
                        {"field": field_optimizer(method_cfg.lr)}, {}, list(field.parameters())),
                  Phase("rgb_align", s2.steps, align_step,
                        {"field": field_optimizer(method_cfg.lr_stage2), "decoder": opt_decoder},
                        {"decoder": decay_to(opt_decoder, s2.lr_decoder_end_factor, s2.steps)},
                        list(field.parameters()) + decoder_params)]
        modules: dict[str, torch.nn.Module] = {"field": field, "decoder": ae}
    else:
        phases = [Phase("rgb", s1.steps + s2.steps, ray_step("nerf/rgb", 0, cfg.rgb.rays_per_batch),
                        {"field": field_optimizer(method_cfg.lr)}, {}, list(field.parameters()))]
        modules = {"field": field}
    if isinstance(sampler, OccupancySampler):
        modules["occupancy"] = sampler.grid

    total = sum(p.steps for p in phases)
    points = cfg.eval.curve_points if data.is_latent else cfg.eval.rgb_curve_points
    until = 1.0 if data.is_latent else cfg.eval.rgb_curve_until
    curve_at = {round(total * k / points) for k in range(1, points) if k <= until * points} - {0, total}
    clock = _Clock()
    curve: list[dict[str, float]] = []
    phase_starts: list[tuple[str, float]] = []  # (phase, training seconds when its first step here began)

    def with_bookkeeping(phase: Phase, base: int) -> Phase:
        def step(i: int) -> dict[str, Tensor]:
            if not phase_starts or phase_starts[-1][0] != phase.name:
                phase_starts.append((phase.name, clock.train_seconds()))
            if base + i in curve_at:
                score = clock.pause(lambda: mean_test_psnr(field, data, sampler, chunk))
                curve.append({"step": base + i, "train_seconds": clock.train_seconds(), "psnr": score})
            return phase.step_fn(i)
        return Phase(phase.name, phase.steps, step, phase.optimizers, phase.schedulers, phase.params)

    wrapped, base = [], 0
    for phase in phases:
        wrapped.append(with_bookkeeping(phase, base))
        base += phase.steps
    work = Path(work_dir)
    identity = _run_identity(cfg, method_cfg, seed, data)
    ctx = DistContext(device=device, precision=precision)
    result = run_phases(wrapped, modules, work / "checkpoints", work / "losses.csv",
                        checkpoint_every=max(total, 1), nan_policy=nan_policy, progress=progress,
                        config=identity, ctx=ctx)
    train_seconds = clock.train_seconds()
    ends = [t for _, t in phase_starts[1:]] + [train_seconds]
    stage_seconds = {name: end - t0 for (name, t0), end in zip(phase_starts, ends)}
    final: list[Tensor] = []
    curve.append({"step": total, "train_seconds": train_seconds,
                  "psnr": clock.pause(lambda: mean_test_psnr(field, data, sampler, chunk, keep=final))})
    equal_time = None
    extra = cfg.equal_time.extra_stage2_steps
    if data.is_latent and extra > 0:
        align = phases[-1]  # continued: its optimisers keep their state; no scheduler, so the decoder lr stays
        equal_time = _continue_stage(
            Phase(f"{align.name}_extra", extra, lambda i: align_step(s2.steps + i), align.optimizers, {}, align.params),
            modules, work, {**identity, "equal_time": cfg.equal_time.model_dump()}, nan_policy, progress, ctx,
            lambda keep: mean_test_psnr(field, data, sampler, chunk, keep=keep))
    return FitResult(stage_seconds=stage_seconds, curve=curve, steps={p.name: p.steps for p in phases},
                     skipped_steps=result.skipped_steps, resumed_from=result.resumed_from, history=result.history,
                     eval_seconds=clock.paused, final_test_render=final[0], equal_time=equal_time)


def _continue_stage(phase: Phase, modules: dict[str, torch.nn.Module], work: Path, identity: dict[str, Any],
                    nan_policy: str, progress: bool, ctx: DistContext,
                    render_test: Callable[[list[Frames]], float]) -> EqualTimeResult:
    """Run ``phase`` (a continuation of the last stage) in its own resumable run, render the test
    views, then put ``modules`` back in the state they had before it (bit for bit)."""
    before = {name: copy.deepcopy(module.state_dict()) for name, module in modules.items()}
    clock = _Clock()
    result = run_phases([phase], modules, work / "checkpoints_equal_time", work / "losses_equal_time.csv",
                        checkpoint_every=phase.steps, nan_policy=nan_policy, progress=progress, config=identity,
                        ctx=ctx)
    seconds = clock.train_seconds()
    frames: list[Frames] = []
    t0 = time.perf_counter()
    render_test(frames)
    eval_seconds = time.perf_counter() - t0
    for name, module in modules.items():
        module.load_state_dict(before[name])
    return EqualTimeResult(phase.steps, seconds, frames[0], eval_seconds, result.resumed_from)
