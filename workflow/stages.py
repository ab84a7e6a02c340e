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

Command templates use ``{preset}`` and the stage's loop variables (``{set}``, ``{ae}``, ``{space}``,
``{method}``, ``{scene}``): Snakemake fills them from wildcards, DVC from ``foreach``/``matrix``.
Params keys may use loop variables too (``nerf.method_params.{method}``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from igae.config import AE_NAMES, FINETUNE_JOINT_KEYS, RGB_SPACE, Params, nerf_fit_keys

PARAMS = "--params params.yaml --preset {preset}"
AE_DATA = "--scenes data/scenes/train --photos data/photos"
EFFECTIVE_PARAMS = "data/effective_params.yaml"
"""The effective params, written by the DVC-only stage ``effective_params``; DVC stages' params come from it."""


@dataclass(frozen=True)
class Stage:
    """One pipeline stage.

    Attributes:
        cmd: the command (DVC runs it once per ``foreach``/``matrix`` item).
        deps: files and folders the stage reads.
        outs: what it writes (an out may be a dict ``{path: {cache: false, persist: true}}``).
        params: dotted keys of the effective params it reads (see the module docstring).
        metrics / plots: outputs DVC shows with ``dvc metrics`` / ``dvc plots``.
        foreach / matrix: DVC loops (``foreach`` binds the names given by ``loop_var``).
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
        executors: which executors run it (``effective_params`` is DVC's only).
    """

    cmd: str
    deps: list[str]
    outs: list[Any]
    params: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    plots: list[Any] = field(default_factory=list)
    foreach: list[str] | None = None
    loop_var: str | None = None
    matrix: dict[str, str] | None = None
    snakemake_cmd: str | None = None
    snakemake_wildcards: tuple[str, ...] = ()
    log: str | None = None
    log_stdout: bool = False
    threads: int | str = 1
    mem_mb: str | None = None
    gpus: str | None = None
    local: bool = False
    executors: tuple[str, ...] = ("snakemake", "dvc")
    comment: str | None = None

    @property
    def loop_vars(self) -> list[str]:
        """The loop variables (DVC) = Snakemake wildcards bound by the stage's items."""
        if self.foreach is not None:
            return [str(self.loop_var)]
        return list(self.matrix or {})


def fit_cmd(autoencoder: str, space: str, scene_arg: str, out_tail: str) -> str:
    return (f"igae fit-nerf {PARAMS} {scene_arg} --autoencoder {autoencoder} --space-name {space} --method {{method}}"
            f" --out results/nerf/{space}/{{method}}{out_tail} --work results/checkpoints/nerf/{space}/{{method}}{out_tail} --quiet")


NOT_CACHED = {"cache": False}
CHECKPOINTS = {"persist": True, "cache": False}
AE_TRAINING = ["training", "autoencoder", "seed"]
"""What every AE training stage reads besides its own section: device, threads, processes, NaN policy; the AE."""
FIT_PARAMS = ["seed", "training.device", "training.nan_policy", "training.precision", "autoencoder.perceptual",
              *nerf_fit_keys(),
              "nerf.method_params.{method}"]
"""What a fit reads: the nerf keys common to all fits, its own method's entry, the device, precision and metric."""

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
        foreach=["train", "heldout"], loop_var="set",
        deps=["data/objects.json"],
        # Every scenes key: the set's own counts, the other set's count (procedural objects), and the
        # whole section and assets are recorded in each scene's metadata.
        params=["seed", "scenes", "assets"],
        outs=["data/scenes/{set}"],
        mem_mb="render_scenes"),
    "build_photos": Stage(
        cmd=f"igae build-photos {PARAMS} --out data/photos",
        deps=["data/cache/fetched.json"],
        params=["seed", "photos", "scenes.resolution", "assets.cache_dir"],
        outs=["data/photos"]),
    "train_ae": Stage(
        cmd=f"igae train-ae {PARAMS} {AE_DATA} --out results/autoencoders/standard --work results/checkpoints/standard",
        deps=["data/scenes/train", "data/photos"],
        params=[*AE_TRAINING, "train_ae"],
        outs=["results/autoencoders/standard/model", {"results/checkpoints/standard": CHECKPOINTS}],
        plots=[{"results/autoencoders/standard/losses.csv": {"x": "step", "cache": False}}],
        threads="training.threads", mem_mb="train_ae", gpus="per_process"),
    "train_igae": Stage(
        cmd=(f"igae train-igae {PARAMS} --ae results/autoencoders/standard {AE_DATA} --out results/autoencoders/igae"
             " --work results/checkpoints/igae"),
        deps=["results/autoencoders/standard/model", "data/scenes/train", "data/photos"],
        params=[*AE_TRAINING, "igae", "scenes.object_box"],
        outs=["results/autoencoders/igae/model", "results/autoencoders/igae/triplanes.pt",
              "results/autoencoders/igae/renders", {"results/checkpoints/igae": CHECKPOINTS}],
        plots=[{"results/autoencoders/igae/losses.csv": {"x": "step", "cache": False}}],
        threads="training.threads", mem_mb="train_igae", gpus="per_process"),
    "finetune_ae": Stage(
        cmd=(f"igae finetune-ae {PARAMS} --ae results/autoencoders/standard {AE_DATA} --out results/autoencoders/finetuned"
             " --work results/checkpoints/finetuned"),
        deps=["results/autoencoders/standard/model", "data/scenes/train", "data/photos"],
        params=[*AE_TRAINING, "igae.checkpoint_every", *(f"igae.joint.{k}" for k in FINETUNE_JOINT_KEYS)],
        outs=["results/autoencoders/finetuned/model", {"results/checkpoints/finetuned": CHECKPOINTS}],
        plots=[{"results/autoencoders/finetuned/losses.csv": {"x": "step", "cache": False}}],
        threads="training.threads", mem_mb="finetune_ae", gpus="per_process"),
    "eval_ae": Stage(
        cmd=(f"igae eval-ae {PARAMS} --ae results/autoencoders/{{ae}} --name {{ae}} --photos data/photos"
             " --heldout data/scenes/heldout --scenes data/scenes/train --out results/ae_eval/{ae}"),
        foreach=list(AE_NAMES), loop_var="ae",
        deps=["results/autoencoders/{ae}", "data/photos", "data/scenes/heldout", "data/scenes/train"],
        params=["seed", "eval_ae", "training.threads", "training.device", "training.precision", "autoencoder.pretrained",
                "autoencoder.architecture.latent_channels", "autoencoder.perceptual", "scenes.object_box"],
        metrics=["results/ae_eval/{ae}/metrics.json"],
        outs=["results/ae_eval/{ae}/per_image.csv"],
        threads="training.threads", mem_mb="eval_ae", gpus="one"),
    "fit_nerf_rgb": Stage(
        comment=("Snakemake runs one job per scene; DVC one stage per method (per space x method for latent fits) "
                 "that fits every held-out scene in turn: the same fit per scene, into the same folders."),
        cmd=fit_cmd("rgb", RGB_SPACE, "--scene-set data/scenes/heldout", ""),
        snakemake_cmd=fit_cmd("rgb", RGB_SPACE, "--scene data/scenes/heldout/{scene}", "/{scene}"),
        snakemake_wildcards=("scene",), log="fit_nerf/rgb_{method}_{scene}",
        matrix={"method": "${nerf.methods}"},
        deps=["data/scenes/heldout"],
        params=FIT_PARAMS,
        outs=["results/nerf/rgb/{method}"],
        threads="nerf.threads", mem_mb="fit_nerf_rgb", gpus="one"),
    "fit_nerf_latent": Stage(
        cmd=fit_cmd("results/autoencoders/{space}", "{space}", "--scene-set data/scenes/heldout", ""),
        snakemake_cmd=fit_cmd("results/autoencoders/{space}", "{space}", "--scene data/scenes/heldout/{scene}", "/{scene}"),
        snakemake_wildcards=("scene",), log="fit_nerf/{space}_{method}_{scene}",
        matrix={"space": "${nerf.autoencoders}", "method": "${nerf.methods}"},
        deps=["data/scenes/heldout", "results/autoencoders/{space}/model"],
        params=FIT_PARAMS,
        outs=["results/nerf/{space}/{method}"],
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

FOLDER_FILES: dict[str, list[str]] = {
    "data/scenes/{set}": ["data/scenes/{set}/manifest.json"],
    "data/photos": ["data/photos/manifest.json"],
    "results/autoencoders/{ae}/model": ["results/autoencoders/{ae}/model/igae_autoencoder.json"],
    "results/autoencoders/{ae}/renders": [],
    "results/autoencoders/{ae}": ["results/autoencoders/{ae}/model/igae_autoencoder.json"],
    "results/autoencoders": ["results/autoencoders/{ae}/model/igae_autoencoder.json",
                             "results/autoencoders/{ae}/losses.csv"],
    "results/checkpoints/{ae}": [],
    "results/nerf/{space}/{method}": ["results/nerf/{space}/{method}/{scene}/metrics.json"],
    "results/nerf": ["results/nerf/{space}/{method}/{scene}/metrics.json"],
    "results/ae_eval": ["results/ae_eval/{ae}/metrics.json"],
    "results/nerf_summary/plots": ["results/nerf_summary/plots/psnr_vs_time_{space}.csv"],
    # The report's files are listed in the Snakefile (each tagged for `snakemake --report`).
    "results/tables": [], "results/figures": [], "results/report": [],
}
"""A folder DVC tracks whole -> the files Snakemake tracks for it (``[]``: none, or listed in the Snakefile).
A wildcard the rule does not bind is expanded over all its values (``{space}``: rgb and nerf.autoencoders)."""

TOP_LEVEL_PLOTS = [{
    "PSNR on test views vs training time (mean over methods and scenes)": {
        "template": "linear", "x": "train_seconds",
        "y": {f"results/nerf_summary/plots/psnr_vs_time_{s}.csv": "psnr" for s in (RGB_SPACE, *AE_NAMES)},
    }
}]

LOOP_VARS = ("set", "ae", "space", "method", "scene")


def snakemake_stages() -> dict[str, Stage]:
    """The stages Snakemake runs (one rule each), in table order."""
    return {name: s for name, s in STAGES.items() if "snakemake" in s.executors}


def snakemake_shell(name: str, preset: str) -> str:
    """The stage's command for a Snakemake ``shell:``: ``{preset}`` filled in, loop variables
    as ``{wildcards.x}`` (``{{`` escapes stay literal)."""
    stage = STAGES[name]
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
