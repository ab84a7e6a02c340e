"""Latent normalisation ``tanh(s * z)`` and the background latent.

Tri-planes render latents in (-1, 1); the autoencoder's raw latents are unbounded. The
normalizer maps between the two: ``normalize(z) = tanh(s * z)`` and its inverse
``denormalize(y) = atanh(y) / s``. With ``s = 0.02`` (the paper's code) raw latents of
magnitude up to ~150 stay in tanh's non-saturated range.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from igae.errors import InputError

if TYPE_CHECKING:
    from igae.autoencoder.model import Autoencoder

DEFAULT_SCALE = 0.02

# Clamp margin before atanh. Float32 numbers just below 1 are 6e-8 apart, so 1 - 1e-6 is
# still distinctly below 1 and atanh stays finite (|atanh| <= 7.25: |s * z| up to 7.25
# survives the round trip), while |s * z| <= 3 (tanh = 0.995) round-trips to about 1e-5
# relative error. A larger eps would cut off real latents; one below 6e-8 rounds 1 - eps
# to 1 and gives inf.
DEFAULT_EPS = 1e-6


class LatentNormalizer:
    """``tanh`` normalisation of raw latents and its clamped inverse.

    Stateless apart from two floats, so it works on any device and dtype.

    Args:
        scale: ``s`` in ``tanh(s * z)``; must be > 0.
        eps: ``denormalize`` clamps its input to ``[-1 + eps, 1 - eps]`` first, so values a
            renderer pushes onto (or past) +-1 give a finite latent instead of inf/NaN.
    """

    def __init__(self, scale: float = DEFAULT_SCALE, eps: float = DEFAULT_EPS) -> None:
        if not scale > 0:
            raise InputError(f"latent normalizer scale must be > 0, got {scale}")
        if not 0 < eps < 0.5:
            raise InputError(f"latent normalizer eps must be in (0, 0.5), got {eps}")
        self.scale = float(scale)
        self.eps = float(eps)

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        """Raw latents ``(..., C, h, w)`` -> normalised latents in (-1, 1), same shape."""
        return torch.tanh(self.scale * z)

    def denormalize(self, y: torch.Tensor) -> torch.Tensor:
        """Normalised latents in (-1, 1) ``(..., C, h, w)`` -> raw latents, same shape.

        The clamp has zero gradient outside ``[-1 + eps, 1 - eps]``; inside, the gradient of
        atanh is at most ``1 / (2 eps)``, large but finite.
        """
        return torch.atanh(y.clamp(-1.0 + self.eps, 1.0 - self.eps)) / self.scale

    def __repr__(self) -> str:
        return f"LatentNormalizer(scale={self.scale}, eps={self.eps})"


@torch.no_grad()
def background_latent(
    ae: "Autoencoder",
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
def encode_normalized(
    ae: "Autoencoder", images: torch.Tensor, batch_size: int = 32, noise: torch.Tensor | None = None
) -> torch.Tensor:
    """``norm(E(x))`` (posterior mean) of ``images`` ``(N, 3, H, W)`` -> ``(N, C, h, w)`` on CPU,
    ``batch_size`` images per encoder call (bounded memory); the AE's train/eval mode is kept.
    With ``noise`` ``(N, C, h, w)`` (standard normal), the posterior sample ``mean + std * noise``
    of each image instead of the mean."""
    was_training = ae.training
    ae.eval()
    out = [ae.normalizer.normalize(ae.encode(images[i : i + batch_size].to(ae.device),
                                             noise=None if noise is None else noise[i : i + batch_size])).cpu()
           for i in range(0, len(images), batch_size)]
    ae.train(was_training)
    return torch.cat(out)
