# IG-AE pipeline. Run: `snakemake --cores all` (after `make setup`), or `make reproduce`.
# A preset: `snakemake --cores all --config preset=smoke`.
# Every stage is an `igae` subcommand. Its rule is built from the stage table workflow/stages.py
# (command, files, params, threads, resources), from which dvc.yaml is generated too
# (workflow/scripts/make_dvc_yaml.py).
# Lint note: `snakemake --lint` asks for a conda env or container per rule. Every rule runs in the one
# pinned environment built by `make setup` from requirements.lock (the same for DVC and CI), so
# per-rule envs would only duplicate it; a cluster uses the same venv on a shared file system.
import sys

from snakemake.utils import validate

from igae.config import AE_NAMES, SCENE_SETS, load_params
from igae.fields.registry import METHOD_NAMES
from igae.render.scene_set import scene_ids

sys.path.insert(0, f"{workflow.basedir}/workflow")
import resources  # noqa: E402  GPUs here, GPU slots, memory from params
import snakemake_rules as smk  # noqa: E402  the table in Snakemake's terms
from stages import STAGES, snakemake_stages  # noqa: E402  the stage table (also dvc.yaml's)
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
LOGS = "results/logs"
BENCH = "results/benchmarks"  # per-job wall time and memory (benchmarks/stage_times.py)


# GPU jobs on this machine: a `gpu_slots` pool of GPUs x training.jobs_per_gpu, so `--cores all` runs
# one job per slot (each job claims its slot's GPU, igae/train/gpu_slots.py), not one per core on
# cuda:0. Cluster executors get `gpu` requests instead; `--resources gpu_slots=N` overrides.
GPUS_HERE = resources.detect_gpus()
if workflow.local_exec and GPUS_HERE and "gpu_slots" not in workflow.global_resources:
    workflow.register_resource("gpu_slots", resources.gpu_slots_pool(P, GPUS_HERE))

onstart:
    # nerfacc JIT-compiles its CUDA kernels at first use; parallel fits would all build them at once.
    # Build (or load) them once here, before any job starts; without a toolkit this records why.
    if resources.runs_on_gpu(P, GPUS_HERE):
        shell(f"mkdir -p {LOGS} && igae build-extensions --out {LOGS}/build_extensions.json "
              f"2> {LOGS}/build_extensions.log || true")


AES = list(AE_NAMES)
HELDOUT = scene_ids(P.scenes, "heldout")  # scene_000.. rendered, or one per scene of scenes.heldout.folder
# Values a placeholder takes where a rule does not bind it (e.g. the report reads every fit).
VALUES = {"set": list(SCENE_SETS), "ae": AES, "ae_seed": [str(k) for k in P.ae_seeds],
          "space": list(P.nerf.autoencoders), "method": list(P.nerf.methods), "scene": HELDOUT}


wildcard_constraints:
    set="|".join(VALUES["set"]),
    ae="|".join(AES),
    ae_seed=r"\d+",
    space="|".join(AES),  # latent spaces; the RGB fits' paths spell "rgb"
    method="|".join(METHOD_NAMES),
    scene=r"scene_\d+",


STAGES_HERE = snakemake_stages(P)

TABLES = ["novel_view_synthesis", "novel_view_synthesis_per_scene", "speed", "autoencoding"]
# The report's files, each tagged for `snakemake --report results/report.html` (after a run).
REPORT_OUTPUTS = [report("results/report/index.html", category="Report", caption="workflow/report/page.rst"),
    *[report(f"results/tables/{t}.csv", category="Tables", caption="workflow/report/tables.rst") for t in TABLES],
    *expand("results/tables/{table}.{ext}", table=TABLES, ext=["md", "tex"]),
    *[report(f"results/figures/qualitative_{s}.png", category="Novel-view synthesis", subcategory=s,
             caption="workflow/report/qualitative.rst") for s in HELDOUT],
    *[report(f"results/figures/latents_{s}.png", category="Latent 3D consistency", subcategory=s,
             caption="workflow/report/latents.rst") for s in HELDOUT],
    *[report(f"results/figures/{f}.png", category="Speed", caption="workflow/report/speed.rst")
      for f in ("psnr_vs_time", "render_time")],
    *[report(f"results/figures/{f}.png", category="Autoencoders", caption="workflow/report/autoencoders.rst")
      for f in ("autoencoders", *(f"training_{ae}" for ae in AES))],
]


rule all:
    input:
        # Every output of every rule, not only the last ones: a deleted intermediate file (a fit's
        # metrics.json, an AE's model, a table) is rebuilt by the plain command, as `dvc repro` does
        # (see smk.every_output). Tuning and budget write a record only unless enabled.
        smk.every_output(STAGES_HERE, VALUES),
        [str(f) for f in REPORT_OUTPUTS],


# One rule per stage of the table: files, params, threads and resources all come from it.
for name, stage in STAGES_HERE.items():
    rule:
        name:
            name
        input:
            smk.rule_inputs(stage, VALUES),
        output:
            smk.rule_outputs(stage, VALUES) + (REPORT_OUTPUTS if name == "report" else []),
        params:
            values=smk.rule_params(stage, P),
            cmd=smk.rule_command(name, stage, PRESET, f"{LOGS}/{smk.log_name(name, stage)}.log"),
        log:
            f"{LOGS}/{smk.log_name(name, stage)}.log",
        benchmark:
            f"{BENCH}/{smk.log_name(name, stage)}.tsv",
        localrule:  # apt/dpkg or the network: the submitting machine under a cluster executor
            stage.local
        threads: smk.rule_threads(stage, P, workflow.cores)
        priority: stage.priority
        resources:
            **smk.rule_resources(stage, P, GPUS_HERE),
        shell:
            "{params.cmd}"  # not an expression of the loop variables: see smk.rule_command
