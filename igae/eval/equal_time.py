"""Latent and RGB fits compared at equal wall-clock budget, as well as at equal steps.

Two comparisons, both paired per unit (method, scene[, AE seed]):

- **at the latent fit's budget** (always available): the RGB fit's test PSNR at the latent fit's
  training time, read off the RGB fit's PSNR-vs-time curve (``curve.csv``) by linear
  interpolation in time. A time outside the curve's range gives no value (no extrapolation):
  the unit is counted as "outside" and left out of the mean;
- **at the RGB fit's budget** (when fits ran with ``nerf.equal_time.extra_stage2_steps`` > 0):
  the latent fit continued for that many stage-2 steps (``metrics.json``'s ``equal_time``
  block) against the RGB fit's final PSNR; both training times are shown, so the quality of
  the time match is visible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from igae.config import RGB_SPACE
from igae.errors import InputError
from igae.eval.paired import mean_ci

AT_LATENT_TIME = "rgb_psnr_at_train_s"
"""Per-fit column: the paired RGB fit's PSNR at this (latent) fit's training time; nan outside its curve."""


def psnr_at_time(curve: pd.DataFrame, seconds: float) -> float:
    """Test PSNR of a fit at ``seconds`` of training: linear in time between the two curve points
    around it; nan before the first point or after the last (never extrapolated).

    Args:
        curve: a fit's ``curve.csv`` (``train_seconds`` increasing, ``psnr``).
    """
    t, y = curve["train_seconds"].to_numpy(float), curve["psnr"].to_numpy(float)
    if len(t) == 0 or not np.isfinite(seconds) or seconds < t[0] or seconds > t[-1]:
        return float("nan")
    return float(np.interp(seconds, t, y))


def read_curve(fit_metrics: str | Path) -> pd.DataFrame:
    """The ``curve.csv`` beside a fit's ``metrics.json``.

    Raises:
        InputError: the file is missing or lacks ``train_seconds`` / ``psnr``.
    """
    path = Path(fit_metrics).with_name("curve.csv")
    if not path.is_file():
        raise InputError("PSNR-vs-time curve missing (needed for the equal-time comparison)", path)
    curve = pd.read_csv(path)
    if not {"train_seconds", "psnr"} <= set(curve.columns):
        raise InputError("not a PSNR-vs-time curve (needs train_seconds and psnr columns)", path)
    return curve


def add_rgb_at_latent_time(fits: pd.DataFrame) -> pd.DataFrame:
    """``fits`` with ``rgb_train_s`` (the paired RGB fit's training time) and
    :data:`AT_LATENT_TIME` on every latent row (nan on RGB rows and where no RGB fit pairs)."""
    out = fits.copy()
    out["rgb_train_s"] = np.nan
    out[AT_LATENT_TIME] = np.nan
    rgb = {(r.method, r.scene): r for r in fits[fits["space"] == RGB_SPACE].itertuples()}
    curves: dict[tuple[str, str], pd.DataFrame] = {}
    for i, row in fits[fits["space"] != RGB_SPACE].iterrows():
        key = (row["method"], row["scene"])
        if key not in rgb:
            continue
        if key not in curves:
            curves[key] = read_curve(rgb[key].source)
        out.loc[i, "rgb_train_s"] = rgb[key].train_s
        out.loc[i, AT_LATENT_TIME] = psnr_at_time(curves[key], float(row["train_s"]))
    return out


def equal_time_table(fits: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per (method, latent space): both comparisons, paired over units.

    Args:
        fits: :func:`igae.eval.nerf_summary.collect_fits` rows (with the equal-time columns).

    Returns:
        One row per (method, space) with columns ``units``, ``latent_train_s``, ``rgb_train_s``;
        at the latent budget ``outside`` (units with no RGB value at that time), ``latent_psnr``,
        ``rgb_psnr_at_latent_time``, ``diff_mean``, ``diff_lo``, ``diff_hi``, ``diff_n``; at the RGB
        budget (nan where the fits did not continue) ``extra_steps``, ``continued_train_s``,
        ``continued_psnr``, ``rgb_psnr``, ``cont_diff_mean``, ``cont_diff_lo``, ``cont_diff_hi``,
        ``cont_diff_n``. Means over units; differences are latent - RGB.
    """
    rows = []
    rgb_final = fits[fits["space"] == RGB_SPACE].set_index(["method", "scene"])["psnr"]
    for (method, space), part in fits[fits["space"] != RGB_SPACE].groupby(["method", "space"], sort=True):
        paired = part[part["rgb_train_s"].notna()]
        if paired.empty:
            continue
        inside = paired[paired[AT_LATENT_TIME].notna()]
        at_latent = mean_ci((inside["psnr"] - inside[AT_LATENT_TIME]).to_numpy(), level)
        cont = paired[paired["equal_time_psnr"].notna()]
        rgb_psnr = np.array([rgb_final[(m, s)] for m, s in zip(cont["method"], cont["scene"])], dtype=float)
        at_rgb = mean_ci(cont["equal_time_psnr"].to_numpy() - rgb_psnr, level)
        rows.append({
            "method": method, "space": space, "units": len(paired),
            "latent_train_s": paired["train_s"].mean(), "rgb_train_s": paired["rgb_train_s"].mean(),
            "outside": int(len(paired) - len(inside)),
            "latent_psnr": inside["psnr"].mean() if len(inside) else np.nan,
            "rgb_psnr_at_latent_time": inside[AT_LATENT_TIME].mean() if len(inside) else np.nan,
            "diff_mean": at_latent.mean, "diff_lo": at_latent.lo, "diff_hi": at_latent.hi, "diff_n": at_latent.n,
            "extra_steps": cont["equal_time_extra_steps"].mean() if len(cont) else np.nan,
            "continued_train_s": cont["equal_time_train_s"].mean() if len(cont) else np.nan,
            "continued_psnr": cont["equal_time_psnr"].mean() if len(cont) else np.nan,
            "rgb_psnr": rgb_psnr.mean() if len(cont) else np.nan,
            "cont_diff_mean": at_rgb.mean, "cont_diff_lo": at_rgb.lo, "cont_diff_hi": at_rgb.hi,
            "cont_diff_n": at_rgb.n, "level": level,
        })
    return pd.DataFrame(rows)
