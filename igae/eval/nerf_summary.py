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

from igae.config import AE_NAMES, RGB_SPACE
from igae.errors import InputError
from igae.eval.equal_time import add_rgb_at_latent_time
from igae.eval.paired import paired_differences, paired_table

KEYS = ["space", "method", "scene", "ae_seed"]
STAGE_COLUMNS = {"latent": "train_stage1_s", "rgb_align": "train_stage2_s", "rgb": "train_rgb_s"}
"""Training phase of a fit -> its column (stage 1 / stage 2 of latent fits, the one RGB phase)."""
QUALITY = ("psnr", "ssim", "perceptual")
"""The test-view metrics of a fit (``perceptual``: the backend in ``perceptual_backend``)."""
CEILING_COLUMNS = {m: f"ae_ceiling_{m}" for m in QUALITY}
"""metric -> column of the shared AE's own reconstruction of the fit's test views (latent fits)."""
EQUAL_TIME_COLUMNS = {m: f"equal_time_{m}" for m in QUALITY}
"""metric -> column of the latent fit continued to an equal wall-clock budget (``nerf.equal_time``)."""
METRIC_COLUMNS = ["psnr", "ssim", "perceptual", "train_s", *STAGE_COLUMNS.values(), "overhead_s", "render_field_ms",
                  "render_decode_ms", "render_ms", "peak_rss_mb", "gpu_peak_mb", *CEILING_COLUMNS.values(),
                  *EQUAL_TIME_COLUMNS.values(), "equal_time_train_s", "rgb_train_s", "rgb_psnr_at_train_s"]
COMPARISONS = (("igae", "standard"), ("igae", "finetuned"), ("igae", RGB_SPACE))
"""The paired comparisons the summary and the report make (space a - space b, per unit)."""
NAN = float("nan")


def fit_row(metrics: dict[str, Any], source: Path) -> dict[str, Any]:
    """One table row from a fit's ``metrics.json`` content.

    ``ae_seed`` is nan for RGB fits and for fits written before AE seeds were recorded; the AE
    ceiling and equal-time columns are nan where the fit did not record them.
    """
    try:
        timing = metrics["render_seconds_per_frame"]
        ceiling = (metrics.get("ae_ceiling") or {}).get("metrics", {})
        equal_time = metrics.get("equal_time") or {}
        seed = metrics.get("ae_seed")
        return {
            "space": metrics["space"], "method": metrics["method"], "scene": metrics["scene"],
            "ae_seed": NAN if seed is None else float(seed),
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
            **{col: ceiling.get(m, NAN) for m, col in CEILING_COLUMNS.items()},
            **{col: equal_time.get("metrics", {}).get(m, NAN) for m, col in EQUAL_TIME_COLUMNS.items()},
            "equal_time_train_s": equal_time.get("train_seconds", {}).get("total", NAN),
            "equal_time_extra_steps": equal_time.get("extra_stage2_steps", NAN),
            "device": metrics["provenance"].get("device"), "seed": metrics["seed"], "source": str(source),
        }
    except (KeyError, TypeError) as err:
        raise InputError(f"not a fit-nerf metrics file (missing {err})", source) from None


