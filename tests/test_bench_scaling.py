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


def test_decoder_batch_findings_are_computed_from_the_rows_and_leave_out_inexact_variants(repo_root, tmp_path) -> None:
    """bench_decoder's batch sentences: speed-up = one-frame ms / batch ms, the batch's share of the
    fastest float32 rate (bf16, which changes the pixels, never counts as that rate); `--refresh`
    rewrites decoder.md's findings from decoder.csv."""
    bench = _load(repo_root, "benchmarks/bench_decoder.py")
    rows = [("no_grad", 64, 40.0, 50.0, 0.0), ("batch8", 64, 20.0, 100.0, 1e-6), ("bf16", 64, 10.0, 200.0, 1e-2),
            ("no_grad", 128, 100.0, 80.0, 0.0), ("batch8", 128, 95.0, 84.0, 1e-6)]
    frame = pd.DataFrame([{"arch": "f4", "resolution": r, "threads": 2, "variant": v, "ms_per_frame": ms,
                           "max_abs_diff": d, "gflop_per_frame": 2.0, "gflop_per_s": g} for v, r, ms, g, d in rows])
    found = bench.batch_findings(frame)
    assert len(found) == 2
    assert found[0].startswith("f4, 2 thread(s), 64x64: 40.0 ms per frame one at a time, 20.0 ms in 8-frame batches "
                               "(2.00x). The batch runs at 100 GFLOP/s, 100% of the fastest float32 rate")
    assert "(100 GFLOP/s, batch8 at 64x64); a 2x gain would need 100 GFLOP/s." in found[0]
    assert "(1.05x)" in found[1] and "84 GFLOP/s, 84%" in found[1]
    out = tmp_path / "decoder"
    out.mkdir()
    frame.to_csv(out / "decoder.csv", index=False)
    (out / "decoder.md").write_text("Title.\n\n| a |\n|---|\n| 1 |\n\nMax |difference| x.\nLoad average 1.0.\n\n- old\n")
    assert bench.main(["--refresh", "--out", str(out)]) == 0
    md = (out / "decoder.md").read_text()
    assert "- old" not in md and md.count("- f4, 2 thread(s)") == 2 and "| 1 |" in md and "Load average 1.0." in md
