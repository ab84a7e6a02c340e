"""The latent normaliser's scale ``s``, calibrated so ``tanh(s z)`` reaches a target std.

Why calibrate: tri-planes and latent NeRFs fit normalised latents ``tanh(s z)``, so their
spread sets the weight of every latent loss against the image losses. The paper's code
uses ``s = 0.02`` with Stable-Diffusion-type VAEs, whose raw latents have a std of about
``1 / scaling_factor = 1 / 0.18215 = 5.5`` (diffusers picks ``scaling_factor`` so that
``scaling_factor * z`` has unit variance), so ``tanh(0.02 z)`` has a std of about 0.1.
An autoencoder trained here has other raw latents (a std of about 1.1 was measured for the
default standard AE before this calibration existed), and the same ``s`` would give about
0.02: L_latent 25x weaker than in the paper. With
``autoencoder.normalizer_scale: auto`` every autoencoder gets the ``s`` that puts its
normalised latents at ``autoencoder.normalizer_target_std`` instead.

The calibration is deterministic: posterior-mean latents (no sampling) of an evenly spaced
subset of the images, a bisection on ``log s`` in float64, and ``s`` rounded to 4
significant digits so that last-bit differences between machines rarely change it.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Sequence

import torch

from igae.autoencoder.latents import encode_latents
from igae.autoencoder.model import Autoencoder
from igae.autoencoder.normalizer import LatentNormalizer
from igae.errors import InputError

log = logging.getLogger(__name__)

AUTO = "auto"
SIGNIFICANT_DIGITS = 4
_BISECTION_STEPS = 200  # each halves the bracket in log s; stops early at float64 resolution


def pick_images(groups: Sequence[torch.Tensor], max_images: int) -> list[torch.Tensor]:
    """At most ``max_images`` images, evenly spaced over all groups in order.

    Args:
        groups: ``(N_i, 3, H_i, W_i)`` image batches (sizes may differ between groups).

    Returns:
        the picked images, one ``(n_i, 3, H_i, W_i)`` batch per group that keeps any.
    """
    total = sum(len(g) for g in groups)
    if total == 0:
        raise InputError("no images to calibrate the latent normaliser on")
    keep = set(torch.linspace(0, total - 1, min(max_images, total)).round().long().tolist())
    picked, start = [], 0
    for g in groups:
        idx = [i - start for i in range(start, start + len(g)) if i in keep]
        start += len(g)
        if idx:
            picked.append(g[idx])
    return picked


def collect_latents(ae: Autoencoder, groups: Sequence[torch.Tensor], max_images: int,
                    batch_size: int = 32) -> tuple[torch.Tensor, int]:
    """Raw posterior-mean latents of up to ``max_images`` images, per channel.

    Images whose sides are not multiples of the AE's downsampling are cropped at the
    bottom/right, as latent fits do.

    Returns:
        ``(latents (C, M) float64 on CPU, number of images)``; ``M`` counts every latent pixel.

    Raises:
        InputError: an image smaller than the downsampling factor, or non-finite latents.
    """
    f = ae.downsampling
    flat, count = [], 0
    for images in pick_images(groups, max_images):
        h, w = (images.shape[2] // f) * f, (images.shape[3] // f) * f
        if h == 0 or w == 0:
            raise InputError(f"calibration images of {images.shape[3]}x{images.shape[2]} pixels are smaller "
                             f"than the autoencoder's downsampling {f}")
        z = encode_latents(ae, images[:, :, :h, :w], batch_size)  # (n, C, h/f, w/f)
        flat.append(z.transpose(0, 1).reshape(z.shape[1], -1).double())
        count += len(images)
    latents = torch.cat(flat, dim=1)
    if not torch.isfinite(latents).all():
        raise InputError("the autoencoder's latents of the calibration images contain NaN or inf")
    return latents, count


def latent_stats(latents: torch.Tensor, scale: float, images: int) -> dict[str, Any]:
    """Raw and normalised latent statistics (population std over all elements).

    Args:
        latents: ``(C, M)`` raw latents (see :func:`collect_latents`).
        scale: the normaliser's ``s``.
        images: how many images the latents come from (recorded).
    """
    latents = latents.detach()
    normalized = torch.tanh(scale * latents)
    return {
        "images": images, "elements": int(latents.numel()), "scale": scale,
        "raw_mean": float(latents.mean()), "raw_std": float(latents.std(unbiased=False)),
        "raw_std_per_channel": [float(v) for v in latents.std(dim=1, unbiased=False)],
        "raw_abs_max": float(latents.abs().max()),
        "normalized_mean": float(normalized.mean()), "normalized_std": float(normalized.std(unbiased=False)),
        "normalized_abs_max": float(normalized.abs().max()),
    }


def calibrate_scale(latents: torch.Tensor, target_std: float) -> float:
    """The ``s`` at which ``std(tanh(s z))`` over all of ``latents`` equals ``target_std``.

    Bisection on ``log s``: the bracket starts at the small-``s`` solution
    ``target / std(z)`` and widens until it holds the crossing, so the answer does not
    depend on a guessed range. The result is rounded to 4 significant digits.

    Args:
        latents: raw latents, any shape (float64 recommended).
        target_std: in (0, 1); must be below ``std(sign(z))``, the limit as ``s`` grows.

    Raises:
        InputError: a target out of range, constant latents, or a target the latents
            cannot reach.
    """
    if not 0.0 < target_std < 1.0:
        raise InputError(f"autoencoder.normalizer_target_std must be in (0, 1), got {target_std}")
    z = latents.detach().double().flatten()
    raw_std = float(z.std(unbiased=False))
    if not raw_std > 0.0:
        raise InputError("the latents of the calibration images are constant: cannot calibrate the normaliser")
    ceiling = float(torch.sign(z).std(unbiased=False))
    if target_std >= ceiling:
        raise InputError(f"autoencoder.normalizer_target_std {target_std} is out of reach: tanh(s z) of these "
                         f"latents has a std below {ceiling:.4g} for every s")

    def spread(s: float) -> float:
        return float(torch.tanh(s * z).std(unbiased=False))

    s0 = target_std / raw_std
    lo, hi = s0, s0
    for _ in range(_BISECTION_STEPS):  # widen until spread(lo) <= target <= spread(hi)
        if spread(lo) <= target_std:
            break
        lo /= 2.0
    for _ in range(_BISECTION_STEPS):
        if spread(hi) >= target_std:
            break
        hi *= 2.0
    if not spread(lo) <= target_std <= spread(hi):
        raise InputError(f"could not bracket the normaliser scale for target std {target_std}")
    for _ in range(_BISECTION_STEPS):
        mid = math.sqrt(lo * hi)
        if not lo < mid < hi:
            break
        if spread(mid) < target_std:
            lo = mid
        else:
            hi = mid
    return float(f"{math.sqrt(lo * hi):.{SIGNIFICANT_DIGITS}g}")


def resolve_normalizer(
    ae: Autoencoder,
    setting: float | str,
    target_std: float,
    groups: Sequence[torch.Tensor] | None,
    described_as: str,
    max_images: int,
) -> dict[str, Any]:
    """Give ``ae`` its normaliser scale (a number, or calibrated for ``"auto"``) and describe it.

    The one calibration entry point: ``train-ae`` calls it on its training views,
    ``import-ae`` on ``--calibrate-on`` images, a stage given a plain diffusers folder on
    the images it trains on.

    Args:
        setting: ``autoencoder.normalizer_scale``: ``s`` itself, or ``"auto"``.
        target_std: ``autoencoder.normalizer_target_std`` (used for ``"auto"``).
        groups: image batches ``(N_i, 3, H_i, W_i)`` in [0, 1]; None or empty: no images.
            With ``"auto"`` and no images, ``s = target_std * scaling_factor`` from the
            diffusers config (exact only if ``scaling_factor`` was fitted to the latents).
        described_as: what the images are, for the record (e.g. "training-scene views").
        max_images: at most this many images are encoded (evenly spaced).

    Returns:
        the record for the AE's metadata: ``scale``, ``setting``, ``method``
        (``"fixed"``, ``"bisection"`` or ``"scaling_factor"``), ``target_std``,
        ``calibrated_on`` and ``latent_stats`` (None without images).
    """
    have_images = bool(groups) and sum(len(g) for g in groups) > 0
    latents, count = collect_latents(ae, groups, max_images) if have_images else (None, 0)
    scaling_factor = float(getattr(ae.vae.config, "scaling_factor", 1.0) or 1.0)
    if setting == AUTO:
        if latents is not None:
            scale, method = calibrate_scale(latents, target_std), "bisection"
        else:
            scale, method = float(f"{target_std * scaling_factor:.{SIGNIFICANT_DIGITS}g}"), "scaling_factor"
            log.warning("normalizer_scale auto without calibration images: s = target std x scaling_factor "
                        "(%g x %g = %g); give images to calibrate on for a measured s", target_std,
                        scaling_factor, scale)
    elif isinstance(setting, (int, float)) and not isinstance(setting, bool) and setting > 0:
        scale, method = float(setting), "fixed"
    else:
        raise InputError(f"autoencoder.normalizer_scale must be a number > 0 or 'auto', got {setting!r}")
    ae.normalizer = LatentNormalizer(scale, ae.normalizer.eps)
    return {
        "scale": scale, "setting": setting, "method": method,
        "target_std": target_std if setting == AUTO else None,
        "calibrated_on": described_as if latents is not None else None,
        "scaling_factor": scaling_factor,
        "latent_stats": latent_stats(latents, scale, count) if latents is not None else None,
    }


def measure_latents(ae: Autoencoder, groups: Sequence[torch.Tensor], max_images: int) -> dict[str, Any]:
    """:func:`latent_stats` of ``ae`` at its own normaliser scale on (up to ``max_images`` of) ``groups``."""
    latents, count = collect_latents(ae, groups, max_images)
    return latent_stats(latents, ae.normalizer.scale, count)
