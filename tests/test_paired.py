"""Paired differences between spaces and their confidence intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from igae.errors import InputError
from igae.eval.paired import mean_ci, paired_differences, paired_table


def test_t_interval_matches_the_textbook_formula() -> None:
    x = np.array([0.4, 1.3, -0.2, 0.9, 0.7, 1.1, 0.1, 0.5])
    ci = mean_ci(x)
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    assert ci.mean == pytest.approx(x.mean())
    assert (ci.lo, ci.hi) == pytest.approx((x.mean() - half, x.mean() + half))
    assert ci.n == 8 and ci.excludes_zero


def test_interval_straddling_zero_is_not_a_finding() -> None:
    ci = mean_ci([1.0, -1.2, 0.3, -0.4])
    assert ci.lo < 0 < ci.hi and not ci.excludes_zero


def test_bootstrap_is_seeded_and_close_to_t_for_normal_data() -> None:
    x = np.random.default_rng(3).normal(0.5, 1.0, size=200)
    a, b = mean_ci(x, method="bootstrap", seed=1), mean_ci(x, method="bootstrap", seed=1)
    assert (a.lo, a.hi) == (b.lo, b.hi)
    t = mean_ci(x)
    assert a.lo == pytest.approx(t.lo, abs=0.05) and a.hi == pytest.approx(t.hi, abs=0.05)


def test_one_unit_has_no_interval_and_bad_input_is_named() -> None:
    ci = mean_ci([2.0])
    assert ci.mean == 2.0 and np.isnan(ci.lo) and not ci.excludes_zero
    with pytest.raises(InputError, match="finite"):
        mean_ci([1.0, float("nan")])
    with pytest.raises(InputError, match="level"):
        mean_ci([1.0, 2.0], level=1.5)


def _fits(seeds: bool) -> pd.DataFrame:
    rows = []
    for scene_i, scene in enumerate(["scene_000", "scene_001", "scene_002"]):
        rows.append({"space": "rgb", "method": "ngp", "scene": scene, "psnr": 30.0 + scene_i, "ae_seed": np.nan})
        for seed in ([0, 1] if seeds else [0]):
            for space, gain in (("standard", 0.0), ("igae", 1.0 + 0.1 * seed)):
                rows.append({"space": space, "method": "ngp", "scene": scene, "ae_seed": seed,
                             "psnr": 24.0 + scene_i + gain})
    fits = pd.DataFrame(rows)
    return fits if seeds else fits.drop(columns="ae_seed")


def test_differences_pair_the_same_scene_and_seed() -> None:
    diffs = paired_differences(_fits(seeds=True), "igae", "standard")
    assert len(diffs) == 6  # 3 scenes x 2 seeds
    assert diffs.loc[diffs["ae_seed"] == 0, "diff"].tolist() == pytest.approx([1.0] * 3)
    assert diffs.loc[diffs["ae_seed"] == 1, "diff"].tolist() == pytest.approx([1.1] * 3)


def test_rgb_pairs_with_every_ae_seed() -> None:
    diffs = paired_differences(_fits(seeds=True), "igae", "rgb")
    assert len(diffs) == 6
    assert sorted(diffs["diff"].round(6).unique()) == [-5.0, -4.9]


def test_paired_table_has_one_row_per_comparison_method_metric() -> None:
    table = paired_table(_fits(seeds=False), [("igae", "standard"), ("igae", "rgb"), ("igae", "finetuned")], ["psnr"])
    assert list(table["comparison"]) == ["igae - standard", "igae - rgb"]  # no finetuned fits: left out
    row = table.iloc[0]
    assert row["mean"] == pytest.approx(1.0) and row["n"] == 3


def test_sentences_follow_the_sign_and_the_interval() -> None:
    from igae.report.findings import difference_sentence

    labels = {"igae": "IG-AE", "standard": "Standard AE"}
    base = {"a": "igae", "b": "standard", "level": 0.95, "n": 8}
    better = difference_sentence({**base, "metric": "psnr", "mean": 1.2, "lo": 0.4, "hi": 2.0}, labels, "K-Planes")
    assert "+1.20 dB" in better and "IG-AE is better" in better and "95% CI +0.40 dB to +2.00 dB, 8 scenes" in better
    unclear = difference_sentence({**base, "metric": "psnr", "mean": 0.3, "lo": -0.2, "hi": 0.8}, labels, "K-Planes")
    assert "no detectable difference" in unclear
    # Lower is better for the perceptual metric: a positive difference means worse.
    worse = difference_sentence({**base, "metric": "perceptual", "mean": 0.02, "lo": 0.01, "hi": 0.03}, labels,
                                "K-Planes", perceptual_label="ST-LPIPS (alex)")
    assert "ST-LPIPS (alex)" in worse and "IG-AE is worse" in worse
