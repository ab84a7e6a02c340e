"""IG-AE training: tri-plane latent scenes trained jointly with the autoencoder.

Phase 1, warm-up: the AE is frozen; the normalised latents of all training views are
encoded once (posterior mean, as the reference caches them) and cached; the tri-planes and
the shared MLP learn to render them at latent resolution. The MLP is frozen (lr 0) for the
last ``freeze_mlp_fraction`` of the warm-up, as in the reference.

Phase 2, joint: encoder, decoder, tri-planes and MLP all update on every step with
    L_latent = MSE(norm(z), R)               render vs encoded view (tri-planes, MLP, encoder)
    L_rgb    = MSE(D(denorm(R)), x)          decoded render vs image (tri-planes, MLP, decoder)
    L_ae_synthetic = MSE(D(z), x)            scene views
    L_ae_real = MSE + perceptual             real photos
    TV on the tri-planes of the batch's views.
The objective is the reference's in effect, not only in its nominal weights:
- ``z`` is a posterior sample (the reference's ``latent_dist.sample()``; ``joint.posterior``),
  drawn from the step's seeded generator;
- image MSEs are on [-1, 1] images (4x the [0, 1] value; ``ae_losses.image_mse``);
- TV is the reference's batch sum over views divided by (H + W) (``TriplaneField.tv_batch``);
- learning rates decay per epoch (``ceil(views / views_per_batch)`` steps; ``train.schedules``).
Unlike the public reference code, the tri-plane/MLP optimizer steps in the joint phase
(tested), and the warm-up latents really are computed once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from igae.autoencoder.model import Autoencoder
from igae.autoencoder.latents import background_latent, encode_normalized
from igae.autoencoder.perceptual import PerceptualMetric
from igae.config import IGAEParams, TriplaneParams
from igae.fields.sampling import CoarseToFineSampler
from igae.fields.triplane import TriplaneField
from igae.fields.volume_renderer import render_views
from igae.geometry import scale_intrinsics
from igae.train.ae_losses import autoencoding_terms, image_mse, posterior_noise
from igae.train.checkpoint import SNAPSHOT_DIR, save_state_atomic, tensor_digest
from igae.train.data import ViewBank, draw, step_generator
from igae.train.distributed import DistContext
from igae.train.loop import LoopResult, Phase, run_phases
from igae.train.schedules import epoch_decay, freeze_start, steps_per_epoch
from igae.seeding import derive_seed


def make_triplane_field(num_scenes: int, cfg: TriplaneParams, latent_channels: int, object_box: float, seed: int) -> TriplaneField:
    """Tri-planes over the normalised object box, tanh output (normalised latents lie in (-1, 1))."""
    return TriplaneField(
        num_scenes=num_scenes, resolution=cfg.resolution, features=cfg.features, out_channels=latent_channels,
        hidden=cfg.hidden, aabb=object_box / 2.0, output_activation="tanh", init_std=cfg.init_std, seed=seed,
    )


class LatentRenderer:
    """Renders whole latent images of a :class:`ViewBank`'s views from a tri-plane field."""

    def __init__(self, field: TriplaneField, bank: ViewBank, downsampling: int, cfg: TriplaneParams) -> None:
        self.field = field
        self.bank = bank
        self.height = bank.images.shape[2] // downsampling
        self.width = bank.images.shape[3] // downsampling
        # Exact scaling (no floor division): a 1/f image has fx/f, fy/f, cx/f, cy/f.
        self.intrinsics = scale_intrinsics(bank.intrinsics, float(downsampling))
        self.sampler = CoarseToFineSampler(field.aabb, n_coarse=cfg.coarse_samples, n_fine=cfg.fine_samples)

    def __call__(self, views: torch.Tensor, background: torch.Tensor, jitter_seed: int | None) -> torch.Tensor:
        """Normalised latent renders of ``views`` (indices into the bank): ``(B, C, h, w)``.

        With ``jitter_seed``, samples are jittered from one generator per view, seeded by
        (jitter_seed, view index): a view's samples then do not depend on which other views
        share the batch or the process, so data-parallel runs equal single-process ones.
        """
        device = background.device
        c2w = self.bank.camera_to_world[views].to(device)
        intr = self.intrinsics[views].to(device)
        scenes = self.bank.scene_index[views].to(device)
        if jitter_seed is None:
            return render_views(self.field, c2w, intr, self.width, self.height, self.sampler, background,
                                scene_index=scenes, train=False)
        return torch.cat([
            render_views(self.field, c2w[i : i + 1], intr[i : i + 1], self.width, self.height, self.sampler,
                         background, scene_index=scenes[i : i + 1], train=True,
                         generator=torch.Generator(device=device).manual_seed(derive_seed(jitter_seed, int(v))))
            for i, v in enumerate(views)
        ])


