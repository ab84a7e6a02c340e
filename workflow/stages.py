"""The stage table: the one definition of every stage's command, dependencies, params and outputs.

The Snakefile takes each rule's shell command from here (:func:`snakemake_shell`), and
``workflow/scripts/make_dvc_yaml.py`` writes ``dvc.yaml`` from here (a test checks the committed
file is in sync and that Snakemake's commands are these). Snakemake tracks files, so its rules name
proxy files (``manifest.json``, ``metrics.json``) where DVC tracks the folders listed here.

Command templates use ``{preset}`` and the stage's loop variables (``{set}``, ``{ae}``, ``{space}``,
``{method}``, ``{scene}``): Snakemake fills them from wildcards, DVC from ``foreach``/``matrix``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PARAMS = "--params params.yaml --preset {preset}"
AE_DATA = "--scenes data/scenes/train --photos data/photos"


@dataclass(frozen=True)
class Stage:
    """One pipeline stage.

    Attributes:
        cmd: the command (DVC runs it once per ``foreach``/``matrix`` item).
        deps, params, outs: DVC dependencies, params keys and outputs (an out may be a dict
            ``{path: {cache: false, persist: true}}``).
        foreach / matrix: DVC loops (``foreach`` binds ``{item}`` names given by ``loop_var``).
        snakemake_cmd: the rule's command when it differs from ``cmd`` (the fits: one job per
            scene under Snakemake, one stage per space x method over the scene set under DVC).
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
    comment: str | None = None


def fit_cmd(autoencoder: str, space: str, scene_arg: str, out_tail: str) -> str:
    return (f"igae fit-nerf {PARAMS} {scene_arg} --autoencoder {autoencoder} --space-name {space} --method {{method}}"
            f" --out results/nerf/{space}/{{method}}{out_tail} --work results/checkpoints/nerf/{space}/{{method}}{out_tail} --quiet")


NOT_CACHED = {"cache": False}
CHECKPOINTS = {"persist": True, "cache": False}

