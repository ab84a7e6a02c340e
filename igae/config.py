"""Typed, validated parameters: the one definition of every key in ``params.yaml``.

The models below are the schema. ``params.yaml`` holds every value (no defaults live
in code, so there is one place to read them); presets in ``presets/<name>.yaml``
override keys of it without copying it. ``workflow/schemas/params.schema.json`` is
generated from these models (``igae schema``) for Snakemake's ``validate``.

The library proper never reads params files: the CLI loads them here and hands each
stage the typed section it needs.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from igae.errors import InputError
from igae.fields.registry import METHOD_NAMES

AUTOENCODERS: dict[str, str] = {
    "standard": "Standard AE",
    "finetuned": "Fine-tuned AE (ablation)",
    "igae": "IG-AE",
}
"""The pipeline's autoencoders, i.e. its latent spaces (name -> name in tables); the one list of them."""
AE_NAMES = tuple(AUTOENCODERS)
RGB_SPACE = "rgb"
"""The space name of the RGB baseline fits."""


class _Section(BaseModel):
    """Base of every section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- assets


class CatalogueParams(_Section):
    min_thickness_ratio: float = Field(
        ge=0.0, lt=1.0,
        description="Reject flat models: min/max of the catalogue bounding box below this.",
    )
    exclude_categories: list[str] = Field(description="Catalogue categories never used.")


class FolderParams(_Section):
    path: str | None = Field(description="Folder of .glb/.gltf/.obj/.ply meshes (source: folder).")
    up_axis: Literal["y", "z"] = Field(description="Up axis of the meshes in that folder.")


class ObjaverseParams(_Section):
    uids: list[str] = Field(description="Objaverse object UIDs (source: objaverse; needs the network).")


class AssetsParams(_Section):
    source: Literal["catalogue", "procedural", "folder", "objaverse"] = Field(
        description="Where the 3D objects come from."
    )
    cache_dir: str = Field(description="Downloaded/unpacked packages and extracted models.")
    heldout_categories: list[str] = Field(
        description="Held-out scenes use only these categories and training scenes never do; "
        "empty: held-out objects are disjoint from training objects but of any category."
    )
    catalogue: CatalogueParams
    folder: FolderParams
    objaverse: ObjaverseParams


# --------------------------------------------------------------------------- scenes


class SceneSetParams(_Section):
    count: int = Field(ge=1, description="Number of scenes (one object each).")
    views: int = Field(ge=2, description="Rendered views per scene.")
    test_views: int = Field(ge=0, description="Of those, views held out as the scene's test split.")

    @model_validator(mode="after")
    def _test_below_views(self) -> "SceneSetParams":
        if self.test_views >= self.views:
            raise ValueError(f"test_views ({self.test_views}) must be below views ({self.views})")
        return self


class EvalSetParams(SceneSetParams):
    """A scene set the NeRF fits run on (``scenes.heldout``: test scenes; ``scenes.validation``:
    validation scenes), rendered from objects or copied from the user's own scene folders."""

    source: Literal["render", "folder"] = Field(
        "render", description="'render': scenes rendered from held-out objects into data/scenes/<set> (count, views, "
        "test_views apply); 'folder': copy your own scenes from the set's folder (only read, never written)."
    )
    folder: str | None = Field(
        None, description="With source 'folder': a folder whose subfolders are scenes (nerfstudio transforms.json or "
        "NeRF-synthetic transforms_*.json, each with a train and a test split). Only read, never written or deleted."
    )

    @model_validator(mode="after")
    def _folder_given(self) -> "EvalSetParams":
        if self.source == "folder" and not self.folder:
            raise ValueError("source is 'folder' but folder is empty")
        return self


SCENE_SETS = ("train", "validation", "heldout")
"""The scene sets (keys of ``scenes``, folders of ``data/scenes``): training scenes for the AEs, validation
scenes to choose hyper-parameters on, test (held-out) scenes for the tables."""