def normalized_background(ae: Autoencoder, bank: ViewBank) -> torch.Tensor:
    """The background colour's normalised latent under the current encoder, ``(C,)``."""
    with torch.no_grad():
        z = background_latent(ae, bank.background, size=bank.images.shape[-1])
    return ae.normalizer.normalize(z).to(ae.device)


def train_igae(
    ae: Autoencoder,
    field: TriplaneField,
    bank: ViewBank,
    photos: torch.Tensor,
    cfg: IGAEParams,
    perceptual: PerceptualMetric | None,
    seed: int,
    work_dir: str | Path,
    nan_policy: str = "stop",
    ctx: DistContext = DistContext(),
) -> LoopResult:
    """Warm-up then joint training of ``ae`` and ``field`` in place.

    Args:
        bank: training views (train split of the training scenes); ``field`` has one
            tri-plane per ``bank`` scene.
        photos: (P, 3, H, W) real-photo crops for the real-image losses.
        work_dir: gets ``checkpoints/`` and ``losses.csv``; ``cfg.snapshots`` (joint steps) save the
            AE's weights to ``checkpoints/snapshots/joint_<k>.pt`` (see :func:`snapshot_files`).
    """
    device = ae.device
    field.to(device)
    renderer = LatentRenderer(field, bank, ae.downsampling, cfg.triplane)
    groups = field.param_groups()
    field_params = groups["triplanes"] + groups["mlp"]
    w, j = cfg.warmup, cfg.joint
    for key, batch in (("warmup.views_per_batch", w.views_per_batch), ("joint.views_per_batch", j.views_per_batch),
                       ("joint.photos_per_batch", j.photos_per_batch)):
        ctx.check_divisible(batch, f"igae.{key}")

    # ---- phase 1: warm-up on cached latents, AE frozen
    targets = encode_normalized(ae, bank.images)  # computed once, reused every warm-up step
    warm_background = normalized_background(ae, bank)
    opt_warm = torch.optim.Adam([
        {"params": groups["triplanes"], "name": "triplanes"}, {"params": groups["mlp"], "name": "mlp"},
    ], lr=w.lr)
    mlp_frozen_from = freeze_start(w.steps, w.freeze_mlp_fraction)
    sched_warm = epoch_decay(opt_warm, w.lr_decay, steps_per_epoch(len(bank), w.views_per_batch),
                             frozen_from=None if mlp_frozen_from is None else {"mlp": mlp_frozen_from})

    def warmup_step(step: int) -> dict[str, torch.Tensor]:
        _set_ae_trainable(ae, False)
        g = step_generator(seed, "warmup", step)
        batch = draw(len(bank), w.views_per_batch, g)
        views = ctx.shard(batch)
        render = renderer(views, warm_background, derive_seed(seed, "warmup/jitter", step))
        terms = {"latent": w.latent * F.mse_loss(render, targets[views].to(device))}
        if w.tv > 0:  # over the global batch's views on every rank: same value as one process
            terms["tv"] = w.tv * field.tv_batch(bank.scene_index[batch])
        return terms

    # ---- phase 2: joint
    opt_ae = torch.optim.Adam([
        {"params": list(ae.encoder_parameters()), "name": "encoder"},
        {"params": list(ae.decoder_parameters()), "name": "decoder"},
    ], lr=j.lr_ae)
    opt_field = torch.optim.Adam([
        {"params": groups["triplanes"], "name": "triplanes"}, {"params": groups["mlp"], "name": "mlp"},
    ], lr=j.lr_triplane)
    joint_epoch = steps_per_epoch(len(bank), j.views_per_batch)
    scheds = {name: epoch_decay(o, j.lr_decay, joint_epoch) for name, o in (("ae", opt_ae), ("field", opt_field))}

    def joint_step(step: int) -> dict[str, torch.Tensor]:
        _set_ae_trainable(ae, True)
        # Same tag and draw order as the fine-tuning ablation: both see identical batches.
        g = step_generator(seed, "joint", step)
        batch = draw(len(bank), j.views_per_batch, g)
        views = ctx.shard(batch)
        photo_batch = draw(len(photos), j.photos_per_batch, g)
        photo_idx = ctx.shard(photo_batch)
        noise_views, noise_photos = posterior_noise(j.posterior, ae, [(len(batch), *bank.images.shape[-2:]),
                                                                     (len(photo_batch), *photos.shape[-2:])],
                                                    g, ctx.shard)
        x = bank.images[views].to(device)
        z = ae.encode(x, noise=noise_views)  # a posterior sample, or the mean with posterior: mean
        render = renderer(views, normalized_background(ae, bank), derive_seed(seed, "joint/jitter", step))
        terms = {
            "latent": j.latent * F.mse_loss(ae.normalizer.normalize(z), render),
            "rgb": j.rgb * image_mse(ae.decode(ae.normalizer.denormalize(render)), x),
        }
        if j.ae_synthetic > 0:  # the reference decodes the same sample that L_latent targets
            terms["ae_synthetic"] = j.ae_synthetic * image_mse(ae.decode(z), x)
        terms.update(autoencoding_terms(ae, None, photos[photo_idx].to(device), perceptual,
                                        0.0, j.ae_real_mse, j.ae_real_perceptual,
                                        photos_noise=noise_photos))
        if j.tv > 0:
            terms["tv"] = j.tv * field.tv_batch(bank.scene_index[batch])
        return terms

    work = Path(work_dir)

    def snapshot(done: int) -> None:
        if done in cfg.snapshots and ctx.is_main:
            save_state_atomic(snapshot_path(work, done), {k: v.detach().cpu() for k, v in ae.state_dict().items()})

    phases = [
        Phase("warmup", w.steps, warmup_step, {"field": opt_warm}, {"field": sched_warm}, field_params),
        Phase("joint", j.steps, joint_step, {"ae": opt_ae, "field": opt_field}, scheds,
              list(ae.parameters()) + field_params, after_step=snapshot),
    ]
    result = run_phases(phases, {"ae": ae, "field": field}, work / "checkpoints", work / "losses.csv",
                        cfg.checkpoint_every, nan_policy, ctx,
                        config={"igae": cfg.model_dump(exclude={"checkpoint_every", "render_scenes", "snapshots"}),
                                "seed": seed,
                                "perceptual": getattr(perceptual, "backend", None),
                                "normalizer": [ae.normalizer.scale, ae.normalizer.eps],
                                "data_sha256": tensor_digest([bank.images, bank.camera_to_world, bank.intrinsics,
                                                              bank.scene_index, photos])})
    _set_ae_trainable(ae, True)
    return result


