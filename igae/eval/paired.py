"""Paired comparisons between latent spaces: per-scene differences with a confidence interval.

Two spaces are compared on the same fits' units (same method, same held-out scene and, where
several AE seeds ran, the same seed), so scene difficulty cancels out of the difference. The
interval is over those units: a Student-t interval on the mean difference by default, or a
percentile bootstrap (seeded, so the table is reproducible).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from igae.errors import InputError

PAIR_KEYS = ("method", "scene", "ae_seed")
"""Columns that identify one paired unit (``ae_seed`` only where present)."""


@dataclass(frozen=True)
class MeanCI:
    """Mean of ``n`` paired differences and its two-sided confidence interval ``[lo, hi]``."""

    mean: float
    lo: float
    hi: float
    n: int
    sd: float
    level: float
    method: str

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of 0 (nan bounds never do)."""
        return bool(self.lo > 0 or self.hi < 0)


def mean_ci(values: np.ndarray | pd.Series | list[float], level: float = 0.95,
            method: Literal["t", "bootstrap"] = "t", resamples: int = 10000, seed: int = 0) -> MeanCI:
    """Mean of ``values`` ``(n,)`` with a two-sided ``level`` confidence interval.

    ``t``: mean +- t_{(1+level)/2, n-1} * sd / sqrt(n). ``bootstrap``: percentiles of the means of
    ``resamples`` resamples with replacement (generator seeded by ``seed``). With fewer than two
    values the interval is undefined (nan).

    Raises:
        InputError: non-finite values, a level outside (0, 1) or an unknown method.
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(x)):
        raise InputError(f"paired differences must be finite, got {x.tolist()}")
    if not 0.0 < level < 1.0:
        raise InputError(f"confidence level must lie in (0, 1), got {level}")
    n = len(x)
    if n == 0:
        return MeanCI(float("nan"), float("nan"), float("nan"), 0, float("nan"), level, method)
    mean = float(x.mean())
    sd = float(x.std(ddof=1)) if n > 1 else float("nan")
    if n < 2:
        return MeanCI(mean, float("nan"), float("nan"), n, sd, level, method)
    if method == "t":
        half = float(stats.t.ppf(0.5 + level / 2.0, n - 1)) * sd / np.sqrt(n)
        return MeanCI(mean, mean - half, mean + half, n, sd, level, method)
    if method == "bootstrap":
        rng = np.random.default_rng(seed)
        means = x[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
        lo, hi = np.quantile(means, [0.5 - level / 2.0, 0.5 + level / 2.0])
        return MeanCI(mean, float(lo), float(hi), n, sd, level, method)
    raise InputError(f"unknown confidence-interval method {method!r}; use 't' or 'bootstrap'")


def paired_differences(fits: pd.DataFrame, space_a: str, space_b: str, metric: str = "psnr") -> pd.DataFrame:
    """``metric(space_a) - metric(space_b)`` per paired unit (method, scene[, ae_seed]).

    Args:
        fits: one row per fit with columns ``space``, ``method``, ``scene``, ``metric`` (and
            ``ae_seed`` when AE stages ran for several seeds; the RGB space has no AE seed, so
            its rows pair with every seed of the other space).

    Returns:
        Columns ``method, scene[, ae_seed], a, b, diff``, one row per unit present in both
        spaces, sorted.
    """
    for col in ("space", "method", "scene", metric):
        if col not in fits.columns:
            raise InputError(f"fit table has no column {col!r}")
    keys = [k for k in PAIR_KEYS if k in fits.columns]
    a = fits.loc[fits["space"] == space_a, keys + [metric]].rename(columns={metric: "a"})
    b = fits.loc[fits["space"] == space_b, keys + [metric]].rename(columns={metric: "b"})
    on = list(keys)
    if "ae_seed" in keys:
        # A space without AE seeds (RGB) pairs with every seed of the other on method and scene.
        if b["ae_seed"].isna().all():
            on.remove("ae_seed")
            b = b.drop(columns="ae_seed")
        elif a["ae_seed"].isna().all():
            on.remove("ae_seed")
            a = a.drop(columns="ae_seed")
    merged = a.merge(b, on=on, how="inner")
    merged["diff"] = merged["a"] - merged["b"]
    order = [k for k in keys if k in merged.columns]
    return merged[order + ["a", "b", "diff"]].sort_values(order).reset_index(drop=True)


def paired_table(fits: pd.DataFrame, comparisons: list[tuple[str, str]], metrics: list[str],
                 level: float = 0.95, method: Literal["t", "bootstrap"] = "t") -> pd.DataFrame:
    """One row per (comparison, NeRF method, metric): mean difference, CI and unit count.

    Returns:
        Columns ``comparison, a, b, method, metric, mean, lo, hi, n, sd, level, ci_method``;
        comparisons whose spaces are missing are left out.
    """
    rows = []
    for space_a, space_b in comparisons:
        for metric in metrics:
            diffs = paired_differences(fits, space_a, space_b, metric)
            for nerf_method, part in diffs.groupby("method", sort=True):
                ci = mean_ci(part["diff"].to_numpy(), level=level, method=method)
                rows.append({"comparison": f"{space_a} - {space_b}", "a": space_a, "b": space_b,
                             "method": nerf_method, "metric": metric, "mean": ci.mean, "lo": ci.lo, "hi": ci.hi,
                             "n": ci.n, "sd": ci.sd, "level": level, "ci_method": method})
    return pd.DataFrame(rows, columns=["comparison", "a", "b", "method", "metric", "mean", "lo", "hi", "n", "sd",
                                       "level", "ci_method"])