class ScenesParams(_Section):
    resolution: int = Field(ge=8, le=2048, description="Image width and height in pixels.")
    supersample: int = Field(ge=1, le=8, description="Rays per pixel per axis (anti-aliasing).")
    background: tuple[float, float, float] = Field(description="RGB background in [0, 1].")
    object_box: float = Field(gt=0, description="Longest side of each object after normalisation.")
    radius: float = Field(gt=0, description="Camera distance from the object centre.")
    fov_deg: float = Field(gt=1, lt=170, description="Horizontal field of view in degrees.")
    elevation_deg: tuple[float, float] = Field(
        description="Camera elevation band in degrees above the ground plane, (min, max)."
    )
    train: SceneSetParams = Field(description="Scenes that train the autoencoders.")
    heldout: EvalSetParams = Field(
        description="Test scenes: the per-scene NeRF fits on them make every table (source 'folder': your own scenes).")
    validation: EvalSetParams = Field(
        description="Validation scenes, disjoint from the test and training objects (from the held-out categories): "
        "hyper-parameters are chosen on them (the tune_nerf stage, tuning:), never on the test scenes; no table "
        "shows them.")

    @model_validator(mode="after")
    def _check(self) -> "ScenesParams":
        lo, hi = self.elevation_deg
        if not -90.0 <= lo <= hi <= 90.0:
            raise ValueError(f"elevation_deg must satisfy -90 <= min <= max <= 90, got {list(self.elevation_deg)}")
        if any(not 0.0 <= c <= 1.0 for c in self.background):
            raise ValueError(f"background values must lie in [0, 1], got {list(self.background)}")
        for name in ("heldout", "validation"):
            if getattr(self, name).test_views < 1:
                raise ValueError(f"{name}.test_views must be >= 1: NeRF fits are evaluated on held-out views")
        return self


def scene_render_keys() -> list[str]:
    """The ``scenes`` keys every scene set is rendered with (dotted), i.e. all but the sets' own sections."""
    return [f"scenes.{k}" for k in ScenesParams.model_fields if k not in SCENE_SETS]


# --------------------------------------------------------------------------- photos


class PhotosParams(_Section):
    sources: list[Literal["skimage", "sklearn", "matplotlib", "opencv-doc", "mate-backgrounds", "folder"]] = Field(
        min_length=1, description="Photo sources; 'folder' reads photos.folder (e.g. an ImageNet subset)."
    )
    folder: str | None = Field(description="Folder of .jpg/.png photos (used with source 'folder').")
    crops_per_photo: int = Field(ge=1, description="Random square crops taken from each photo.")
    test_fraction: float = Field(ge=0.0, lt=1.0, description="Fraction of photos (not crops) held out.")
    min_crop_fraction: float = Field(gt=0.0, le=1.0, description="Smallest crop side / photo short side.")

    @model_validator(mode="after")
    def _folder_given(self) -> "PhotosParams":
        if "folder" in self.sources and not self.folder:
            raise ValueError("photos.sources contains 'folder' but photos.folder is empty")
        return self


# --------------------------------------------------------------------------- autoencoders


class ArchitectureParams(_Section):
    block_out_channels: list[int] = Field(min_length=1, description="Channels per level; n levels give 2^(n-1) downsampling.")
    layers_per_block: int = Field(ge=1)
    latent_channels: int = Field(ge=1)
    norm_num_groups: int = Field(ge=1, description="GroupNorm groups; must divide every block width.")


