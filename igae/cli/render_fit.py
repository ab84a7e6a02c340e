"""``igae render``: a trained fit rendered at the poses of a transforms file, optionally with its latents."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

from igae.cli.common import log

RENDER_RECORD = "render.json"
"""The file every ``igae render`` output folder holds (also what marks the folder as ours)."""


def cmd_render(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from igae.errors import InputError
    from igae.io import atomic_dir, check_replaceable, save_png_atomic, write_json_atomic
    from igae.nerf.artifact import load_fit
    from igae.nerf.evaluate import to_uint8
    from igae.nerf.render_poses import parse_size, read_poses, render_poses, render_size
    from igae.provenance import provenance
    from igae.train.distributed import resolve_device, set_threads

    if args.batch < 1:
        raise InputError(f"--batch must be >= 1, got {args.batch}")
    threads = set_threads(args.threads)
    device = resolve_device(args.device)
    out = Path(args.out)
    check_replaceable(out, RENDER_RECORD)
    fit = load_fit(args.fit)
    if args.latents != "none" and not fit.is_latent:
        raise InputError(f"--latents {args.latents}: this is an RGB fit (space 'rgb'), it renders no latents", fit.root)
    model = fit.model(device)
    size = render_size(fit, model, parse_size(args.size) if args.size else None)
    poses = read_poses(args.poses, size)
    f = model.downsampling
    log(f"render {fit.method}/{fit.space} fit {fit.root}: {len(poses.names)} poses of {args.poses} at "
         f"{size[0]}x{size[1]} (field at {size[0] // f}x{size[1] // f}), {args.batch} frame(s) per decoder call, "
         f"{device}, {threads} thread(s)")
    latents: list[torch.Tensor] = []
    with atomic_dir(out) as tmp:
        for frames in render_poses(model, poses, device, args.batch, args.chunk):
            for j, image in enumerate(to_uint8(frames.rgb.cpu())):
                save_png_atomic(tmp / "images" / f"{poses.names[frames.start + j]}.png", image)
            if args.latents == "raw":
                latents.append(model.ae.normalizer.denormalize(frames.features).cpu())
            elif args.latents == "normalized":
                latents.append(frames.features.cpu())
        record: dict[str, Any] = {
            "fit": str(fit.root), "method": fit.method, "space": fit.space, "poses": str(args.poses),
            "size": list(size), "render_size": [size[0] // f, size[1] // f], "frames": poses.names,
            "images": "images/<frame>.png", "scene_transform": model.spec.scene_transform,
            "latents": args.latents, "decode_batch": args.batch, "provenance": provenance(None, device=str(device)),
        }
        if latents:
            stacked = torch.cat(latents).contiguous()
            torch.save(stacked, tmp / "latents.pt")
            np.save(tmp / "latents.npy", stacked.numpy())
            write_json_atomic(tmp / "latents.json", latent_record(fit, model, args.latents, stacked, poses.names))
        write_json_atomic(tmp / RENDER_RECORD, record)
    log(f"wrote {len(poses.names)} images to {out / 'images'}" + (f" and latents.pt/.npy ({args.latents})"
                                                                     if latents else ""))


def latent_record(fit: Any, model: Any, convention: str, latents: Any, names: list[str]) -> dict[str, Any]:
    """``latents.json``: what the saved latent maps are and how to use them."""
    ae = model.ae
    scaling = ae.vae.config.get("scaling_factor")
    meaning = {
        "raw": "the AE's latent space: atanh(y) / s of the field's normalised output y (clamped to 1 - eps), "
               "exactly what diffusers' AutoencoderKL.decode takes (it returns images in [-1, 1])",
        "normalized": "the field's own output y = tanh(s * z) in (-1, 1), z the AE's raw latent",
    }[convention]
    return {
        "convention": convention, "meaning": meaning, "shape": list(latents.shape), "layout": "NCHW",
        "dtype": str(latents.dtype).replace("torch.", ""), "frames": names,
        "autoencoder": fit.autoencoder_folder(),
        "autoencoder_model": None if fit.autoencoder_folder() is None else str(Path(fit.autoencoder_folder()) / "model"),
        "scaling_factor": scaling,
        "latent_diffusion_input": "raw * scaling_factor (diffusers' convention for a diffusion model's latents)",
        "normalizer": {"scale": ae.normalizer.scale, "eps": ae.normalizer.eps},
        "downsampling": model.downsampling,
        "decoder_note": "the fit fine-tunes a copy of the AE's decoder (decoder.pt in the fit folder); the images "
                        "in images/ come from that copy, the shared AE folder's decoder gives slightly different ones",
    }


def register(sub: argparse._SubParsersAction, add_params_args: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``render`` to the ``igae`` parser (it reads no params file: everything comes from the fit)."""
    help_ = ("Render a trained fit (igae fit-nerf's output folder) at every pose of a nerfstudio or NeRF-synthetic "
             "transforms file; optionally save the rendered latent maps for latent-space tools.")
    p = sub.add_parser("render", help=help_, description=help_)
    p.add_argument("--fit", required=True, help="a fit folder written by igae fit-nerf")
    p.add_argument("--poses", required=True, help="transforms file: nerfstudio transforms.json or NeRF-synthetic "
                   "transforms_test.json (poses in the scene's own frame)")
    p.add_argument("--out", required=True, help="output folder: images/<frame>.png, render.json, and with --latents "
                   "latents.pt, latents.npy, latents.json (replaced whole; a folder igae did not write is refused)")
    p.add_argument("--latents", choices=["raw", "normalized", "none"], default="none",
                   help="also save the latent maps: raw = the AE's latent space (what AutoencoderKL.decode takes), "
                   "normalized = the field's output in (-1, 1) (default: %(default)s)")
    p.add_argument("--size", default=None, help="output image size WIDTHxHEIGHT (default: the fit's image size); "
                   "latent fits need multiples of the AE's downsampling factor")
    p.add_argument("--batch", type=int, default=8, help="frames per decoder call (default: %(default)s)")
    p.add_argument("--chunk", type=int, default=None, help="rays per field call (default: by device)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    p.set_defaults(handler=cmd_render)
