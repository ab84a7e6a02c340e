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
    if not (math.isfinite(lo) and math.isfinite(hi)):
        verdict = "too few units for an interval"
        ci = f"{n} {units}"
    else:
        ci = f"{level}% CI {_num(lo, unit)} to {_num(hi, unit)}, {n} {units}"
        if lo <= 0 <= hi:
            verdict = "no detectable difference"
        else:
            better = (mean > 0) == higher_better
            verdict = f"{a} is {'better' if better else 'worse'}"
    return f"{method_label}, {name}: {a} minus {b} is {_num(mean, unit)} ({ci}); {verdict}."


def ratio_sentence(what: str, ratio: float, numerator: str, denominator: str) -> str:
    """"<what>: <numerator> takes 0.31x the time of <denominator> (3.2x faster)." from a measured ratio."""
    if not math.isfinite(ratio) or ratio <= 0:
        return f"{what}: no measurement."
    if ratio < 1:
        return f"{what}: {numerator} takes {ratio:.2f}x the time of {denominator} ({1 / ratio:.1f}x faster)."
    return f"{what}: {numerator} takes {ratio:.2f}x the time of {denominator} ({ratio:.1f}x slower)."