def collect_fits(root: str | Path) -> pd.DataFrame:
    """All ``<root>/<space>/<method>/<scene>/metrics.json`` as rows (sorted by space, method, scene,
    AE seed), with the paired RGB fit's training time and PSNR at each latent fit's training time
    (:func:`igae.eval.equal_time.add_rgb_at_latent_time`).

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
    fits = pd.DataFrame(rows).sort_values(KEYS).reset_index(drop=True)
    return add_rgb_at_latent_time(fits)


def units_label(fits: pd.DataFrame) -> str:
    """What one paired unit is: ``scenes``, or ``scene x AE seed units`` when several AE seeds ran."""
    return "scene x AE seed units" if len(ae_seeds(fits)) > 1 else "scenes"


def ae_seeds(fits: pd.DataFrame) -> list[int]:
    """The AE seeds the latent fits were made with (empty for fits that did not record one)."""
    return sorted(int(s) for s in fits["ae_seed"].dropna().unique())


def summarize_fits(fits: pd.DataFrame) -> pd.DataFrame:
    """Mean over units (scenes, or scene x AE seed) of every metric, per (space, method), with the
    scene and unit counts (a column's mean skips the fits that did not record it)."""
    grouped = fits.groupby(["space", "method"], sort=True)
    out = grouped[METRIC_COLUMNS].mean()
    out["scenes"] = grouped["scene"].nunique()
    out["units"] = grouped.size()
    return out.reset_index()


def paired_summary(fits: pd.DataFrame, level: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The paired comparisons (:data:`COMPARISONS`) for every method and quality metric.

    Returns:
        ``(table, units)``: :func:`igae.eval.paired.paired_table` with ``metric_label`` (the
        perceptual metric named by its backend) and ``units`` (what n counts) added; and every
        unit's difference (columns ``comparison, method, metric, scene, ae_seed, a, b, diff``).
    """
    table = paired_table(fits, list(COMPARISONS), list(QUALITY), level=level)
    label = perceptual_backend(fits)
    table.insert(5, "metric_label", table["metric"].map({"psnr": "PSNR (dB)", "ssim": "SSIM", "perceptual": label}))
    table["units"] = units_label(fits)
    parts = []
    for a, b in COMPARISONS:
        for metric in QUALITY:
            diffs = paired_differences(fits, a, b, metric)
            if diffs.empty:
                continue
            diffs.insert(0, "metric", metric)
            diffs.insert(0, "comparison", f"{a} - {b}")
            parts.append(diffs)
    units = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["comparison", "metric", "method", "scene", "ae_seed", "a", "b", "diff"])
    if "ae_seed" not in units:
        units["ae_seed"] = NAN
    units = units[["comparison", "method", "metric", "scene", "ae_seed", "a", "b", "diff"]]
    return table, units


DECOMPOSITION = (("igae", "standard"), ("igae", "finetuned"), ("finetuned", "standard"))
"""Latent-space pairs whose PSNR difference :func:`gain_decomposition` splits (space a - space b)."""
GAP_COLUMN = "ceiling_gap_psnr"
"""A latent fit's test PSNR minus its AE ceiling's (<= 0 in practice: the NeRF's distance to its AE)."""


def gain_decomposition(fits: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Split the test-PSNR difference of two latent spaces into the autoencoder's part and the NeRF's.

    Per paired unit, ``psnr_a - psnr_b = (ceiling_a - ceiling_b) + (gap_a - gap_b)``, ``gap = psnr -
    ceiling``, the ceiling being the shared AE's own encode -> decode PSNR of the same test views. The
    ceiling part is what a better reconstructing AE gives any latent NeRF; the gap part is how much closer
    the latent NeRF gets to its own AE's reconstruction, which a 3D-consistent latent space (IG-AE's aim)
    should raise. Fits without a recorded ceiling are left out of all three.

    Returns:
        :func:`igae.eval.paired.paired_table` rows for :data:`DECOMPOSITION` with ``metric`` in ``psnr``,
        ``ae_ceiling_psnr`` and :data:`GAP_COLUMN`.
    """
    latent = fits[(fits["space"] != RGB_SPACE) & fits[CEILING_COLUMNS["psnr"]].notna()]
    latent = latent.assign(**{GAP_COLUMN: latent["psnr"] - latent[CEILING_COLUMNS["psnr"]]})
    return paired_table(latent, list(DECOMPOSITION), ["psnr", CEILING_COLUMNS["psnr"], GAP_COLUMN], level=level)


def ceiling_difference(fits: pd.DataFrame, space_a: str, space_b: str) -> pd.DataFrame:
    """AE ceiling PSNR of ``space_a`` minus ``space_b`` once per (scene, AE seed): the ceiling depends on the
    AE and the test views, not on the NeRF method (:func:`igae.eval.paired.paired_differences` columns)."""
    col = CEILING_COLUMNS["psnr"]
    latent = fits[fits["space"].isin([space_a, space_b]) & fits[col].notna()]
    once = latent.drop_duplicates([k for k in KEYS if k != "method"]).assign(method="every method")
    return paired_differences(once, space_a, space_b, col)


def perceptual_backend(fits: pd.DataFrame) -> str:
    """The perceptual metric's name: the backend the fits used (one backend per table).

    Raises:
        InputError: fits evaluated with different backends.
    """
    backends = sorted(set(fits["perceptual_backend"].dropna()))
    if len(backends) > 1:
        raise InputError(f"fits were evaluated with different perceptual backends {backends}; "
                         f"rerun them with one autoencoder.perceptual setting")
    return backends[0] if backends else "perceptual"


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
    keys = ("psnr", "ssim", "perceptual", "train_s", "render_ms", "ae_ceiling_psnr", "equal_time_psnr")
    for row in summary.itertuples():
        tree.setdefault(str(row.space), {})[str(row.method)] = {
            k: round(float(getattr(row, k)), 4) for k in keys if np.isfinite(float(getattr(row, k)))}
    return tree


GOALS = {
    "igae_minus_standard_psnr": ("IG-AE − standard AE, test PSNR", "dB", 1.0,
                                 "mean >= +1 dB and the CI's lower bound > 0"),
    "igae_minus_finetuned_psnr": ("IG-AE − fine-tuned AE (ablation), test PSNR", "dB", 0.0,
                                  "mean > 0 and the CI's lower bound > 0"),
    "render_time_ratio": ("latent / RGB render time per frame (slowest latent space)", "x", 0.2,
                          "<= 0.2 in every latent space"),
    "train_time_ratio": ("latent / RGB training time (slowest latent space)", "x", 1.0,
                         "< 1 in every latent space"),
}
"""goal key -> (label, unit, threshold, rule): the issue's goals, per NeRF method."""


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def check_goals(fits: pd.DataFrame, level: float = 0.95) -> dict[str, Any]:
    """The issue's goals per NeRF method, each with its numbers and whether it is met.

    - ``igae_minus_standard_psnr``: paired IG-AE - standard PSNR over units, mean >= 1 dB with
      the CI's lower bound > 0; ``igae_minus_finetuned_psnr``: mean > 0 with lower bound > 0.
      ``met`` is ``None`` when the interval is undefined (fewer than two units) or a space is missing.
    - ``render_time_ratio`` / ``train_time_ratio``: per latent space, the mean latent time over
      the mean RGB time (``by_space``); ``mean`` is the largest (slowest space): <= 0.2 / < 1.

    Returns:
        ``{method: {goal: {label, unit, mean, lo, hi, n, threshold, rule, met[, by_space]}}}``.
    """
    table, _ = paired_summary(fits, level)
    means = summarize_fits(fits).set_index(["space", "method"])
    goals: dict[str, Any] = {}
    for method in sorted(fits["method"].unique()):
        entry: dict[str, Any] = {}
        for key, other in (("igae_minus_standard_psnr", "standard"), ("igae_minus_finetuned_psnr", "finetuned")):
            label, unit, threshold, rule = GOALS[key]
            row = table[(table["method"] == method) & (table["b"] == other) & (table["metric"] == "psnr")]
            if row.empty:
                entry[key] = {"label": label, "unit": unit, "mean": None, "lo": None, "hi": None, "n": 0,
                              "threshold": threshold, "rule": rule, "met": None}
                continue
            r = row.iloc[0]
            mean, lo = float(r["mean"]), float(r["lo"])
            met = None if not np.isfinite(lo) else bool(mean >= threshold and lo > 0) if threshold > 0 \
                else bool(mean > 0 and lo > 0)
            entry[key] = {"label": label, "unit": unit, "mean": _finite(mean), "lo": _finite(lo),
                          "hi": _finite(float(r["hi"])), "n": int(r["n"]), "threshold": threshold, "rule": rule,
                          "met": met}
        for key, column, ok in (("render_time_ratio", "render_ms", lambda v: v <= 0.2),
                                ("train_time_ratio", "train_s", lambda v: v < 1.0)):
            label, unit, threshold, rule = GOALS[key]
            by_space: dict[str, float | None] = {}
            rgb = means[column].get((RGB_SPACE, method), NAN)
            for space in AE_NAMES:
                value = means[column].get((space, method), NAN) / rgb if rgb else NAN
                by_space[space] = _finite(value)
            values = list(by_space.values())
            worst = None if any(v is None for v in values) else max(values)
            entry[key] = {"label": label, "unit": unit, "mean": worst, "lo": None, "hi": None,
                          "n": int(means["scenes"].get((RGB_SPACE, method), 0)), "threshold": threshold,
                          "rule": rule, "met": None if worst is None else bool(ok(worst)), "by_space": by_space}
        goals[method] = entry
    return goals
