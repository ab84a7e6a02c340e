"""What a job asks its executor for: GPUs, GPU slots, threads and memory, derived from the params.

Used by the Snakefile (through the stage table); no torch import (the Snakefile is evaluated on
every start, also on a cluster's login node).

- **GPUs on this machine** (:func:`detect_gpus`): ``CUDA_VISIBLE_DEVICES`` when set, else the
  devices ``nvidia-smi -L`` lists, else 0.
- **GPU slots** (local runs): the resource ``gpu_slots`` = GPUs x ``training.jobs_per_gpu``. A fit or
  an evaluation takes one slot, a training job ``training.processes`` x ``jobs_per_gpu`` (whole
  GPUs), so ``snakemake --cores all`` runs at most that many GPU jobs at once instead of one per
  core, all on ``cuda:0``. Which GPU a job uses is decided by the job itself
  (:mod:`igae.train.gpu_slots`).
- **GPUs on a cluster** (``gpu``): what a SLURM job requests (``--gpus``): one per data-parallel
  process for training, one for fits and evaluations, when the job will run on CUDA
  (``training.device: cuda``, or ``auto`` on a machine with GPUs).
- **Memory** (:func:`mem_mb`): host memory a job needs, from the sizes its params imply (data,
  model and optimizer state, and on CPU the activations), times a safety factor; clusters kill
  jobs that exceed their request, so this errs on the large side. Override per rule with
  ``--set-resources <rule>:mem_mb=N``.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from typing import Any

BASE_MB = 1500
"""A job's process before its data: Python with torch, diffusers and the perceptual metric loaded. Measured
peak RSS on CPU (default preset): 1.36 GB for train_ae, 1.14 GB for an RGB fit, 0.6-0.8 GB for data stages."""
SAFETY = 1.5
"""Factor on the estimated data, model and activation bytes (allocator slack, temporaries)."""
PHOTOS_ESTIMATE = 64
"""Source photos assumed when sizing the photo crops (the package photo sources hold about 40)."""


def detect_gpus() -> int:
    """GPUs this machine shows: ``CUDA_VISIBLE_DEVICES`` when set (empty: none), else ``nvidia-smi -L``."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def runs_on_gpu(params: Any, gpus_here: int) -> bool:
    """Whether jobs will use CUDA: ``training.device`` cuda, or auto on a machine with GPUs."""
    device = params.training.device
    return device == "cuda" or (device == "auto" and gpus_here > 0)


def gpu_slots_pool(params: Any, gpus_here: int) -> int:
    """The local ``gpu_slots`` resource: GPUs x ``training.jobs_per_gpu``."""
    return gpus_here * params.training.jobs_per_gpu


def gpu_resources(kind: str | None, params: Any, gpus_here: int) -> dict[str, int]:
    """``gpu`` (cluster request) and ``gpu_slots`` (local pool share) of a job.

    Args:
        kind: ``"per_process"`` (data-parallel training), ``"one"`` (a fit, an evaluation) or None.
    """
    if kind is None or not runs_on_gpu(params, gpus_here):
        return {}
    gpus = params.training.processes if kind == "per_process" else 1
    slots = gpus * params.training.jobs_per_gpu if kind == "per_process" else 1
    return {"gpu": gpus, "gpu_slots": slots}


def job_threads(threads_param: int, cores: int | None) -> int:
    """Cores a job takes: its threads param, or (0 = "all the CPUs granted") every core Snakemake has.

    On a cluster the job then asks for that many CPUs (``cpus_per_task`` = threads in the SLURM
    profile), and ``threads: 0`` inside the job means the CPUs granted
    (:func:`igae.train.distributed.usable_cpus`), so the two agree.
    """
    if threads_param > 0:
        return threads_param if cores is None else min(threads_param, cores)
    return cores or 1


# ------------------------------------------------------------------------------------ memory
def _mb(n_bytes: float) -> float:
    return n_bytes / 2**20


def _ae_params(params: Any) -> float:
    """Parameter count of the AE the params describe (diffusers AutoencoderKL), approximately:
    per level, ``layers`` ResNet blocks of two 3x3 convolutions in the encoder and ``layers + 1``
    in the decoder, plus the mid blocks. A pretrained hub AE is sized as the paper's (84M)."""
    if params.autoencoder.pretrained is not None:
        return 84e6
    arch = params.autoencoder.architecture
    widths, layers = arch.block_out_channels, arch.layers_per_block
    conv = sum(2 * 9 * w * w for w in widths)
    return conv * (2 * layers + 1) + 4 * 9 * widths[-1] ** 2  # encoder + decoder blocks, mid blocks