class AutoencoderParams(_Section):
    pretrained: str | None = Field(
        description="null: train the standard AE here. Else a local diffusers folder or a hub id "
        "(e.g. ostris/vae-kl-f8-d16; needs the network)."
    )
    architecture: ArchitectureParams = Field(description="Used when pretrained is null.")
    normalizer_scale: Annotated[float, Field(gt=0)] | Literal["auto"] = Field(
        description="s in norm(z) = tanh(s z). A number (paper code: 0.02), or auto: calibrated per AE "
        "(train-ae on its training-scene views, import-ae on --calibrate-on images) so the normalised "
        "latents' std is normalizer_target_std; recorded in the AE folder and used by every later stage."
    )
    normalizer_target_std: float = Field(
        gt=0, lt=1,
        description="Std of tanh(s z) that normalizer_scale auto aims at. 0.1: the paper's SD-VAE latents "
        "(std about 1/0.18215) at s = 0.02.",
    )
    normalizer_calibration_images: int = Field(
        ge=1, description="At most this many images (evenly spaced) are encoded to calibrate s and to log latent stats."
    )
    perceptual: Literal["auto", "lpips", "stlpips"] = Field(
        description="auto: LPIPS (alex) when its backbone is cached, else ST-LPIPS (alex). Never random."
    )


class LossWeightsAE(_Section):
    mse: float = Field(ge=0)
    perceptual: float = Field(ge=0)
    kl: float = Field(ge=0)


class TrainAEParams(_Section):
    steps: int = Field(ge=0, description="Optimisation steps of the standard AE (0 only with a pretrained AE).")
    batch_size: int = Field(ge=1)
    photo_fraction: float = Field(ge=0, le=1, description="Share of each batch drawn from real photos.")
    lr: float = Field(gt=0)
    lr_decay: float = Field(gt=0, le=1, description="Exponential decay factor per step.")
    initial_logvar: float | None = Field(
        description="Start the VAE posterior narrow (log-variance of quant_conv's output); null: diffusers' init."
    )
    loss: LossWeightsAE
    checkpoint_every: int = Field(ge=1)


class TriplaneParams(_Section):
    resolution: int = Field(ge=4, description="Plane side in cells (paper: 64).")
    features: int = Field(ge=1, description="Feature channels per plane (paper: 32).")
    hidden: int = Field(ge=4, description="Width of the shared decoder MLP.")
    coarse_samples: int = Field(ge=2, description="Stratified samples per ray.")
    fine_samples: int = Field(ge=0, description="Importance samples per ray.")
    init_std: float = Field(gt=0, description="Std of the planes' normal initialisation (reference: 1).")


class WarmupParams(_Section):
    steps: int = Field(ge=0)
    views_per_batch: int = Field(ge=1)
    lr: float = Field(gt=0, description="Tri-planes and MLP (paper: 1e-3).")
    lr_decay: float = Field(
        gt=0, le=1, description="Learning-rate factor per epoch (one pass over the training views: "
        "ceil(views / views_per_batch) steps), applied at epoch ends as in the reference (0.988032).")
    freeze_mlp_fraction: float = Field(
        ge=0, le=1, description="The shared MLP's lr is 0 for this last fraction of the warm-up (reference: 0.1).")
    latent: float = Field(ge=0, description="Weight of L_latent.")
    tv: float = Field(ge=0, description="Weight of the tri-plane TV, computed as the reference does: summed over "
                      "the batch's views, divided by (H + W) (TriplaneField.tv_batch).")


class JointParams(_Section):
    steps: int = Field(ge=0)
    views_per_batch: int = Field(ge=1)
    photos_per_batch: int = Field(ge=0)
    lr_ae: float = Field(gt=0, description="Encoder and decoder (paper: 5e-5).")
    lr_triplane: float = Field(gt=0, description="Tri-planes and MLP (paper: 1e-4).")
    lr_decay: float = Field(gt=0, le=1, description="Learning-rate factor per epoch (see igae.warmup.lr_decay); "
                            "also the fine-tuning ablation's.")
    posterior: Literal["sample", "mean"] = Field(
        description="Latent of a view or photo in the AE terms: a seeded posterior sample (the reference's "
        "latent_dist.sample()) or the posterior mean. Also the fine-tuning ablation's.")
    latent: float = Field(ge=0, description="Weight of L_latent = MSE(norm(z), render).")
    rgb: float = Field(ge=0, description="Weight of L_rgb, an MSE on [-1, 1] images as in the reference.")
    ae_synthetic: float = Field(ge=0, description="Weight of MSE(D(z), x) on scene views, [-1, 1] images.")
    ae_real_mse: float = Field(ge=0, description="Weight of MSE(D(z), x) on real photos, [-1, 1] images.")
    ae_real_perceptual: float = Field(ge=0, description="Weight of the perceptual distance on real photos.")
    tv: float = Field(ge=0, description="Weight of the tri-plane TV (see igae.warmup.tv).")


