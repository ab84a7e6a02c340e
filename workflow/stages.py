"""The stage table: the one definition of every stage's command, inputs, outputs, params and resources.

Both executors are generated from it: the Snakefile builds one rule per stage from this table
(``workflow/snakemake_rules.py`` translates paths, params and resources), and
``workflow/scripts/make_dvc_yaml.py`` writes ``dvc.yaml``. ``tests/test_workflow.py`` fails when
the committed ``dvc.yaml`` is out of date, and compares what each executor tracks per stage.

- **paths**: DVC tracks the files and folders listed here; Snakemake tracks files, so for a folder
  it tracks the marker files :data:`FOLDER_FILES` names (a scene set's ``manifest.json``, an AE's
  ``igae_autoencoder.json``, ...).
- **params**: dotted keys of the *effective* params (``params.yaml`` with the preset merged in)
  that the stage reads; nothing else reruns it. Snakemake records their values per job
  (``params:``); DVC reads them from ``data/effective_params.yaml``, which the DVC-only stage
  ``effective_params`` writes from ``params.yaml`` and the preset file it names, so under both
  executors an edit reruns only the stages whose effective keys changed (an edit of a key the
  preset overrides, or of an unused preset file, reruns nothing).
- **code** is a dependency of neither executor (README, "When stages rerun").

Command templates use ``{preset}`` and the stage's loop variables (``{set}``, ``{ae}``, ``{ae_seed}``,
``{space}``, ``{method}``, ``{scene}``): Snakemake fills them from wildcards, DVC from ``foreach``/``matrix``.
Params keys may use loop variables too (``nerf.method_params.{method}``).

The AE stages and the latent fits run once per AE seed (``ae_seeds``), in folders named by
:func:`igae.layout.ae_run_name` (``results/autoencoders/{ae}_s{ae_seed}``): DVC loops cannot name one
item's paths differently, so every seed's paths have the same form.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from igae.config import (AE_NAMES, FINETUNE_JOINT_KEYS, RGB_SPACE, SCENE_SETS, Params, nerf_fit_keys,
                         scene_render_keys)
from igae.layout import ae_run_name

PARAMS = "--params params.yaml --preset {preset}"
AE_DATA = "--scenes data/scenes/train --photos data/photos"
EFFECTIVE_PARAMS = "data/effective_params.yaml"
"""The effective params, written by the DVC-only stage ``effective_params``; DVC stages' params come from it."""
SEEDS = "${ae_seeds}"
"""A DVC loop over the AE seeds (read from params.yaml)."""


def ae_dir(ae: str, seed: str = "{ae_seed}") -> str:
    """``results/autoencoders/<ae>_s<seed>`` (a template by default)."""
    return f"results/autoencoders/{ae_run_name(ae, seed)}"


def checkpoints_dir(ae: str) -> str:
    """``results/checkpoints/<ae>_s{ae_seed}``: an AE stage's checkpoints (to resume it)."""
    return f"results/checkpoints/{ae_run_name(ae, '{ae_seed}')}"


AE_PRIORITY, RGB_FIT_PRIORITY = 2, 1
"""Snakemake priorities (higher first when cores are short): the AE stages gate every latent fit; an RGB fit
needs no AE, so it runs beside them and before the latent fits, which leaves short latent jobs, not a
4-minute RGB job, for the run's end (the default run of bb68d77 ended on one core for 2.6 minutes)."""

AE_EVAL = f"results/ae_eval/{ae_run_name('{ae}', '{ae_seed}')}"


