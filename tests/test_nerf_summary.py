"""Collecting fit results, averaging them and checking the goals."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from igae.cli import main
from igae.errors import InputError
from igae.eval.nerf_summary import check_goals, collect_fits, summarize_fits


def write_fit(root: Path, space: str, method: str, scene: str, psnr: float, train_s: float, render_s: float,
              folder_name: str | None = None, **extra) -> Path:
    """A fit's metrics.json and curve.csv in ``root/<folder_name or space>/<method>/<scene>``."""
    folder = root / (folder_name or space) / method / scene
    folder.mkdir(parents=True)
    metrics = {
        "space": space, "method": method, "scene": scene, "seed": 0,
        "metrics": {"psnr": psnr, "ssim": 0.9, "perceptual": 0.1}, "perceptual_backend": "ST-LPIPS (alex)",
        "train_seconds": {"total": train_s}, "memory": {"cpu_peak_rss_mb": 500.0},
        "render_seconds_per_frame": {"field": render_s * 0.5, "decode": render_s * 0.5, "total": render_s},
        "provenance": {"device": "cpu"}, **extra,
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "curve.csv").write_text(f"step,train_seconds,psnr\n10,{train_s / 2},{psnr - 3}\n20,{train_s},{psnr}\n")
    return folder


SCENES = {"scene_000": (0.0, 1.2), "scene_001": (2.0, 1.8), "scene_002": (1.0, 1.5)}
"""scene -> (difficulty shift, IG-AE's gain over the standard AE in dB)."""


@pytest.fixture()
def fits(tmp_path: Path) -> Path:
    for scene, (shift, gain) in SCENES.items():
        write_fit(tmp_path, "rgb", "ngp", scene, 30 + shift, 10.0, 0.1)
        write_fit(tmp_path, "standard", "ngp", scene, 20 + shift, 4.0, 0.03, ae_seed=0)
        write_fit(tmp_path, "finetuned", "ngp", scene, 20.5 + shift, 4.0, 0.03, ae_seed=0)
        write_fit(tmp_path, "igae", "ngp", scene, 20 + shift + gain, 4.0, 0.01, ae_seed=0)
    return tmp_path


def test_means_over_scenes_and_goal_checks(fits: Path) -> None:
    from scipy import stats

    table = collect_fits(fits)
    assert len(table) == 12 and table["source"].str.endswith("metrics.json").all()
    assert table.loc[table["space"] == "rgb", "ae_seed"].isna().all()
    assert (table.loc[table["space"] == "igae", "ae_seed"] == 0).all()
    summary = summarize_fits(table).set_index(["space", "method"])
    assert summary.loc[("rgb", "ngp"), "psnr"] == pytest.approx(31.0)
    assert summary.loc[("igae", "ngp"), "scenes"] == 3
    goals = check_goals(table)["ngp"]
    g = goals["igae_minus_standard_psnr"]
    half = stats.t.ppf(0.975, 2) * 0.3 / 3 ** 0.5  # gains 1.2, 1.8, 1.5: sd 0.3
    assert g["mean"] == pytest.approx(1.5) and g["n"] == 3 and g["threshold"] == 1.0
    assert (g["lo"], g["hi"]) == pytest.approx((1.5 - half, 1.5 + half)) and g["met"] is True
    f = goals["igae_minus_finetuned_psnr"]
    assert f["mean"] == pytest.approx(1.0) and f["lo"] > 0 and f["met"] is True
    render, train = goals["render_time_ratio"], goals["train_time_ratio"]
    assert render["by_space"]["igae"] == pytest.approx(0.1) and render["mean"] == pytest.approx(0.3)
    assert render["met"] is False  # standard and finetuned render at 0.3 of RGB
    assert train["mean"] == pytest.approx(0.4) and train["met"] is True


def test_a_goal_whose_interval_contains_zero_is_not_met(fits: Path) -> None:
    path = fits / "igae" / "ngp" / "scene_001" / "metrics.json"
    m = json.loads(path.read_text())
    m["metrics"]["psnr"] = 20.0  # IG-AE's gain on this scene: 1.8 -> -2.0 dB (mean +0.23, CI spans 0)
    path.write_text(json.dumps(m))
    g = check_goals(collect_fits(fits))["ngp"]["igae_minus_standard_psnr"]
    assert g["lo"] < 0 < g["hi"] and g["met"] is False


def test_paired_summary_names_the_perceptual_backend_and_keeps_every_unit(fits: Path) -> None:
    from igae.eval.nerf_summary import paired_summary

    table, units = paired_summary(collect_fits(fits))
    assert set(table["comparison"]) == {"igae - standard", "igae - finetuned", "igae - rgb"}
    assert set(table["metric_label"]) == {"PSNR (dB)", "SSIM", "ST-LPIPS (alex)"}
    row = table[(table["b"] == "rgb") & (table["metric"] == "psnr")].iloc[0]
    assert row["mean"] == pytest.approx(1.5 - 10.0) and row["n"] == 3 and row["units"] == "scenes"
    psnr = units[(units["comparison"] == "igae - standard") & (units["metric"] == "psnr")]
    assert psnr.set_index("scene")["diff"].to_dict() == pytest.approx({s: g for s, (_, g) in SCENES.items()})