FINETUNE_JOINT_KEYS = ("steps", "views_per_batch", "photos_per_batch", "lr_ae", "lr_decay", "posterior",
                       "ae_synthetic", "ae_real_mse", "ae_real_perceptual")
"""The ``igae.joint`` keys the fine-tuning ablation reads (the joint phase without tri-planes: no
``latent``, ``rgb``, ``tv`` or ``lr_triplane``)."""


class IGAEParams(_Section):
    triplane: TriplaneParams
    warmup: WarmupParams
    joint: JointParams
    checkpoint_every: int = Field(ge=1)
    render_scenes: int = Field(ge=0, description="Training scenes whose decoded tri-plane renders are saved at the end.")
    snapshots: list[int] = Field(
        description="Joint steps after which the AE is also saved (out/snapshots/joint_<k>/), for budget studies: "
        "the schedule does not depend on joint.steps, so a snapshot equals a run with joint.steps = k.")

    @model_validator(mode="after")
    def _snapshots_within_joint(self) -> "IGAEParams":
        bad = [k for k in self.snapshots if not 0 < k <= self.joint.steps]
        if bad:
            raise ValueError(f"igae.snapshots {bad} must lie in 1..igae.joint.steps ({self.joint.steps})")
        return self


class TrainingParams(_Section):
    device: Literal["auto", "cpu", "cuda"] = Field(description="auto: cuda when available.")
    threads: int = Field(
        ge=0,
        description="torch CPU threads per process; 0: all cores. Set explicitly by every stage (not taken "
        "from OMP_NUM_THREADS), because CPU results are bit-identical only for the same thread count.",
    )
    processes: int = Field(ge=1, description="Data-parallel processes for AE/IG-AE training (one per GPU on a GPU node).")
    nan_policy: Literal["stop", "skip"] = Field(description="NaN/inf loss or gradient: stop, or skip the step and count it.")
    precision: Literal["fp32", "tf32", "bf16", "fp16"] = Field(
        description="Arithmetic of training steps on CUDA (CPU always runs fp32). fp32: full float32, TF32 off in "
        "matmuls and cuDNN convolutions (GPU results then differ from CPU only in the last bits); tf32: float32 "
        "storage with TF32 matmuls/convolutions (faster on Ampere+); bf16 / fp16: autocast (fp16 with a gradient "
        "scaler), TF32 on.")
    jobs_per_gpu: int = Field(
        ge=1, description="Jobs that share one GPU at a time under Snakemake (fits, evaluations): the local 'gpu_slots' "
        "resource is GPUs x this, and each job claims a free slot's GPU.")


class EvalAEParams(_Section):
    max_images: int = Field(ge=1, description="At most this many held-out photos and scene views per AE.")


# --------------------------------------------------------------------------- per-scene NeRF fits

class NerfMethodParams(_Section):
    lr: float = Field(gt=0, description="Adam learning rate of the field (stage 1 and the RGB fit).")
    lr_stage2: float = Field(gt=0, description="Field learning rate during the latent fit's RGB alignment.")
    adam_eps: float = Field(gt=0, description="Adam epsilon (Instant-NGP: 1e-15 for the tiny hash-table gradients).")
    hyper: dict[str, Any] = Field(description="Constructor hyper-parameters of the method (see igae.fields.registry).")
    regularizers: dict[str, float] = Field(description="Weight of each of the method's regulariser terms, e.g. {tv: 1e-4}.")


