"""Snakemake and DVC build the pipeline on the smoke preset; a second run does nothing.

Runs in a temporary copy of the workflow files so the repo's own data/ is untouched.
Both executors must produce byte-identical outputs (the stages are deterministic).
"""

from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

WORKFLOW_FILES = ["Snakefile", "dvc.yaml", "params.yaml", "presets", "profiles", "workflow", "igae"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def _copy_workflow(repo: Path, dest: Path) -> Path:
    dest.mkdir()
    for name in WORKFLOW_FILES:
        src = repo / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def _run(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


DATA_OUTPUTS = ["data/objects.json", "data/scenes/train", "data/scenes/heldout", "data/photos"]
# Trained weights and their metrics too: on CPU the whole pipeline is deterministic.
TRAINED_OUTPUTS = [f"results/autoencoders/{ae}/model" for ae in ("standard", "finetuned", "igae")] + [
    f"results/ae_eval/{ae}/metrics.json" for ae in ("standard", "finetuned", "igae")]
SPACES = ("rgb", "standard", "finetuned", "igae")
METHODS = ("vanilla", "ngp", "kplanes", "triplane")
HELDOUT = ("scene_000", "scene_001")
# Per-scene NeRF fits: everything but the timings (metrics.json, curve.csv) is deterministic.
FIT_OUTPUTS = [f"results/nerf/{space}/{method}/{scene}/{name}" for space in SPACES for method in METHODS
               for scene in HELDOUT for name in ("per_view.csv", "renders", "field.pt", "turntable.gif")]
REPORT_OUTPUTS = ["results/report/index.html", "results/tables/novel_view_synthesis.csv"]


@pytest.fixture(scope="module")
def snakemake_run(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = _copy_workflow(repo_root, tmp_path_factory.mktemp("smk") / "snakemake_wf")
    _run([sys.executable, "-m", "snakemake", "--cores", "2", "--config", "preset=smoke"], work)
    return work


def test_snakemake_builds_data(snakemake_run: Path) -> None:
    for out in DATA_OUTPUTS + TRAINED_OUTPUTS + FIT_OUTPUTS + REPORT_OUTPUTS:
        assert (snakemake_run / out).exists(), out
    scenes = sorted((snakemake_run / "data/scenes/heldout").glob("scene_*/transforms.json"))
    assert len(scenes) == 2  # presets/smoke.yaml: heldout count 2
    assert (snakemake_run / "results/logs/render_scenes_train.log").exists()


def test_second_snakemake_run_does_nothing(snakemake_run: Path) -> None:
    out = _run([sys.executable, "-m", "snakemake", "--cores", "2", "--config", "preset=smoke", "-n"], snakemake_run)
    assert "Nothing to be done" in out, out


DVC = [sys.executable, "-m", "dvc"]


@pytest.fixture(scope="module")
def dvc_run(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = _copy_workflow(repo_root, tmp_path_factory.mktemp("dvc") / "dvc_wf")
    params = work / "params.yaml"
    params.write_text(params.read_text().replace("preset: default", "preset: smoke", 1))
    _run(DVC + ["init", "--no-scm", "-q"], work)
    _run(DVC + ["config", "core.analytics", "false"], work)
    _run(DVC + ["repro"], work)
    return work


def test_dvc_repro_matches_snakemake_and_second_repro_is_noop(snakemake_run: Path, dvc_run: Path) -> None:
    work, dvc = dvc_run, DVC
    second = _run(dvc + ["repro"], work)
    assert "didn't change" in second and "Running stage" not in second, second
    metrics = _run(dvc + ["metrics", "show", "--json"], work)
    assert "goals.json" in metrics and "psnr" in metrics, metrics
    _run(dvc + ["plots", "show", "--json"], work)
    for out in DATA_OUTPUTS + TRAINED_OUTPUTS + FIT_OUTPUTS:
        a, b = snakemake_run / out, work / out
        if a.is_file():
            assert a.read_bytes() == b.read_bytes(), out
        else:
            cmp = filecmp.dircmp(a, b)
            _assert_same_tree(cmp, out)
    # Two runs of the smoke pipeline: every fit's metrics file agrees once the measured
    # times and memory (which depend on the machine's load) are left out.
    fit_metrics = sorted(p.relative_to(snakemake_run) for p in (snakemake_run / "results/nerf").rglob("metrics.json"))
    assert len(fit_metrics) == len(SPACES) * len(METHODS) * len(HELDOUT)
    for rel in fit_metrics:
        a, b = (json.loads((root / rel).read_text()) for root in (snakemake_run, work))
        assert a["metrics"]["psnr"] > 5 and _without_timings(a) == _without_timings(b), rel


def _without_timings(record: Any) -> Any:
    """A metrics record without what measures time or memory."""
    if isinstance(record, dict):
        return {k: _without_timings(v) for k, v in record.items() if "seconds" not in k and k != "memory"}
    if isinstance(record, list):
        return [_without_timings(v) for v in record]
    return record


def _assert_same_tree(cmp: filecmp.dircmp, where: str) -> None:
    assert not cmp.left_only and not cmp.right_only, (where, cmp.left_only, cmp.right_only)
    _, mismatch, errors = filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files, shallow=False)
    assert not mismatch and not errors, (where, mismatch, errors)
    for name, sub in cmp.subdirs.items():
        _assert_same_tree(sub, f"{where}/{name}")


# ------------------------------------------------------------------ the report (issue 5)
def test_tables_are_rebuilt_from_the_fit_files(snakemake_run: Path) -> None:
    """Recompute the novel-view table's PSNR cells straight from the per-fit metrics files."""
    import csv
    import json
    import statistics

    rows = list(csv.DictReader((snakemake_run / "results/tables/novel_view_synthesis.csv").open()))
    labels = {"vanilla": "NeRF (vanilla)", "ngp": "Instant-NGP", "kplanes": "K-Planes", "triplane": "Tri-planes"}
    spaces = {"rgb": "RGB NeRF", "standard": "Standard AE", "finetuned": "Fine-tuned AE (ablation)", "igae": "IG-AE"}
    for method, label in labels.items():
        row = next(r for r in rows if r["method"] == label)
        for space, title in spaces.items():
            values = [json.loads((snakemake_run / f"results/nerf/{space}/{method}/{scene}/metrics.json").read_text())
                      ["metrics"]["psnr"] for scene in HELDOUT]
            expected = f"{statistics.fmean(values):.2f} ± {statistics.pstdev(values):.2f}"
            assert row[f"{title} / PSNR ↑"] == expected, (method, space)
    for name in ("novel_view_synthesis", "speed", "autoencoding", "novel_view_synthesis_per_scene"):
        for ext in ("csv", "md", "tex"):
            assert (snakemake_run / f"results/tables/{name}.{ext}").stat().st_size > 100, (name, ext)
    tex = (snakemake_run / "results/tables/novel_view_synthesis.tex").read_text()
    assert r"\toprule" in tex and r"\cmidrule" in tex and "LPIPS" in tex


def test_html_report_renders_in_headless_chromium_with_every_image(snakemake_run: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is needed (make test installs it)"
    page = snakemake_run / "results/report/index.html"
    proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                           "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    import re

    body = re.search(r'<body data-images-total="(\d+)" data-images-broken="(\d+)"', dom)
    assert body, dom[:2000]
    total, broken = int(body.group(1)), int(body.group(2))
    assert total >= 10 and broken == 0, (total, broken)
    for section in ("summary", "novel-view-synthesis", "latent-consistency", "speed", "autoencoders", "turntables",
                    "per-scene", "reproducibility", "data"):
        assert f'id="{section}"' in dom, section
    for figure in ("psnr_vs_time", "render_time", "autoencoders", "training_igae", "qualitative_scene_000",
                   "latents_scene_000"):
        for ext in ("png", "pdf"):
            assert (snakemake_run / f"results/figures/{figure}.{ext}").is_file(), (figure, ext)


def test_snakemake_report_command_works_after_a_run(snakemake_run: Path) -> None:
    _run([sys.executable, "-m", "snakemake", "--cores", "1", "--config", "preset=smoke",
          "--report", "results/report.html"], snakemake_run)
    # (the DVC side: `dvc metrics show` / `dvc plots show` are checked on the DVC run above)
    assert (snakemake_run / "results/report.html").stat().st_size > 10_000


# ------------------------------------------------------------------ one stage table, incremental reruns (issue 6)
def test_dvc_yaml_is_generated_from_the_stage_table_and_snakemake_uses_its_commands(repo_root: Path,
                                                                                     tmp_path: Path) -> None:
    check = subprocess.run([sys.executable, str(repo_root / "workflow/scripts/make_dvc_yaml.py"), "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    sys.path.insert(0, str(repo_root / "workflow"))
    from stages import STAGES, snakemake_shell

    work = _copy_workflow(repo_root, tmp_path / "wf")  # no data there: every job is in the dry run
    out = _run([sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "2", "--config", "preset=smoke"], work)
    rules = set(re.findall(r"^rule (\w+):", out, flags=re.M)) - {"all"}
    assert rules == set(STAGES), (rules ^ set(STAGES))
    commands = [line.split("Shell command:", 1)[1].strip() for line in out.splitlines() if "Shell command: igae " in line]
    assert len(commands) >= len(STAGES)
    templates = {name: snakemake_shell(name, "smoke") for name in STAGES}
    for cmd in commands:
        pattern = "|".join(
            re.escape(t).replace(r"\{wildcards\.scene\}", r"scene_\d+").replace(r"\{wildcards\.set\}", r"\w+")
            .replace(r"\{wildcards\.ae\}", r"\w+").replace(r"\{wildcards\.space\}", r"\w+")
            .replace(r"\{wildcards\.method\}", r"\w+") for t in templates.values())
        assert re.match(f"(?:{pattern}) (?:2>|>) ", cmd), cmd


def _snakemake_jobs(work: Path) -> set[str]:
    out = _run([sys.executable, "-m", "snakemake", "-n", "--cores", "2", "--config", "preset=smoke"], work)
    return set(re.findall(r"^rule (\w+):", out, flags=re.M)) - {"all"}


def _dvc_stages_to_run(work: Path) -> set[str]:
    """Stages `dvc repro` would run: those whose own deps/params changed (`dvc repro --dry` lists only
    these, since DVC decides about later stages from the new outputs' hashes at run time) plus
    everything downstream of them in `dvc dag`, the most a real repro can run."""
    out = _run(DVC + ["repro", "--dry"], work)
    changed = set(re.findall(r"Running stage '([^']+)'", out))
    edges = re.findall(r'"([^"]+)" -> "([^"]+)"', _run(DVC + ["dag", "--dot"], work))
    reach, frontier = set(changed), list(changed)
    while frontier:
        node = frontier.pop()
        for a, b in edges:
            if a == node and b not in reach:
                reach.add(b)
                frontier.append(b)
    return {name.split("@")[0] for name in reach}


FITS_AND_AFTER = {"fit_nerf_rgb", "fit_nerf_latent", "summarize_nerf", "report"}


@pytest.mark.parametrize("edit, expected_snakemake, expected_dvc", [
    # A NeRF-fitting parameter (not overridden by the smoke preset): only the fits and what follows.
    ("latent_weight: 0.1", FITS_AND_AFTER, FITS_AND_AFTER),
    # A render parameter: everything downstream of the data.
    ("supersample: 2", {"render_scenes", "train_ae", "train_igae", "finetune_ae", "eval_ae"} | FITS_AND_AFTER,
     {"render_scenes", "train_ae", "train_igae", "finetune_ae", "eval_ae"} | FITS_AND_AFTER),
])
def test_a_param_change_reruns_only_what_depends_on_it(snakemake_run: Path, dvc_run: Path, edit: str,
                                                        expected_snakemake: set, expected_dvc: set) -> None:
    new = {"latent_weight: 0.1": "latent_weight: 0.2", "supersample: 2": "supersample: 3"}[edit]
    for work in (snakemake_run, dvc_run):
        params = work / "params.yaml"
        original = params.read_text()
        assert edit in original
        params.write_text(original.replace(edit, new, 1))
        try:
            got = _snakemake_jobs(work) if work == snakemake_run else _dvc_stages_to_run(work)
        finally:
            params.write_text(original)
        expected = expected_snakemake if work == snakemake_run else expected_dvc
        assert got == expected, (work.name, sorted(got ^ expected))


def test_slurm_profile_dry_run_plans_one_gpu_job_per_fit(repo_root: Path, tmp_path: Path) -> None:
    work = _copy_workflow(repo_root, tmp_path / "wf")
    out = _run([sys.executable, "-m", "snakemake", "-n", "--profile", "workflow/profiles/slurm",
                "--config", "preset=paper"], work)
    fits = re.findall(r"^rule fit_nerf_(?:rgb|latent):", out, flags=re.M)
    assert len(fits) == 8 * 4 * 4  # presets/paper.yaml: 8 held-out scenes x 4 spaces x 4 methods
    igae_job = out[out.index("rule train_igae:"):]
    resources = next(line for line in igae_job.splitlines() if "resources:" in line)
    assert "gpu=1" in resources and "slurm_partition=gpu" in resources, resources
    local = _run([sys.executable, "-m", "snakemake", "-n", "--profile", "workflow/profiles/local",
                  "--config", "preset=smoke"], work)
    assert "fit_nerf_latent" in local
