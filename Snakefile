# IG-AE pipeline. Run: `snakemake --cores all` (after `make setup`), or `make reproduce`.
# A preset: `snakemake --cores all --config preset=smoke`.
# Every stage is an `igae` subcommand; its command comes from the stage table workflow/stages.py,
# from which dvc.yaml is generated (workflow/scripts/make_dvc_yaml.py).
# Lint note: `snakemake --lint` asks for a conda env or container per rule. Every rule runs in the one
# pinned environment built by `make setup` from requirements.lock (the same for DVC and CI), so
# per-rule envs would only duplicate it; a cluster uses the same venv on a shared file system.
import sys

from snakemake.utils import validate

from igae.config import load_params
from igae.render.scene_set import heldout_scene_ids

sys.path.insert(0, f"{workflow.basedir}/workflow")
from stages import snakemake_shell  # noqa: E402  the stage table: commands shared with dvc.yaml
from stale_locks import recover_stale_locks  # noqa: E402

# A run killed with SIGKILL leaves .snakemake/locks behind; remove them when no other Snakemake
# process uses this directory, so the same command simply runs again (and training resumes from
# its checkpoints). A live run's locks stay: see workflow/stale_locks.py.
if workflow.is_main_process:
    recover_stale_locks()

configfile: "params.yaml"


report: "workflow/report/workflow.rst"


validate(config, "workflow/schemas/params.schema.json")

PRESET = config["preset"]
# Presets are merged here exactly as the stage commands merge them, so the
# params each rule records (and reruns on) are the effective ones.
P = load_params("params.yaml", preset=PRESET)
CACHE = P.assets.cache_dir
IGAE = f"igae --params params.yaml --preset {PRESET}"
LOGS = "results/logs"
BENCH = "results/benchmarks"  # per-job wall time and memory (benchmarks/stage_times.py)


# GPU requests for cluster executors: with training.device cuda, training rules ask for one GPU
# per data-parallel process and evaluation/fit rules for one ("auto" requests none).
ON_GPU = P.training.device == "cuda"
TRAIN_GPUS = P.training.processes if ON_GPU else 0
EVAL_GPUS = 1 if ON_GPU else 0

AES = ["standard", "finetuned", "igae"]
TRAIN_DATA = ["data/scenes/train/manifest.json", "data/photos/manifest.json"]


HELDOUT = heldout_scene_ids(P.scenes)  # scene_000.. rendered, or one per scene of scenes.heldout.folder
FITS = expand("results/nerf/{space}/{method}/{scene}/metrics.json",
              space=["rgb", *P.nerf.autoencoders], method=P.nerf.methods, scene=HELDOUT)


rule all:
    input:
        "data/scenes/train/manifest.json",
        "data/scenes/heldout/manifest.json",
        "data/photos/manifest.json",
        expand("results/ae_eval/{ae}/metrics.json", ae=AES),
        "results/nerf_summary/summary.csv",
        "results/report/index.html",


rule fetch_assets:
    output:
        f"{CACHE}/fetched.json",
    params:
        source=P.assets.source,
        photo_sources=P.photos.sources,
    log:
        f"{LOGS}/fetch_assets.log",
    benchmark:
        f"{BENCH}/fetch_assets.tsv",
    shell:
        snakemake_shell("fetch_assets", PRESET) + " 2> {log}"


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
    benchmark:
        f"{BENCH}/select_objects.tsv",
    shell:
        snakemake_shell("select_objects", PRESET) + " 2> {log}"


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
    benchmark:
        f"{BENCH}/render_scenes_{{set}}.tsv",
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        snakemake_shell("render_scenes", PRESET) + " 2> {log}"


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
    benchmark:
        f"{BENCH}/build_photos.tsv",
    threads: 1
    shell:
        snakemake_shell("build_photos", PRESET) + " 2> {log}"


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
    benchmark:
        f"{BENCH}/train_ae.tsv",
    threads: workflow.cores
    resources:
        mem_mb=6000,
        gpu=TRAIN_GPUS,
    shell:
        snakemake_shell("train_ae", PRESET) + " 2> {log}"


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
    benchmark:
        f"{BENCH}/train_igae.tsv",
    threads: workflow.cores  # it uses training.threads (all cores); see igae/train/distributed.py
    resources:
        mem_mb=8000,
        gpu=TRAIN_GPUS,
    shell:
        snakemake_shell("train_igae", PRESET) + " 2> {log}"


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
    benchmark:
        f"{BENCH}/finetune_ae.tsv",
    threads: workflow.cores
    resources:
        mem_mb=6000,
        gpu=TRAIN_GPUS,
    shell:
        snakemake_shell("finetune_ae", PRESET) + " 2> {log}"


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
    benchmark:
        f"{BENCH}/eval_ae_{{ae}}.tsv",
    threads: workflow.cores
    resources:
        mem_mb=4000,
        gpu=EVAL_GPUS,
    shell:
        snakemake_shell("eval_ae", PRESET) + " 2> {log}"


