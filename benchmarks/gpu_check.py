"""The prepared GPU check (issue 16): what has to work, and how fast, the first time a GPU is lent.

Run it through ``benchmarks/gpu_check.sh`` (``make gpu-check``). In under 8 minutes on one GPU it:

1. builds or loads nerfacc's CUDA extension (``igae build-extensions``);
2. runs the GPU tests (``pytest -m gpu``);
3. times one RGB fit and one latent fit of the default preset's first held-out scene (the latent
   fit with a randomly initialised AE of the default architecture: a timing, its PSNR means
   nothing), and one IG-AE training step of the paper preset at 128x128 with an f8 / 16-channel
   AE of the paper's architecture, randomly initialised from its config (the hub is unreachable);
4. runs the smoke preset end to end on CUDA with what is left of the time budget
   (the smoke preset with ``training.jobs_per_gpu: 4``, ``--smoke-jobs-per-gpu``: its tiny jobs
   share each GPU; ``--keep-going``).

Everything runs in a scratch workspace (``--work``, default a temporary folder), never in this
checkout's ``data/`` or ``results/``. The results go to ``--out``/gpu_check.json (default
``results/gpu_check/``), with each step's exit status, seconds and, on failure, its output's tail.
The exit code is 1 when a step failed.

``--cpu-smoke`` is a quick dry run of the script itself on a machine without a GPU: the GPU tests
run their bodies on CPU (a few of them), the smoke pipeline is only planned (``snakemake -n``), and
the fits and the IG-AE step use tiny settings. Its numbers are not results.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PAPER_AE = {"block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "latent_channels": 16,
            "norm_num_groups": 32}
"""The paper's AE shape (ostris/vae-kl-f8-d16: SD-VAE widths, f8, 16 latent channels)."""
OFFLINE_PRESET = """# benchmarks/gpu_check.py: the default preset with procedural objects (the Debian catalogue is unreachable)
assets: {source: procedural, heldout_categories: []}
photos: {sources: [skimage, sklearn, matplotlib]}
"""


class Check:
    """Runs the steps under one time budget and collects their records."""

    def __init__(self, budget_s: float, work: Path, env: dict[str, str]) -> None:
        self.deadline = time.monotonic() + budget_s
        self.work = work
        self.env = env
        self.steps: dict[str, dict[str, Any]] = {}

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def run(self, name: str, cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None,
            cap_s: float | None = None) -> dict[str, Any]:
        """Run ``cmd`` (killed when the budget, or ``cap_s``, runs out) and record it under ``name``."""
        limit = min(self.left(), cap_s or float("inf"))
        if limit <= 1:
            rec = {"status": "not run: time budget spent", "cmd": cmd}
            self.steps[name] = rec
            return rec
        t0 = time.monotonic()
        print(f"[gpu-check] {name}: {' '.join(cmd)}", file=sys.stderr, flush=True)
        # Its own process group: at the limit the whole group gets SIGTERM (Snakemake then stops its
        # running jobs), then SIGKILL, so no job outlives the step or writes into a removed workspace.
        proc = subprocess.Popen(cmd, cwd=cwd or self.work, env={**self.env, **(env or {})}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=limit)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = None
            out = _stop_group(proc) + f"\n(stopped after {limit:.0f} s)"
        rec = {"status": "ok" if code == 0 else ("timeout" if code is None else "failed"), "exit": code,
               "seconds": round(time.monotonic() - t0, 2), "cmd": cmd}
        if code != 0:
            rec["output_tail"] = out[-4000:]
        self.steps[name] = rec
        print(f"[gpu-check] {name}: {rec['status']} in {rec['seconds']} s", file=sys.stderr, flush=True)
        return rec