def snapshot_path(work_dir: str | Path, joint_steps: int) -> Path:
    """Where :func:`train_igae` saves the AE's weights after ``joint_steps`` joint steps."""
    return Path(work_dir) / "checkpoints" / SNAPSHOT_DIR / f"joint_{joint_steps}.pt"


def snapshot_files(work_dir: str | Path, joint_steps: list[int]) -> dict[int, Path]:
    """The snapshot file of each of ``joint_steps`` (all must exist after training)."""
    return {k: snapshot_path(work_dir, k) for k in sorted(joint_steps)}


def _set_ae_trainable(ae: Autoencoder, trainable: bool) -> None:
    for p in ae.parameters():
        p.requires_grad_(trainable)
    ae.train(trainable)


@torch.no_grad()
def decoded_renders(ae: Autoencoder, field: TriplaneField, bank: ViewBank, views: torch.Tensor,
                    cfg: TriplaneParams) -> torch.Tensor:
    """``D(denorm(R))`` of ``views`` (indices into ``bank``): (N, 3, H, W) in [0, 1], for
    training renders and the tri-plane fit quality."""
    ae.eval()
    renderer = LatentRenderer(field, bank, ae.downsampling, cfg)
    background = normalized_background(ae, bank)
    out = []
    for i in range(0, len(views), 8):
        latent = renderer(views[i : i + 8], background, None)
        out.append(ae.decode(ae.normalizer.denormalize(latent), clamp=True).cpu())
    return torch.cat(out)


def save_field(path: str | Path, field: TriplaneField, cfg: TriplaneParams, meta: dict[str, Any]) -> None:
    """Tri-planes + MLP with what rebuilds them, written atomically."""
    from igae.io import atomic_path

    with atomic_path(path) as tmp:
        torch.save({"state_dict": field.state_dict(), "triplane": cfg.model_dump(), "num_scenes": field.num_scenes,
                    "out_channels": field.out_channels, "meta": meta}, tmp)


def load_field(path: str | Path, object_box: float) -> tuple[TriplaneField, TriplaneParams]:
    """Rebuild a field saved by :func:`save_field`."""
    blob = torch.load(path, map_location="cpu", weights_only=False)
    cfg = TriplaneParams(**blob["triplane"])
    field = make_triplane_field(blob["num_scenes"], cfg, blob["out_channels"], object_box, seed=0)
    field.load_state_dict(blob["state_dict"])
    return field, cfg
