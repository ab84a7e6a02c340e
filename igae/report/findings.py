"""Sentences that state results, generated from the numbers (never typed by hand).

Every sentence names its metric, the sign of the difference, the confidence interval and the
number of paired units, and says "no detectable difference" when the interval contains 0.
"""

from __future__ import annotations

import math

import pandas as pd

METRIC_TEXT = {"psnr": ("PSNR", "dB", True), "ssim": ("SSIM", "", True)}
"""metric -> (name, unit, higher is better); the perceptual metric is added by :func:`metric_text`."""


def metric_text(metric: str, perceptual_label: str = "perceptual") -> tuple[str, str, bool]:
    """(display name, unit, higher is better) of a fit metric column."""
    if metric == "perceptual":
        return perceptual_label, "", False
    return METRIC_TEXT.get(metric, (metric, "", True))


def _num(value: float, unit: str, signed: bool = True) -> str:
    if not math.isfinite(value):
        return "n/a"
    digits = 2 if unit == "dB" else 3
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return f"{text} {unit}".rstrip()


def difference_sentence(row: pd.Series | dict, labels: dict[str, str], method_label: str,
                        perceptual_label: str = "perceptual", units: str = "scenes") -> str:
    """One sentence for one row of :func:`igae.eval.paired.paired_table`.

    Example: "Instant-NGP, PSNR: IG-AE minus Standard AE is +0.45 dB (95% CI -0.12 to +1.02 dB,
    8 scenes); no detectable difference."
    """
    name, unit, higher_better = metric_text(str(row["metric"]), perceptual_label)
    a, b = labels.get(str(row["a"]), str(row["a"])), labels.get(str(row["b"]), str(row["b"]))
    mean, lo, hi, n = float(row["mean"]), float(row["lo"]), float(row["hi"]), int(row["n"])
    level = int(round(100 * float(row["level"])))
    found = verdict(mean, lo, hi, higher_better)
    if found == "too few units":
        found, ci = "too few units for an interval", f"{n} {units}"
    else:
        ci = f"{level}% CI {_num(lo, unit)} to {_num(hi, unit)}, {n} {units}"
        if found in ("better", "worse"):
            found = f"{a} is {found}"
    return f"{method_label}, {name}: {a} minus {b} is {_num(mean, unit)} ({ci}); {found}."


def ratio_sentence(what: str, ratio: float, numerator: str, denominator: str) -> str:
    """"<what>: <numerator> takes 0.31x the time of <denominator> (3.2x faster)." from a measured ratio."""
    if not math.isfinite(ratio) or ratio <= 0:
        return f"{what}: no measurement."
    if ratio < 1:
        return f"{what}: {numerator} takes {ratio:.2f}x the time of {denominator} ({1 / ratio:.1f}x faster)."
    return f"{what}: {numerator} takes {ratio:.2f}x the time of {denominator} ({ratio:.1f}x slower)."


def _ci_text(mean: float, lo: float, hi: float, unit: str, level: float = 0.95) -> str:
    """"+0.83 dB, 95% CI +0.20 to +1.46 dB" (or "+0.83 dB, no interval" for fewer than two units)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{_num(mean, unit)}, no interval"
    return f"{_num(mean, unit)}, {int(round(100 * level))}% CI {_num(lo, unit)} to {_num(hi, unit)}"


def verdict(mean: float, lo: float, hi: float, higher_better: bool) -> str:
    """``better`` / ``worse`` (the interval excludes 0), ``no detectable difference`` (it contains 0),
    or ``too few units`` (no interval)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "too few units"
    if lo <= 0 <= hi:
        return "no detectable difference"
    return "better" if (mean > 0) == higher_better else "worse"


def comparison_summary(rows: pd.DataFrame, labels: dict[str, str], method_labels: dict[str, str],
                       perceptual_label: str = "perceptual", units: str = "scenes") -> str:
    """One sentence for one comparison and metric over every NeRF method, methods grouped by verdict.

    Args:
        rows: the :func:`igae.eval.paired.paired_table` rows of one comparison (``a``, ``b``) and one
            metric, one per method.

    Example: "PSNR, IG-AE minus Standard AE (mean, 95% CI over 4 scenes): IG-AE is better for
    Instant-NGP (+0.83 dB, 95% CI +0.20 to +1.46 dB); no detectable difference for K-Planes (...)."
    """
    first = rows.iloc[0]
    name, unit, higher_better = metric_text(str(first["metric"]), perceptual_label)
    a, b = labels.get(str(first["a"]), str(first["a"])), labels.get(str(first["b"]), str(first["b"]))
    groups: dict[str, list[str]] = {}
    order = {m: i for i, m in enumerate(method_labels)}
    rows = rows.iloc[sorted(range(len(rows)), key=lambda i: order.get(str(rows["method"].iloc[i]), len(order)))]
    for r in rows.itertuples():
        key = verdict(float(r.mean), float(r.lo), float(r.hi), higher_better)
        groups.setdefault(key, []).append(
            f"{method_labels.get(str(r.method), str(r.method))} ({_ci_text(float(r.mean), float(r.lo), float(r.hi), unit, float(r.level))})")
    n = sorted({int(v) for v in rows["n"]})
    parts = []
    for key in ("better", "worse", "no detectable difference", "too few units"):
        if key in groups:
            head = f"{a} is {key} for" if key in ("better", "worse") else f"{key} for"
            parts.append(f"{head} {', '.join(groups[key])}")
    count = "/".join(str(k) for k in n)
    return f"{name}, {a} minus {b} (mean, CI over {count} {units}): " + "; ".join(parts) + "."


def listing_sentence(subject: str, metric: str, items: list[tuple[str, float, float, float]],
                     perceptual_label: str = "perceptual", units: str = "scenes", n: int | None = None) -> str:
    """"<subject>, <metric>: <label> <mean, CI>; ..." for values that are not comparisons between
    spaces (e.g. a latent NeRF minus its AE's ceiling), one item ``(label, mean, lo, hi)`` each."""
    name, unit, _ = metric_text(metric, perceptual_label)
    body = "; ".join(f"{label} {_ci_text(mean, lo, hi, unit)}" for label, mean, lo, hi in items)
    over = f" (over {n} {units})" if n is not None else ""
    return f"{subject}, {name}{over}: {body}."


def ratios_sentence(what: str, ratios: dict[str, float]) -> str:
    """"<what>: 0.21x (NeRF (vanilla)), 0.35x (K-Planes)." from measured ratios (nan: "no measurement")."""
    body = ", ".join(f"{r:.2f}x ({label})" if math.isfinite(r) else f"no measurement ({label})"
                     for label, r in ratios.items())
    return f"{what}: {body}."


def share_sentence(part: str, whole: str, shares: dict[str, float]) -> str:
    """"<part> takes 83% (IG-AE), 80% (Standard AE) of <whole>." from measured fractions in [0, 1]."""
    body = ", ".join(f"{100 * s:.0f}% ({label})" for label, s in shares.items() if math.isfinite(s))
    return f"{part} takes {body or 'no measurement'} of {whole}."
