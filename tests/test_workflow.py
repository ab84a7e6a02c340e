"""Snakemake and DVC build the pipeline on the smoke preset; a second run does nothing.

Runs in a temporary copy of the workflow files so the repo's own data/ is untouched.
Both executors must produce byte-identical outputs (the stages are deterministic).
"""

from __future__ import annotations

import csv
import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from igae.config import AE_NAMES, RGB_SPACE, SCENE_SETS, load_params
from igae.fields.registry import METHOD_NAMES
from igae.layout import ae_run_name

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


def _copy_env(cwd: Path) -> dict[str, str]:
    """The environment of a command run in a workflow copy: that copy's own ``igae`` package first on the path."""
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(cwd), env.get("PYTHONPATH", "")) if p)
    return env


def _run(cmd: list[str], cwd: Path) -> str:
    """Run ``cmd`` in a workflow copy (see ``_copy_env``); assert it exits 0 and return its output."""
    proc = subprocess.run(cmd, cwd=cwd, env=_copy_env(cwd), capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


DATA_OUTPUTS = ["data/objects.json", *(f"data/scenes/{name}" for name in SCENE_SETS), "data/photos"]
# Trained weights and their metrics too: on CPU the whole pipeline is deterministic.
AE_RUNS = [ae_run_name(ae, 0) for ae in AE_NAMES]  # ae_seeds: [0]
TRAINED_OUTPUTS = [f"results/autoencoders/{run}/model" for run in AE_RUNS] + [
    f"results/ae_eval/{run}/metrics.json" for run in AE_RUNS]
SPACES = (RGB_SPACE, *AE_NAMES)
FIT_FOLDERS = (RGB_SPACE, *AE_RUNS)
"""The folders of each space's fits under results/nerf (latent spaces: AE seed 0)."""
METHODS = METHOD_NAMES
HELDOUT = ("scene_000", "scene_001")
REPO_ROOT = Path(__file__).resolve().parents[1]
FIT_JOBS_PER_SET = (len(HELDOUT) if load_params(REPO_ROOT / "params.yaml", preset="smoke").nerf.snakemake_fit_jobs == "scene"
                    else 1)
"""Snakemake jobs per space x AE seed x method: one per scene, or one for the scene set (nerf.snakemake_fit_jobs)."""
# Per-scene NeRF fits: everything but the timings (metrics.json, curve.csv) is deterministic.
TURNTABLE_SCENES = HELDOUT[:load_params(REPO_ROOT / "params.yaml", preset="smoke").nerf.eval.turntable_scenes]
"""The scenes whose fits render a turntable (the first nerf.eval.turntable_scenes of the set)."""
FIT_OUTPUTS = [f"results/nerf/{folder}/{method}/{scene}/{name}" for folder in FIT_FOLDERS for method in METHODS
               for scene in HELDOUT for name in ("per_view.csv", "renders", "field.pt",
                                                 *(("turntable.gif",) if scene in TURNTABLE_SCENES else ()))]
REPORT_OUTPUTS = ["results/report/index.html", "results/tables/novel_view_synthesis.csv"]
TUNING_OUTPUTS = ["results/tuning/summary.csv", "results/tuning/choice.json"]
BUDGET_OUTPUTS = ["results/budget/budget.csv", "results/budget/fits/joint_2/igae_s0/ngp/scene_000/per_view.csv"]


DVC = [sys.executable, "-m", "dvc"]


@pytest.fixture(scope="module")
def dvc_started(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, subprocess.Popen]]:
    """`dvc repro` of the smoke pipeline, started in the background in its own workflow copy.

    It runs while Snakemake builds the same pipeline (``snakemake_run``): DVC runs its stages one
    at a time, and most of a smoke stage is a process starting up on one core, so the two runs
    share the cores instead of taking turns.
    """
    work = _copy_workflow(repo_root, tmp_path_factory.mktemp("dvc") / "dvc_wf")
    params = work / "params.yaml"
    params.write_text(params.read_text().replace("preset: default", "preset: smoke", 1))
    _run(DVC + ["init", "--no-scm", "-q"], work)
    _run(DVC + ["config", "core.analytics", "false"], work)
    with open(work.parent / "dvc_repro.log", "w") as log:
        proc = subprocess.Popen(DVC + ["repro"], cwd=work, env=_copy_env(work), stdout=log, stderr=subprocess.STDOUT)
    yield work, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def snakemake_run(repo_root: Path, tmp_path_factory: pytest.TempPathFactory,
                  dvc_started: tuple[Path, subprocess.Popen]) -> Path:
    work = _copy_workflow(repo_root, tmp_path_factory.mktemp("smk") / "snakemake_wf")
    _run([sys.executable, "-m", "snakemake", "--cores", "2", "--config", "preset=smoke"], work)
    return work