@dataclass(frozen=True)
class Stage:
    """One pipeline stage.

    Attributes:
        cmd: the command (DVC runs it once per ``foreach``/``matrix`` item).
        deps: files and folders the stage reads.
        outs: what it writes (an out may be a dict ``{path: {cache: false, persist: true}}``).
        params: dotted keys of the effective params it reads (see the module docstring).
        metrics / plots: outputs DVC shows with ``dvc metrics`` / ``dvc plots``.
        foreach / matrix: DVC loops (``foreach`` binds the names given by ``loop_var``); a loop's values
            are a list or a DVC reference to a params list (``"${ae_seeds}"``).
        snakemake_cmd: the rule's command when it differs from ``cmd`` (the fits: one job per
            scene under Snakemake, one stage per space x method over the scene set under DVC).
        snakemake_wildcards: Snakemake wildcards beyond the loop variables (``scene`` for fits).
        log: the Snakemake log name under ``results/logs`` (default: the stage name and wildcards).
        log_stdout: the log also takes stdout (the stage prints a table there).
        threads: Snakemake cores per job (= a SLURM job's CPUs): a number, or the params key of the
            torch threads the job uses (``"training.threads"``, ``"nerf.threads"``; 0 there means every
            core Snakemake has, and inside the job every CPU granted): see ``workflow/resources.py``.
        mem_mb: how the job's memory request is computed from the params: a kind of
            ``workflow/resources.py``'s ``mem_mb`` (None: the profile's default).
        gpus: GPUs a job uses when it runs on CUDA (``training.device`` cuda, or auto on a GPU
            machine): ``"one"``, ``"per_process"`` (``training.processes``, data-parallel training)
            or None; they become the ``gpu`` (cluster) and ``gpu_slots`` (local) resources.
        local: run on the submitting machine under a cluster executor (``localrules``): stages
            that need apt/dpkg or the network, or are too small to queue.
        priority: Snakemake's job priority (higher first when cores are short): the AE stages gate every
            latent fit, so they go before the fits that could share their cores (DVC runs stages in turn).
        executors: which executors run it (``effective_params`` is DVC's only).
        comment: why the stage is as it is (not written anywhere).
    """

    cmd: str
    deps: list[str]
    outs: list[Any]
    params: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    plots: list[Any] = field(default_factory=list)
    foreach: list[str] | str | None = None
    loop_var: str | None = None
    matrix: dict[str, list[str] | str] | None = None
    snakemake_cmd: str | None = None
    snakemake_wildcards: tuple[str, ...] = ()
    log: str | None = None
    log_stdout: bool = False
    threads: int | str = 1
    mem_mb: str | None = None
    gpus: str | None = None
    local: bool = False
    priority: int = 0
    executors: tuple[str, ...] = ("snakemake", "dvc")
    comment: str | None = None

    @property
    def loop_vars(self) -> list[str]:
        """The loop variables (DVC) = Snakemake wildcards bound by the stage's items."""
        if self.foreach is not None:
            return [str(self.loop_var)]
        return list(self.matrix or {})


def fit_cmd(autoencoder: str, space: str, folder: str, scene_arg: str, out_tail: str, extra: str = "") -> str:
    """``igae fit-nerf`` into ``results/nerf/<folder>/{method}<out_tail>`` (checkpoints likewise)."""
    return (f"igae fit-nerf {PARAMS} {scene_arg} --autoencoder {autoencoder} --space-name {space}{extra} --method {{method}}"
            f" --out results/nerf/{folder}/{{method}}{out_tail} --work results/checkpoints/nerf/{folder}/{{method}}{out_tail}"
            " --quiet")


LATENT_FIT = ae_run_name("{space}", "{ae_seed}")
"""The folder of one latent space's fits of one AE seed, under ``results/nerf``."""


NOT_CACHED = {"cache": False}
CHECKPOINTS = {"persist": True, "cache": False}
AE_TRAINING = ["training", "autoencoder"]
"""What every AE training stage reads besides its own section: device, threads, processes, NaN policy; the AE.
(Its seed is the AE seed in its command, not the key ``seed``.)"""
FIT_COMMON = ["seed", "training.device", "training.nan_policy", "training.precision", "autoencoder.perceptual",
              *nerf_fit_keys()]
FIT_PARAMS = [*FIT_COMMON, "nerf.method_params.{method}"]
"""What a fit reads: the nerf keys common to all fits, its own method's entry, the device, precision and metric."""
TUNE_PARAMS = [*FIT_COMMON, "nerf.method_params", "tuning", "ae_seeds"]
"""What tune_nerf reads: a fit's keys for every method it may fit, the grid, and the AE seeds (it uses the first)."""

