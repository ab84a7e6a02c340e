"""How well an autoencoder reconstructs held-out images: per image and aggregated."""

from __future__ import annotations

import io
import csv
from pathlib import Path
from typing import Any

import torch

from igae.autoencoder.model import Autoencoder
from igae.autoencoder.perceptual import PerceptualMetric
from igae.eval.metrics import image_metrics
from igae.io import write_json_atomic, write_text_atomic


@torch.no_grad()
def reconstruction_metrics(
    ae: Autoencoder,
    images: torch.Tensor,
    perceptual: PerceptualMetric | None,
    batch_size: int = 16,
    latents: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """PSNR / SSIM / perceptual of ``D(E(x))`` against ``x`` per image.

    Args:
        images: (N, 3, H, W) in [0, 1] (any device; moved batch by batch).
        latents: ``(N, C, H/f, W/f)`` raw posterior means ``E(x)`` when the caller has them already;
            otherwise the images are encoded here.

    Returns:
        ``{"psnr": (N,), "ssim": (N,), "perceptual": (N,)}`` (perceptual only with a metric).
    """
    ae.eval()
    out: dict[str, list[torch.Tensor]] = {}
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(ae.device)
        z = ae.encode(x) if latents is None else latents[start : start + batch_size].to(ae.device)
        recon = ae.decode(z, clamp=True)
        for key, value in image_metrics(recon, x, perceptual).items():
            out.setdefault(key, []).append(value.detach().cpu())
    return {k: torch.cat(v) for k, v in out.items()}


def summarize(values: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """Mean, std, min, max and count of each metric."""
    return {
        k: {"mean": float(v.mean()), "std": float(v.std(unbiased=False)), "min": float(v.min()),
            "max": float(v.max()), "count": int(v.numel())}
        for k, v in values.items()
    }


def write_per_image_csv(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Rows of dicts as CSV (columns from the first row), written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["image"], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text_atomic(path, buffer.getvalue())


def evaluate_autoencoder(
    ae: Autoencoder,
    sets: dict[str, tuple[torch.Tensor, list[str]]],
    perceptual: PerceptualMetric | None,
    out_dir: str | Path,
    metadata: dict[str, Any],
) -> dict[str, Any]:
    """Evaluate ``ae`` on named image sets and write ``metrics.json`` + ``per_image.csv``.

    Args:
        sets: name -> (images (N, 3, H, W), image names), e.g. ``{"photos_test": ...,
            "heldout_scene_views": ...}``; none of them may have been used in training.
        metadata: AE name, seed, params, provenance; stored in ``metrics.json``.
    """
    out_dir = Path(out_dir)
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for set_name, (images, names) in sets.items():
        values = reconstruction_metrics(ae, images, perceptual)
        summary[set_name] = summarize(values)
        for i, name in enumerate(names):
            rows.append({"set": set_name, "image": name, **{k: float(v[i]) for k, v in values.items()}})
    result = {
        **metadata,
        "perceptual_backend": perceptual.backend if perceptual is not None else None,
        "metrics": summary,
    }
    write_per_image_csv(out_dir / "per_image.csv", rows)
    write_json_atomic(out_dir / "metrics.json", result)
    return result


def triplane_fit_quality(
    ae: Autoencoder,
    triplanes: str | Path,
    scenes: str | Path,
    limit: int,
    object_box: float,
    perceptual: PerceptualMetric | None,
) -> dict[str, dict[str, float]]:
    """How well IG-AE's tri-planes fit its training scenes: metrics of decoded tri-plane renders.

    Args:
        ae: the IG-AE (its device is used).
        triplanes: the ``triplanes.pt`` written by ``train-igae``.
        scenes: the training scene set the tri-planes were fitted to.
        limit: at most this many views, evenly spaced over the set.
        object_box: ``scenes.object_box`` (the tri-planes' box).
        perceptual: the perceptual metric, or None.

    Returns:
        :func:`summarize` of the per-view metrics (training views: a fit quality, not a test metric).
    """
    from igae.train.data import load_view_bank
    from igae.train.igae_trainer import decoded_renders, load_field

    device = ae.device
    field, tp = load_field(triplanes, object_box)
    bank = load_view_bank(scenes, "train")
    views = torch.linspace(0, len(bank) - 1, min(limit, len(bank))).round().long().unique()
    pred = decoded_renders(ae, field.to(device), bank, views, tp)
    fit = {k: v.cpu() for k, v in image_metrics(pred.to(device), bank.images[views].to(device), perceptual).items()}
    return summarize(fit)
