"""``igae import-ae``: bring your own diffusers autoencoder into the pipeline."""

from __future__ import annotations

import argparse
from typing import Callable

HELP = ("Import a diffusers AutoencoderKL (a local folder or a hub id) as an AE folder every stage accepts "
        "(fit-nerf --autoencoder, train-igae/finetune-ae/eval-ae --ae), with its latent normaliser scale "
        "calibrated on --calibrate-on images when autoencoder.normalizer_scale is auto.")


def cmd_import_ae(args: argparse.Namespace) -> None:
    from igae.autoencoder.importing import import_autoencoder
    from igae.cli.ae_stages import _write_ae_output
    from igae.cli.common import log
    from igae.config import load_params
    from igae.data.image_sets import read_image_groups
    from igae.provenance import provenance
    from igae.train.distributed import resolve_device, set_threads

    params = load_params(args.params, preset=args.preset)
    set_threads(params.training.threads)
    cfg = params.autoencoder

    def images():  # read after the model loaded, so a bad --from is reported first
        groups, read = [], []
        for path in args.calibrate_on or []:
            batches, what = read_image_groups(path)
            groups += batches
            read.append(what)
        return groups, "; ".join(read)

    ae = import_autoencoder(args.source, cfg.normalizer_scale, cfg.normalizer_target_std, images,
                            cfg.normalizer_calibration_images, device=resolve_device(params.training.device))
    record = ae.metadata["normalizer_calibration"]
    meta = {"name": "imported", **ae.metadata, "calibrate_on": [str(p) for p in args.calibrate_on or []],
            "preset": params.preset, "params": {"autoencoder": cfg.model_dump()},
            "provenance": provenance(None)}
    stats = record["latent_stats"]
    log(f"{args.source}: f{ae.downsampling}, {ae.latent_channels} latent channels, scaling_factor "
         f"{record['scaling_factor']:g}; normaliser s = {record['scale']:g} ({record['method']})"
         + ("" if stats is None else f"; on {stats['images']} images: raw latent std {stats['raw_std']:.4g}, "
                                     f"normalised std {stats['normalized_std']:.4g}"))
    _write_ae_output(args.out, ae.cpu(), meta, None)


def register(sub: argparse._SubParsersAction, add_params_args: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``import-ae`` to the ``igae`` parser."""
    p = sub.add_parser("import-ae", help=HELP, description=HELP + " Read normalizer_scale, normalizer_target_std and "
                       "normalizer_calibration_images from the autoencoder section of --params.")
    add_params_args(p)
    p.set_defaults(handler=cmd_import_ae)
    p.add_argument("--from", dest="source", required=True, metavar="DIR_OR_HUB_ID",
                   help="a diffusers AutoencoderKL folder (config.json + diffusion_pytorch_model.safetensors, or a "
                        "pipeline folder with vae/), or a Hugging Face hub id (needs the network; offline: an error)")
    p.add_argument("--out", required=True, help="output folder: model/ (diffusers files + igae_autoencoder.json)")
    p.add_argument("--calibrate-on", nargs="+", default=None, metavar="SCENE_OR_PHOTO_DIR",
                   help="images to calibrate the latent scale on and to measure the latents with: scenes, a scene set "
                        "(scene_* folders), a photo set, folders of .jpg/.png, or image files")