STAGES: dict[str, Stage] = {
    "effective_params": Stage(
        comment=("DVC only: params.yaml with the preset merged in, which the other stages' params come from "
                 "(Snakemake merges the preset in the Snakefile)."),
        cmd=f"igae check-params {PARAMS} --out {EFFECTIVE_PARAMS}",
        deps=["params.yaml", "presets/{preset}.yaml"],
        outs=[{EFFECTIVE_PARAMS: NOT_CACHED}],
        executors=("dvc",)),
    "fetch_assets": Stage(
        cmd=f"igae fetch-assets {PARAMS} --out data/cache/fetched.json",
        deps=[],
        params=["assets.source", "assets.cache_dir", "photos.sources"],
        outs=[{"data/cache/fetched.json": NOT_CACHED}],
        local=True),  # apt-get download / dpkg and the network: the submitting machine, not a compute node
    "select_objects": Stage(
        cmd=f"igae select-objects {PARAMS} --out data/objects.json",
        deps=["data/cache/fetched.json"],
        params=["seed", "assets", "scenes.train.count", "scenes.heldout.count"],
        outs=["data/objects.json"],
        local=True),  # reads the fetched catalogue (and objaverse's index over the network)
    "render_scenes": Stage(
        cmd=f"igae render-scenes {PARAMS} --objects data/objects.json --set {{set}} --out data/scenes/{{set}}",
        foreach=list(SCENE_SETS), loop_var="set",
        deps=["data/objects.json"],
        # The rendering keys and the set's own section (recorded in its manifest), not the other sets':
        # a procedural object's id and geometry depend on its index and seed only, not on the counts.
        params=["seed", "assets", *scene_render_keys(), "scenes.{set}"],
        outs=["data/scenes/{set}"],
        mem_mb="render_scenes"),
    "build_photos": Stage(
        cmd=f"igae build-photos {PARAMS} --out data/photos",
        deps=["data/cache/fetched.json"],
        params=["seed", "photos", "scenes.resolution", "assets.cache_dir"],
        outs=["data/photos"]),
    "train_ae": Stage(
        comment="The AE stages take their AE seed from the command (--seed), not from the params key seed.",
        cmd=f"igae train-ae {PARAMS} --seed {{ae_seed}} {AE_DATA} --out {ae_dir('standard')} --work {checkpoints_dir('standard')}",
        foreach=SEEDS, loop_var="ae_seed",
        deps=["data/scenes/train", "data/photos"],
        params=[*AE_TRAINING, "train_ae"],
        outs=[f"{ae_dir('standard')}/model", {checkpoints_dir("standard"): CHECKPOINTS}],
        plots=[{f"{ae_dir('standard')}/losses.csv": {"x": "step", "cache": False}}],
        threads="training.threads", mem_mb="train_ae", gpus="per_process", priority=AE_PRIORITY),
    "train_igae": Stage(
        cmd=(f"igae train-igae {PARAMS} --seed {{ae_seed}} --ae {ae_dir('standard')} {AE_DATA} --out {ae_dir('igae')}"
             f" --work {checkpoints_dir('igae')}"),
        foreach=SEEDS, loop_var="ae_seed",
        deps=[f"{ae_dir('standard')}/model", "data/scenes/train", "data/photos"],
        params=[*AE_TRAINING, "igae", "scenes.object_box"],
        outs=[f"{ae_dir('igae')}/model", f"{ae_dir('igae')}/triplanes.pt",
              f"{ae_dir('igae')}/renders", f"{ae_dir('igae')}/snapshots", {checkpoints_dir("igae"): CHECKPOINTS}],
        plots=[{f"{ae_dir('igae')}/losses.csv": {"x": "step", "cache": False}}],
        threads="training.threads", mem_mb="train_igae", gpus="per_process", priority=AE_PRIORITY),
    "finetune_ae": Stage(
        cmd=(f"igae finetune-ae {PARAMS} --seed {{ae_seed}} --ae {ae_dir('standard')} {AE_DATA} --out {ae_dir('finetuned')}"
             f" --work {checkpoints_dir('finetuned')}"),
        foreach=SEEDS, loop_var="ae_seed",
        deps=[f"{ae_dir('standard')}/model", "data/scenes/train", "data/photos"],
        params=[*AE_TRAINING, "igae.checkpoint_every", *(f"igae.joint.{k}" for k in FINETUNE_JOINT_KEYS)],
        outs=[f"{ae_dir('finetuned')}/model", {checkpoints_dir("finetuned"): CHECKPOINTS}],
        plots=[{f"{ae_dir('finetuned')}/losses.csv": {"x": "step", "cache": False}}],
        threads="training.threads", mem_mb="finetune_ae", gpus="per_process", priority=AE_PRIORITY),
    "eval_ae": Stage(
        cmd=(f"igae eval-ae {PARAMS} --seed {{ae_seed}} --ae {ae_dir('{ae}')} --name {{ae}} --photos data/photos"
             f" --heldout data/scenes/heldout --scenes data/scenes/train --out {AE_EVAL}"),
        matrix={"ae": list(AE_NAMES), "ae_seed": SEEDS},
        deps=[ae_dir("{ae}"), "data/photos", "data/scenes/heldout", "data/scenes/train"],
        params=["eval_ae", "training.threads", "training.device", "training.precision", "autoencoder.pretrained",
                "autoencoder.architecture.latent_channels", "autoencoder.perceptual", "scenes.object_box"],
        metrics=[f"{AE_EVAL}/metrics.json"],
        outs=[f"{AE_EVAL}/per_image.csv"],
        threads="training.threads", mem_mb="eval_ae", gpus="one", priority=AE_PRIORITY),
    "fit_nerf_rgb": Stage(
        comment=("Snakemake runs one job per scene; DVC one stage per method (per space x AE seed x method for latent "
                 "fits) that fits every held-out scene in turn: the same fit per scene, into the same folders."),
        cmd=fit_cmd("rgb", RGB_SPACE, RGB_SPACE, "--scene-set data/scenes/heldout", ""),
        snakemake_cmd=fit_cmd("rgb", RGB_SPACE, RGB_SPACE, "--scene data/scenes/heldout/{scene}", "/{scene}"),
        snakemake_wildcards=("scene",), log="fit_nerf/rgb_{method}_{scene}",
        matrix={"method": "${nerf.methods}"},
        deps=["data/scenes/heldout"],
        params=FIT_PARAMS,
        outs=["results/nerf/rgb/{method}"],
        threads="nerf.threads", mem_mb="fit_nerf_rgb", gpus="one", priority=RGB_FIT_PRIORITY),
    "fit_nerf_latent": Stage(
        cmd=fit_cmd(ae_dir("{space}"), "{space}", LATENT_FIT, "--scene-set data/scenes/heldout", "",
                    " --ae-seed {ae_seed}"),
        snakemake_cmd=fit_cmd(ae_dir("{space}"), "{space}", LATENT_FIT, "--scene data/scenes/heldout/{scene}",
                              "/{scene}", " --ae-seed {ae_seed}"),
        snakemake_wildcards=("scene",), log=f"fit_nerf/{LATENT_FIT}_{{method}}_{{scene}}",
        matrix={"space": "${nerf.autoencoders}", "ae_seed": SEEDS, "method": "${nerf.methods}"},
        deps=["data/scenes/heldout", f"{ae_dir('{space}')}/model"],
        params=FIT_PARAMS,
        outs=[f"results/nerf/{LATENT_FIT}/{{method}}"],
        threads="nerf.threads", mem_mb="fit_nerf_latent", gpus="one"),
    "tune_nerf": Stage(
        comment=("Fits the VALIDATION scenes once per value of tuning.param (a no-op record unless tuning.enabled); "
                 "it reads every method's entry and the AE folders, as tuning.methods and tuning.spaces choose among "
                 "them. The report never reads its outputs."),
        cmd=f"igae tune-nerf {PARAMS} --scene-set data/scenes/validation --autoencoders results/autoencoders"
            " --out results/tuning --work results/checkpoints/tuning",
        deps=["data/scenes/validation", "results/autoencoders"],
        params=[*TUNE_PARAMS],
        outs=["results/tuning"],
        log_stdout=True,
        threads="nerf.threads", mem_mb="fit_nerf_latent", gpus="one"),
    "budget_study": Stage(
        comment=("Fits the IG-AE snapshots (igae.snapshots) with budget.methods on the test scenes, in one job, and "
                 "compares each budget with the standard AE's fits (a no-op record while igae.snapshots is empty)."),
        cmd=f"igae budget-study {PARAMS} --scene-set data/scenes/heldout --autoencoders results/autoencoders"
            " --fits results/nerf --out results/budget --work results/checkpoints/budget",
        deps=["data/scenes/heldout", "results/autoencoders", "results/nerf"],
        params=[*FIT_COMMON, "nerf.method_params", "budget", "igae.snapshots", "igae.joint.steps", "ae_seeds"],
        outs=["results/budget"],
        log_stdout=True,
        threads="nerf.threads", mem_mb="fit_nerf_latent", gpus="one"),
    "summarize_nerf": Stage(
        cmd="igae summarize-nerf --fits results/nerf --out results/nerf_summary",
        deps=["results/nerf"],
        outs=["results/nerf_summary/per_fit.csv", "results/nerf_summary/summary.csv",
              {"results/nerf_summary/plots": NOT_CACHED}],
        metrics=["results/nerf_summary/goals.json", "results/nerf_summary/metrics.json"],
        log_stdout=True),
    "report": Stage(
        comment="The report shows the run's whole effective params, so it reads every key.",
        cmd=f"igae report {PARAMS} --results results --heldout data/scenes/heldout",
        deps=["results/nerf", "results/ae_eval", "results/autoencoders", "results/nerf_summary/goals.json",
              "data/scenes/heldout/manifest.json"],
        params=list(Params.model_fields),
        outs=["results/tables", "results/figures", "results/report"]),
}

