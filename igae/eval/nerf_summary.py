"""Collect per-scene fit results into one table, average them, and check the issue's goals.

Every number comes from a fit's ``metrics.json`` (which records its seed, params, versions and
device); :func:`collect_fits` keeps the path of that file in each row, so a table cell can be
traced back to the files it averages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from igae.config import AE_NAMES
from igae.errors import InputError

KEYS = ["space", "method", "scene"]
STAGE_COLUMNS = {"latent": "train_stage1_s", "rgb_align": "train_stage2_s", "rgb": "train_rgb_s"}
"""Training phase of a fit -> its column (stage 1 / stage 2 of latent fits, the one RGB phase)."""
METRIC_COLUMNS = ["psnr", "ssim", "perceptual", "train_s", *STAGE_COLUMNS.values(), "overhead_s", "render_field_ms",
                  "render_decode_ms", "render_ms", "peak_rss_mb", "gpu_peak_mb"]


def fit_row(metrics: dict[str, Any], source: Path) -> dict[str, Any]:
    """One table row from a fit's ``metrics.json`` content."""
    try:
        timing = metrics["render_seconds_per_frame"]
        return {
            "space": metrics["space"], "method": metrics["method"], "scene": metrics["scene"],
            "psnr": metrics["metrics"]["psnr"], "ssim": metrics["metrics"]["ssim"],
            "perceptual": metrics["metrics"].get("perceptual", float("nan")),
            "perceptual_backend": metrics.get("perceptual_backend"),
            "train_s": metrics["train_seconds"]["total"],
            # time outside training (setup, evaluations, turntable); nan for fits written before it was recorded
            "overhead_s": metrics.get("overhead_seconds", {}).get("total", float("nan")),
            **{col: metrics["train_seconds"].get(phase, float("nan")) for phase, col in STAGE_COLUMNS.items()},
            "render_field_ms": 1e3 * timing["field"], "render_decode_ms": 1e3 * timing["decode"],
            "render_ms": 1e3 * timing["total"], "peak_rss_mb": metrics["memory"]["cpu_peak_rss_mb"],
            "gpu_peak_mb": metrics["memory"].get("gpu_peak_allocated_mb", float("nan")),  # CUDA fits only
            "device": metrics["provenance"].get("device"), "seed": metrics["seed"], "source": str(source),
        }
    except (KeyError, TypeError) as err:
        raise InputError(f"not a fit-nerf metrics file (missing {err})", source) from None


def collect_fits(root: str | Path) -> pd.DataFrame:
    """All ``<root>/<space>/<method>/<scene>/metrics.json`` as rows (sorted by space, method, scene).

    Raises:
        InputError: no fits under ``root``, or a file that is not valid fit metrics.
    """
    files = sorted(Path(root).glob("*/*/*/metrics.json"))
    if not files:
        raise InputError("no fit results (<space>/<method>/<scene>/metrics.json) found", root)
    rows = []
    for f in files:
        try:
            rows.append(fit_row(json.loads(f.read_text()), f))
        except json.JSONDecodeError as err:
            raise InputError(f"not valid JSON: {err}", f) from None
    return pd.DataFrame(rows).sort_values(KEYS).reset_index(drop=True)


def summarize_fits(fits: pd.DataFrame) -> pd.DataFrame:
    """Mean over scenes of every metric, per (space, method), with the scene count."""
    grouped = fits.groupby(["space", "method"], sort=True)
    out = grouped[METRIC_COLUMNS].mean()
    out["scenes"] = grouped["scene"].nunique()
    return out.reset_index()


def mean_curve(curve_files: list[Path]) -> pd.DataFrame:
    """Point-wise mean of several ``curve.csv`` (step, train_seconds, psnr), cut to the shortest."""
    missing = [str(f) for f in curve_files if not Path(f).is_file()]
    if missing:
        raise InputError(f"PSNR-vs-time curve files missing: {missing[:3]}{' ...' if len(missing) > 3 else ''}")
    curves = [pd.read_csv(f) for f in curve_files]
    points = min(len(c) for c in curves)
    stacked = np.stack([c[["step", "train_seconds", "psnr"]].to_numpy()[:points] for c in curves])
    return pd.DataFrame(stacked.mean(axis=0), columns=["step", "train_seconds", "psnr"])


def curves_by_space(fits: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per space, the PSNR-vs-time curve averaged over every fit (methods and scenes) of it."""
    out = {}
    for space, part in fits.groupby("space"):
        out[str(space)] = mean_curve([Path(src).with_name("curve.csv") for src in part["source"]])
    return out


def metrics_tree(summary: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    """``{space: {method: {psnr, ssim, perceptual, train_s, render_ms}}}`` for ``dvc metrics``."""
    tree: dict[str, dict[str, dict[str, float]]] = {}
    for row in summary.itertuples():
        tree.setdefault(str(row.space), {})[str(row.method)] = {
            k: round(float(getattr(row, k)), 4) for k in ("psnr", "ssim", "perceptual", "train_s", "render_ms")}
    return tree


def check_goals(summary: pd.DataFrame) -> dict[str, Any]:
    """Issue 4's goals per method, from the per-(space, method) means.

    - ``igae_minus_standard_db`` >= 1 and ``igae_minus_finetuned_db`` > 0 (test PSNR);
    - ``latent_over_rgb_render`` <= 0.2 (render time per frame, decoding included, per space);
    - ``latent_faster_to_train``: each latent fit's training time < the RGB fit's.
    Missing spaces give ``None``.
    """
    table = summary.set_index(["space", "method"])

    def value(space: str, method: str, column: str) -> float | None:
        return float(table.loc[(space, method), column]) if (space, method) in table.index else None

    goals: dict[str, Any] = {}
    for method in sorted(summary["method"].unique()):
        ig, st, ft = (value(s, method, "psnr") for s in ("igae", "standard", "finetuned"))
        rgb_render, rgb_train = value("rgb", method, "render_ms"), value("rgb", method, "train_s")
        entry: dict[str, Any] = {
            "igae_minus_standard_db": None if ig is None or st is None else ig - st,
            "igae_minus_finetuned_db": None if ig is None or ft is None else ig - ft,
        }
        entry["psnr_goal_met"] = (None if entry["igae_minus_standard_db"] is None or entry["igae_minus_finetuned_db"] is None
                                  else entry["igae_minus_standard_db"] >= 1.0 and entry["igae_minus_finetuned_db"] > 0.0)
        for space in AE_NAMES:
            r, t = value(space, method, "render_ms"), value(space, method, "train_s")
            entry[f"{space}_render_over_rgb"] = None if r is None or not rgb_render else r / rgb_render
            entry[f"{space}_train_over_rgb"] = None if t is None or not rgb_train else t / rgb_train
        ratios = [entry[f"{s}_render_over_rgb"] for s in AE_NAMES]
        entry["render_goal_met"] = None if any(r is None for r in ratios) else all(r <= 0.2 for r in ratios)
        trains = [entry[f"{s}_train_over_rgb"] for s in AE_NAMES]
        entry["train_goal_met"] = None if any(t is None for t in trains) else all(t < 1.0 for t in trains)
        goals[method] = entry
    return goals
