"""Autoencoding loss terms shared by the standard AE, the fine-tuning ablation and IG-AE."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from igae.autoencoder.model import Autoencoder, kl_divergence
from igae.autoencoder.perceptual import PerceptualMetric


def vae_terms(
    ae: Autoencoder,
    images: torch.Tensor,
    perceptual: PerceptualMetric | None,
    mse_weight: float,
    perceptual_weight: float,
    kl_weight: float,
    noise: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Standard VAE training terms on ``images`` (N, 3, H, W) in [0, 1].

    ``noise`` (N, C, h, w) is the standard-normal draw of the reparameterisation, passed
    in so callers can draw it for the global batch (reproducible on any device and any
    number of processes). KL is summed over latent elements, averaged over images.
    """
    mean, logvar = ae.encode_posterior(images)
    noise = noise.to(mean.device)
    recon = ae.decode(mean + torch.exp(0.5 * logvar) * noise)
    terms = {"mse": mse_weight * F.mse_loss(recon, images)}
    if perceptual is not None and perceptual_weight > 0:
        terms["perceptual"] = perceptual_weight * perceptual(recon, images).mean()
    if kl_weight > 0:
        terms["kl"] = kl_weight * kl_divergence(mean, logvar).mean()
    return terms


def image_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE of two ``(N, 3, H, W)`` [0, 1] image batches measured on the [-1, 1] range.

    The reference IG-AE code computes its image losses (L_rgb, the synthetic and the real-photo
    autoencoding MSE) on [-1, 1] images, so at equal weight they are 4x what the same MSE on
    [0, 1] images gives, relative to L_latent and TV. ``(2a - 1) - (2b - 1) = 2 (a - b)``: the
    value is exactly ``4 * mse(a, b)``.
    """
    return 4.0 * F.mse_loss(prediction, target)


def posterior_noise(
    posterior: str,
    ae: Autoencoder,
    batches: list[tuple[int, int, int]],
    generator: torch.Generator,
    shard: Callable[[torch.Tensor], torch.Tensor] = lambda t: t,
) -> list[torch.Tensor | None]:
    """Standard-normal draws ``(n, C, H/f, W/f)``, one per global image batch ``(n, H, W)``, or
    ``None`` each for ``posterior="mean"``.

    Drawn on the CPU from the step's generator for the global batch, then ``shard`` (a
    :class:`DistContext`'s) keeps this process's share: the samples are the same on any device
    and any number of processes, and on resume.
    """
    if posterior == "mean":
        return [None for _ in batches]
    if posterior != "sample":
        raise ValueError(f"posterior must be 'sample' or 'mean', got {posterior!r}")
    f = ae.downsampling
    return [shard(torch.randn((n, ae.latent_channels, h // f, w // f), generator=generator)) for n, h, w in batches]


def autoencoding_terms(
    ae: Autoencoder,
    views: torch.Tensor | None,
    photos: torch.Tensor | None,
    perceptual: PerceptualMetric | None,
    synthetic_weight: float,
    real_mse_weight: float,
    real_perceptual_weight: float,
    views_noise: torch.Tensor | None = None,
    photos_noise: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """IG-AE's terms that keep the AE an autoencoder, as the reference computes them.

    ``ae_synthetic`` = MSE(D(z), x) on scene views; ``ae_real_mse`` and ``ae_real_perceptual``
    on real photos. MSEs are on [-1, 1] images (:func:`image_mse`). ``z`` is a posterior sample
    with the given standard-normal ``*_noise`` (the reference samples), or the posterior mean
    when it is ``None`` (:meth:`Autoencoder.encode` with ``noise``).
    """
    terms: dict[str, torch.Tensor] = {}
    if views is not None and len(views) and synthetic_weight > 0:
        terms["ae_synthetic"] = synthetic_weight * image_mse(ae.decode(ae.encode(views, noise=views_noise)), views)
    if photos is not None and len(photos):
        recon = ae.decode(ae.encode(photos, noise=photos_noise))
        if real_mse_weight > 0:
            terms["ae_real_mse"] = real_mse_weight * image_mse(recon, photos)
        if perceptual is not None and real_perceptual_weight > 0:
            terms["ae_real_perceptual"] = real_perceptual_weight * perceptual(recon, photos).mean()
    return terms