AE_RUN = ae_dir("{ae}")
FOLDER_FILES: dict[str, list[str]] = {
    "data/scenes/{set}": ["data/scenes/{set}/manifest.json"],
    "data/photos": ["data/photos/manifest.json"],
    # {ae} matches a whole AE run folder name here (e.g. igae_s{ae_seed})
    "results/autoencoders/{ae}/model": ["results/autoencoders/{ae}/model/igae_autoencoder.json"],
    "results/autoencoders/{ae}/renders": [],
    "results/autoencoders/{ae}/snapshots": ["results/autoencoders/{ae}/snapshots/index.json"],
    "results/autoencoders/{ae}": ["results/autoencoders/{ae}/model/igae_autoencoder.json"],
    "results/autoencoders": [f"{AE_RUN}/model/igae_autoencoder.json", f"{AE_RUN}/losses.csv"],
    "results/checkpoints/{ae}": [],
    "results/nerf/{space}/{method}": ["results/nerf/{space}/{method}/{scene}/metrics.json"],
    "results/nerf": [f"results/nerf/{RGB_SPACE}/{{method}}/{{scene}}/metrics.json",
                     f"results/nerf/{LATENT_FIT}/{{method}}/{{scene}}/metrics.json"],
    "results/ae_eval": [f"{AE_EVAL}/metrics.json"],
    "results/nerf_summary/plots": [f"results/nerf_summary/plots/psnr_vs_time_{RGB_SPACE}.csv",
                                   "results/nerf_summary/plots/psnr_vs_time_{space}.csv"],
    "results/tuning": ["results/tuning/summary.csv", "results/tuning/choice.json"],
    "results/budget": ["results/budget/budget.json"],
    # The report's files are listed in the Snakefile (each tagged for `snakemake --report`).
    "results/tables": [], "results/figures": [], "results/report": [],
}
"""A folder DVC tracks whole -> the files Snakemake tracks for it (``[]``: none, or listed in the Snakefile).
A wildcard the rule does not bind is expanded over all its values (``{space}``: nerf.autoencoders,
``{ae_seed}``: ae_seeds)."""

