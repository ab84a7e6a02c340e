"""The report's and README's result sentences, by section, generated from the fit tables.

Nothing here is typed as a finding: every sentence is built by :mod:`igae.report.findings` from
the paired differences, the equal-time table or the per-fit timings, with its sign, its CI (over
scenes, or scene x AE seed units) and the metric it holds for. Captions in
:mod:`igae.report.build` describe what a figure shows; the sentences here say what it found.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from igae.config import AE_NAMES, RGB_SPACE
from igae.eval.equal_time import equal_time_table
from igae.eval.nerf_summary import (GAP_COLUMN, QUALITY, ae_seeds, ceiling_difference, check_goals, gain_decomposition,
                                    paired_summary, perceptual_backend, units_label)
from igae.eval.paired import mean_ci
from igae.fields.registry import METHOD_LABELS
from igae.report import findings
from igae.report.tables import SPACE_LABELS

ONE_SEED = "One AE seed is one draw: the CI covers scenes, not AE training."


@dataclass
class Results:
    """Everything the report's tables and sentences are computed from (one fit table)."""

    fits: pd.DataFrame
    paired: pd.DataFrame        # igae.eval.nerf_summary.paired_summary: one row per comparison, method, metric
    units: pd.DataFrame         # ... and every unit's difference
    goals: dict                 # igae.eval.nerf_summary.check_goals
    equal_time: pd.DataFrame    # igae.eval.equal_time.equal_time_table
    perceptual: str             # the perceptual metric's backend
    units_label: str            # "scenes" or "scene x AE seed units"
    decomposition: pd.DataFrame  # igae.eval.nerf_summary.gain_decomposition

    @classmethod
    def from_fits(cls, fits: pd.DataFrame) -> "Results":
        paired, units = paired_summary(fits)
        return cls(fits, paired, units, check_goals(fits), equal_time_table(fits), perceptual_backend(fits),
                   units_label(fits), gain_decomposition(fits))

    @property
    def one_seed(self) -> bool:
        return len(ae_seeds(self.fits)) <= 1


def _methods(values) -> list[str]:
    present = set(values)
    return [m for m in METHOD_LABELS if m in present] + sorted(present - set(METHOD_LABELS))


def comparison_sentences(r: Results, comparisons: list[tuple[str, str]], metrics=QUALITY) -> list[str]:
    """One sentence per comparison and metric, over every method (methods grouped by verdict)."""
    out = []
    for a, b in comparisons:
        for metric in metrics:
            rows = r.paired[(r.paired["a"] == a) & (r.paired["b"] == b) & (r.paired["metric"] == metric)]
            if not rows.empty:
                out.append(findings.comparison_summary(rows, SPACE_LABELS, METHOD_LABELS, r.perceptual,
                                                       r.units_label))
    return out


def per_method_sentences(r: Results) -> list[str]:
    """Every row of the paired table as its own sentence."""
    return [findings.difference_sentence(row, SPACE_LABELS, METHOD_LABELS.get(row["method"], row["method"]),
                                         r.perceptual, r.units_label) for _, row in r.paired.iterrows()]


def ceiling_sentences(r: Results) -> list[str]:
    """Per latent space: its NeRFs' test PSNR minus its AE's ceiling on the same views, per method."""
    out = []
    fits = r.fits
    for space in AE_NAMES:
        part = fits[(fits["space"] == space) & fits["ae_ceiling_psnr"].notna()]
        if part.empty:
            continue
        items = []
        for method in _methods(part["method"]):
            sel = part[part["method"] == method]
            ci = mean_ci((sel["psnr"] - sel["ae_ceiling_psnr"]).to_numpy())
            items.append((METHOD_LABELS.get(method, method), ci.mean, ci.lo, ci.hi))
        out.append(findings.listing_sentence(
            f"{SPACE_LABELS[space]} latent NeRF minus its AE's own reconstruction of the same test views (the AE ceiling, "
            f"{part['ae_ceiling_psnr'].mean():.2f} dB on average)", "psnr", items, r.perceptual, r.units_label,
            n=int(part.groupby("method").size().max())))
    return out


def decomposition_sentences(r: Results, comparisons: tuple[tuple[str, str], ...] = (("igae", "standard"),
                                                                                   ("igae", "finetuned"))) -> list[str]:
    """Per comparison of latent spaces: its AE ceiling's PSNR difference (once per scene: it does not depend
    on the NeRF method) and, per method, the change of the NeRF-to-ceiling gap; the two add up to the
    latent NeRFs' PSNR difference (:func:`igae.eval.nerf_summary.gain_decomposition`)."""
    out = []
    for a, b in comparisons:
        gaps = r.decomposition[(r.decomposition["a"] == a) & (r.decomposition["b"] == b)
                               & (r.decomposition["metric"] == GAP_COLUMN)]
        if gaps.empty:
            continue
        ceiling = mean_ci(ceiling_difference(r.fits, a, b)["diff"].to_numpy())
        order = {m: i for i, m in enumerate(_methods(gaps["method"]))}
        items = [("the AE ceiling (the AE's own reconstruction of the test views)", ceiling.mean, ceiling.lo, ceiling.hi)]
        items += [(f"the NeRF-to-ceiling gap for {METHOD_LABELS.get(row.method, row.method)}", row.mean, row.lo, row.hi)
                  for row in gaps.sort_values("method", key=lambda m: m.map(order)).itertuples()]
        out.append(findings.listing_sentence(
            f"{SPACE_LABELS[a]} minus {SPACE_LABELS[b]}, split into the autoencoder's part and the NeRF's (they add up "
            "to the latent NeRF's difference; a positive gap change means the latent NeRF came closer to its AE's "
            "reconstruction)", "psnr", items, r.perceptual, r.units_label, n=int(gaps["n"].max())))
    return out