class OccupancyParams(_Section):
    resolution: int = Field(ge=4, description="Occupancy grid cells per axis.")
    update_every: int = Field(ge=1, description="Steps between grid refreshes.")
    threshold: float = Field(gt=0, description="Opacity of one marching step above which a cell is occupied.")
    warmup_steps: int = Field(ge=0, description="Steps during which every cell is re-evaluated at each update.")
    backend: Literal["auto", "nerfacc", "torch"] = Field(
        description="Ray traversal on CUDA. auto: nerfacc's CUDA kernel when its extension loads or builds, else the "
        "torch march with one warning naming the cause; nerfacc: that kernel or a clear error; torch: the torch march "
        "(the only one on CPU).")


class NerfStage1Params(_Section):
    steps: int = Field(ge=1, description="Latent supervision steps (also the RGB fit's steps, with stage2.steps).")
    rays_per_batch: int = Field(ge=1, description="Latent pixels (rays) per step, drawn from all training views.")


class NerfStage2Params(_Section):
    steps: int = Field(ge=0, description="RGB-alignment steps: whole latent views decoded by a per-scene decoder copy.")
    views_per_batch: int = Field(ge=1, description="Whole training views per step.")
    lr_decoder: float = Field(gt=0, description="Learning rate of the per-scene decoder copy at the start of stage 2.")
    lr_decoder_end_factor: float = Field(
        gt=0, le=1, description="The decoder copy's lr decays exponentially per step to lr_decoder x this at the "
        "end of stage 2 (latent-nerfstudio: 0.99969 per step over 15000 steps = 0.0095).")
    latent_weight: float = Field(ge=0, description="Weight the stage-1 latent loss keeps in stage 2 (paper code: 0).")


class NerfRGBParams(_Section):
    rays_per_batch: int = Field(ge=1, description="RGB pixels (rays) per step of the RGB baseline.")


class NerfEvalParams(_Section):
    curve_points: int = Field(ge=1, description="Test-view PSNR evaluations during training (PSNR-vs-time curve).")
    rgb_curve_points: int = Field(
        ge=1, description="curve_points for RGB fits only: the summary reads an RGB fit's PSNR at a latent fit's "
        "training time off this curve (linear in time, never extrapolated), so it needs more points than the "
        "latent curves. Each point costs one render of the test views.")
    rgb_curve_until: float = Field(
        gt=0, le=1, description="RGB fits evaluate their curve at k / rgb_curve_points of the steps only up to this "
        "fraction, then at the end: the latent fits' training times, where the summary reads the RGB curve, lie "
        "early in an RGB fit's (1: evenly over the whole fit).")
    timing_frames: int = Field(ge=1, description="Test frames timed per fit, after one warm-up frame.")
    turntable_frames: int = Field(ge=0, description="Frames of the orbit turntable GIF (0: none).")
    turntable_scenes: int | None = Field(
        ge=1, description="A scene set's fits render the turntable for its first N scenes in name order only (the "
        "report shows the first scene's; `igae render` renders any fit's new poses later); null: every scene. A "
        "single-scene fit (--scene) always renders it.")
    turntable_elevation_deg: float = Field(gt=-90, lt=90, description="Elevation of the turntable orbit.")
    chunk: int = Field(ge=0, description="Rays per field call when rendering test views (0: device default).")


class NerfEqualTimeParams(_Section):
    extra_stage2_steps: int = Field(
        ge=0, description="Equal wall-clock comparison: after its scheduled steps and their test evaluation, a "
        "latent fit continues RGB alignment (same optimiser state, the decoder copy's lr held at its final value) "
        "for this many steps and is evaluated again (metrics.json: equal_time). Pick it so the latent fit's training "
        "time reaches the RGB fit's. 0: off. The equal-steps results are the same either way.")