TOP_LEVEL_PLOTS = [{
    "PSNR on test views vs training time (mean over methods and scenes)": {
        "template": "linear", "x": "train_seconds",
        "y": {f"results/nerf_summary/plots/psnr_vs_time_{s}.csv": "psnr" for s in (RGB_SPACE, *AE_NAMES)},
    }
}]

LOOP_VARS = ("set", "ae", "ae_seed", "space", "method", "scene")


def snakemake_stage(stage: Stage, params: Params) -> Stage:
    """The stage as Snakemake runs it under ``params``: with ``nerf.snakemake_fit_jobs: scene_set`` a fit
    stage runs DVC's command, one job per space x AE seed x method over the scene set, instead of
    one job per scene (the same fits, into the same folders)."""
    if "scene" in stage.snakemake_wildcards and params.nerf.snakemake_fit_jobs == "scene_set":
        return replace(stage, snakemake_cmd=None, snakemake_wildcards=(), log=None)
    return stage


def snakemake_stages(params: Params | None = None) -> dict[str, Stage]:
    """The stages Snakemake runs (one rule each), in table order: as Snakemake runs them under
    ``params`` when given (:func:`snakemake_stage`), else as the table has them."""
    return {name: snakemake_stage(s, params) if params else s for name, s in STAGES.items()
            if "snakemake" in s.executors}


def snakemake_shell(name: str, preset: str, stage: Stage | None = None) -> str:
    """The stage's command for a Snakemake ``shell:``: ``{preset}`` filled in, loop variables
    as ``{wildcards.x}`` (``{{`` escapes stay literal). ``stage``: the table's, unless given
    (:func:`snakemake_stage`)."""
    stage = stage or STAGES[name]
    cmd = stage.snakemake_cmd or stage.cmd
    for var in LOOP_VARS:
        cmd = cmd.replace("{" + var + "}", "{wildcards." + var + "}")
    return cmd.replace("{preset}", preset)


def dvc_text(template: str, stage: Stage) -> str:
    """A template with DVC's interpolation: ``${preset}``, ``${item}`` or ``${item.<var>}``."""
    out = template.replace("{preset}", "${preset}")
    if stage.foreach is not None:
        out = out.replace("{" + str(stage.loop_var) + "}", "${item}")
    for var in stage.matrix or {}:
        out = out.replace("{" + var + "}", "${item." + var + "}")
    return out
