"""Refresh the README's generated blocks from files the pipeline and the benchmarks wrote (`make readme`).

- `<!-- results:start -->` / `<!-- results:end -->`: from a finished pipeline run, the main table
  (results/tables/novel_view_synthesis.md, with the AE ceiling), the generated findings
  (results/tables/findings.md: every result sentence, with its sign, CI and metric, written by
  `igae report` from the fits), the paired differences (results/tables/paired_differences.md), their
  split into the AE's and the NeRF's parts (results/tables/gain_decomposition.md), the equal-time
  table (results/tables/equal_time.md) and two pipeline figures (copied into docs/);
- `<!-- scaling:start -->` / `<!-- scaling:end -->`: the scaling benchmark's summary
  (results/benchmarks/scaling/full/, else quick/: scaling.md, scaling.png copied to
  docs/scaling.png) and the decoder profiles (results/benchmarks/decoder*/decoder.md), when present.

- `<!-- long:start -->` / `<!-- long:end -->`, with `--long RUN` (the folder of a finished run of
  another preset, e.g. `presets/long.yaml`): that run's main table, paired differences and generated
  findings, its budget study (results/budget/budget.csv as a table, budget.png copied to
  docs/long_budget.png), headed by the preset, scene and seed counts, the date the summary was
  written and the machine its fits recorded.

Each block is updated when its sources exist; nothing typed by hand goes in.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

FIGURES = ["qualitative_scene_000.png", "psnr_vs_time.png"]
START, END = "<!-- results:start -->", "<!-- results:end -->"
SCALING_START, SCALING_END = "<!-- scaling:start -->", "<!-- scaling:end -->"
LONG_START, LONG_END = "<!-- long:start -->", "<!-- long:end -->"
LONG_TABLES = ["novel_view_synthesis.md", "paired_differences.md", "gain_decomposition.md", "findings.md"]


def replace_block(text: str, start: str, end: str, body: str) -> str:
    """``text`` with what lies between the ``start`` and ``end`` markers replaced by ``body``."""
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body.strip()}\n{end}{tail}"


TABLES = ["novel_view_synthesis.md", "findings.md", "paired_differences.md", "gain_decomposition.md", "equal_time.md"]
"""What the results block holds, in order (all written by `igae report`)."""


def machine_text(fit_metrics: Path) -> str:
    """The machine a fit's ``metrics.json`` recorded (CPU model and count, device)."""
    prov = json.loads(fit_metrics.read_text())["provenance"]
    m = prov.get("machine")
    cpu = f"{m['cpu_model']}, {m['cpu_count']} cores" if m else f"CPU not recorded (platform {prov.get('platform')})"
    return f"{cpu}, device {prov.get('device')}"


def first_fit(run: Path) -> Path:
    """A fit's ``metrics.json`` of a finished run (the first row of its per_fit.csv)."""
    return fit_source(run, next(csv.DictReader((run / "results/nerf_summary/per_fit.csv").open())))


def fit_source(run: Path, row: dict[str, str]) -> Path:
    """A per_fit.csv row's ``metrics.json`` (its ``source``, relative to the run's folder unless absolute)."""
    source = Path(row["source"])
    return source if source.is_absolute() else run / source


