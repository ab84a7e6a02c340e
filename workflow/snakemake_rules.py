"""The stage table (workflow/stages.py) in Snakemake's terms: files, params, threads and resources.

The Snakefile builds every rule from these functions, so a rule cannot drift from its stage.
"""

from __future__ import annotations

import re
from itertools import product
from typing import Any, Callable

from resources import gpu_resources, job_threads, mem_mb, runs_on_gpu
from stages import FOLDER_FILES, LOOP_VARS, Stage, snakemake_shell

from igae.config import Params


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)))


_FOLDERS = [(_pattern(folder), files) for folder, files in FOLDER_FILES.items()]


def _path(item: Any) -> str:
    """The path of a table entry (a path, or ``{path: options}``)."""
    return next(iter(item)) if isinstance(item, dict) else item


def tracked_files(path: str) -> list[str]:
    """The files Snakemake tracks for a table path: the path itself for a file, else the folder's
    marker files (:data:`stages.FOLDER_FILES`) with the folder's own placeholders filled in."""
    for pattern, files in _FOLDERS:
        match = pattern.fullmatch(path)
        if match:
            return [f.format_map(_Keep(match.groupdict())) for f in files]
    return [path]


class _Keep(dict):
    """``format_map`` values that leave unknown placeholders as they are."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def wildcards(stage: Stage) -> set[str]:
    """The rule's wildcards: the stage's loop variables and its extra Snakemake wildcards."""
    return {*stage.loop_vars, *stage.snakemake_wildcards}


def expand_free(files: list[str], bound: set[str], values: dict[str, list[str]]) -> list[str]:
    """Expand every placeholder that is not one of the rule's wildcards over all its values."""
    out: list[str] = []
    for f in files:
        free = [v for v in dict.fromkeys(re.findall(r"\{(\w+)\}", f)) if v not in bound]
        for combo in product(*(values[v] for v in free)):
            out.append(f.format_map(_Keep(zip(free, combo))))
    return list(dict.fromkeys(out))


def rule_inputs(stage: Stage, values: dict[str, list[str]]) -> list[str]:
    """The files a rule reads: the stage's deps as Snakemake-tracked files."""
    return expand_free([f for d in stage.deps for f in tracked_files(_path(d))], wildcards(stage), values)


def rule_outputs(stage: Stage, values: dict[str, list[str]]) -> list[str]:
    """The files a rule writes: outs, metrics and plots as Snakemake-tracked files (checkpoint folders,
    which only serve to resume, are not outputs for Snakemake)."""
    paths = [_path(o) for o in [*stage.outs, *stage.metrics, *stage.plots]
             if not (isinstance(o, dict) and next(iter(o.values())).get("persist"))]
    return expand_free([f for p in paths for f in tracked_files(p)], wildcards(stage), values)


def every_output(stages: dict[str, Stage], values: dict[str, list[str]]) -> list[str]:
    """Every file the rules write, each placeholder expanded over all its values: what ``rule all``
    requests. Snakemake (since 7.7; snakemake/snakemake#1978) does not rebuild a deleted file that
    is only an input of present, up-to-date files (the way temp() files are treated); requested, a
    missing file is rebuilt, and what reads it reruns, being older than it (DVC does the same).
    """
    return expand_free([f for stage in stages.values() for f in rule_outputs(stage, values)], set(), values)


def lookup(tree: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted key of a params tree (``KeyError`` naming the key when it is absent)."""
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"the stage table names params key {dotted!r}, which params do not have")
        node = node[part]
    return node


def rule_params(stage: Stage, params: Params) -> Callable[[Any], dict[str, Any]]:
    """``params: values=...``: per job, the effective value of each key the stage reads (keys may
    use the job's wildcards, e.g. ``nerf.method_params.{method}``); Snakemake reruns a job when
    they change."""
    tree = params.model_dump(mode="json")

    def values(wildcards: Any) -> dict[str, Any]:
        keys = [k.format_map(_Keep(dict(wildcards.items()))) for k in stage.params]
        return {k: lookup(tree, k) for k in keys}

    return values


def rule_threads(stage: Stage, params: Params, cores: int | None) -> int:
    """Cores of a job: the stage's number, or the threads its params key gives (0: every core)."""
    if isinstance(stage.threads, str):
        return job_threads(int(lookup(params.model_dump(), stage.threads)), cores)
    return int(stage.threads)


def rule_resources(stage: Stage, params: Params, gpus_here: int) -> dict[str, int]:
    """``mem_mb`` from the params, and for jobs that run on CUDA ``gpu`` (cluster) and ``gpu_slots`` (local)."""
    out: dict[str, int] = {}
    if stage.mem_mb is not None:
        out["mem_mb"] = mem_mb(stage.mem_mb, params, on_gpu=runs_on_gpu(params, gpus_here))
    out.update(gpu_resources(stage.gpus, params, gpus_here))
    return out


def log_name(name: str, stage: Stage) -> str:
    """The job's log name (also its benchmark record's), e.g. ``render_scenes_{set}``."""
    return stage.log or name + "".join(f"_{{{v}}}" for v in stage.loop_vars)


def rule_command(name: str, stage: Stage, preset: str, log: str) -> Callable[[Any], str]:
    """``params: cmd=...``: the job's shell command, log redirection included.

    A rule made in a loop cannot name its command in ``shell:`` (Snakemake evaluates that
    expression when the job runs, when the loop variable names the last stage), so the rule's
    ``shell:`` is ``{params.cmd}`` and the command is a param: a changed command reruns the job.
    """
    cmd = snakemake_shell(name, preset, stage) + (f" > {log} 2>&1" if stage.log_stdout else f" 2> {log}")
    for var in LOOP_VARS:
        cmd = cmd.replace("{" + var + "}", "{wildcards." + var + "}")
    return lambda wildcards: cmd.format(wildcards=wildcards)
