"""Autoencoding loss terms shared by the standard AE, the fine-tuning ablation and IG-AE."""

from __future__ import annotations

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


def autoencoding_terms(
    ae: Autoencoder,
    views: torch.Tensor | None,
    photos: torch.Tensor | None,
    perceptual: PerceptualMetric | None,
    synthetic_weight: float,
    real_mse_weight: float,
    real_perceptual_weight: float,
) -> dict[str, torch.Tensor]:
    """IG-AE's terms that keep the AE an autoencoder (posterior mean, as the paper's code).

    ``ae_synthetic`` = MSE(D(E(x)), x) on scene views; ``ae_real_mse`` and
    ``ae_real_perceptual`` on real photos.
    """
    terms: dict[str, torch.Tensor] = {}
    if views is not None and len(views) and synthetic_weight > 0:
        terms["ae_synthetic"] = synthetic_weight * F.mse_loss(ae.decode(ae.encode(views)), views)
    if photos is not None and len(photos):
        recon = ae.decode(ae.encode(photos))
        if real_mse_weight > 0:
            terms["ae_real_mse"] = real_mse_weight * F.mse_loss(recon, photos)
        if perceptual is not None and real_perceptual_weight > 0:
            terms["ae_real_perceptual"] = real_perceptual_weight * perceptual(recon, photos).mean()
    return terms