rule fit_nerf_rgb:
    # One job per scene x method (the RGB baseline): a cluster runs them all in parallel.
    input:
        "data/scenes/heldout/manifest.json",
    output:
        "results/nerf/rgb/{method}/{scene}/metrics.json",
    params:
        nerf=P.nerf.model_dump(),
        seed=P.seed,
    wildcard_constraints:
        method="vanilla|ngp|kplanes|triplane",
        scene=r"scene_\d+",
    log:
        f"{LOGS}/fit_nerf/rgb_{{method}}_{{scene}}.log",
    benchmark:
        f"{BENCH}/fit_nerf/rgb_{{method}}_{{scene}}.tsv",
    threads: 1 if P.nerf.threads == 1 else workflow.cores
    resources:
        mem_mb=2000,
        gpu=EVAL_GPUS,
    shell:
        snakemake_shell("fit_nerf_rgb", PRESET) + " 2> {log}"


rule fit_nerf_latent:
    # One job per scene x latent space x method.
    input:
        "data/scenes/heldout/manifest.json",
        "results/autoencoders/{space}/model/igae_autoencoder.json",
    output:
        "results/nerf/{space}/{method}/{scene}/metrics.json",
    params:
        nerf=P.nerf.model_dump(),
        seed=P.seed,
    wildcard_constraints:
        space="standard|finetuned|igae",
        method="vanilla|ngp|kplanes|triplane",
        scene=r"scene_\d+",
    log:
        f"{LOGS}/fit_nerf/{{space}}_{{method}}_{{scene}}.log",
    benchmark:
        f"{BENCH}/fit_nerf/{{space}}_{{method}}_{{scene}}.tsv",
    threads: 1 if P.nerf.threads == 1 else workflow.cores
    resources:
        mem_mb=2000,
        gpu=EVAL_GPUS,
    shell:
        snakemake_shell("fit_nerf_latent", PRESET) + " 2> {log}"


rule summarize_nerf:
    input:
        FITS,
    output:
        "results/nerf_summary/per_fit.csv",
        "results/nerf_summary/summary.csv",
        "results/nerf_summary/goals.json",
        "results/nerf_summary/metrics.json",
        expand("results/nerf_summary/plots/psnr_vs_time_{space}.csv", space=["rgb", *P.nerf.autoencoders]),
    log:
        f"{LOGS}/summarize_nerf.log",
    benchmark:
        f"{BENCH}/summarize_nerf.tsv",
    shell:
        snakemake_shell("summarize_nerf", PRESET) + " > {log} 2>&1"


TABLES = ["novel_view_synthesis", "novel_view_synthesis_per_scene", "speed", "autoencoding"]


rule report:
    # Tagged for `snakemake --report results/report.html` (after a run).
    input:
        FITS,
        expand("results/ae_eval/{ae}/metrics.json", ae=AES),
        expand("results/autoencoders/{ae}/losses.csv", ae=AES),
        "data/scenes/heldout/manifest.json",
        "results/nerf_summary/goals.json",
    output:
        page=report("results/report/index.html", category="Report", caption="workflow/report/page.rst"),
        tables=[report(f"results/tables/{t}.csv", category="Tables", caption="workflow/report/tables.rst") for t in TABLES],
        tables_md_tex=expand("results/tables/{table}.{ext}", table=TABLES, ext=["md", "tex"]),
        qualitative=[report(f"results/figures/qualitative_{s}.png", category="Novel-view synthesis",
                            subcategory=s, caption="workflow/report/qualitative.rst") for s in HELDOUT],
        latents=[report(f"results/figures/latents_{s}.png", category="Latent 3D consistency",
                        subcategory=s, caption="workflow/report/latents.rst") for s in HELDOUT],
        speed=[report(f"results/figures/{f}.png", category="Speed", caption="workflow/report/speed.rst")
               for f in ("psnr_vs_time", "render_time")],
        ae=[report(f"results/figures/{f}.png", category="Autoencoders", caption="workflow/report/autoencoders.rst")
            for f in ("autoencoders", "training_igae", "training_standard", "training_finetuned")],
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{BENCH}/report.tsv",
    shell:
        snakemake_shell("report", PRESET) + " 2> {log}"
