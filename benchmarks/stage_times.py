"""Per-stage wall times of a finished Snakemake run, from the rules' benchmark records.

Usage: `python benchmarks/stage_times.py [results/benchmarks]` after `snakemake --cores all`.
Each job's record (results/benchmarks/<rule>[_<wildcards>].tsv) holds its wall time and peak
memory; this prints, per stage, the number of jobs, their summed and longest wall time and the
largest peak RSS. Jobs of one stage run in parallel where the graph allows, so the summed time
is CPU-side work, not the stage's share of the run's wall time.
"""

from __future__ import annotations

import csv
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))
from stages import snakemake_stages  # noqa: E402  the stage table

from igae.config import AE_NAMES  # noqa: E402

STAGES = list(snakemake_stages())


def stage_of(path: Path) -> str:
    name = path.stem
    for stage in sorted(STAGES, key=len, reverse=True):
        if name == stage or name.startswith(stage + "_"):
            return stage
    if re.match(rf"^({'|'.join(AE_NAMES)})_", name) and "fit_nerf" in path.parts:
        return "fit_nerf_latent"
    if name.startswith("rgb_") and "fit_nerf" in path.parts:
        return "fit_nerf_rgb"
    return name


class Job(NamedTuple):
    """One job's benchmark record."""

    wall: float  # seconds
    rss_mb: float  # peak resident set
    end: float  # its record's modification time (epoch seconds)
    cpu: float  # Snakemake's cpu_time in seconds, NaN when not recorded


def stage_jobs(folder: Path) -> dict[str, list[Job]]:
    """Per stage, each job's :class:`Job` record."""
    jobs: dict[str, list[Job]] = defaultdict(list)
    for f in sorted(folder.rglob("*.tsv")):
        rows = list(csv.DictReader(f.open(), delimiter="\t"))
        if rows:
            cpu = rows[-1].get("cpu_time") or "nan"
            jobs[stage_of(f.relative_to(folder))].append(
                Job(float(rows[-1]["s"]), float(rows[-1]["max_rss"] or 0), f.stat().st_mtime, float(cpu)))
    return dict(jobs)


def run_span_s(jobs: dict[str, list[Job]]) -> float:
    """Wall time from the first job's start to the last job's end (the run's, without Snakemake's start-up)."""
    records = [r for v in jobs.values() for r in v]
    return max(r.end for r in records) - min(r.end - r.wall for r in records)


def run_busy_s(jobs: dict[str, list[Job]]) -> float:
    """Wall time during which at least one job ran: the span without the gaps between invocations of a
    run resumed later (the union of the jobs' ``[end - wall, end]`` intervals)."""
    spans = sorted((r.end - r.wall, r.end) for v in jobs.values() for r in v)
    busy, start, end = 0.0, *spans[0]
    for a, b in spans[1:]:
        if a > end:
            busy, start = busy + end - start, a
        end = max(end, b)
    return busy + end - start


def main(folder: Path) -> int:
    jobs = stage_jobs(folder)
    if not jobs:
        print(f"error: no benchmark records in {folder}; run `snakemake --cores all` first", file=sys.stderr)
        return 2
    print(f"{'stage':<18}{'jobs':>6}{'sum (s)':>10}{'longest (s)':>13}{'peak RSS (MB)':>15}")
    total = 0.0
    for stage in STAGES + sorted(set(jobs) - set(STAGES)):
        if stage not in jobs:
            continue
        times = [r.wall for r in jobs[stage]]
        total += sum(times)
        print(f"{stage:<18}{len(times):>6}{sum(times):>10.1f}{max(times):>13.1f}{max(r.rss_mb for r in jobs[stage]):>15.0f}")
    print(f"{'all jobs':<18}{sum(len(v) for v in jobs.values()):>6}{total:>10.1f}  (job-seconds; with N cores the run's "
          f"wall time is at least this / N)")
    print(f"first job start to last job end: {run_span_s(jobs):.0f} s; with at least one job running: {run_busy_s(jobs):.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("results/benchmarks")))