class NerfParams(_Section):
    methods: list[str] = Field(
        min_length=1, description="Methods the workflow fits on every held-out scene (names in igae.fields.registry).")
    autoencoders: list[Literal[AE_NAMES]] = Field(  # type: ignore[valid-type]
        description="Latent spaces the workflow fits in (the RGB baseline is always fitted too).")
    threads: int = Field(ge=0, description="CPU threads per fit (fits run in parallel, e.g. one per core); 0: all cores.")
    snakemake_fit_jobs: Literal["scene", "scene_set"] = Field(
        description="How Snakemake groups the fits into jobs: scene (one job per scene x space x AE seed x method: "
        "a cluster runs them all at once) or scene_set (one job per space x AE seed x method that fits the scenes in "
        "turn, as DVC's stages do: a process's start-up, imports and metric networks are paid once per job, not per "
        "scene). The fits and their folders are the same either way.")
    sampler: Literal["occupancy", "coarse_to_fine"] = Field(
        description="occupancy: empty-space skipping (nerfacc on CUDA, torch on CPU); coarse_to_fine: NeRF's hierarchical sampling.")
    samples_per_ray: int = Field(ge=2, description="Samples per ray (coarse_to_fine: split half coarse, half fine).")
    posterior: Literal["sample", "mean"] = Field(
        description="Latent fits' cached targets: one seeded posterior sample per training view (latent-nerfstudio) "
        "or the posterior mean.")
    occupancy: OccupancyParams
    stage1: NerfStage1Params
    stage2: NerfStage2Params
    rgb: NerfRGBParams
    eval: NerfEvalParams
    equal_time: NerfEqualTimeParams
    method_params: dict[str, NerfMethodParams] = Field(
        description="Per-method learning rates, hyper-parameters and regulariser weights (one entry per method "
        "of igae.fields.registry that nerf.methods may name).")

    @model_validator(mode="after")
    def _check_methods(self) -> "NerfParams":
        for where, names in (("methods", self.methods), ("method_params", list(self.method_params))):
            unknown = [m for m in names if m not in METHOD_NAMES]
            if unknown:
                raise ValueError(f"nerf.{where} names unknown method(s) {unknown}; the registry "
                                 f"(igae/fields/registry.py) has {list(METHOD_NAMES)}")
        missing = [m for m in self.methods if m not in self.method_params]
        if missing:
            raise ValueError(f"nerf.methods lists {missing} but nerf.method_params has no entry for them")
        return self


WORKFLOW_NERF_KEYS = ("methods", "autoencoders", "method_params", "snakemake_fit_jobs")
"""Keys of ``nerf`` that say which fits the workflow runs (and each method's own entry), not how a fit runs."""


def nerf_fit_keys() -> list[str]:
    """The ``nerf`` keys every fit reads, whatever its method (dotted: ``nerf.stage1``, ...)."""
    return [f"nerf.{k}" for k in NerfParams.model_fields if k not in WORKFLOW_NERF_KEYS]


# --------------------------------------------------------------------------- tuning on validation scenes


class TuningParams(_Section):
    enabled: bool = Field(
        description="Run the tune_nerf stage's fits. false (default): the stage only records that it did not run, "
        "so the default pipeline spends no time on tuning.")
    param: str = Field(
        description="Dotted params key a NeRF fit reads (nerf.*, e.g. nerf.stage2.latent_weight or "
        "nerf.method_params.kplanes.lr) whose values are compared on the validation scenes.")
    values: list[Any] = Field(min_length=1, description="Values of tuning.param to fit with (one set of fits each).")
    spaces: list[Literal[(RGB_SPACE, *AE_NAMES)]] = Field(  # type: ignore[valid-type]
        min_length=1, description="Spaces fitted: rgb and/or autoencoders (the first of ae_seeds' AEs).")
    methods: list[str] = Field(min_length=1, description="NeRF methods fitted (names in igae.fields.registry).")


class BudgetParams(_Section):
    methods: list[str] = Field(
        min_length=1, description="NeRF methods the budget study fits on each IG-AE snapshot (igae.snapshots); "
        "the study compares them with the standard AE's fits of the same methods (names in igae.fields.registry).")


# --------------------------------------------------------------------------- root


