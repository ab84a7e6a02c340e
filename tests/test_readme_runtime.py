"""`make readme`'s run-time sentence: job-seconds, jobs that got under half a core, and the fits'
time outside training, all computed from a run's files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

TSV_HEAD = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _load(repo_root: Path):
    spec = importlib.util.spec_from_file_location("update_readme", repo_root / "workflow/scripts/update_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record(folder: Path, name: str, wall: float, cpu: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.tsv").write_text(TSV_HEAD + f"{wall}\t0:00:00\t100\t0\t0\t0\t0\t0\t0\t{cpu}\n")


def _fit(run: Path, space: str, scene: str, train: float, parts: dict[str, float]) -> str:
    folder = run / "results/nerf" / space / "ngp" / scene
    folder.mkdir(parents=True)
    total = sum(parts.values())
    record = {"overhead_seconds": {**parts, "total": total, "fraction_of_training": total / train},
              "provenance": {"machine": {"cpu_model": "Test CPU", "cpu_count": 2}, "device": "cpu"}}
    (folder / "metrics.json").write_text(json.dumps(record))
    source = (folder / "metrics.json").relative_to(run).as_posix()
    return f"{space},ngp,{scene},{train},{total},{source}\n"


def test_runtime_sentence_counts_overhead_and_flags_jobs_that_got_under_half_a_core(repo_root: Path,
                                                                                    tmp_path: Path) -> None:
    readme = _load(repo_root)
    run = tmp_path / "run"
    bench = run / "results/benchmarks"
    _record(bench, "train_ae_0", 400.0, 390.0)
    _record(bench, "fit_nerf_rgb_ngp", 1000.0, 100.0)  # paused: a tenth of a core
    _record(bench / "fit_nerf", "standard_0_ngp", 90.0, 88.0)
    rows = ("space,method,scene,train_s,overhead_s,source\n"
            + _fit(run, "rgb", "scene_000", 100.0, {"setup": 1.0, "curve_evaluations": 20.0})
            + _fit(run, "standard_s0", "scene_000", 50.0, {"setup": 10.0, "turntable": 5.0}))
    (run / "results/nerf_summary").mkdir(parents=True)
    (run / "results/nerf_summary/per_fit.csv").write_text(rows)

    text = readme.runtime_text(run)
    assert "autoencoders 400 s (1 jobs)" in text and "RGB fits 1000 s (1 jobs)" in text
    assert "resumed" not in text  # the records' files were all written just now: no gap between jobs
    assert "under half a core" in text and "RGB fits: 1 of 1 jobs, 100 s of CPU in 1000 s of wall time" in text
    assert "autoencoders:" not in text and "latent fits:" not in text  # those ran on a whole core
    # Outside training without the setup: (20 + 5) / 150; with it (21 + 15) / 150; latent 15 / 50, RGB 21 / 100.
    assert "against their 150 s of training" in text
    assert "evaluations, renders and turntable 17% (latent fits 10%, RGB fits 20%)" in text
    assert "24% (latent 30%, RGB 21%)" in text
    assert "by part: curve evaluations 20 s, setup 11 s, turntable 5 s" in text
    # The fit jobs' wall time (1000 + 90 s) against the fits' training (150 s).
    assert "(1090 s; process start-up and output writing included) is 627% more" in text


def test_a_run_without_cpu_times_is_not_flagged(repo_root: Path, tmp_path: Path) -> None:
    readme = _load(repo_root)
    run = tmp_path / "run"
    bench = run / "results/benchmarks"
    bench.mkdir(parents=True)
    (bench / "train_ae_0.tsv").write_text("s\th:m:s\tmax_rss\n400\t0:06:40\t100\n")
    (run / "results/nerf_summary").mkdir(parents=True)
    (run / "results/nerf_summary/per_fit.csv").write_text(
        "space,method,scene,train_s,overhead_s,source\n" + _fit(run, "rgb", "scene_000", 100.0, {"setup": 1.0}))
    text = readme.runtime_text(run)
    assert "autoencoders 400 s (1 jobs)" in text and "under half a core" not in text


def test_busy_time_leaves_out_the_gaps_between_invocations(repo_root: Path) -> None:
    spec = importlib.util.spec_from_file_location("stage_times", repo_root / "benchmarks/stage_times.py")
    times = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(times)
    # (wall, rss, end, cpu): jobs over [0, 10] and [5, 20], then a stop, then [100, 130].
    job = times.Job
    jobs = {"a": [job(10.0, 0.0, 10.0, 10.0), job(15.0, 0.0, 20.0, 15.0)], "b": [job(30.0, 0.0, 130.0, 30.0)]}
    assert times.run_span_s(jobs) == 130.0 and times.run_busy_s(jobs) == 50.0
