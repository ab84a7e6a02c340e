"""The standard AE (trained from scratch) and the fine-tuning ablation (AE losses only)."""

from __future__ import annotations

from pathlib import Path

import torch

from igae.autoencoder.model import Autoencoder
from igae.autoencoder.perceptual import PerceptualMetric
from igae.config import FINETUNE_JOINT_KEYS, JointParams, TrainAEParams
from igae.train.ae_losses import autoencoding_terms, posterior_noise, vae_terms
from igae.train.checkpoint import tensor_digest
from igae.train.data import draw, step_generator
from igae.train.distributed import DistContext
from igae.train.loop import LoopResult, Phase, run_phases
from igae.train.schedules import epoch_decay, steps_per_epoch


def train_standard_ae(
    ae: Autoencoder,
    views: torch.Tensor,
    photos: torch.Tensor,
    cfg: TrainAEParams,
    perceptual: PerceptualMetric | None,
    seed: int,
    work_dir: str | Path,
    nan_policy: str = "stop",
    ctx: DistContext = DistContext(),
) -> LoopResult:
    """Train ``ae`` in place on a mix of real photos and scene views.

    Args:
        views: (T, 3, H, W) training-scene views in [0, 1] (CPU).
        photos: (P, 3, H, W) real-photo crops in [0, 1] (CPU).
        work_dir: gets ``checkpoints/`` and ``losses.csv``.
    """
    device = ae.device
    n_photos = round(cfg.batch_size * cfg.photo_fraction)
    ctx.check_divisible(cfg.batch_size, "train_ae.batch_size")
    ae.train()
    opt = torch.optim.Adam(ae.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_decay)

    def step_fn(step: int) -> dict[str, torch.Tensor]:
        g = step_generator(seed, "standard_ae", step)
        batch = torch.cat([photos[draw(len(photos), n_photos, g)], views[draw(len(views), cfg.batch_size - n_photos, g)]])
        size = batch.shape[-1] // ae.downsampling
        noise = torch.randn((len(batch), ae.latent_channels, size, size), generator=g)  # global batch, then shard
        return vae_terms(ae, ctx.shard(batch).to(device), perceptual, cfg.loss.mse, cfg.loss.perceptual,
                         cfg.loss.kl, ctx.shard(noise))

    phase = Phase("standard_ae", cfg.steps, step_fn, {"ae": opt}, {"ae": sched}, list(ae.parameters()))
    work = Path(work_dir)
    return run_phases([phase], {"ae": ae}, work / "checkpoints", work / "losses.csv", cfg.checkpoint_every,
                      nan_policy, ctx, config={"train_ae": cfg.model_dump(exclude={"checkpoint_every"}), "seed": seed,
                                                "data_sha256": tensor_digest([views, photos]),
                                                "perceptual": getattr(perceptual, "backend", None)})


def finetune_ae(
    ae: Autoencoder,
    views: torch.Tensor,
    photos: torch.Tensor,
    joint: JointParams,
    perceptual: PerceptualMetric | None,
    seed: int,
    work_dir: str | Path,
    checkpoint_every: int,
    nan_policy: str = "stop",
    ctx: DistContext = DistContext(),
) -> LoopResult:
    """The ablation: IG-AE's joint phase without tri-planes (same steps, data, AE losses, lr schedule,
    posterior samples).

    It separates the effect of the 3D regularisation from the effect of extra fine-tuning.
    """
    device = ae.device
    ctx.check_divisible(joint.views_per_batch, "igae.joint.views_per_batch")
    ctx.check_divisible(joint.photos_per_batch, "igae.joint.photos_per_batch")
    ae.train()
    opt = torch.optim.Adam(ae.parameters(), lr=joint.lr_ae)
    sched = epoch_decay(opt, joint.lr_decay, steps_per_epoch(len(views), joint.views_per_batch))

    def step_fn(step: int) -> dict[str, torch.Tensor]:
        # Same tag and draws as IG-AE's joint phase: the two see identical batches and samples.
        g = step_generator(seed, "joint", step)
        v_batch = views[draw(len(views), joint.views_per_batch, g)]
        p_batch = photos[draw(len(photos), joint.photos_per_batch, g)]
        noise_v, noise_p = posterior_noise(joint.posterior, ae, [(len(v_batch), *v_batch.shape[-2:]),
                                                                 (len(p_batch), *p_batch.shape[-2:])], g, ctx.shard)
        return autoencoding_terms(ae, ctx.shard(v_batch).to(device), ctx.shard(p_batch).to(device), perceptual,
                                  joint.ae_synthetic, joint.ae_real_mse, joint.ae_real_perceptual,
                                  views_noise=noise_v, photos_noise=noise_p)

    phase = Phase("finetune", joint.steps, step_fn, {"ae": opt}, {"ae": sched}, list(ae.parameters()))
    work = Path(work_dir)
    return run_phases([phase], {"ae": ae}, work / "checkpoints", work / "losses.csv", checkpoint_every,
                      nan_policy, ctx, config={"joint": {k: getattr(joint, k) for k in FINETUNE_JOINT_KEYS}, "seed": seed,
                                                "data_sha256": tensor_digest([views, photos]),
                                                "perceptual": getattr(perceptual, "backend", None)})