class Params(_Section):
    preset: str = Field(description="Preset applied over params.yaml: 'default' or a file presets/<name>.yaml.")
    seed: int = Field(ge=0, description="Seed of every random choice, except the AE stages' (ae_seeds).")
    ae_seeds: list[Annotated[int, Field(ge=0)]] = Field(
        min_length=1, description="The AE stages (train_ae, train_igae, finetune_ae, eval_ae) and the latent fits run "
        "once per seed: the AEs of seed k use k wherever they use a seed (init, batches, draws), in "
        "results/autoencoders/<ae>_s<k>. RGB fits and the fits' own draws keep seed. DVC's loops read this list from "
        "params.yaml itself (presets cannot change it for DVC).")
    assets: AssetsParams
    scenes: ScenesParams
    photos: PhotosParams
    training: TrainingParams
    autoencoder: AutoencoderParams
    train_ae: TrainAEParams
    igae: IGAEParams
    eval_ae: EvalAEParams
    nerf: NerfParams
    tuning: TuningParams
    budget: BudgetParams

    @model_validator(mode="after")
    def _check(self) -> "Params":
        if len(set(self.ae_seeds)) != len(self.ae_seeds):
            raise ValueError(f"ae_seeds must not repeat a seed, got {self.ae_seeds}")
        for key, methods in (("tuning.methods", self.tuning.methods), ("budget.methods", self.budget.methods)):
            missing = [m for m in methods if m not in self.nerf.method_params]
            if missing:
                raise ValueError(f"{key} lists {missing} but nerf.method_params has no entry for them")
        arch = self.autoencoder.architecture
        if self.autoencoder.pretrained is None:
            factor = 2 ** (len(arch.block_out_channels) - 1)
            if self.scenes.resolution % factor:
                raise ValueError(
                    f"scenes.resolution ({self.scenes.resolution}) must be divisible by the AE's downsampling "
                    f"factor {factor} (autoencoder.architecture.block_out_channels has "
                    f"{len(arch.block_out_channels)} levels)"
                )
            if self.train_ae.steps == 0:
                raise ValueError("train_ae.steps is 0 but autoencoder.pretrained is null: nothing would train the AE")
            bad = [c for c in arch.block_out_channels if c % arch.norm_num_groups]
            if bad:
                raise ValueError(
                    f"autoencoder.architecture.norm_num_groups ({arch.norm_num_groups}) must divide every "
                    f"block width; it does not divide {bad}"
                )
        a = self.assets
        if a.source == "folder" and not a.folder.path:
            raise ValueError("assets.source is 'folder' but assets.folder.path is empty")
        if a.source == "objaverse":
            need = self.scenes.train.count + self.scenes.heldout.count + self.scenes.validation.count
            if len(a.objaverse.uids) < need:
                raise ValueError(
                    f"assets.objaverse.uids lists {len(a.objaverse.uids)} objects; "
                    f"scenes.train.count + scenes.heldout.count + scenes.validation.count needs {need}"
                )
        return self


