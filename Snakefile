# IG-AE pipeline. Run: `snakemake --cores all` (after `make setup`), or `make reproduce`.
# A preset: `snakemake --cores all --config preset=smoke`.
# Every stage is an `igae` subcommand; dvc.yaml runs the same commands.
from snakemake.utils import validate

from igae.config import load_params

configfile: "params.yaml"


validate(config, "workflow/schemas/params.schema.json")

PRESET = config["preset"]
# Presets are merged here exactly as the stage commands merge them, so the
# params each rule records (and reruns on) are the effective ones.
P = load_params("params.yaml", preset=PRESET)
CACHE = P.assets.cache_dir
IGAE = f"igae --params params.yaml --preset {PRESET}"
LOGS = "results/logs"


AES = ["standard", "finetuned", "igae"]
TRAIN_DATA = ["data/scenes/train/manifest.json", "data/photos/manifest.json"]
AE_DATA_ARGS = "--scenes data/scenes/train --photos data/photos"


HELDOUT = [f"scene_{i:03d}" for i in range(P.scenes.heldout.count)]
FITS = expand("results/nerf/{space}/{method}/{scene}/metrics.json",
              space=["rgb", *P.nerf.autoencoders], method=P.nerf.methods, scene=HELDOUT)


rule all:
    input:
        "data/scenes/train/manifest.json",
        "data/scenes/heldout/manifest.json",
        "data/photos/manifest.json",
        expand("results/ae_eval/{ae}/metrics.json", ae=AES),
        "results/nerf_summary/summary.csv",


rule fetch_assets:
    output:
        f"{CACHE}/fetched.json",
    params:
        source=P.assets.source,
        photo_sources=P.photos.sources,
    log:
        f"{LOGS}/fetch_assets.log",
    shell:
        "igae fetch-assets --params params.yaml --preset {PRESET} --out {output} 2> {log}"


rule select_objects:
    input:
        f"{CACHE}/fetched.json",
    output:
        "data/objects.json",
    params:
        assets=P.assets.model_dump(),
        counts=[P.scenes.train.count, P.scenes.heldout.count],
        seed=P.seed,
    log:
        f"{LOGS}/select_objects.log",
    shell:
        "igae select-objects --params params.yaml --preset {PRESET} --out {output} 2> {log}"


rule render_scenes:
    input:
        objects="data/objects.json",
    output:
        manifest="data/scenes/{set}/manifest.json",
    params:
        scenes=P.scenes.model_dump(),
        seed=P.seed,
        out=lambda wc: f"data/scenes/{wc.set}",
    wildcard_constraints:
        set="train|heldout",
    log:
        f"{LOGS}/render_scenes_{{set}}.log",
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        "igae render-scenes --params params.yaml --preset {PRESET} --objects {input.objects}"
        " --set {wildcards.set} --out {params.out} 2> {log}"


rule build_photos:
    input:
        f"{CACHE}/fetched.json",
    output:
        "data/photos/manifest.json",
    params:
        photos=P.photos.model_dump(),
        resolution=P.scenes.resolution,
        seed=P.seed,
    log:
        f"{LOGS}/build_photos.log",
    threads: 1
    shell:
        "igae build-photos --params params.yaml --preset {PRESET} --out data/photos 2> {log}"


rule train_ae:
    input:
        TRAIN_DATA,
    output:
        model="results/autoencoders/standard/model/igae_autoencoder.json",
        losses="results/autoencoders/standard/losses.csv",
    params:
        autoencoder=P.autoencoder.model_dump(),
        train_ae=P.train_ae.model_dump(),
        seed=P.seed,
    log:
        f"{LOGS}/train_ae.log",
    threads: workflow.cores
    resources:
        mem_mb=6000,
    shell:
        "igae train-ae --params params.yaml --preset {PRESET} {AE_DATA_ARGS}"
        " --out results/autoencoders/standard --work results/checkpoints/standard 2> {log}"