def test_cli_writes_tables_and_rejects_an_empty_folder(fits: Path, tmp_path: Path, capsys) -> None:
    assert main(["summarize-nerf", "--fits", str(fits), "--out", str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    assert (out / "per_fit.csv").read_text().count("\n") == 13
    goals = json.loads((out / "goals.json").read_text())
    assert goals["fits"] == 12 and goals["ae_seeds"] == [0] and "one AE seed is one draw" in goals["note"]
    assert goals["goals"]["ngp"]["igae_minus_standard_psnr"]["met"] is True
    assert json.loads((out / "metrics.json").read_text())["igae"]["ngp"]["psnr"] == pytest.approx(22.5)
    paired = pd.read_csv(out / "paired.csv")
    assert len(paired) == 3 * 3 and {"mean", "lo", "hi", "n", "metric_label"} <= set(paired.columns)
    assert len(pd.read_csv(out / "paired_units.csv")) == 3 * 3 * 3
    assert set(pd.read_csv(out / "equal_time.csv")["space"]) == {"standard", "finetuned", "igae"}
    curve = (out / "plots" / "psnr_vs_time_rgb.csv").read_text().splitlines()
    assert curve[0] == "step,train_seconds,psnr" and curve[2] == "20,10,31"
    (tmp_path / "empty").mkdir()
    assert main(["summarize-nerf", "--fits", str(tmp_path / "empty"), "--out", str(tmp_path / "o2")]) == 2
    assert "no fit results" in capsys.readouterr().err


def test_a_broken_metrics_file_is_named(fits: Path) -> None:
    bad = fits / "rgb" / "ngp" / "scene_000" / "metrics.json"
    bad.write_text("{")
    with pytest.raises(InputError, match="scene_000"):
        collect_fits(fits)


# ------------------------------------------------------------------ tables
def test_novel_view_table_cells_are_means_and_stds_over_scenes(fits: Path) -> None:
    from igae.report.tables import novel_view_table, to_latex, to_markdown

    table = novel_view_table(collect_fits(fits))
    assert table.loc["Instant-NGP", ("RGB NeRF", "PSNR ↑")] == "31.00 ± 0.82"
    assert table.loc["Instant-NGP", ("IG-AE", "ST-LPIPS (alex) ↓")] == "0.100 ± 0.000"
    md = to_markdown(table)
    assert md.splitlines()[0].startswith("| method | RGB NeRF / PSNR ↑")
    tex = to_latex(table, "caption_with_underscore")
    assert r"\multicolumn{3}{c}{IG-AE}" in tex and r"\cmidrule(lr){2-4}" in tex
    assert r"31.00 $\pm$ 0.82" in tex and r"caption\_with\_underscore" in tex
    body = [line for line in tex.splitlines() if line.startswith("Instant")]
    assert body[0].count("&") == 12  # method + 4 spaces x 3 metrics (no AE ceiling recorded)


def test_mixed_perceptual_backends_are_refused(fits: Path) -> None:
    from igae.report.tables import novel_view_table

    table = collect_fits(fits)
    table.loc[0, "perceptual_backend"] = "LPIPS (alex)"
    with pytest.raises(InputError, match="different perceptual backends"):
        novel_view_table(table)


def test_overhead_column_is_read_and_nan_for_older_fits(fits: Path) -> None:
    path = fits / "rgb" / "ngp" / "scene_000" / "metrics.json"
    m = json.loads(path.read_text())
    m["overhead_seconds"] = {"setup": 1.0, "test_evaluation": 2.5, "total": 3.5, "fraction_of_training": 0.35}
    path.write_text(json.dumps(m))
    table = collect_fits(fits).set_index(["space", "method", "scene"])
    assert table.loc[("rgb", "ngp", "scene_000"), "overhead_s"] == 3.5
    assert table.loc[("rgb", "ngp", "scene_001"), "overhead_s"] != table.loc[("rgb", "ngp", "scene_001"), "overhead_s"]
    summary = summarize_fits(collect_fits(fits)).set_index(["space", "method"])
    assert summary.loc[("rgb", "ngp"), "overhead_s"] == 3.5  # the mean skips fits that did not record it


def test_laps_sum_parts_and_relate_them_to_training() -> None:
    from igae.nerf.overhead import Laps

    laps = Laps("cpu")
    with laps("render"):
        sum(range(10000))
    laps.add("curve", 2.0)
    laps.add("curve", 1.0)
    rec = laps.record(train_seconds=10.0)
    assert rec["curve"] == 3.0 and rec["render"] > 0
    assert rec["total"] == pytest.approx(3.0 + rec["render"]) and rec["fraction_of_training"] == pytest.approx(rec["total"] / 10)
