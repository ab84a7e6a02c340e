"""The report's generated tables and sentences: paired differences, goal checks, equal time, AE
ceiling, on small synthetic fit sets (every number below is known by construction)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from igae.eval.nerf_summary import collect_fits
from igae.report import statements
from igae.report import tables as tabs

from test_nerf_summary import write_fit

GAINS = {"ngp": [1.2, 1.8, 1.6, 1.4], "kplanes": [0.6, -0.4, 0.4, -0.2]}
"""IG-AE minus the standard AE per scene (dB): a clear gain for ngp, none detectable for kplanes."""


def _fit_set(root: Path, seeds: tuple[int, ...] = (0,)) -> Path:
    for method, gains in GAINS.items():
        for i, gain in enumerate(gains):
            scene = f"scene_{i:03d}"
            rgb = write_fit(root, "rgb", method, scene, 30.0 + i, 10.0, 0.1)
            # A dense RGB curve: PSNR 20 + t (dB) at t = 1 .. 10 s.
            (rgb / "curve.csv").write_text("step,train_seconds,psnr\n" + "".join(
                f"{10 * k},{k}.0,{20 + k}\n" for k in range(1, 11)))
            for seed in seeds:
                ceiling = {"metrics": {"psnr": 27.0 + i, "ssim": 0.95, "perceptual": 0.05}}
                # One folder per AE and seed, as the workflow lays them out (results/nerf/<ae>_s<k>/...).
                write_fit(root, "standard", method, scene, 24.0 + i, 4.0, 0.03, f"standard_s{seed}", ae_seed=seed,
                          ae_ceiling=ceiling)
                write_fit(root, "igae", method, scene, 24.0 + i + gain + 0.1 * seed, 4.5, 0.03, f"igae_s{seed}",
                          ae_seed=seed, ae_ceiling=ceiling,
                          equal_time={"extra_stage2_steps": 10, "train_seconds": {"total": 9.5},
                                      "metrics": {"psnr": 27.0 + i, "ssim": 0.9, "perceptual": 0.1}})
    return root


def test_sentences_name_the_metric_sign_interval_and_say_when_nothing_is_detectable(tmp_path: Path) -> None:
    r = statements.Results.from_fits(collect_fits(_fit_set(tmp_path)))
    summary = statements.sections(r)["summary"]
    psnr = next(s for s in summary if s.startswith("PSNR, IG-AE minus Standard AE"))
    ngp, kplanes = (f"{np.mean(GAINS[m]):+.2f} dB" for m in ("ngp", "kplanes"))
    assert f"IG-AE is better for Instant-NGP ({ngp}, 95% CI +" in psnr
    assert f"no detectable difference for K-Planes ({kplanes}, 95% CI -" in psnr and "4 scenes" in psnr
    # The perceptual metric is named by its backend; equal values: no detectable difference.
    assert any(s.startswith("ST-LPIPS (alex), IG-AE minus Standard AE") and "no detectable difference" in s
               for s in summary)
    assert statements.ONE_SEED in summary
    # The AE ceiling: the standard AE's NeRFs are 3 dB under it on every scene.
    ceiling = next(s for s in summary if s.startswith("Standard AE latent NeRF minus its AE's own"))
    assert "Instant-NGP -3.00 dB" in ceiling
    every = statements.per_method_sentences(r)
    assert len(every) == len(r.paired) and all(("no detectable difference" in s) or (" is better" in s)
                                                 or (" is worse" in s) for s in every)


def test_goal_table_has_labelled_rows_units_intervals_and_verdicts(tmp_path: Path) -> None:
    r = statements.Results.from_fits(collect_fits(_fit_set(tmp_path)))
    table = tabs.goals_table(r.goals)
    ngp = table.loc[("Instant-NGP", "IG-AE − standard AE, test PSNR")]
    assert ngp["value"] == f"{np.mean(GAINS['ngp']):+.2f} dB" and ngp["result"] == "met" and ngp["n"] == "4"
    assert ngp["95% CI / per latent space"].startswith("[+") and ngp["95% CI / per latent space"].endswith("] dB")
    kp = table.loc[("K-Planes", "IG-AE − standard AE, test PSNR")]
    assert kp["result"] == "not met"  # its CI contains 0
    assert table.loc[("K-Planes", "IG-AE − fine-tuned AE (ablation), test PSNR")]["result"] == "undetermined"
    assert list(table.index.get_level_values(0).unique()) == ["Instant-NGP", "K-Planes"]  # registry order
    md = tabs.to_markdown(table)
    assert md.count("\n") == 2 + 2 * 4 and "| method | goal | value |" in md


def test_equal_time_reads_the_rgb_curve_at_the_latent_time_and_shows_the_continuation(tmp_path: Path) -> None:
    fits = collect_fits(_fit_set(tmp_path))
    igae = fits[(fits["space"] == "igae")]
    # The latent fits trained 4.5 s: the RGB curve (20 + t dB) gives 24.5 dB there.
    assert igae["rgb_psnr_at_train_s"].tolist() == pytest.approx([24.5] * len(igae))
    assert (igae["rgb_train_s"] == 10.0).all()
    r = statements.Results.from_fits(fits)
    row = r.equal_time.set_index(["method", "space"]).loc[("ngp", "igae")]
    expected = np.mean([24.0 + i + g - 24.5 for i, g in enumerate(GAINS["ngp"])])
    assert row["diff_mean"] == pytest.approx(expected) and row["diff_n"] == 4 and row["outside"] == 0
    assert row["continued_psnr"] == pytest.approx(28.5) and row["cont_diff_mean"] == pytest.approx(-3.0)
    shown = tabs.equal_time_display(r.equal_time)
    assert shown.loc[("Instant-NGP", "IG-AE"), "continued: latent train (s)"] == "9.5"
    assert shown.loc[("Instant-NGP", "Standard AE"), "continued: latent PSNR"] == "–"
    time = statements.sections(r)["speed_time"]
    assert any("Equal time at IG-AE's budget" in s and "Instant-NGP (4.5 s vs 10.0 s)" in s for s in time)
    assert any("Equal time at the RGB budget" in s and "-3.00 dB" in s for s in time)


def test_a_latent_fit_outside_the_rgb_curve_gets_no_value(tmp_path: Path) -> None:
    root = _fit_set(tmp_path)
    path = root / "igae_s0" / "ngp" / "scene_000" / "metrics.json"
    m = json.loads(path.read_text())
    m["train_seconds"]["total"] = 0.5  # before the RGB curve's first point (1 s)
    path.write_text(json.dumps(m))
    r = statements.Results.from_fits(collect_fits(root))
    row = r.equal_time.set_index(["method", "space"]).loc[("ngp", "igae")]
    assert row["outside"] == 1 and row["diff_n"] == 3


def test_several_ae_seeds_make_units_of_scene_and_seed(tmp_path: Path) -> None:
    fits = collect_fits(_fit_set(tmp_path, seeds=(0, 1)))
    r = statements.Results.from_fits(fits)
    assert r.units_label == "scene x AE seed units" and not r.one_seed
    row = r.paired[(r.paired["method"] == "ngp") & (r.paired["b"] == "standard") & (r.paired["metric"] == "psnr")]
    assert int(row["n"].iloc[0]) == 8
    assert statements.ONE_SEED not in statements.sections(r)["summary"]
    per_scene = tabs.per_scene_table(fits)
    assert per_scene.index.names == ["method", "scene", "ae_seed"] and len(per_scene) == 2 * 4 * 2
    assert per_scene.loc[("ngp", "scene_000", 1), "RGB NeRF"] == 30.0  # the RGB fit repeats on each seed's row
    units = tabs.per_unit_differences_table(r.units)
    assert units.loc[("Instant-NGP", "scene_001", 1), "IG-AE − Standard AE"] == pytest.approx(1.9)


def test_main_table_shows_the_ae_ceiling_next_to_each_latent_psnr(tmp_path: Path) -> None:
    table = tabs.novel_view_table(collect_fits(_fit_set(tmp_path)))
    cols = list(table.columns)
    at = cols.index(("Standard AE", tabs.CEILING))
    assert cols[at - 1] == ("Standard AE", "PSNR ↑") and ("RGB NeRF", tabs.CEILING) not in cols
    assert table.loc["Instant-NGP", ("IG-AE", tabs.CEILING)] == "28.50 ± 1.12"


CEILING_GAINS = [0.9, 0.5, 0.7, 0.3]
"""IG-AE's AE ceiling minus the standard AE's per scene (dB); each scene's ceiling is the same for every method."""