def runtime_text(run: Path) -> str | None:
    """The run's wall time and job-seconds per group of stages, from its Snakemake benchmark records."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from stage_times import run_busy_s, run_span_s, stage_jobs

    jobs = stage_jobs(run / "results/benchmarks")
    if not jobs:
        return None
    groups = {"data": ("fetch_assets", "select_objects", "render_scenes", "build_photos"),
              "autoencoders": ("train_ae", "train_igae", "finetune_ae", "eval_ae"),
              "RGB fits": ("fit_nerf_rgb",), "latent fits": ("fit_nerf_latent",),
              "tuning and budget study": ("tune_nerf", "budget_study"), "summary and report": ("summarize_nerf", "report")}
    parts, starved = [], []
    for label, stages in groups.items():
        records = [r for st in stages for r in jobs.get(st, [])]
        if records:
            parts.append(f"{label} {sum(r.wall for r in records):.0f} s ({len(records)} jobs)")
            # A job that got under half a core was paused or shared the machine: its wall time is not its cost.
            slow = [r for r in records if r.wall > 60 and r.cpu < 0.5 * r.wall]  # NaN (not recorded) never is
            if slow:
                starved.append(f"{label}: {len(slow)} of {len(records)} jobs, {sum(r.cpu for r in slow):.0f} s of CPU in "
                               f"{sum(r.wall for r in slow):.0f} s of wall time")
    overhead = overhead_text(run, sum(r.wall for st in ("fit_nerf_rgb", "fit_nerf_latent") for r in jobs.get(st, [])))
    commit = run_commit(run)
    span, busy = run_span_s(jobs), run_busy_s(jobs)
    when = (f"{span / 60:.1f} min from the first job's start to the last job's end" if busy > 0.95 * span else
            f"{busy / 60:.1f} min with at least one job running ({span / 60:.1f} min from the first job's start to the "
            f"last job's end: the run was resumed after a stop)")
    text = (f"Run time of this run: {when} "
            f"(Snakemake's benchmark records; `python benchmarks/stage_times.py` prints them per stage), on "
            f"{machine_text(first_fit(run))}{f', commit {commit}' if commit else ''}. Job-seconds: {'; '.join(parts)}.")
    if starved:
        text += (" Jobs that ran on under half a core (paused, or the machine was shared), so the run time and their "
                 f"job-seconds overstate this run's cost: {'; '.join(starved)}.")
    return text + (f" {overhead}" if overhead else "")


def run_commit(run: Path) -> str | None:
    """The commit a run's folder (a clone) has checked out, or None when it is not a git clone."""
    import subprocess

    try:
        out = subprocess.run(["git", "-C", str(run), "log", "-1", "--format=%h"], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def overhead_text(run: Path, fit_jobs_s: float) -> str | None:
    """The fits' time outside training (their ``overhead_seconds``) against their training time: without the
    setup (evaluations, renders, turntable) and with it, in all and by part; then the fit jobs' whole wall time
    (``fit_jobs_s``: process start-up and output writing too) against it."""
    rows = list(csv.DictReader((run / "results/nerf_summary/per_fit.csv").open()))
    if not rows:
        return None
    sums = {(k, kind): 0.0 for k in ("rgb", "latent") for kind in ("train", "outside", "setup")}
    parts: dict[str, float] = {}
    for r in rows:
        k = "rgb" if r["space"] == "rgb" else "latent"
        record = json.loads(fit_source(run, r).read_text())["overhead_seconds"]
        sums[k, "train"] += float(r["train_s"])
        sums[k, "outside"] += record["total"]
        sums[k, "setup"] += record.get("setup", 0.0)
        for part, seconds in record.items():
            if part not in ("total", "fraction_of_training"):
                parts[part] = parts.get(part, 0.0) + seconds

    def share(setup: bool, spaces: tuple[str, ...] = ("rgb", "latent")) -> float:
        outside = sum(sums[k, "outside"] - (0.0 if setup else sums[k, "setup"]) for k in spaces)
        return outside / max(sum(sums[k, "train"] for k in spaces), 1e-9)

    t = sums["rgb", "train"] + sums["latent", "train"]
    without, with_setup = False, True
    by_part = ", ".join(f"{k.replace('_', ' ')} {v:.0f} s" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))
    text = (f"Time outside training in the {len(rows)} fits (their `overhead_seconds`, against their {t:.0f} s of "
            f"training): evaluations, renders and turntable {share(without):.0%} (latent fits "
            f"{share(without, ('latent',)):.0%}, RGB fits {share(without, ('rgb',)):.0%}); with the setup (reading the "
            f"scene, encoding the training views, and in the first fit of a job importing and loading the AE) "
            f"{share(with_setup):.0%} (latent {share(with_setup, ('latent',)):.0%}, RGB {share(with_setup, ('rgb',)):.0%}); "
            f"by part: {by_part}.")
    if fit_jobs_s > 0:
        text += (f" The fit jobs' whole wall time ({fit_jobs_s:.0f} s; process start-up and output writing included) is "
                 f"{fit_jobs_s / t - 1:.0%} more than their fits' training.")
    return text


def results_block(repo: Path) -> str | None:
    """The main table, the generated findings, the paired and equal-time tables and two figures
    (copied into docs/), or None before a pipeline run."""
    results = repo / "results"
    tables = [results / "tables" / name for name in TABLES]
    if not all(p.is_file() for p in [*tables, *(results / "figures" / f for f in FIGURES)]):
        return None
    (repo / "docs").mkdir(exist_ok=True)
    for name in FIGURES:
        shutil.copyfile(results / "figures" / name, repo / "docs" / name)
    runtime = runtime_text(repo)
    budget = budget_text(repo)
    return ("\n\n".join([*(p.read_text().strip() for p in tables), *([runtime] if runtime else []),
                         *([budget] if budget else [])]) + "\n\n"
            + "".join(f"![{n}](docs/{n})\n" for n in [*FIGURES, *(["budget.png"] if budget else [])]))


def budget_text(run: Path) -> str | None:
    """The run's budget study (results/budget: its table; budget.png copied to docs/), or None when it fitted nothing."""
    folder = run / "results/budget"
    if not (folder / "budget.csv").is_file():
        return None
    record = json.loads((folder / "budget.json").read_text())
    (run / "docs").mkdir(exist_ok=True)
    shutil.copyfile(folder / "budget.png", run / "docs" / "budget.png")
    return (f"Budget study of this run (`igae.snapshots` {record['snapshots']} of {record['final_joint_steps']} joint "
            f"steps, AE seeds {record['ae_seeds']}, methods {record['methods']}):\n\n" + _budget_markdown(folder / "budget.csv"))