# --------------------------------------------------------------------------- loading


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``override`` merged in recursively (mappings merge, other values replace)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError("file not found", path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML: {exc}", path) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"must hold a mapping of keys, got {type(data).__name__}", path)
    return data


def available_presets(params_path: str | Path) -> list[str]:
    """Names of the presets beside a params file (``presets/<name>.yaml``), plus 'default'."""
    folder = Path(params_path).parent / "presets"
    return ["default"] + sorted(p.stem for p in folder.glob("*.yaml") if p.stem != "default")


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise InputError(f"override {dotted!r}: {key!r} is not a section")
    node[keys[-1]] = value


def load_params(
    path: str | Path = "params.yaml",
    preset: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Params:
    """Read, merge and validate parameters.

    Args:
        path: the params file.
        preset: preset name overriding the file's ``preset`` key; ``None`` keeps the file's.
        overrides: dotted keys to values (``{"scenes.resolution": 32}``) applied last.

    Raises:
        InputError: unreadable file, unknown preset, or invalid keys/values; the message
            names the file, the dotted key and what is allowed.
    """
    path = Path(path)
    raw = _read_yaml(path)
    name = preset if preset is not None else raw.get("preset", "default")
    if not isinstance(name, str):
        raise InputError(f"key 'preset' must be a string, got {name!r}", path)
    merged = dict(raw)
    source = str(path)
    preset_file = path.parent / "presets" / f"{name}.yaml"
    if preset_file.is_file():  # presets/default.yaml, where present, overrides nothing
        merged = deep_merge(merged, _read_yaml(preset_file))
        source = f"{path} + {preset_file}"
    elif name != "default":
        raise InputError(
            f"preset {name!r} does not exist (no {preset_file}); available: "
            + ", ".join(available_presets(path)),
            path,
        )
    merged["preset"] = name
    for dotted, value in (overrides or {}).items():
        _set_dotted(merged, dotted, value)
    try:
        return Params.model_validate(merged)
    except ValidationError as exc:
        raise InputError(f"invalid parameters ({source}):\n" + format_validation_error(exc)) from None


def tuning_variants(params: Params) -> list[tuple[Any, Params]]:
    """Per value of ``tuning.values``, the params with ``tuning.param`` set to it, validated.

    Raises:
        InputError: ``tuning.param`` is not a key a NeRF fit reads (``nerf.*`` but the workflow's lists),
            names another method than ``tuning.methods``, or a value is invalid for it (naming the value).
    """
    t = params.tuning
    readable = [*nerf_fit_keys(), "nerf.method_params"]
    tree = params.model_dump(mode="json")
    node: Any = tree
    for part in t.param.split("."):
        if not isinstance(node, dict) or part not in node:
            raise InputError(f"tuning.param {t.param!r}: params have no such key")
        node = node[part]
    if not any(t.param.startswith(k + ".") or t.param == k for k in readable) or t.param == "nerf.method_params":
        raise InputError(f"tuning.param {t.param!r} is not a key a NeRF fit reads: use a key under one of {readable}")
    parts = t.param.split(".")
    if parts[:2] == ["nerf", "method_params"] and parts[2] not in t.methods:
        raise InputError(f"tuning.param {t.param!r} belongs to method {parts[2]!r}, which tuning.methods {t.methods} "
                         "does not fit")
    variants = []
    for i, value in enumerate(t.values):
        variant = copy.deepcopy(tree)
        _set_dotted(variant, t.param, value)
        try:
            variants.append((value, Params.model_validate(variant)))
        except ValidationError as exc:
            raise InputError(f"tuning.values[{i}] = {value!r} is not a valid {t.param}:\n"
                             + format_validation_error(exc)) from None
    return variants


def effective_params_yaml(params: Params) -> str:
    """The effective params (file + preset, validated) as YAML: what every stage reads."""
    return yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False, width=10_000)


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: ``  key.path: message (got value)``."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        kind = err["type"]
        if kind == "extra_forbidden":
            parent = err["loc"][:-1]
            allowed = _allowed_keys(parent)
            lines.append(f"  {loc}: unknown key" + (f" (allowed here: {', '.join(allowed)})" if allowed else ""))
        elif kind == "missing":
            lines.append(f"  {loc}: required key is missing")
        else:
            got = err.get("input")
            shown = "" if isinstance(got, dict) else f" (got {got!r})"
            lines.append(f"  {loc}: {err['msg']}{shown}")
    return "\n".join(lines)


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = Params
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None or not isinstance(field.annotation, type) or not issubclass(field.annotation, BaseModel):
            return []
        model = field.annotation
    return list(model.model_fields)


def params_json_schema() -> dict[str, Any]:
    """JSON schema of params.yaml (after presets), for Snakemake's ``validate``."""
    schema = Params.model_json_schema()
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    schema["description"] = "IG-AE pipeline parameters (generated from igae/config.py by 'igae schema')."
    return schema
