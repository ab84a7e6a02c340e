"""The scaling benchmark's quick mode runs end to end at tiny sizes and writes the promised table,
which the report and the README generator pick up from their known path."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from igae.fields.registry import METHODS


def _load(repo_root: Path, relpath: str):
    path = repo_root / relpath
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick_run(repo_root, tmp_path_factory):
    """A tiny --quick run into <tmp>/results/benchmarks/scaling/quick (the report's path)."""
    results = tmp_path_factory.mktemp("bench") / "results"
    out = results / "benchmarks" / "scaling" / "quick"
    bench = _load(repo_root, "benchmarks/bench_scaling.py")
    rc = bench.main(["--quick", "--preset", "smoke", "--resolutions", "16,32", "--f8-arch", "8,16,16,16:1:4:4",
                     "--frames", "1", "--steps", "1", "--occupancy", "0.3", "--out", str(out)])
    assert rc == 0
    return bench, results, out


def test_quick_mode_writes_csv_figure_and_summary(quick_run):
    bench, _, out = quick_run
    table = pd.read_csv(out / "scaling.csv")
    assert list(table.columns) == bench.COLUMNS
    # Quick mode: the registry's first method, two resolutions, RGB + both AEs.
    method = next(iter(METHODS))
    assert set(table["method"]) == {method}
    assert sorted(zip(table["space"], table["image_res"])) == sorted(
        (s, r) for s in ("rgb", "f4", "f8") for r in (16, 32))
    rgb, latent = table[table["space"] == "rgb"], table[table["space"] != "rgb"]
    assert (rgb["decode_ms"] == 0).all() and (rgb["speedup_vs_rgb"] == 1).all()
    assert (latent["decode_ms"] > 0).all() and (latent["stage2_step_ms"] > 0).all()
    assert (table["field_ms"] > 0).all() and (table["train_step_ms"] > 0).all()
    # Rays per frame and per training step follow the AE's downsampling (equal image area).
    assert (table["rays_per_frame"] == (table["image_res"] // table["downsampling"]) ** 2).all()
    assert (table["train_rays_per_step"] == table["rays_per_frame"]).all()
    assert set(table.loc[table["space"] == "f8", "downsampling"]) == {8}
    assert abs(table["occupied_fraction"].iloc[0] - 0.3) < 0.01
    assert ((table["empty_ray_fraction"] >= 0) & (table["empty_ray_fraction"] <= 1)).all()
    assert set(table["device"]) == {"cpu"} and (table["threads"] >= 1).all()
    meta = json.loads((out / "scaling.json").read_text())
    assert meta["device"] == "cpu" and meta["quick"] and meta["summary"]
    md = (out / "scaling.md").read_text()
    assert "device cpu" in md and md.count(f"\n| {method} |") == len(table)
    assert (out / "scaling.png").stat().st_size > 0


def test_report_and_readme_pick_up_the_benchmark(quick_run, repo_root, tmp_path):
    from igae.report.build import ReportInputs, scaling_html

    _, results, out = quick_run
    inp = ReportInputs(fits=results / "nerf", ae_eval=results / "ae_eval", autoencoders=results / "autoencoders",
                       heldout=tmp_path, tables=results / "tables", figures=results / "figures",
                       report=results / "report")
    page = scaling_html(inp, lambda p: str(p))
    assert str(out / "scaling.png") in page and "<table" in page and "stage2_step_ms" in page
    assert scaling_html(ReportInputs(*(tmp_path / n for n in "abcdefg")), str) == ""  # absent: no section

    repo = tmp_path / "repo"
    (repo / "results").mkdir(parents=True)
    shutil.copytree(results / "benchmarks", repo / "results" / "benchmarks")
    (repo / "README.md").write_text("intro\n<!-- scaling:start -->\nold\n<!-- scaling:end -->\nrest\n")
    readme = _load(repo_root, "workflow/scripts/update_readme.py")
    assert readme.main(repo) == 0
    text = (repo / "README.md").read_text()
    assert "old" not in text and text.startswith("intro\n") and text.endswith("rest\n")
    assert (out / "scaling.md").read_text().strip() in text and (repo / "docs" / "scaling.png").is_file()


def test_unknown_method_is_rejected(repo_root, tmp_path, capsys):
    bench = _load(repo_root, "benchmarks/bench_scaling.py")
    with pytest.raises(SystemExit) as err:
        bench.main(["--methods", "nosuch", "--out", str(tmp_path)])
    assert err.value.code == 2 and "nosuch" in capsys.readouterr().err