def _views(count: int, views: int, test_views: int) -> int:
    return count * max(views - test_views, 0)


def mem_mb(kind: str, params: Any, on_gpu: bool) -> int:
    """Host memory (MB) a job of ``kind`` needs, from its params (see the module docstring).

    Kinds: ``render_scenes``, ``build_photos``, ``train_ae``, ``finetune_ae``, ``train_igae``,
    ``eval_ae``, ``fit_nerf_rgb``, ``fit_nerf_latent``, ``light`` (bookkeeping stages).
    """
    s, res = params.scenes, params.scenes.resolution
    image_u8 = 3 * res * res
    train_bank = _views(s.train.count, s.train.views, s.train.test_views) * image_u8  # uint8 in memory
    photos = PHOTOS_ESTIMATE * params.photos.crops_per_photo * image_u8 * 4  # float32
    ae_state = _ae_params(params) * 4 * 4  # weights, gradients, Adam's two moments
    widths = params.autoencoder.architecture.block_out_channels
    f = 2 ** (len(widths) - 1)
    latent_c = params.autoencoder.architecture.latent_channels

    def ae_activations(batch: int) -> float:  # conv activations kept for backward, CPU only
        if on_gpu:
            return 0.0
        per_image = sum(w * (res / 2**i) ** 2 for i, w in enumerate(widths)) * params.autoencoder.architecture.layers_per_block
        return batch * per_image * 4 * 6  # several saved tensors per conv (norm, activation, conv input)

    if kind == "render_scenes":
        n_views = max(s.train.views, s.heldout.views, s.validation.views)
        need = n_views * image_u8 * s.supersample**2 * 4 * 4 + 300 * 2**20  # float buffers + one mesh
    elif kind == "build_photos":
        need = photos + 200 * 2**20
    elif kind in ("train_ae", "finetune_ae"):
        batch = params.train_ae.batch_size if kind == "train_ae" else (
            params.igae.joint.views_per_batch + params.igae.joint.photos_per_batch)
        need = train_bank + photos + ae_state + ae_activations(batch)
    elif kind == "train_igae":
        t = params.igae.triplane
        triplanes = s.train.count * 3 * t.features * t.resolution**2 * 4 * 4  # + grads + Adam, on the device
        n_views = _views(s.train.count, s.train.views, s.train.test_views)
        cached_latents = n_views * latent_c * (res // f) ** 2 * 4
        batch = params.igae.joint.views_per_batch + params.igae.joint.photos_per_batch
        rays = max(params.igae.joint.views_per_batch, params.igae.warmup.views_per_batch) * (res // f) ** 2
        render = rays * (t.coarse_samples + t.fine_samples) * (3 * t.features + t.hidden) * 4 * 4  # tri-plane renders
        need = (train_bank + photos + ae_state + cached_latents
                + (0 if on_gpu else triplanes + render + ae_activations(2 * batch)))
    elif kind == "eval_ae":
        need = params.eval_ae.max_images * image_u8 * 4 * 4 + _ae_params(params) * 4
    elif kind in ("fit_nerf_rgb", "fit_nerf_latent"):
        n = params.nerf
        images = max(s.heldout.views, s.validation.views) * image_u8 * 4 * 3  # train and test images, targets (tune_nerf: validation)
        rays = n.rgb.rays_per_batch if kind == "fit_nerf_rgb" else n.stage1.rays_per_batch
        if kind == "fit_nerf_latent":
            # stage 2 renders whole latent views and decodes them: as many rays, plus the decoder's activations
            rays = max(rays, n.stage2.views_per_batch * (res // f) ** 2)
            images += _ae_params(params) * 4 * 4 + ae_activations(n.stage2.views_per_batch)
        width = max(int(m.hyper.get("width", 0) or m.hyper.get("hidden", 64) or 64) for m in n.method_params.values())
        activations = 0.0 if on_gpu else rays * n.samples_per_ray * width * 4 * 8
        need = images + activations + 300 * 2**20  # + the largest field (hash grid) and its Adam state
    else:
        need = 0.0
    return int(math.ceil((BASE_MB + SAFETY * _mb(need)) / 100.0) * 100)