def test_snakemake_builds_data(snakemake_run: Path) -> None:
    for out in DATA_OUTPUTS + TRAINED_OUTPUTS + FIT_OUTPUTS + REPORT_OUTPUTS + TUNING_OUTPUTS + BUDGET_OUTPUTS:
        assert (snakemake_run / out).exists(), out
    # Past the first nerf.eval.turntable_scenes of the set, fits render no turntable (the report shows the first).
    assert TURNTABLE_SCENES and set(HELDOUT) - set(TURNTABLE_SCENES)
    for scene in set(HELDOUT) - set(TURNTABLE_SCENES):
        assert not list((snakemake_run / "results/nerf").glob(f"*/*/{scene}/turntable.gif")), scene
    scenes = sorted((snakemake_run / "data/scenes/heldout").glob("scene_*/transforms.json"))
    assert len(scenes) == 2  # presets/smoke.yaml: heldout count 2
    assert (snakemake_run / "results/logs/render_scenes_train.log").exists()
    # The validation scene (smoke: 1) is another object than every test and training scene's.
    objects = {name: {json.loads((d / "transforms.json").read_text())["igae"]["object"]["object_id"]
                      for d in (snakemake_run / "data/scenes" / name).glob("scene_*")} for name in SCENE_SETS}
    assert len(objects["validation"]) == 1 and not objects["validation"] & (objects["heldout"] | objects["train"])
    # Each fit records its space and AE seed (none for RGB fits): the summary pairs fits on them.
    for folder in FIT_FOLDERS:
        record = json.loads((snakemake_run / f"results/nerf/{folder}/ngp/scene_000/metrics.json").read_text())
        assert (record["space"], record["ae_seed"]) == ((RGB_SPACE, None) if folder == RGB_SPACE else (folder[:-3], 0))
    # Tuning is off by default: its stage records that and fits nothing.
    assert json.loads((snakemake_run / "results/tuning/choice.json").read_text())["enabled"] is False
    assert not (snakemake_run / "results/tuning/fits").exists()
    # The budget study (smoke: snapshot after 2 of 4 joint steps, ngp): one row per budget, the final
    # IG-AE's equal to the main fits' IG-AE minus standard (the same paired computation).
    budget = list(csv.DictReader((snakemake_run / "results/budget/budget.csv").open()))
    assert [(r["joint_steps"], r["method"], r["n"]) for r in budget] == [("2", "ngp", "2"), ("4", "ngp", "2")]
    paired = {(r["a"], r["b"], r["method"], r["metric"]): r for r in
              csv.DictReader((snakemake_run / "results/nerf_summary/paired.csv").open())}
    final = paired[("igae", "standard", "ngp", "psnr")]
    assert float(budget[1]["mean"]) == pytest.approx(float(final["mean"]), abs=1e-5)
    assert float(budget[0]["lo"]) <= float(budget[0]["mean"]) <= float(budget[0]["hi"])
    assert (snakemake_run / "results/budget/budget.png").stat().st_size > 1000


def test_second_snakemake_run_does_nothing(snakemake_run: Path) -> None:
    out = _run([sys.executable, "-m", "snakemake", "--cores", "2", "--config", "preset=smoke", "-n"], snakemake_run)
    assert "Nothing to be done" in out, out


@pytest.fixture(scope="module")
def dvc_run(dvc_started: tuple[Path, subprocess.Popen]) -> Path:
    work, proc = dvc_started
    assert proc.wait() == 0, "dvc repro failed:\n" + (work.parent / "dvc_repro.log").read_text()[-5000:]
    return work


