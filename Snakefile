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


rule all:
    input:
        "data/scenes/train/manifest.json",
        "data/scenes/heldout/manifest.json",
        "data/photos/manifest.json",


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
