"""Bring your own autoencoder: a plain diffusers ``AutoencoderKL`` made into an igae autoencoder,
and the one resolver every stage uses to open whatever ``--ae`` / ``--autoencoder`` names.

An igae autoencoder is a plain one plus a normaliser scale and metadata
(``igae_autoencoder.json``). Importing calibrates the scale (``normalizer_scale: auto``) on
the images given, with the same function ``train-ae`` uses (:mod:`igae.autoencoder.calibration`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from igae.autoencoder.calibration import resolve_normalizer
from igae.autoencoder.loading import diffusers_folder, is_hub_id
from igae.autoencoder.model import IGAE_FILE, Autoencoder
from igae.errors import InputError

log = logging.getLogger(__name__)

MODEL_SUBDIR = "model"  # an AE stage's output folder keeps its autoencoder here

# What an autoencoder's metadata says about where it started (propagated by the stages that
# train on top of it). Only one trained here from autoencoder.architecture must match those params.
ORIGIN_TRAINED = "trained"
ORIGIN_PRETRAINED = "pretrained"
ORIGIN_IMPORTED = "imported"

# Called when the images are needed: (image batches (N_i, 3, H_i, W_i) in [0, 1], what they are).
ImageSource = Callable[[], tuple[Sequence[torch.Tensor], str]]


def import_autoencoder(
    source: str | Path,
    normalizer_scale: float | str,
    target_std: float,
    images: ImageSource | None,
    max_images: int,
    origin: str = ORIGIN_IMPORTED,
    device: torch.device | str = "cpu",
) -> Autoencoder:
    """Load a plain diffusers ``AutoencoderKL`` (folder or hub id) and give it a normaliser.

    Args:
        source: a local diffusers folder (``config.json`` + weights, or a pipeline folder
            with ``vae/``) or a hub id.
        normalizer_scale: a number, or ``"auto"`` to calibrate on ``images``.
        target_std: ``std(tanh(s z))`` aimed at by ``"auto"``.
        images: called once the model has loaded (so a bad source is reported before any
            image is read): ``(N_i, 3, H_i, W_i)`` batches in [0, 1] to calibrate on and to
            measure the latents of, and what they are. None, or no batches: no images (see
            :func:`~igae.autoencoder.calibration.resolve_normalizer`).
        max_images: at most this many are encoded.
        origin: recorded as the metadata's ``origin``.
        device: where the images are encoded.

    Returns:
        the autoencoder (eval mode, on ``device``), ``metadata`` filled: ``origin``, ``imported_from``,
        ``scaling_factor``, ``normalizer_calibration``, ``latent_stats``.
    """
    ae = Autoencoder.from_pretrained(source).to(device)
    groups, described_as = images() if images is not None else (None, "")
    record = resolve_normalizer(ae, normalizer_scale, target_std, groups, described_as, max_images)
    ae.metadata = {
        "origin": origin, "imported_from": str(source), "downsampling": ae.downsampling,
        "latent_channels": ae.latent_channels, "scaling_factor": record["scaling_factor"],
        "normalizer_calibration": record, "latent_stats": record["latent_stats"],
    }
    stats = record["latent_stats"]
    log.info("autoencoder %s: f%d, %d latent channels, scaling_factor %g; normaliser s = %g (%s)%s", source,
             ae.downsampling, ae.latent_channels, record["scaling_factor"], record["scale"], record["method"],
             "" if stats is None else f"; raw latent std {stats['raw_std']:.4g}, normalised std {stats['normalized_std']:.4g}")
    return ae


def origin_of(ae: Autoencoder) -> str:
    """Where ``ae`` started: ``trained`` (from params' architecture), ``pretrained`` or ``imported``."""
    return str(ae.metadata.get("origin") or (ORIGIN_PRETRAINED if ae.metadata.get("pretrained") else ORIGIN_TRAINED))


def open_autoencoder(
    path: str | Path,
    normalizer_scale: float | str,
    target_std: float,
    max_images: int,
    calibration_images: ImageSource | None = None,
) -> Autoencoder:
    """The autoencoder that a stage's ``--ae`` / ``--autoencoder`` argument names.

    Accepted, in this order:

    1. an AE stage's output folder (``model/`` inside): :meth:`Autoencoder.load` of it;
    2. a folder with ``igae_autoencoder.json`` (the ``model/`` folder itself);
    3. a plain diffusers ``AutoencoderKL`` folder or a hub id: imported on the fly, its
       normaliser from ``normalizer_scale`` (for ``"auto"``: calibrated on
       ``calibration_images()``; :func:`import_autoencoder` records how).

    Raises:
        InputError: none of these (the message lists them), a broken folder, or a plain
            folder with ``normalizer_scale: auto`` where the stage has no images to
            calibrate on.
    """
    text = str(path)
    folder = Path(text).expanduser()
    if (folder / MODEL_SUBDIR).is_dir():
        return Autoencoder.load(folder / MODEL_SUBDIR)
    if (folder / IGAE_FILE).is_file():
        return Autoencoder.load(folder)
    if is_hub_id(text) or (folder.is_dir() and diffusers_folder(folder) is not None):
        if normalizer_scale == "auto" and calibration_images is None:
            raise InputError(
                "a plain diffusers autoencoder has no recorded normaliser scale and this stage has no "
                "images to calibrate it on: import it first (igae import-ae --from ... --out DIR "
                "--calibrate-on IMAGES) and pass DIR, or set autoencoder.normalizer_scale to a number",
                path=text,
            )
        log.info("%s is a plain diffusers autoencoder: importing it (normaliser scale %s)", text, normalizer_scale)
        return import_autoencoder(text, normalizer_scale, target_std, calibration_images, max_images)
    if not folder.exists():
        raise InputError("autoencoder folder does not exist", path=folder)
    raise InputError(
        f"not an autoencoder folder: expected {MODEL_SUBDIR}/ (an igae AE stage's output or import-ae's), "
        f"{IGAE_FILE} (an igae autoencoder), or config.json + weights (a diffusers AutoencoderKL)",
        path=folder,
    )


def inherited_metadata(start: Autoencoder, start_folder: str | Path) -> dict[str, Any]:
    """What an AE trained on top of ``start`` carries over: its origin and normaliser record.

    The normaliser scale itself travels with the model (the trained AE keeps ``start``'s
    ``s``); this keeps the record of how that ``s`` was chosen, and where the lineage began.
    """
    out: dict[str, Any] = {"origin": origin_of(start), "start": str(start_folder)}
    for key in ("normalizer_calibration", "imported_from", "scaling_factor"):
        if key in start.metadata:
            out[key] = start.metadata[key]
    return out