rule train_igae:
    input:
        TRAIN_DATA,
        "results/autoencoders/standard/model/igae_autoencoder.json",
    output:
        model="results/autoencoders/igae/model/igae_autoencoder.json",
        losses="results/autoencoders/igae/losses.csv",
        triplanes="results/autoencoders/igae/triplanes.pt",
    params:
        igae=P.igae.model_dump(),
        autoencoder=P.autoencoder.model_dump(),
        seed=P.seed,
    log:
        f"{LOGS}/train_igae.log",
    threads: workflow.cores  # it uses training.threads (all cores); see igae/train/distributed.py
    resources:
        mem_mb=8000,
    shell:
        "igae train-igae --params params.yaml --preset {PRESET} --ae results/autoencoders/standard {AE_DATA_ARGS}"
        " --out results/autoencoders/igae --work results/checkpoints/igae 2> {log}"


rule finetune_ae:
    input:
        TRAIN_DATA,
        "results/autoencoders/standard/model/igae_autoencoder.json",
    output:
        model="results/autoencoders/finetuned/model/igae_autoencoder.json",
        losses="results/autoencoders/finetuned/losses.csv",
    params:
        joint=P.igae.joint.model_dump(),
        autoencoder=P.autoencoder.model_dump(),
        seed=P.seed,
    log:
        f"{LOGS}/finetune_ae.log",
    threads: workflow.cores
    resources:
        mem_mb=6000,
    shell:
        "igae finetune-ae --params params.yaml --preset {PRESET} --ae results/autoencoders/standard {AE_DATA_ARGS}"
        " --out results/autoencoders/finetuned --work results/checkpoints/finetuned 2> {log}"


rule eval_ae:
    input:
        "data/photos/manifest.json",
        "data/scenes/heldout/manifest.json",
        "data/scenes/train/manifest.json",
        model="results/autoencoders/{ae}/model/igae_autoencoder.json",
    output:
        "results/ae_eval/{ae}/metrics.json",
    params:
        eval_ae=P.eval_ae.model_dump(),
    wildcard_constraints:
        ae="standard|finetuned|igae",
    log:
        f"{LOGS}/eval_ae_{{ae}}.log",
    threads: workflow.cores
    shell:
        "igae eval-ae --params params.yaml --preset {PRESET} --ae results/autoencoders/{wildcards.ae} --name {wildcards.ae}"
        " --photos data/photos --heldout data/scenes/heldout --scenes data/scenes/train --out results/ae_eval/{wildcards.ae} 2> {log}"


def _fit_inputs(wc):
    """The held-out scenes, plus the autoencoder for a latent space."""
    inputs = ["data/scenes/heldout/manifest.json"]
    if wc.space != "rgb":
        inputs.append(f"results/autoencoders/{wc.space}/model/igae_autoencoder.json")
    return inputs


rule fit_nerf:
    # One job per scene x space x method: a cluster runs them all in parallel.
    input:
        _fit_inputs,
    output:
        "results/nerf/{space}/{method}/{scene}/metrics.json",
    params:
        nerf=P.nerf.model_dump(),
        seed=P.seed,
        autoencoder=lambda wc: "rgb" if wc.space == "rgb" else f"results/autoencoders/{wc.space}",
    wildcard_constraints:
        space="rgb|standard|finetuned|igae",
        method="vanilla|ngp|kplanes|triplane",
        scene=r"scene_\d+",
    log:
        f"{LOGS}/fit_nerf/{{space}}_{{method}}_{{scene}}.log",
    threads: 1 if P.nerf.threads == 1 else workflow.cores
    resources:
        mem_mb=2000,
    shell:
        "igae fit-nerf --params params.yaml --preset {PRESET} --scene data/scenes/heldout/{wildcards.scene}"
        " --autoencoder {params.autoencoder} --space-name {wildcards.space} --method {wildcards.method}"
        " --out results/nerf/{wildcards.space}/{wildcards.method}/{wildcards.scene}"
        " --work results/checkpoints/nerf/{wildcards.space}/{wildcards.method}/{wildcards.scene} --quiet 2> {log}"


rule summarize_nerf:
    input:
        FITS,
    output:
        "results/nerf_summary/per_fit.csv",
        "results/nerf_summary/summary.csv",
        "results/nerf_summary/goals.json",
    log:
        f"{LOGS}/summarize_nerf.log",
    shell:
        "igae summarize-nerf --fits results/nerf --out results/nerf_summary > {log} 2>&1"