def scaling_block(repo: Path) -> str | None:
    """The scaling benchmark's summary and figure (copied to docs/scaling.png) plus the decoder
    profile, or None when the scaling benchmark has not run."""
    bench = repo / "results" / "benchmarks"
    folder = next((bench / "scaling" / k for k in ("full", "quick") if (bench / "scaling" / k / "scaling.md").is_file()),
                  None)
    if folder is None:
        return None
    (repo / "docs").mkdir(exist_ok=True)
    shutil.copyfile(folder / "scaling.png", repo / "docs" / "scaling.png")
    parts = [f"From `{folder.relative_to(repo).as_posix()}/` ({folder.name} grid):", (folder / "scaling.md").read_text(),
             "![scaling.png](docs/scaling.png)"]
    for decoder in sorted(bench.glob("decoder*/decoder.md")):  # e.g. decoder/ and decoder_f8/ (one run per --out)
        parts += [f"Decoder profile (`benchmarks/bench_decoder.py`, `{decoder.parent.relative_to(repo).as_posix()}/`):",
                  decoder.read_text()]
    return "\n\n".join(p.strip() for p in parts)


def _budget_markdown(budget_csv: Path) -> str:
    rows = list(csv.DictReader(budget_csv.open()))
    lines = ["IG-AE minus standard AE, PSNR (dB) on test views, per IG-AE joint-step budget (mean [95% CI], "
             "n = scenes x AE seeds):", "", "| method | joint steps | mean | 95% CI | n |", "|---|---|---|---|---|"]
    lines += [f"| {r['method']} | {r['joint_steps']} | {float(r['mean']):+.2f} | [{float(r['lo']):+.2f}, "
              f"{float(r['hi']):+.2f}] | {r['n']} |" for r in rows]
    return "\n".join(lines)


def long_block(repo: Path, run: Path) -> str | None:
    """A finished run's main table, paired differences, findings and budget study, with its preset,
    date and machine, or None when the run lacks them."""
    tables = [run / "results" / "tables" / name for name in LONG_TABLES]
    budget_csv, budget_png = run / "results/budget/budget.csv", run / "results/budget/budget.png"
    per_fit = run / "results/nerf_summary/per_fit.csv"
    if not all(p.is_file() for p in [*tables, budget_csv, budget_png, per_fit]):
        return None
    fits = list(csv.DictReader(per_fit.open()))
    preset = json.loads(first_fit(run).read_text())["preset"]
    when = datetime.fromtimestamp(per_fit.stat().st_mtime, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    scenes = sorted({f["scene"] for f in fits})
    seeds = sorted({f["ae_seed"] for f in fits if f["ae_seed"] not in ("", "nan")})
    head = (f"Preset `{preset}`: {len(scenes)} test scenes x {len(seeds)} AE seeds; summary written {when}; "
            f"machine: {machine_text(first_fit(run))}.")
    runtime = runtime_text(run)
    (repo / "docs").mkdir(exist_ok=True)
    shutil.copyfile(budget_png, repo / "docs" / "long_budget.png")
    parts = [head, *(p.read_text() for p in tables), _budget_markdown(budget_csv), *([runtime] if runtime else []),
             "![long_budget.png](docs/long_budget.png)"]
    return "\n\n".join(p.strip() for p in parts)


def main(repo: Path, long_run: Path | None = None) -> int:
    readme_path = repo / "README.md"
    readme = readme_path.read_text()
    blocks = {(START, END): results_block(repo), (SCALING_START, SCALING_END): scaling_block(repo)}
    if long_run is not None:
        body = long_block(repo, long_run)
        if body is None:
            print(f"error: {long_run} is not a finished run with results/tables, results/budget and "
                  "results/nerf_summary/per_fit.csv", file=sys.stderr)
            return 2
        blocks[(LONG_START, LONG_END)] = body
    if all(body is None for body in blocks.values()):
        print("error: run the pipeline (results/tables, results/figures) or benchmarks/bench_scaling.py first",
              file=sys.stderr)
        return 2
    for (start, end), body in blocks.items():
        if body is None:
            print(f"note: nothing to put between {start} / {end} yet; left as it is", file=sys.stderr)
            continue
        if start not in readme or end not in readme:
            print(f"error: README.md lacks the {start} / {end} markers", file=sys.stderr)
            return 2
        readme = replace_block(readme, start, end, body)
    tmp = repo / ".README.md.tmp"
    tmp.write_text(readme)
    tmp.replace(readme_path)
    print("README.md and docs/ updated from results/")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", type=Path, default=None, help="a finished run of another preset (its folder)")
    args = parser.parse_args()
    raise SystemExit(main(Path(__file__).resolve().parents[2], args.long))
