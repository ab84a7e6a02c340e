"""Latent normalisation ``tanh(s * z)`` and its inverse (pure tensor maps; no autoencoder here).

Tri-planes render latents in (-1, 1); the autoencoder's raw latents are unbounded. The
normalizer maps between the two: ``normalize(z) = tanh(s * z)`` and its inverse
``denormalize(y) = atanh(y) / s``. With ``s = 0.02`` (the paper's code) raw latents of
magnitude up to ~150 stay in tanh's non-saturated range. ``s`` is usually calibrated per
autoencoder (:mod:`igae.autoencoder.calibration`) and stored with it.
"""

from __future__ import annotations

import torch

from igae.errors import InputError

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