def _stop_group(proc: subprocess.Popen, grace_s: float = 20.0) -> str:
    """SIGTERM ``proc``'s process group, SIGKILL it after ``grace_s``; the output it had written."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return proc.communicate(timeout=wait_s)[0] or ""
        except subprocess.TimeoutExpired:
            continue
    return ""


def _workspace(work: Path) -> None:
    """What the pipeline needs to run in ``work``: Snakefile, params, presets, workflow/."""
    for name in ("Snakefile", "params.yaml"):
        shutil.copy2(REPO / name, work / name)
    for name in ("presets", "workflow"):
        shutil.copytree(REPO / name, work / name, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", ".snakemake"))


def _junit_counts(path: Path) -> dict[str, int]:
    if not path.is_file():
        return {}
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    return {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")} if suite is not None else {}


def _fit_record(metrics_file: Path) -> dict[str, Any]:
    if not metrics_file.is_file():
        return {}
    m = json.loads(metrics_file.read_text())
    return {k: m.get(k) for k in ("space", "method", "scene", "train_seconds", "render_seconds_per_frame", "memory",
                                  "occupancy_backend", "precision", "steps", "render_size", "metrics")}


# ---------------------------------------------------------------------------------- IG-AE step
def igae_step_timing(out: Path, device_name: str, cpu_smoke: bool) -> None:
    """Seconds per IG-AE joint step at the paper preset's settings, written to ``out`` as JSON.

    Two short runs of the real trainer (1 warm-up step, then 1 or 3 joint steps) on synthetic
    128x128 views; the difference of their times over the 2 extra steps is one joint step, with
    the set-up, the warm-up encoding and the end-of-phase checkpoints cancelling out.
    """
    import torch

    from igae.autoencoder.model import AEArchitecture, Autoencoder
    from igae.autoencoder.perceptual import load_perceptual
    from igae.config import load_params
    from igae.train.data import ViewBank
    from igae.train.distributed import DistContext, resolve_device
    from igae.train.igae_trainer import make_triplane_field, train_igae
    from igae.train.precision import configure_precision

    torch.set_num_threads(max(1, min(8, os.cpu_count() or 1)))
    preset = "smoke" if cpu_smoke else "paper"
    params = load_params(REPO / "params.yaml", preset=preset)
    res = params.scenes.resolution
    arch = (AEArchitecture(tuple(params.autoencoder.architecture.block_out_channels), 1, 4, 4) if cpu_smoke
            else AEArchitecture(**PAPER_AE))
    device = resolve_device(device_name)
    precision = configure_precision(params.training.precision, device)
    g = torch.Generator().manual_seed(0)
    scenes, views = 4, 8
    coarse = torch.rand(scenes * views, 3, 8, 8, generator=g)
    images = torch.nn.functional.interpolate(coarse, size=(res, res), mode="bilinear", align_corners=False)
    from igae.render.cameras import sample_cameras

    c2w = torch.cat([sample_cameras(views, params.scenes.radius, tuple(params.scenes.elevation_deg), seed=s)
                     for s in range(scenes)])
    focal = res / (2 * torch.tan(torch.deg2rad(torch.tensor(params.scenes.fov_deg / 2))))
    bank = ViewBank(images=images, camera_to_world=c2w,
                    intrinsics=torch.tensor([focal, focal, res / 2, res / 2]).expand(len(c2w), 4).clone(),
                    scene_index=torch.arange(scenes).repeat_interleave(views),
                    scene_names=[f"s{i}" for i in range(scenes)], background=(1.0, 1.0, 1.0))
    photos = torch.nn.functional.interpolate(torch.rand(16, 3, 8, 8, generator=g), size=(res, res), mode="bilinear",
                                             align_corners=False)
    perceptual = load_perceptual("auto", device=device)
    record: dict[str, Any] = {"preset": preset, "resolution": res, "ae": {**vars(arch), "init": "random (from config)"},
                              "device": str(device), "precision": precision, "perceptual": perceptual.backend,
                              "views_per_batch": params.igae.joint.views_per_batch,
                              "photos_per_batch": params.igae.joint.photos_per_batch,
                              "triplane": params.igae.triplane.model_dump()}
    seconds = {}
    for joint_steps in (1, 3):
        cfg = params.igae.model_copy(update={
            "warmup": params.igae.warmup.model_copy(update={"steps": 1}),
            "joint": params.igae.joint.model_copy(update={"steps": joint_steps}),
            "checkpoint_every": 10**6})
        ae = Autoencoder.from_architecture(arch, seed=0).to(device)
        field = make_triplane_field(scenes, cfg.triplane, arch.latent_channels, params.scenes.object_box, seed=0)
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as work:
            train_igae(ae, field, bank, photos, cfg, perceptual, 0, work, ctx=DistContext(device=device,
                                                                                         precision=precision))
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds[joint_steps] = time.perf_counter() - t0
        if device.type == "cuda":
            record["gpu_peak_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        record["ae_parameters_millions"] = round(sum(p.numel() for p in ae.parameters()) / 1e6, 2)
    record["run_seconds"] = {str(k): round(v, 3) for k, v in seconds.items()}
    record["joint_step_seconds"] = round((seconds[3] - seconds[1]) / 2, 4)
    out.write_text(json.dumps(record, indent=2))


# ---------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu-smoke", action="store_true", help="dry run on CPU with tiny settings (a self-check)")
    ap.add_argument("--out", default=str(REPO / "results" / "gpu_check"), help="folder for gpu_check.json")
    ap.add_argument("--work", default=None, help="scratch workspace (default: a temporary folder, removed after)")
    ap.add_argument("--budget", type=float, default=470.0, help="seconds for all steps together (default: %(default)s)")
    ap.add_argument("--method", default=None, help="NeRF method of the timed fits (default: the first of nerf.methods)")
    ap.add_argument("--smoke-jobs-per-gpu", type=int, default=4,
                    help="smoke-preset jobs sharing one GPU at a time (Snakemake's gpu_slots; default: %(default)s)")
    ap.add_argument("--igae-step-json", default=None, help=argparse.SUPPRESS)  # internal: the child process
    args = ap.parse_args(argv)
    device = "cpu" if args.cpu_smoke else "cuda"
    if args.igae_step_json:
        igae_step_timing(Path(args.igae_step_json), device, args.cpu_smoke)
        return 0

    t_start = time.monotonic()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work).resolve() if args.work else Path(tempfile.mkdtemp(prefix="igae-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    _workspace(work)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1",
           "PYTHONPATH": str(REPO / "tests") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if args.cpu_smoke:
        env["CUDA_VISIBLE_DEVICES"] = ""
    check = Check(args.budget, work, env)
    py, igae = str(BIN / "python"), str(BIN / "igae")

    import torch

    report: dict[str, Any] = {
        "mode": "cpu-smoke (a dry run of this script; its numbers are not results)" if args.cpu_smoke else "gpu",
        "torch": torch.__version__, "torch_cuda": torch.version.cuda,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if not args.cpu_smoke else [],
        "TORCH_EXTENSIONS_DIR": env.get("TORCH_EXTENSIONS_DIR"), "budget_seconds": args.budget,
    }

    # 1. nerfacc's extension, built once before anything else runs
    ext = check.run("nerfacc_extension", [igae, "build-extensions", "--out", str(out / "extensions.json"),
                                           "--wait-for-lock", "60"], cap_s=240)
    if (out / "extensions.json").is_file():
        ext["record"] = json.loads((out / "extensions.json").read_text())

    # 2. the GPU tests
    junit = out / "pytest_gpu.xml"
    pytest_cmd = [py, "-m", "pytest", "-q", "-m", "gpu", str(REPO / "tests" / "test_gpu.py"), "-p", "no:cacheprovider",
                  f"--junitxml={junit}", "--rootdir", str(REPO)]
    if args.cpu_smoke:
        pytest_cmd += ["-k", "(vanilla and rgb) or (joint_step and fp32)"]
    tests = check.run("pytest_gpu", pytest_cmd, cwd=REPO, cap_s=150,
                      env={"IGAE_GPU_TEST_DEVICE": "cpu"} if args.cpu_smoke else None)
    tests["counts"] = _junit_counts(junit)

    # 3a. data: the default preset's held-out scenes (procedural objects when the catalogue is unreachable);
    # in the CPU dry run the smoke preset's tiny data with tiny fits. Kept apart from the smoke run's data/.
    preset = "default"
    if args.cpu_smoke:
        tiny = yaml.safe_load((REPO / "presets" / "smoke.yaml").read_text())
        tiny["nerf"].update({"stage1": {**tiny["nerf"]["stage1"], "steps": 4},
                             "stage2": {**tiny["nerf"]["stage2"], "steps": 2},
                             "eval": {**tiny["nerf"]["eval"], "curve_points": 1, "turntable_frames": 0}})
        (work / "presets" / "gpucheck.yaml").write_text("# gpu_check --cpu-smoke: smoke data, tiny fits\n"
                                                         + yaml.safe_dump(tiny, sort_keys=False))
        preset = "gpucheck"
    params_args = ["--params", "params.yaml", "--preset", preset]
    # Its record apart from data/cache/fetched.json, the smoke pipeline's own fetch_assets output.
    fetched = check.run("fetch_assets", [igae, "fetch-assets", *params_args, "--out", "fitdata/cache/fetched.json"],
                        cap_s=120)
    if fetched["status"] != "ok" and not args.cpu_smoke:
        (work / "presets" / "gpucheck.yaml").write_text(OFFLINE_PRESET)
        preset, params_args = "gpucheck", ["--params", "params.yaml", "--preset", "gpucheck"]
        check.run("fetch_assets_offline", [igae, "fetch-assets", *params_args, "--out", "fitdata/cache/fetched.json"],
                  cap_s=60)
    report["fit_preset"] = preset
    check.run("select_objects", [igae, "select-objects", *params_args, "--out", "fitdata/objects.json"], cap_s=120)
    check.run("render_heldout", [igae, "render-scenes", *params_args, "--objects", "fitdata/objects.json", "--set",
                                 "heldout", "--out", "fitdata/scenes/heldout"], cap_s=180)

    # 3b. one RGB and one latent fit of the first held-out scene
    from igae.config import load_params

    params = load_params(work / "params.yaml", preset=preset)
    method = args.method or params.nerf.methods[0]
    scene = work / "fitdata" / "scenes" / "heldout" / "scene_000"
    arch = params.autoencoder.architecture
    make_ae = ("import sys; from igae.autoencoder.model import AEArchitecture, Autoencoder; "
               f"a = AEArchitecture({tuple(arch.block_out_channels)}, {arch.layers_per_block}, {arch.latent_channels}, "
               f"{arch.norm_num_groups}); Autoencoder.from_architecture(a, seed=0).save(sys.argv[1] + '/model', "
               "metadata={'name': 'random-init', 'note': 'gpu_check timing only'})")
    check.run("random_ae", [py, "-c", make_ae, str(work / "ae")], cap_s=60)
    fits = {}
    for space, ae in (("rgb", "rgb"), ("latent", str(work / "ae"))):
        fit_out = work / "fits" / space
        rec = check.run(f"fit_{space}", [igae, "fit-nerf", *params_args, "--scene", str(scene), "--autoencoder", ae,
                                         "--space-name", "random_ae" if space == "latent" else "rgb", "--method", method, "--out", str(fit_out), "--quiet"], cap_s=150)
        rec["metrics"] = fits[space] = _fit_record(fit_out / "metrics.json")

    # 3c. one paper-preset IG-AE joint step (a child process: a clean GPU memory record)
    step_json = out / "igae_step.json"
    rec = check.run("igae_paper_step", [py, str(Path(__file__)), "--igae-step-json", str(step_json)]
                    + (["--cpu-smoke"] if args.cpu_smoke else []), cwd=REPO, cap_s=180)
    if step_json.is_file():
        rec["record"] = json.loads(step_json.read_text())

    # 4. the smoke preset end to end, last: the open-ended step gets what is left of the budget (planned only
    # in the CPU dry run). On the first GPU (H200, 2026-11-30) its jobs took 24-30 s each, mostly start-up,
    # one at a time with one GPU slot: 33 jobs would not fit. Its tiny jobs share the GPU instead.
    smoke_preset = yaml.safe_load((REPO / "presets" / "smoke.yaml").read_text())
    smoke_preset.setdefault("training", {})["jobs_per_gpu"] = args.smoke_jobs_per_gpu  # sizes Snakemake's gpu_slots
    (work / "presets" / "smoke_shared_gpu.yaml").write_text(
        "# gpu_check: the smoke preset, its jobs sharing each GPU\n" + yaml.safe_dump(smoke_preset, sort_keys=False))
    report["smoke_preset"] = {"preset": "smoke", "training.jobs_per_gpu": args.smoke_jobs_per_gpu}
    smoke = ["snakemake", "--cores", "all", "--keep-going", "--config", "preset=smoke_shared_gpu"]
    check.run("smoke_pipeline", smoke + (["-n"] if args.cpu_smoke else []))

    # DVC fits the preset's scenes one after the other: its fit stages take about n_fits x one fit.
    walls = [check.steps[f"fit_{sp}"].get("seconds") for sp in ("rgb", "latent")
             if check.steps.get(f"fit_{sp}", {}).get("status") == "ok"]
    if walls:
        n_fits = params.scenes.heldout.count * len(params.nerf.methods) * (
            1 + len(params.nerf.autoencoders) * len(params.ae_seeds))  # RGB + each latent space per AE seed
        report["dvc_serial_fit_hours"] = {
            "preset": preset, "fits": n_fits, "seconds_per_fit": round(sum(walls) / len(walls), 1),
            "hours": round(n_fits * sum(walls) / len(walls) / 3600, 2),
            "note": f"mean wall time of the timed RGB and latent fits ({method}) x the preset's fit count"}
    report["steps"] = check.steps
    report["total_seconds"] = round(time.monotonic() - t_start, 1)
    report["ok"] = all(s.get("status") == "ok" for name, s in check.steps.items() if name != "fetch_assets"
                       ) and tests.get("counts", {}).get("failures", 1) == 0 and tests["counts"].get("errors", 1) == 0
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    print(f"[gpu-check] {'ok' if report['ok'] else 'FAILED'} in {report['total_seconds']} s: {out / 'gpu_check.json'}",
          file=sys.stderr)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
