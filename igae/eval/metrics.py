"""Image metrics per image: PSNR, SSIM and the perceptual distance.

All functions take float NCHW batches in [0, 1] and return one value per image, so
callers average (or tabulate) as they need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from igae.errors import InputError

if TYPE_CHECKING:
    from igae.autoencoder.perceptual import PerceptualMetric

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape or x.ndim != 4:
        raise InputError(
            f"image metrics need two (N, C, H, W) batches of one shape, got "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )


def psnr(x: torch.Tensor, y: torch.Tensor, max_val: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, in dB.

    Args:
        x, y: ``(N, C, H, W)``.
        max_val: the data range (1 for images in [0, 1]).

    Returns:
        ``(N,)`` ``10 log10(max_val^2 / MSE)``; ``inf`` for identical images (no cap: a
        cap would hide exact reconstructions behind an arbitrary number; averaging callers
        must handle inf).
    """
    _check_pair(x, y)
    mse = (x.float() - y.float()).pow(2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(max_val**2 / mse)


def _gaussian_window(size: int, sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Normalised 1-D Gaussian, ``(size,)``."""
    r = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    return g / g.sum()


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of each channel, 'valid' region only.

    ``(B, C, H, W)`` -> ``(B, C, H - k + 1, W - k + 1)`` for a window of ``k`` taps.
    """
    c = x.shape[1]
    k = g.numel()
    x = F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


def ssim(x: torch.Tensor, y: torch.Tensor, max_val: float = 1.0) -> torch.Tensor:
    """Structural similarity per image (Wang et al. 2004), averaged over channels.

    Gaussian window of 11 taps, sigma 1.5, ``K1 = 0.01``, ``K2 = 0.03``, population
    (co)variances, and only positions where the window lies inside the image: this equals
    scikit-image's ``structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=max_val, channel_axis=-1)``.

    Args:
        x, y: ``(N, C, H, W)`` with ``H, W >= 11``.
        max_val: the data range.

    Returns:
        ``(N,)``; 1 for identical images.
    """
    _check_pair(x, y)
    if min(x.shape[2:]) < SSIM_WINDOW:
        raise InputError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {tuple(x.shape[2:])}")
    # float64 keeps E[x^2] - E[x]^2 free of cancellation error; images are small enough.
    x, y = x.double(), y.double()
    g = _gaussian_window(SSIM_WINDOW, SSIM_SIGMA, x.device, x.dtype)
    c1, c2 = (SSIM_K1 * max_val) ** 2, (SSIM_K2 * max_val) ** 2
    mu_x, mu_y = _blur(x, g), _blur(y, g)
    var_x = _blur(x * x, g) - mu_x**2
    var_y = _blur(y * y, g) - mu_y**2
    cov = _blur(x * y, g) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.mean(dim=(1, 2, 3)).float()


@torch.no_grad()
def image_metrics(
    pred: torch.Tensor,
    target: torch.Tensor,
    perceptual: "PerceptualMetric | None" = None,
) -> dict[str, torch.Tensor]:
    """PSNR, SSIM and (if given) the perceptual distance per image.

    Args:
        pred: ``(N, 3, H, W)`` predictions; clamped to [0, 1] here, as they would be when
            saved as an image.
        target: ``(N, 3, H, W)`` in [0, 1].
        perceptual: the perceptual metric; its name is ``perceptual.backend``.

    Returns:
        ``{"psnr", "ssim"[, "perceptual"]}``, each ``(N,)`` float32 on the inputs' device.
    """
    _check_pair(pred, target)
    pred = pred.clamp(0.0, 1.0)
    out = {"psnr": psnr(pred, target), "ssim": ssim(pred, target)}
    if perceptual is not None:
        out["perceptual"] = perceptual(pred.float(), target.float()).float()
    return out

