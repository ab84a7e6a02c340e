"""A finished per-scene fit on disk: :func:`write_fit` writes its folder, :func:`load_fit` reads it.

A fit folder holds::

    metrics.json     metrics, timings, params, provenance (and the scene transform, if any)
    per_view.csv     per test view: psnr, ssim, perceptual
    curve.csv        test PSNR vs training time
    losses.csv       per-step losses (when the fit trained here)
    renders/<view>.png   render | truth | error (latent fits: a second row with the latents)
    turntable.gif    an orbit of new poses
    field.pt         the field and what rebuilds it (method, hyper-parameters, channels,
                     activation, box, background, sampler, scene transform)
    decoder.pt       latent fits: the per-scene AE copy (its fine-tuned decoder), with the
                     diffusers config and normaliser that rebuild it without the AE folder
    latents.pt       latent fits: rendered and encoded normalised latents of the test views

Every tensor is saved on the CPU, so a fit made on a GPU loads on a machine without one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from igae.errors import InputError
from igae.io import atomic_dir, write_json_atomic

METRICS_FILE = "metrics.json"
PER_VIEW_FILE = "per_view.csv"
CURVE_FILE = "curve.csv"
LOSSES_FILE = "losses.csv"
RENDERS_DIR = "renders"
TURNTABLE_FILE = "turntable.gif"
FIELD_FILE = "field.pt"
DECODER_FILE = "decoder.pt"
LATENTS_FILE = "latents.pt"
FIT_ENTRIES = (METRICS_FILE, PER_VIEW_FILE, CURVE_FILE, LOSSES_FILE, RENDERS_DIR, TURNTABLE_FILE, FIELD_FILE,
               DECODER_FILE, LATENTS_FILE)
"""Every entry :func:`write_fit` may put in a fit folder."""


@dataclass
class SamplerSpec:
    """What builds a fit's sampler over the field's box (``nerf.sampler`` and its settings)."""

    kind: str  # "occupancy" | "coarse_to_fine"
    samples_per_ray: int
    occupancy_resolution: int
    occupancy_backend: str = "auto"  # "auto" | "torch" | "nerfacc" (nerf.occupancy.backend)

    @classmethod
    def from_params(cls, cfg: Any) -> "SamplerSpec":
        """From a :class:`~igae.config.NerfParams`."""
        return cls(cfg.sampler, cfg.samples_per_ray, cfg.occupancy.resolution, cfg.occupancy.backend)

    def build(self, aabb: Tensor, device: torch.device | str) -> Any:
        """The sampler (an empty occupancy grid, or coarse-to-fine) over ``aabb`` ``(2, 3)``."""
        from igae.fields.occupancy import OccupancySampler
        from igae.fields.sampling import CoarseToFineSampler

        aabb = aabb.detach().to(device)
        backend = self.occupancy_backend
        if backend == "nerfacc" and torch.device(device).type != "cuda":
            backend = "auto"  # a GPU fit rendered on a CPU: the same grid, marched in torch
        if self.kind == "occupancy":
            return OccupancySampler(aabb, resolution=self.occupancy_resolution, samples_per_ray=self.samples_per_ray,
                                    backend=backend, device=device)
        half = self.samples_per_ray // 2
        return CoarseToFineSampler(aabb, n_coarse=self.samples_per_ray - half, n_fine=half)


@dataclass
class FieldSpec:
    """What rebuilds a fit's field and renders it.

    Attributes:
        method: registry name (``nerf.methods``); hyper: its hyper-parameters.
        out_channels: ``C``; output_activation: ``sigmoid`` (RGB) or ``tanh`` (latents).
        aabb_half: half-size of the cube, centred at the origin of the fit's frame.
        background: ``(C,)`` values behind the scene, in the field's space.
        sampler: the sampler's settings.
        scene_transform: ``4x4`` similarity ``T`` from the scene's input frame to the fit's frame
            (a camera ``c2w`` of the input becomes ``T @ c2w`` with its rotation re-orthonormalised,
            see :func:`igae.data.scene_box.apply_transform`), or ``None`` for the identity.
    """

    method: str
    hyper: dict[str, Any]
    out_channels: int
    output_activation: str
    aabb_half: float
    background: list[float]
    sampler: SamplerSpec
    scene_transform: list[list[float]] | None = None


def _cpu(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach().cpu() for k, v in state.items()}


def write_fit(out: Path, metrics: dict[str, Any], spec: FieldSpec, field: torch.nn.Module, sampler: Any,
              ae: Any | None, ae_dir: Path | None, per_view: list[dict[str, Any]], curve: list[dict[str, Any]],
              write_renders: Callable[[Path], None], turntable: Tensor | None, latents: dict[str, Any] | None,
              losses_csv: Path | None) -> None:
    """Write a fit folder atomically (``out`` is replaced whole; a crash leaves the old one).

    Args:
        metrics: the ``metrics.json`` content.
        spec: what rebuilds the field.
        field: the fitted field; sampler: its sampler (an occupancy grid's state is saved).
        ae: latent fits: the per-scene AE copy (its decoder fine-tuned), else ``None``;
            ae_dir: the shared AE folder it was copied from (recorded).
        per_view: rows ``{"view", metric: value}``; curve: rows of the PSNR-vs-time curve.
        write_renders: ``folder -> None``, writes the test renders (``renders/<view>.png``).
        turntable: ``(F, 3, H, W)`` frames in [0, 1], or ``None``.
        latents: latent fits: ``{"views", "rendered" (M, C, h, w), "encoded" (M, C, h, w)}``.
        losses_csv: the training loop's loss file, copied when it exists.
    """
    from igae.eval.ae_quality import write_per_image_csv
    from igae.nerf.evaluate import save_gif

    with atomic_dir(out) as tmp:
        write_json_atomic(tmp / METRICS_FILE, metrics)
        write_per_image_csv(tmp / PER_VIEW_FILE, per_view)
        write_per_image_csv(tmp / CURVE_FILE, [dict(r) for r in curve])
        write_renders(tmp / RENDERS_DIR)
        if turntable is not None:
            save_gif(tmp / TURNTABLE_FILE, turntable)
        record = asdict(spec)
        torch.save({**record, "state_dict": _cpu(field.state_dict()),
                    "sampler_state": _cpu(getattr(sampler, "state_dict", dict)())}, tmp / FIELD_FILE)
        if latents is not None:  # for the latent-consistency figure
            torch.save({k: v.detach().cpu() if isinstance(v, Tensor) else v for k, v in latents.items()},
                       tmp / LATENTS_FILE)
        if ae is not None:  # the per-scene decoder copy (stage 2); the shared AE is untouched
            torch.save({"decoder_state_dict": _cpu(ae.state_dict()), "autoencoder": str(ae_dir) if ae_dir else None,
                        "vae_config": {k: v for k, v in dict(ae.vae.config).items() if not k.startswith("_")},
                        "normalizer": {"scale": ae.normalizer.scale, "eps": ae.normalizer.eps}}, tmp / DECODER_FILE)
        if losses_csv is not None and losses_csv.exists():
            (tmp / LOSSES_FILE).write_bytes(losses_csv.read_bytes())


@dataclass
class FitModel:
    """A fit rebuilt for rendering: field, sampler, background and (latent fits) the AE copy.

    Attributes:
        spec: the :class:`FieldSpec` it was built from.
        field: the field in eval mode; sampler: its sampler (occupancy grid restored).
        background: ``(C,)`` on the field's device.
        ae: the per-scene autoencoder copy with the fit's decoder (latent fits), else ``None``.
    """

    spec: FieldSpec
    field: Any
    sampler: Any
    background: Tensor
    ae: Any | None

    @property
    def downsampling(self) -> int:
        """Image pixels per rendered pixel (the AE's factor; 1 for RGB fits)."""
        return 1 if self.ae is None else self.ae.downsampling

    def decode(self, rendered: Tensor) -> Tensor:
        """``(B, C, h, w)`` normalised latents -> ``(B, 3, H, W)`` RGB (unclamped), with the fit's decoder."""
        assert self.ae is not None, "RGB fits have nothing to decode"
        return self.ae.decode(self.ae.normalizer.denormalize(rendered))


class FitArtifact:
    """A fit folder read back by :func:`load_fit`. Small files are read at once, tensors on demand.

    Attributes:
        root: the folder; metrics: ``metrics.json``.
    """

    def __init__(self, root: Path, metrics: dict[str, Any], map_location: str | torch.device) -> None:
        self.root = root
        self.metrics = metrics
        self.map_location = map_location

    @property
    def method(self) -> str:
        return str(self.metrics["method"])

    @property
    def space(self) -> str:
        return str(self.metrics["space"])

    @property
    def is_latent(self) -> bool:
        return self.space != "rgb"

    @property
    def view_names(self) -> list[str]:
        """Test views, in the order of ``per_view.csv`` and ``latents.pt``."""
        return list(self.metrics["test_views"])

    def per_view(self) -> pd.DataFrame:
        """``per_view.csv``: one row per test view (``view``, ``psnr``, ``ssim``, ``perceptual``)."""
        return pd.read_csv(self.root / PER_VIEW_FILE)

    def curve(self) -> pd.DataFrame:
        return pd.read_csv(self.root / CURVE_FILE)

    def test_render(self, view: str) -> tuple[np.ndarray, np.ndarray]:
        """The render and the ground truth of one test view, ``(H, W, 3)`` uint8 each, cut from
        ``renders/<view>.png`` (render | truth | error on its first row)."""
        from PIL import Image

        width, height = (self.metrics["crop"][::-1] if self.metrics.get("crop") else self.metrics["image_size"])
        with Image.open(self.root / RENDERS_DIR / f"{view}.png") as im:
            strip = np.asarray(im.convert("RGB"))
        return strip[:height, :width], strip[:height, width : 2 * width]

    def latents(self) -> dict[str, Any] | None:
        """``latents.pt`` (latent fits): ``views``, ``rendered`` and ``encoded`` ``(M, C, h, w)``; else ``None``."""
        path = self.root / LATENTS_FILE
        return torch.load(path, map_location=self.map_location) if path.is_file() else None

    def field_spec(self) -> tuple[FieldSpec, dict[str, Any]]:
        """The :class:`FieldSpec` and the raw ``field.pt`` record."""
        path = self.root / FIELD_FILE
        record = torch.load(path, map_location=self.map_location)
        try:
            sampler = record.get("sampler")
            if sampler is None:  # fits written before the sampler was recorded: take it from metrics.json
                sampler = _sampler_from_metrics(self.metrics)
            background = record.get("background")
            if background is None:
                background = self._background_of_old_fit(record["out_channels"])
            spec = FieldSpec(method=record["method"], hyper=dict(record["hyper"]),
                             out_channels=int(record["out_channels"]), output_activation=record["output_activation"],
                             aabb_half=float(record["aabb_half"]), background=[float(v) for v in background],
                             sampler=SamplerSpec(**sampler), scene_transform=record.get("scene_transform"))
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"unreadable fit record ({type(err).__name__}: {err})", path) from err
        return spec, record

    def _background_of_old_fit(self, channels: int) -> list[float]:
        if channels == 3 and not self.is_latent:
            scene_tf = Path(self.metrics.get("scene_dir", "")) / "transforms.json"
            if scene_tf.is_file():
                bg = json.loads(scene_tf.read_text()).get("igae", {}).get("background")
                if bg is not None:
                    return list(bg)
            return [1.0, 1.0, 1.0]  # the readers' default
        raise InputError("this latent fit predates the recorded background latent: rerun igae fit-nerf",
                         self.root / FIELD_FILE)

    def model(self, device: torch.device | str = "cpu") -> FitModel:
        """Rebuild the field (and, for latent fits, the AE copy with the fit's decoder) on ``device``."""
        from igae.fields.registry import build_field

        spec, record = self.field_spec()
        field = build_field(spec.method, spec.out_channels, spec.aabb_half, spec.output_activation, 0, **spec.hyper)
        field.load_state_dict(record["state_dict"])
        field = field.to(device).eval()
        sampler = spec.sampler.build(field.aabb, device)
        if record.get("sampler_state") and hasattr(sampler, "load_state_dict"):
            sampler.load_state_dict({k: v.to(device) for k, v in record["sampler_state"].items()})
        ae = self._autoencoder(device) if self.is_latent else None
        background = torch.tensor(spec.background, dtype=torch.float32, device=device)
        return FitModel(spec, field, sampler, background, ae)

    def _autoencoder(self, device: torch.device | str) -> Any:
        """The per-scene AE copy: rebuilt from the recorded diffusers config (or, for older fits,
        the shared AE folder) with the saved weights."""
        from igae.autoencoder.model import Autoencoder
        from igae.autoencoder.normalizer import LatentNormalizer

        path = self.root / DECODER_FILE
        if not path.is_file():
            raise InputError(f"latent fit without {DECODER_FILE}", self.root)
        record = torch.load(path, map_location=self.map_location)
        if "vae_config" in record:
            from diffusers import AutoencoderKL

            with torch.random.fork_rng(devices=[]):  # the init is overwritten; keep the caller's RNG
                vae = AutoencoderKL.from_config(record["vae_config"])
            ae = Autoencoder(vae, LatentNormalizer(**record["normalizer"]))
        else:
            ae = Autoencoder.load(Path(record["autoencoder"]) / "model")
        ae.load_state_dict(record["decoder_state_dict"])
        return ae.to(device).eval()

    def autoencoder_folder(self) -> str | None:
        """The shared AE folder the fit's decoder was copied from (as recorded), or ``None``."""
        return self.metrics.get("autoencoder")


def _sampler_from_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    nerf = metrics["params"]["nerf"]
    return {"kind": nerf["sampler"], "samples_per_ray": int(nerf["samples_per_ray"]),
            "occupancy_resolution": int(nerf["occupancy"]["resolution"]),
            "occupancy_backend": nerf["occupancy"].get("backend", "auto")}


def load_fit(folder: str | Path, map_location: str | torch.device = "cpu") -> FitArtifact:
    """Open a fit folder written by :func:`write_fit` (``metrics.json`` is read now, tensors on demand,
    mapped to ``map_location``).

    Raises:
        InputError: the folder or its ``metrics.json`` is missing or unreadable.
    """
    root = Path(folder)
    path = root / METRICS_FILE
    if not path.is_file():
        raise InputError(f"not a fit folder: {METRICS_FILE} is missing (run igae fit-nerf first)", root)
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"unreadable fit metrics ({err})", path) from err
    for key in ("method", "space", "test_views"):
        if key not in metrics:
            raise InputError(f"not a fit's metrics: no {key!r}", path)
    return FitArtifact(root, metrics, map_location)