def test_dvc_repro_matches_snakemake_and_second_repro_is_noop(snakemake_run: Path, dvc_run: Path) -> None:
    work, dvc = dvc_run, DVC
    second = _run(dvc + ["repro"], work)
    assert "didn't change" in second and "Running stage" not in second, second
    metrics = _run(dvc + ["metrics", "show", "--json"], work)
    assert "goals.json" in metrics and "psnr" in metrics, metrics
    _run(dvc + ["plots", "show", "--json"], work)
    for out in DATA_OUTPUTS + TRAINED_OUTPUTS + FIT_OUTPUTS + TUNING_OUTPUTS + BUDGET_OUTPUTS:
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
            folder = RGB_SPACE if space == RGB_SPACE else ae_run_name(space, 0)
            values = [json.loads((snakemake_run / f"results/nerf/{folder}/{method}/{scene}/metrics.json").read_text())
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


def test_report_and_readme_state_only_generated_findings(snakemake_run: Path, repo_root: Path) -> None:
    """Issue 13: paired differences with CIs, readable goal checks, equal time and the AE ceiling, and
    every result sentence generated from the numbers (also in the README block `make readme` writes)."""
    import csv
    import importlib.util

    from igae.report.statements import ONE_SEED

    tables = snakemake_run / "results/tables"
    for name in ("paired_differences", "paired_differences_per_scene", "goal_checks", "equal_time"):
        for ext in ("csv", "md", "tex"):
            assert (tables / f"{name}.{ext}").stat().st_size > 100, (name, ext)
    paired = list(csv.DictReader((snakemake_run / "results/nerf_summary/paired.csv").open()))
    assert len(paired) == 3 * len(METHODS) * 3 and all(int(r["n"]) == len(HELDOUT) for r in paired)
    # A sentence carries the paired table's own mean and interval for each method.
    findings = (tables / "findings.md").read_text()
    row = next(r for r in paired if r["comparison"] == "igae - standard" and r["metric"] == "psnr"
               and r["method"] == "ngp")
    assert f"Instant-NGP ({float(row['mean']):+.2f} dB, 95% CI {float(row['lo']):+.2f} dB to {float(row['hi']):+.2f} dB)" \
        in findings
    assert ONE_SEED in findings and "ST-LPIPS" in findings
    goals = json.loads((snakemake_run / "results/nerf_summary/goals.json").read_text())
    g = goals["goals"]["ngp"]["igae_minus_standard_psnr"]
    assert g["mean"] == pytest.approx(float(row["mean"]), abs=1e-5) and g["threshold"] == 1.0 and "met" in g
    # The smoke preset continues latent fits 2 stage-2 steps (nerf.equal_time) and records the AE ceiling.
    equal_time = list(csv.DictReader((snakemake_run / "results/nerf_summary/equal_time.csv").open()))
    assert all(float(r["continued_train_s"]) > 0 and r["extra_steps"] == "2" for r in equal_time)
    assert "AE ceiling PSNR" in (tables / "novel_view_synthesis.csv").read_text().splitlines()[0]
    page = (snakemake_run / "results/report/index.html").read_text()
    assert "<h3>Goal checks</h3>" in page and ONE_SEED in page and "Equal time" in page
    assert "Latent fits reach their plateau" not in page and "look for sharper edges" not in page
    # make readme: the block between the markers holds the generated tables and sentences.
    shutil.copy(repo_root / "README.md", snakemake_run / "README.md")
    spec = importlib.util.spec_from_file_location("update_readme", repo_root / "workflow/scripts/update_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(snakemake_run) == 0
    readme = (snakemake_run / "README.md").read_text()
    block = readme.split("<!-- results:start -->")[1].split("<!-- results:end -->")[0]
    assert findings.strip() in block and (tables / "paired_differences.md").read_text().strip() in block
    # The split of each difference into the AE ceiling's part and the NeRF-to-ceiling gap's, in the block and the page.
    decomposition = (tables / "gain_decomposition.md").read_text()
    assert "| Instant-NGP | IG-AE − Standard AE |" in decomposition and decomposition.strip() in block
    assert "<h3>Where the differences come from</h3>" in page and "split into the autoencoder's part" in findings
    assert "gives the best latent NeRF for every" not in readme  # the old hand-typed claim


# ------------------------------------------------------------------ one stage table, incremental reruns (issues 6, 12)
def _stage_table(repo_root: Path):
    sys.path.insert(0, str(repo_root / "workflow"))
    import stages

    return stages


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _dry_run_jobs(out: str) -> list[dict[str, Any]]:
    """Each job of a ``snakemake -n`` listing: rule, input and output files, wildcards, shell command."""
    jobs = []
    for block in re.split(r"\n(?=rule \w+:)", out)[1:]:
        job: dict[str, Any] = {"rule": re.match(r"rule (\w+):", block).group(1), "input": [], "output": [],
                               "wildcards": {}}
        for key in ("input", "output"):
            m = re.search(rf"^    {key}: (.*)$", block, flags=re.M)
            job[key] = m.group(1).split(", ") if m else []
        m = re.search(r"^    wildcards: (.*)$", block, flags=re.M)
        if m:
            job["wildcards"] = dict(kv.split("=", 1) for kv in m.group(1).split(", "))
        jobs.append(job)
    return [j for j in jobs if j["rule"] != "all"]


def test_dvc_yaml_and_the_snakefile_are_generated_from_the_stage_table(repo_root: Path, tmp_path: Path) -> None:
    """dvc.yaml is the table's; every Snakemake rule is a stage of it with the table's command, and
    its files are the table's paths: each input lies in a dep of the stage, each output in an out,
    and every dep and out is tracked by at least one file."""
    check = subprocess.run([sys.executable, str(repo_root / "workflow/scripts/make_dvc_yaml.py"), "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    stages = _stage_table(repo_root)

    work = _copy_workflow(repo_root, tmp_path / "wf")  # no data there: every job is in the dry run
    out = _run([sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "2", "--config", "preset=smoke"], work)
    jobs = _dry_run_jobs(out)
    assert {j["rule"] for j in jobs} == set(stages.snakemake_stages())
    assert set(stages.STAGES) - set(stages.snakemake_stages()) == {"effective_params"}  # DVC's preset merge
    commands = [line.split("Shell command:", 1)[1].strip() for line in out.splitlines() if "Shell command: igae " in line]
    assert len(commands) == len(jobs)
    as_run = stages.snakemake_stages(load_params(work / "params.yaml", preset="smoke"))  # fit jobs per scene set
    for job, cmd in zip(jobs, commands):
        stage = as_run[job["rule"]]
        bind = {**job["wildcards"], "preset": "smoke"}
        expected = (stage.snakemake_cmd or stage.cmd).format(**bind)
        assert cmd.startswith(expected + (" > " if stage.log_stdout else " 2> ")), (cmd, expected)
        deps = [d.format_map(_Keep(bind)) for d in stage.deps]
        outs = [next(iter(o)) if isinstance(o, dict) else o for o in [*stage.outs, *stage.metrics, *stage.plots]
                if not (isinstance(o, dict) and next(iter(o.values())).get("persist"))]
        outs = [o.format_map(_Keep(bind)) for o in outs]
        for files, paths in ((job["input"], deps), (job["output"], outs)):
            for f in files:  # every file Snakemake tracks belongs to a path of the table
                assert any(_under(f, p) for p in paths), (job["rule"], f, paths)
            for p in paths:  # and every path of the table is tracked (placeholders: any value) ...
                pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(p))
                untracked = any(re.fullmatch(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(k)), p)
                                for k, v in stages.FOLDER_FILES.items() if not v)
                if untracked and job["rule"] != "report":  # ... but folders Snakemake does not track
                    continue
                assert any(re.fullmatch(f"{pattern}(/.*)?", f) for f in files), (job["rule"], p, files)


class _Keep(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def test_both_executors_record_the_same_params_per_stage(snakemake_run: Path, dvc_run: Path) -> None:
    """What Snakemake recorded for each job's params equals what dvc.lock holds for the same stage,
    item by item: the executors rerun on the same keys with the same effective values."""
    import ast
    import base64

    from ruamel.yaml import YAML  # DVC's YAML (1.2): reads its lock file's floats as floats

    lock = YAML(typ="safe").load((dvc_run / "dvc.lock").read_text())["stages"]
    dvc_params = {name: body["params"]["data/effective_params.yaml"] for name, body in lock.items()
                  if "params" in body}
    smk_params: dict[str, list[dict]] = {}
    for record_file in (snakemake_run / ".snakemake/metadata").iterdir():
        record = json.loads(record_file.read_text())
        output = base64.b64decode(record_file.name).decode()
        # the params are the values the stage reads (a dict) and its command (a string)
        values = [v for v in map(ast.literal_eval, record["params"]) if isinstance(v, dict) and v]
        if values:
            assert len(values) == 1, (output, values)
            smk_params.setdefault(record["rule"], []).append(values[0])
    stage_of = {name: name.split("@")[0] for name in dvc_params}
    assert set(stage_of.values()) == set(smk_params) - {"summarize_nerf"}, (set(stage_of.values()), set(smk_params))
    for name, values in dvc_params.items():
        assert values in smk_params[stage_of[name]], (name, sorted(values))
    for rule, records in smk_params.items():
        for values in records:
            assert values in [v for n, v in dvc_params.items() if stage_of[n] == rule], (rule, sorted(values))
    # A fit reads its own method's entry and the keys common to all fits, not the list of methods.
    ngp = dvc_params["fit_nerf_rgb@ngp"]
    assert "nerf.method_params.ngp" in ngp and not any(k.startswith("nerf.method_params.") and k != "nerf.method_params.ngp"
                                                       for k in ngp)
    assert not {"nerf", "nerf.methods", "nerf.autoencoders", "training", "training.threads"} & set(ngp)
    assert not {"igae.joint.rgb", "igae.joint.latent", "igae.joint.tv", "igae.joint.lr_triplane", "igae"} & set(
        dvc_params["finetune_ae@0"])


def _snakemake_jobs(work: Path) -> set[str]:
    """The jobs ``snakemake -n`` would run, as ``stage`` or ``stage@item`` (DVC's names: the loop
    variables' values, joined by ``-``; the per-scene fits of one item count once)."""
    stages = _stage_table(Path(__file__).resolve().parents[1])
    out = _run([sys.executable, "-m", "snakemake", "-n", "--cores", "2", "--config", "preset=smoke"], work)
    keys = set()
    for job in _dry_run_jobs(out):
        loop = stages.STAGES[job["rule"]].loop_vars
        keys.add(job["rule"] + ("@" + "-".join(job["wildcards"][v] for v in loop) if loop else ""))
    return keys


_DVC_EDGES: dict[tuple[Path, tuple[str, ...]], list[tuple[str, str]]] = {}
"""`dvc dag` edges per workflow copy and loop params (a new method or AE seed adds stages)."""


def _dvc_status_json(work: Path) -> dict:
    """`dvc status --json`: stage (``name@item``) -> what changed; empty when everything is up to date."""
    proc = subprocess.run(DVC + ["status", "--json"], cwd=work, env=_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _expand(spec: set[str], methods: list[str], seeds: tuple[int, ...] = (0,)) -> set[str]:
    """Expected jobs: a stage name means all its items, ``stage@pattern`` the items matching it
    (DVC's item names: loop values joined by ``-``, e.g. ``fit_nerf_latent@igae-0-ngp``)."""
    import fnmatch

    per_seed = [str(k) for k in seeds]
    items = {"render_scenes": list(SCENE_SETS), "train_ae": per_seed, "train_igae": per_seed, "finetune_ae": per_seed,
             "eval_ae": [f"{ae}-{k}" for ae in AE_NAMES for k in seeds], "fit_nerf_rgb": methods,
             "fit_nerf_latent": [f"{ae}-{k}-{m}" for ae in AE_NAMES for k in seeds for m in methods]}
    out = set()
    for entry in spec:
        name, _, pattern = entry.partition("@")
        if name not in items:
            out.add(name)
            continue
        out |= {f"{name}@{item}" for item in items[name] if fnmatch.fnmatch(item, pattern or "*")}
    return out


AFTER_FITS = {"summarize_nerf", "budget_study", "report"}  # budget_study reads every fit (it compares with them)
# tune_nerf reads every fit key and every method's entry, and the AE runs (it fits with them).
FITS_AND_AFTER = {"fit_nerf_rgb", "fit_nerf_latent", "tune_nerf"} | AFTER_FITS
AES_AND_AFTER = {"train_ae", "train_igae", "finetune_ae", "eval_ae", "fit_nerf_latent", "tune_nerf"} | AFTER_FITS
TOY_FIELD = '''"""A toy NeRF method for the workflow test: a small MLP on the raw coordinates."""

import torch
import torch.nn.functional as F

from igae.fields.base import Field, check_single_scene
from igae.fields.base import output_activation as make_output_activation


class ToyField(Field):
    def __init__(self, out_channels: int, aabb: float, output_activation: str, seed: int, hidden: int = 8) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.register_buffer("aabb", torch.tensor([[-aabb] * 3, [aabb] * 3]))
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.net = torch.nn.Sequential(torch.nn.Linear(3, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1 + out_channels))
        self.act = make_output_activation(output_activation)

    def forward(self, points, directions=None, scene_index=None):
        check_single_scene(scene_index)
        raw = self.net(points / self.aabb[1])
        return F.softplus(raw[..., 0] - 1.0), self.act(raw[..., 1:])
'''


def _add_toy_method(work: Path) -> None:
    """Add a NeRF method as the README says: one Field file, one registry line, one params entry."""
    (work / "igae/fields/toy.py").write_text(TOY_FIELD)
    registry = work / "igae/fields/registry.py"
    text = registry.read_text()
    anchor = "METHODS: dict[str, Method] = {\n"
    assert text.count(anchor) == 1
    registry.write_text(text.replace(anchor, anchor + '    "toy": Method("igae.fields.toy:ToyField", "Toy"),\n'))
    params = work / "params.yaml"
    text = params.read_text()
    anchor = "  method_params:\n"
    assert text.count(anchor) == 1 and text.count("methods: [vanilla, ngp, kplanes, triplane]") == 1
    text = text.replace(anchor, anchor + "    toy: {lr: 0.01, lr_stage2: 0.002, adam_eps: 1.0e-8, hyper: {hidden: 8}, "
                                         "regularizers: {}}\n")
    params.write_text(text.replace("methods: [vanilla, ngp, kplanes, triplane]",
                                   "methods: [vanilla, ngp, kplanes, triplane, toy]"))


# One edit at a time on the built smoke pipeline: (file, old text, new text) -> what must rerun, the
# same under both executors. `stage@pattern` names items (DVC's foreach/matrix items, Snakemake's
# wildcards), e.g. `fit_nerf_latent@*-ngp`: the latent ngp fits in every space.
EDITS = {
    # Only the AE stages read training.threads (the fits use nerf.threads).
    "training.threads": (("params.yaml", "  threads: 1\n", "  threads: 2\n"), AES_AND_AFTER),
    # One method's learning rate: only that method's fits (and the tuning stage, which may fit any method).
    "nerf.method_params.ngp.lr": (("params.yaml", "  ngp:\n      lr: 0.01", "  ngp:\n      lr: 0.02"),
                                  {"fit_nerf_rgb@ngp", "fit_nerf_latent@*-ngp", "tune_nerf"} | AFTER_FITS),
    # A joint-phase loss weight the ablation does not read: IG-AE and what uses it, not finetune_ae.
    "igae.joint.rgb": (("params.yaml", "    rgb: 1.0", "    rgb: 2.0"),
                       {"train_igae", "eval_ae@igae-*", "fit_nerf_latent@igae-*", "tune_nerf"} | AFTER_FITS),
    "train_ae.lr": (("params.yaml", "  lr: 0.0005", "  lr: 0.001"), AES_AND_AFTER),
    # The smoke preset sets the resolution: an edit of its file reruns everything that reads it ...
    "scenes.resolution": (("presets/smoke.yaml", "scenes:\n  resolution: 32", "scenes:\n  resolution: 40"),
                          {"render_scenes", "build_photos"} | AES_AND_AFTER | FITS_AND_AFTER),
    # ... and an edit of the value the preset overrides reruns nothing.
    "scenes.resolution (overridden)": (("params.yaml", "resolution: 64          # a 4x", "resolution: 128         # a 4x"),
                                       set()),
    "eval_ae.max_images": (("presets/smoke.yaml", "max_images: 4", "max_images: 3"), {"eval_ae", "report"}),
    "an unused preset file": (("presets/paper.yaml", "resolution: 128", "resolution: 256"), set()),
    "a NeRF-fitting parameter": (("params.yaml", "latent_weight: 0.1", "latent_weight: 0.2"), FITS_AND_AFTER),
    "a render parameter": (("params.yaml", "supersample: 2", "supersample: 3"),
                           {"render_scenes"} | AES_AND_AFTER | FITS_AND_AFTER),
    # A new method (registered, with its params entry): only its own fits (and tuning, which reads every entry).
    "a method added to nerf.methods": (None, {"fit_nerf_rgb@toy", "fit_nerf_latent@*-toy", "tune_nerf"} | AFTER_FITS),
    # A second AE seed: its AE stages and latent fits only, then what reads all of them; the seed-0 AEs
    # and every RGB fit stay. (DVC's loops read ae_seeds from params.yaml, so the edit is there.)
    "ae_seeds": (("params.yaml", "ae_seeds: [0]", "ae_seeds: [0, 1]"),
                 {"train_ae@1", "train_igae@1", "finetune_ae@1", "eval_ae@*-1", "fit_nerf_latent@*-1-*", "tune_nerf"}
                 | AFTER_FITS),
    # The tuning grid: only the tuning stage (and the report, which shows every param).
    "tuning.values": (("presets/smoke.yaml", "tuning: {values: [0.0, 0.3]}", "tuning: {values: [0.0, 0.2]}"),
                      {"tune_nerf", "report"}),
    # A set's views: that set's scenes and what reads them; the validation set feeds only tune_nerf ...
    "scenes.validation.views": (("presets/smoke.yaml", "validation: {count: 1, views: 8,", "validation: {count: 1, views: 9,"),
                                {"render_scenes@validation", "tune_nerf", "report"}),
    # ... and the test set the AE evaluation and the fits, never AE training.
    "scenes.heldout.views": (("presets/smoke.yaml", "heldout: {count: 2, views: 10,", "heldout: {count: 2, views: 11,"),
                             {"render_scenes@heldout", "eval_ae", "fit_nerf_rgb", "fit_nerf_latent"} | AFTER_FITS),
}


def _jobs_after_edit(work: Path, dvc: bool, change: tuple[str, str, str] | None) -> set[str]:
    """In a built workflow copy: make ``change`` (None: add the toy method), list what the executor
    would rerun, and restore the files. Snakemake: `snakemake -n`. DVC: `dvc status` after DVC's
    preset merge, and everything downstream of what it lists."""
    touched = ["params.yaml", "igae/fields/registry.py"] if change is None else [change[0]]
    if dvc:  # DVC's preset merge writes it from the edited files; restored with them
        touched.append("data/effective_params.yaml")
    saved = {name: (work / name).read_text() for name in touched}
    try:
        if change is None:
            _add_toy_method(work)
        else:
            name, old, new = change
            assert saved[name].count(old) == 1, (name, old)
            (work / name).write_text(saved[name].replace(old, new))
        if not dvc:
            return _snakemake_jobs(work)
        _run([sys.executable, "-m", "igae", "check-params", "--params", "params.yaml", "--out",
              "data/effective_params.yaml"], work)
        status = _dvc_status_json(work)
        # DVC's preset merge reruns when params.yaml or the preset in use changed, never else.
        assert ("effective_params" in status) == (change is None or change[0] != "presets/paper.yaml"), status
        return _dvc_downstream(work, set(status) - {"effective_params"})
    finally:
        for name, text in saved.items():
            (work / name).write_text(text)
        (work / "igae/fields/toy.py").unlink(missing_ok=True)


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edit_reruns_exactly_what_reads_it(snakemake_run: Path, dvc_run: Path, edit: str) -> None:
    """`snakemake -n` and `dvc status` (after DVC's preset merge) list exactly the expected stages."""
    change, spec = EDITS[edit]
    methods = [*METHODS, *(["toy"] if change is None else [])]
    expected = _expand(spec, methods, (0, 1) if edit == "ae_seeds" else (0,))
    # The two executors' copies are independent: query both at once (each query is mostly start-up).
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {work.name: pool.submit(_jobs_after_edit, work, work == dvc_run, change)
                   for work in (snakemake_run, dvc_run)}
        results = {name: future.result() for name, future in futures.items()}
    for name, got in results.items():
        assert got == expected, (name, edit, sorted(got - expected), sorted(expected - got))
    assert not _dvc_status_json(dvc_run)  # restored


DELETED = {  # an output deleted by hand -> what both executors rerun
    f"results/nerf/{RGB_SPACE}/vanilla/{HELDOUT[-1]}/metrics.json": {"fit_nerf_rgb@vanilla"} | AFTER_FITS,
    "results/tables/speed.csv": {"report"},
}


@pytest.mark.parametrize("rel", list(DELETED))
def test_a_deleted_output_is_planned_again_by_both_executors(snakemake_run: Path, dvc_run: Path, rel: str) -> None:
    """A fit's metrics.json or a table deleted by hand: both executors plan its job and what reads it
    (Snakemake ignores a deleted file that only feeds present outputs unless `rule all` requests it)."""
    expected = _expand(DELETED[rel], list(METHODS))
    for work in (snakemake_run, dvc_run):
        saved = (work / rel).read_bytes()
        (work / rel).unlink()
        try:
            got = _snakemake_jobs(work) if work == snakemake_run else _dvc_downstream(work, set(_dvc_status_json(work)))
        finally:
            (work / rel).write_bytes(saved)
        assert got == expected, (work.name, sorted(got ^ expected))
    assert not _dvc_status_json(dvc_run)  # restored


def test_snakemake_reruns_a_fit_whose_metrics_it_deleted(snakemake_run: Path) -> None:
    """A real Snakemake rerun of a fit (it deletes the job's declared outputs, the metrics.json files,
    first and leaves the rest of each folder) writes the same fit again."""
    rel = next(iter(DELETED))
    copy = snakemake_run.parent / "deleted_fit"
    shutil.copytree(snakemake_run, copy, symlinks=True)
    try:
        (copy / rel).unlink()
        _run([sys.executable, "-m", "snakemake", "--cores", "2", "--config", "preset=smoke", "--until", "fit_nerf_rgb"],
             copy)
        again, before = (json.loads((w / rel).read_text()) for w in (copy, snakemake_run))
        assert again["metrics"] == before["metrics"]
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def _dvc_downstream(work: Path, changed: set[str]) -> set[str]:
    """``changed`` and every stage downstream of it in `dvc dag`: DVC decides about later stages from
    the new outputs' hashes at run time, and they rerun whenever their inputs change."""
    # The graph's shape follows dvc.yaml's loops (ae_seeds, the method lists), not the other values.
    key = (work, tuple(re.findall(r"^\s*(?:ae_seeds|methods):.*$", (work / "params.yaml").read_text(), flags=re.M)))
    if key not in _DVC_EDGES:
        _DVC_EDGES[key] = re.findall(r'"([^"]+)" -> "([^"]+)"', _run(DVC + ["dag", "--dot"], work))
    reach, frontier = set(changed), list(changed)
    while frontier:
        node = frontier.pop()
        for a, b in _DVC_EDGES[key]:
            if a == node and b not in reach:
                reach.add(b)
                frontier.append(b)
    return reach


def test_a_new_method_runs_through_fit_and_summary(snakemake_run: Path, tmp_path: Path) -> None:
    """Adding a NeRF method takes one Field file, one registry line and one params entry: in a copy of
    the built smoke pipeline, Snakemake then runs exactly its fits and the summary, which lists it."""
    work = tmp_path / "toy_wf"
    shutil.copytree(snakemake_run, work, symlinks=True)
    _add_toy_method(work)
    params = work / "params.yaml"  # only the toy method's fits, to keep the test short
    params.write_text(params.read_text().replace("methods: [vanilla, ngp, kplanes, triplane, toy]", "methods: [toy]"))
    smk = [sys.executable, "-m", "snakemake", "--cores", "2", "--config", "preset=smoke", "--",
           "results/nerf_summary/summary.csv"]
    plan = _dry_run_jobs(_run(smk[:3] + ["-n"] + smk[3:], work))
    assert sorted((j["rule"], j["wildcards"].get("method")) for j in plan) == sorted(
        [("fit_nerf_rgb", "toy")] * FIT_JOBS_PER_SET + [("fit_nerf_latent", "toy")] * FIT_JOBS_PER_SET * 3
        + [("summarize_nerf", None)])
    _run(smk, work)
    import csv

    fits = list(csv.DictReader((work / "results/nerf_summary/per_fit.csv").open()))
    assert sorted((f["space"], f["scene"]) for f in fits if f["method"] == "toy") == sorted(
        (space, scene) for space in SPACES for scene in HELDOUT)
    assert all(float(f["psnr"]) > 5 for f in fits)
    summary = list(csv.DictReader((work / "results/nerf_summary/summary.csv").open()))
    assert {r["space"] for r in summary if r["method"] == "toy"} == set(SPACES)
    record = json.loads((work / f"results/nerf/{ae_run_name('igae', 0)}/toy/scene_000/metrics.json").read_text())
    assert record["params"]["method"]["hyper"] == {"hidden": 8}


def _copy_of_run(snakemake_run: Path, dest: Path) -> Path:
    shutil.copytree(snakemake_run, dest, symlinks=True)
    return dest


def test_tune_stage_chooses_on_the_validation_scenes(snakemake_run: Path, tmp_path: Path) -> None:
    """With tuning enabled (smoke grid: nerf.stage2.latent_weight in [0.0, 0.3], igae x kplanes), only
    tune_nerf (and the report, which shows every param) reruns; it fits the validation scene once per
    value, with that value, evaluates on that scene's own test views, and picks the best mean PSNR."""
    import csv

    work = _copy_of_run(snakemake_run, tmp_path / "tune_wf")
    smoke = work / "presets/smoke.yaml"
    smoke.write_text(smoke.read_text().replace("tuning: {values: [0.0, 0.3]}", "tuning: {enabled: true, values: [0.0, 0.3]}"))
    assert _snakemake_jobs(work) == {"tune_nerf", "report"}
    _run([sys.executable, "-m", "snakemake", "--cores", "2", "--config", "preset=smoke", "--", *TUNING_OUTPUTS], work)
    rows = list(csv.DictReader((work / "results/tuning/summary.csv").open()))
    assert [(r["value"], r["space"], r["ae_seed"], r["method"], r["scene"]) for r in rows] == [
        ("0.0", "igae", "0", "kplanes", "scene_000"), ("0.3", "igae", "0", "kplanes", "scene_000")]
    for row in rows:
        fit = work / f"results/tuning/fits/v{row['value_index']}/igae_s0/kplanes/scene_000/metrics.json"
        record = json.loads(fit.read_text())
        assert record["scene_dir"] == "data/scenes/validation/scene_000" and record["ae_seed"] == 0
        assert record["params"]["nerf"]["stage2"]["latent_weight"] == float(row["value"])
        assert record["metrics"]["psnr"] == pytest.approx(float(row["psnr"]), rel=1e-5) and record["metrics"]["psnr"] > 5
        truth = json.loads((work / "data/scenes/validation/scene_000/transforms.json").read_text())["test_filenames"]
        assert sorted(record["test_views"]) == sorted(Path(f).stem for f in truth)
    choice = json.loads((work / "results/tuning/choice.json").read_text())
    best = max(rows, key=lambda r: float(r["psnr"]))
    assert choice["enabled"] is True and choice["value"] == float(best["value"])
    assert [v["value"] for v in choice["values"]] == [0.0, 0.3] and choice["scenes"] == ["scene_000"]
    # The test scenes are refused as a tuning set.
    proc = subprocess.run([sys.executable, "-m", "igae", "tune-nerf", "--params", "params.yaml", "--preset", "smoke",
                           "--scene-set", "data/scenes/heldout", "--autoencoders", "results/autoencoders",
                           "--out", "results/tuning_on_test"], cwd=work, env=_env(), capture_output=True, text=True)
    assert proc.returncode == 2 and "never chosen on the test (held-out) scenes" in proc.stderr, proc.stderr
    assert not (work / "results/tuning_on_test").exists()


def test_a_second_ae_seed_plans_its_own_jobs_and_trains_another_ae(snakemake_run: Path, tmp_path: Path) -> None:
    """ae_seeds [0, 1]: the dry run adds seed 1's AE stages and latent fits, with --seed 1 / --ae-seed 1
    and their own folders; seed 1's standard AE differs from seed 0's, which is left as it was."""
    import torch
    from safetensors.torch import load_file

    work = _copy_of_run(snakemake_run, tmp_path / "seeds_wf")
    params = work / "params.yaml"
    params.write_text(params.read_text().replace("ae_seeds: [0]", "ae_seeds: [0, 1]"))
    out = _run([sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "2", "--config", "preset=smoke"], work)
    jobs = _dry_run_jobs(out)
    seed1 = [j for j in jobs if j["wildcards"].get("ae_seed") == "1"]
    assert sorted(j["rule"] for j in seed1) == sorted(
        ["train_ae", "train_igae", "finetune_ae"] + ["eval_ae"] * 3 + ["fit_nerf_latent"] * (3 * len(METHODS) * FIT_JOBS_PER_SET))
    assert not [j for j in jobs if j["wildcards"].get("ae_seed") == "0" or j["rule"] == "fit_nerf_rgb"]
    assert "--seed 1 --scenes data/scenes/train --photos data/photos --out results/autoencoders/standard_s1 " in out
    assert "--autoencoder results/autoencoders/igae_s1 --space-name igae --ae-seed 1 --method ngp" in out
    _run([sys.executable, "-m", "snakemake", "--cores", "2", "--config", "preset=smoke", "--",
          "results/autoencoders/standard_s1/model/igae_autoencoder.json"], work)
    weights = "model/diffusion_pytorch_model.safetensors"
    a, b = (load_file(work / f"results/autoencoders/standard_s{k}" / weights) for k in (0, 1))
    assert a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a)
    assert (work / "results/autoencoders/standard_s0" / weights).read_bytes() == (
        snakemake_run / "results/autoencoders/standard_s0" / weights).read_bytes()
    meta = json.loads((work / "results/autoencoders/standard_s1/model/igae_autoencoder.json").read_text())
    assert meta["metadata"]["seed"] == 1


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