STAGES: dict[str, Stage] = {
    "fetch_assets": Stage(
        cmd=f"igae fetch-assets {PARAMS} --out data/cache/fetched.json",
        deps=["igae/assets/debian.py", "presets"],
        params=["preset", "assets.source", "photos.sources"],
        outs=[{"data/cache/fetched.json": NOT_CACHED}]),
    "select_objects": Stage(
        cmd=f"igae select-objects {PARAMS} --out data/objects.json",
        deps=["data/cache/fetched.json", "igae/assets", "presets"],
        params=["preset", "seed", "assets", "scenes.train.count", "scenes.heldout.count"],
        outs=["data/objects.json"]),
    "render_scenes": Stage(
        cmd=f"igae render-scenes {PARAMS} --objects data/objects.json --set {{set}} --out data/scenes/{{set}}",
        foreach=["train", "heldout"], loop_var="set",
        deps=["data/objects.json", "igae/assets", "igae/render", "igae/data/scene.py", "igae/data/nerfstudio_format.py",
              "igae/geometry.py", "presets"],
        params=["preset", "seed", "scenes"],
        outs=["data/scenes/{set}"]),
    "build_photos": Stage(
        cmd=f"igae build-photos {PARAMS} --out data/photos",
        deps=["data/cache/fetched.json", "igae/data/photos.py", "igae/data/photo_sources.py", "presets"],
        params=["preset", "seed", "photos", "scenes.resolution"],
        outs=["data/photos"]),
    "train_ae": Stage(
        cmd=f"igae train-ae {PARAMS} {AE_DATA} --out results/autoencoders/standard --work results/checkpoints/standard",
        deps=["data/scenes/train", "data/photos", "igae/autoencoder", "igae/train", "presets"],
        params=["preset", "seed", "autoencoder", "train_ae", "training"],
        outs=["results/autoencoders/standard/model", {"results/checkpoints/standard": CHECKPOINTS}],
        plots=[{"results/autoencoders/standard/losses.csv": {"x": "step", "cache": False}}]),
    "train_igae": Stage(
        cmd=(f"igae train-igae {PARAMS} --ae results/autoencoders/standard {AE_DATA} --out results/autoencoders/igae"
             " --work results/checkpoints/igae"),
        deps=["results/autoencoders/standard", "data/scenes/train", "data/photos", "igae/autoencoder", "igae/fields",
              "igae/train", "presets"],
        params=["preset", "seed", "autoencoder", "igae", "training"],
        outs=["results/autoencoders/igae/model", "results/autoencoders/igae/triplanes.pt",
              "results/autoencoders/igae/renders", {"results/checkpoints/igae": CHECKPOINTS}],
        plots=[{"results/autoencoders/igae/losses.csv": {"x": "step", "cache": False}}]),
    "finetune_ae": Stage(
        cmd=(f"igae finetune-ae {PARAMS} --ae results/autoencoders/standard {AE_DATA} --out results/autoencoders/finetuned"
             " --work results/checkpoints/finetuned"),
        deps=["results/autoencoders/standard", "data/scenes/train", "data/photos", "igae/autoencoder", "igae/train",
              "presets"],
        params=["preset", "seed", "autoencoder", "igae.joint", "igae.checkpoint_every", "training"],
        outs=["results/autoencoders/finetuned/model", {"results/checkpoints/finetuned": CHECKPOINTS}],
        plots=[{"results/autoencoders/finetuned/losses.csv": {"x": "step", "cache": False}}]),
    "eval_ae": Stage(
        cmd=(f"igae eval-ae {PARAMS} --ae results/autoencoders/{{ae}} --name {{ae}} --photos data/photos"
             " --heldout data/scenes/heldout --scenes data/scenes/train --out results/ae_eval/{ae}"),
        foreach=["standard", "finetuned", "igae"], loop_var="ae",
        deps=["results/autoencoders/{ae}", "data/photos", "data/scenes/heldout", "data/scenes/train", "igae/eval",
              "presets"],
        params=["preset", "eval_ae", "training"],
        metrics=["results/ae_eval/{ae}/metrics.json"],
        outs=["results/ae_eval/{ae}/per_image.csv"]),
    "fit_nerf_rgb": Stage(
        comment=("Snakemake runs one job per scene; DVC one stage per method (per space x method for latent fits) "
                 "that fits every held-out scene in turn: the same fit per scene, into the same folders."),
        cmd=fit_cmd("rgb", "rgb", "--scene-set data/scenes/heldout", ""),
        snakemake_cmd=fit_cmd("rgb", "rgb", "--scene data/scenes/heldout/{scene}", "/{scene}"),
        matrix={"method": "${nerf.methods}"},
        deps=["data/scenes/heldout", "igae/nerf", "igae/fields", "presets"],
        params=["preset", "seed", "nerf", "training"],
        outs=["results/nerf/rgb/{method}"]),
    "fit_nerf_latent": Stage(
        cmd=fit_cmd("results/autoencoders/{space}", "{space}", "--scene-set data/scenes/heldout", ""),
        snakemake_cmd=fit_cmd("results/autoencoders/{space}", "{space}", "--scene data/scenes/heldout/{scene}", "/{scene}"),
        matrix={"space": "${nerf.autoencoders}", "method": "${nerf.methods}"},
        deps=["data/scenes/heldout", "results/autoencoders/{space}/model", "igae/nerf", "igae/fields", "igae/autoencoder",
              "presets"],
        params=["preset", "seed", "nerf", "training"],
        outs=["results/nerf/{space}/{method}"]),
    "summarize_nerf": Stage(
        cmd="igae summarize-nerf --fits results/nerf --out results/nerf_summary",
        deps=["results/nerf", "igae/eval/nerf_summary.py"],
        outs=["results/nerf_summary/per_fit.csv", "results/nerf_summary/summary.csv",
              {"results/nerf_summary/plots": NOT_CACHED}],
        metrics=["results/nerf_summary/goals.json", "results/nerf_summary/metrics.json"]),
    "report": Stage(
        cmd=f"igae report {PARAMS} --results results --heldout data/scenes/heldout",
        deps=["results/nerf", "results/ae_eval", "results/autoencoders", "results/nerf_summary/goals.json",
              "data/scenes/heldout/manifest.json", "igae/report"],
        params=["preset"],
        outs=["results/tables", "results/figures", "results/report"]),
}

TOP_LEVEL_PLOTS = [{
    "PSNR on test views vs training time (mean over methods and scenes)": {
        "template": "linear", "x": "train_seconds",
        "y": {f"results/nerf_summary/plots/psnr_vs_time_{s}.csv": "psnr" for s in ("rgb", "standard", "finetuned", "igae")},
    }
}]


def snakemake_shell(name: str, preset: str) -> str:
    """The stage's command for a Snakemake ``shell:``: ``{preset}`` filled in, loop variables
    as ``{wildcards.x}`` (``{{`` escapes stay literal)."""
    stage = STAGES[name]
    cmd = stage.snakemake_cmd or stage.cmd
    for var in ("set", "ae", "space", "method", "scene"):
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
