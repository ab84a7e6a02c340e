"""Functions of an autoencoder's latents: encoding in bounded batches, the background latent.

Kept apart from :mod:`igae.autoencoder.normalizer` (pure tensor maps) so that module never
needs the autoencoder, and the two import in one direction only:
``normalizer`` <- ``model`` <- ``latents``.
"""

from __future__ import annotations

import torch

from igae.autoencoder.model import Autoencoder
from igae.errors import InputError


@torch.no_grad()
def background_latent(
    ae: Autoencoder,
    color: tuple[float, float, float],
    size: int = 64,
    normalized: bool = False,
) -> torch.Tensor:
    """The latent of a uniform image of the background colour, computed by encoding it.

    Never hard-coded: every autoencoder (and every training step of one) has its own.
    A ``size x size`` image filled with ``color`` is encoded (posterior mean); the latent is
    averaged over the central half of the latent map in each direction, because the
    encoder's zero padding makes the border latents differ from those of an endless
    background.

    Args:
        ae: the autoencoder; its parameters' device is used.
        color: RGB in [0, 1].
        size: image side in pixels; a multiple of ``ae.downsampling`` and at least
            ``4 * ae.downsampling`` so the central region is not empty.
        normalized: return ``ae.normalizer.normalize(raw)`` instead of the raw latent.

    Returns:
        ``(C,)`` float32 on the autoencoder's device: the raw latent (default) or its
        normalised value in (-1, 1).
    """
    if len(color) != 3 or not all(0.0 <= float(c) <= 1.0 for c in color):
        raise InputError(f"background colour must be three values in [0, 1], got {tuple(color)}")
    f = ae.downsampling
    if size % f or size < 4 * f:
        raise InputError(
            f"background latent image size must be a multiple of the downsampling {f} "
            f"and at least {4 * f}, got {size}"
        )
    image = torch.tensor(color, dtype=torch.float32, device=ae.device).view(1, 3, 1, 1)
    latent = ae.encode(image.expand(1, 3, size, size).contiguous())[0]  # (C, h, w)
    h = size // f
    lo, hi = h // 4, h - h // 4
    raw = latent[:, lo:hi, lo:hi].mean(dim=(1, 2))
    return ae.normalizer.normalize(raw) if normalized else raw


@torch.no_grad()
def encode_latents(ae: Autoencoder, images: torch.Tensor, batch_size: int = 32,
                   normalized: bool = False, noise: torch.Tensor | None = None) -> torch.Tensor:
    """Posterior-mean latents of ``images`` ``(N, 3, H, W)`` in [0, 1] -> ``(N, C, h, w)`` on CPU.

    ``batch_size`` images per encoder call (bounded memory); the AE's train/eval mode is
    kept. ``normalized`` applies ``ae.normalizer.normalize`` on the AE's device, batch by batch.
    With ``noise`` ``(N, C, h, w)`` (standard normal), each image's posterior sample
    ``mean + std * noise`` instead of the mean.
    """
    was_training = ae.training
    ae.eval()
    out = []
    for i in range(0, len(images), batch_size):
        z = ae.encode(images[i : i + batch_size].to(ae.device),
                      noise=None if noise is None else noise[i : i + batch_size])
        out.append((ae.normalizer.normalize(z) if normalized else z).cpu())
    ae.train(was_training)
    return torch.cat(out)


def encode_normalized(ae: Autoencoder, images: torch.Tensor, batch_size: int = 32,
                      noise: torch.Tensor | None = None) -> torch.Tensor:
    """``norm(E(x))`` of ``images`` ``(N, 3, H, W)`` -> ``(N, C, h, w)`` on CPU: the posterior mean,
    or with ``noise`` the posterior sample (see :func:`encode_latents`)."""
    return encode_latents(ae, images, batch_size, normalized=True, noise=noise)