def _decomposition_set(root: Path, with_ceiling: bool = True) -> Path:
    for method, gains in GAINS.items():
        for i, (gain, ceiling_gain) in enumerate(zip(gains, CEILING_GAINS)):
            scene = f"scene_{i:03d}"
            for space, psnr, ceiling in (("standard", 24.0 + i, 27.0 + i),
                                         ("igae", 24.0 + i + gain, 27.0 + i + ceiling_gain)):
                extra = {"ae_ceiling": {"metrics": {"psnr": ceiling, "ssim": 0.9, "perceptual": 0.1}}} if with_ceiling else {}
                write_fit(root, space, method, scene, psnr, 4.0, 0.03, f"{space}_s0", ae_seed=0, **extra)
    return root


def test_gain_decomposition_splits_each_difference_into_the_ae_ceiling_and_the_nerf_gap(tmp_path: Path) -> None:
    r = statements.Results.from_fits(collect_fits(_decomposition_set(tmp_path)))
    d = r.decomposition.set_index(["method", "metric"])
    for method, gains in GAINS.items():
        gap = np.mean(np.subtract(gains, CEILING_GAINS))
        assert d.loc[(method, "psnr"), "mean"] == pytest.approx(np.mean(gains))
        assert d.loc[(method, "ae_ceiling_psnr"), "mean"] == pytest.approx(np.mean(CEILING_GAINS))
        assert d.loc[(method, "ceiling_gap_psnr"), "mean"] == pytest.approx(gap)
        assert d.loc[(method, "ceiling_gap_psnr"), "n"] == 4
    # Only the pairs present (no fine-tuned fits here): IG-AE minus the standard AE.
    assert set(r.decomposition["comparison"]) == {"igae - standard"}
    table = tabs.gain_decomposition_table(r.decomposition)
    assert table.loc[("Instant-NGP", "IG-AE − Standard AE"), "NeRF-to-ceiling gap (dB)"].startswith(
        f"{np.mean(np.subtract(GAINS['ngp'], CEILING_GAINS)):+.2f} [")
    (sentence,) = statements.decomposition_sentences(r)
    # The ceiling counts each scene once (4 units, not 4 scenes x 2 methods): its CI is a 3-dof t-interval.
    half = 3.182446305284263 * np.std(CEILING_GAINS, ddof=1) / 2
    c = np.mean(CEILING_GAINS)
    assert f"the AE ceiling (the AE's own reconstruction of the test views) {c:+.2f} dB, 95% CI {c - half:+.2f} dB" in sentence
    ngp_gap = np.mean(GAINS["ngp"]) - c  # 1.50 - 0.60
    assert f"the NeRF-to-ceiling gap for Instant-NGP {ngp_gap:+.2f} dB" in sentence and "(over 4 scenes)" in sentence
    assert sentence in statements.sections(r)["summary"]


def test_fits_without_an_ae_ceiling_give_no_decomposition(tmp_path: Path) -> None:
    r = statements.Results.from_fits(collect_fits(_decomposition_set(tmp_path, with_ceiling=False)))
    assert r.decomposition.empty and statements.decomposition_sentences(r) == []
    assert tabs.gain_decomposition_table(r.decomposition).empty