def equal_time_sentences(r: Results, spaces: tuple[str, ...] = ("igae",)) -> list[str]:
    """Latent minus RGB test PSNR at equal wall-clock budget: at the latent fit's training time (RGB
    curve interpolated) and, where fits were continued (``nerf.equal_time``), at the RGB fit's."""
    out = []
    et = r.equal_time
    for space in spaces:
        part = et[et["space"] == space] if len(et) else et
        if part.empty:
            continue
        order = {m: i for i, m in enumerate(_methods(part["method"]))}
        part = part.sort_values("method", key=lambda s: s.map(order))
        name = SPACE_LABELS[space]
        items = [(f"{METHOD_LABELS.get(row.method, row.method)} ({row.latent_train_s:.1f} s vs {row.rgb_train_s:.1f} s"
                  + (f"; {row.outside} outside the RGB curve" if row.outside else "") + ")",
                  row.diff_mean, row.diff_lo, row.diff_hi) for row in part.itertuples()]
        out.append(findings.listing_sentence(
            f"Equal time at {name}'s budget: {name} minus the RGB NeRF at {name}'s training time (its curve "
            f"interpolated; latent vs RGB training time in brackets)", "psnr", items, r.perceptual, r.units_label))
        cont = part[part["continued_psnr"].notna()]
        if not cont.empty:
            items = [(f"{METHOD_LABELS.get(row.method, row.method)} (+{row.extra_steps:.0f} steps: "
                      f"{row.continued_train_s:.1f} s vs {row.rgb_train_s:.1f} s)", row.cont_diff_mean, row.cont_diff_lo,
                      row.cont_diff_hi) for row in cont.itertuples()]
            out.append(findings.listing_sentence(
                f"Equal time at the RGB budget: {name} continued in stage 2 minus the RGB NeRF", "psnr", items,
                r.perceptual, r.units_label))
    return out


def time_sentences(r: Results) -> list[str]:
    """Training-time ratios (latent / RGB at equal steps) per method, for IG-AE."""
    means = r.fits.groupby(["space", "method"])["train_s"].mean()
    ratios = {}
    for method in _methods(r.fits["method"]):
        if ("igae", method) in means.index and (RGB_SPACE, method) in means.index:
            ratios[METHOD_LABELS.get(method, method)] = float(means[("igae", method)] / means[(RGB_SPACE, method)])
    return [findings.ratios_sentence("Training time at equal steps, IG-AE / RGB NeRF (means over scenes)", ratios)] \
        if ratios else []


def render_sentences(r: Results) -> list[str]:
    """Decoding's share of a latent frame's render time per latent space, and render-time ratios."""
    fits = r.fits
    latent = fits[fits["space"] != RGB_SPACE]
    if latent.empty:
        return []
    shares = {SPACE_LABELS.get(s, s): float(part["render_decode_ms"].sum() / part["render_ms"].sum())
              for s, part in latent.groupby("space") if part["render_ms"].sum() > 0}
    out = [findings.share_sentence("Decoding", "a latent frame's render time (all methods and scenes)", shares)]
    means = fits.groupby(["space", "method"])["render_ms"].mean()
    ratios = {METHOD_LABELS.get(m, m): float(means[("igae", m)] / means[(RGB_SPACE, m)])
              for m in _methods(fits["method"]) if ("igae", m) in means.index and (RGB_SPACE, m) in means.index}
    if ratios:
        out.append(findings.ratios_sentence("Render time per frame, IG-AE / RGB NeRF (means over scenes)", ratios))
    return out


def summary_sentences(r: Results) -> list[str]:
    """The headline findings: IG-AE against the standard AE and the ablation (every metric), against
    RGB (PSNR), the AE ceiling, where IG-AE's differences come from, and the one-seed caveat."""
    out = comparison_sentences(r, [("igae", "standard"), ("igae", "finetuned")])
    out += comparison_sentences(r, [("igae", RGB_SPACE)], metrics=("psnr",))
    out += ceiling_sentences(r)
    out += decomposition_sentences(r)
    if r.one_seed:
        out.append(ONE_SEED)
    return out


def sections(r: Results) -> dict[str, list[str]]:
    """Sentences per report part: ``summary``; ``speed_time`` (equal time and training time, under the
    PSNR-vs-time figure); ``speed_render`` (render time, under the render-time figure)."""
    return {"summary": summary_sentences(r), "speed_time": equal_time_sentences(r) + time_sentences(r),
            "speed_render": render_sentences(r)}


TITLES = {"summary": "Findings", "speed_time": "Equal time and training time", "speed_render": "Render time"}


def markdown(parts: dict[str, list[str]]) -> str:
    """The parts as Markdown bullet lists (``results/tables/findings.md``, copied into the README)."""
    lines = ["Generated from the fits' metrics files by `igae report`; CIs are paired 95% t-intervals.", ""]
    for key, sentences in parts.items():
        if sentences:
            lines += [f"**{TITLES.get(key, key)}**", ""] + [f"- {s}" for s in sentences] + [""]
    return "\n".join(lines)
