"""Where a plain diffusers ``AutoencoderKL`` comes from: a local folder or a hub id.

A local folder holds ``config.json`` + ``diffusion_pytorch_model.safetensors`` (``.bin`` is
accepted too), directly or in a ``vae/`` subfolder (a whole diffusers pipeline folder).
A hub id goes to :mod:`igae.autoencoder.hub`. No igae metadata is read here: that is
:meth:`igae.autoencoder.model.Autoencoder.load`'s job.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from igae.autoencoder.hub import load_hub_vae, looks_like_hub_id, quiet
from igae.errors import InputError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"
WEIGHT_NAMES = (WEIGHTS_FILE, "diffusion_pytorch_model.bin", WEIGHTS_FILE + ".index.json")


def is_hub_id(name_or_path: str | Path) -> bool:
    """True when ``name_or_path`` is not an existing path and reads as ``owner/name``."""
    text = str(name_or_path)
    return not Path(text).expanduser().exists() and looks_like_hub_id(text)


def diffusers_folder(folder: Path) -> Path | None:
    """The folder holding the ``AutoencoderKL`` config: ``folder`` or its ``vae/``; None if neither."""
    if (folder / CONFIG_FILE).is_file():
        return folder
    if (folder / "vae" / CONFIG_FILE).is_file():
        return folder / "vae"
    return None


def load_vae(name_or_path: str | Path) -> nn.Module:
    """A float32 ``AutoencoderKL`` in eval mode from a local folder or a hub id.

    Raises:
        InputError: missing folder or file, another model class, unreadable weights.
        OfflineError: a hub id that is neither cached nor downloadable.
    """
    if is_hub_id(name_or_path):
        return load_hub_vae(str(name_or_path))
    return load_local_vae(Path(str(name_or_path)).expanduser())


def load_local_vae(folder: Path) -> nn.Module:
    """A float32 ``AutoencoderKL`` from a local diffusers folder (see the module docstring)."""
    from diffusers import AutoencoderKL

    if not folder.is_dir():
        raise InputError("autoencoder folder does not exist", path=folder)
    found = diffusers_folder(folder)
    if found is None:
        raise InputError(f"{CONFIG_FILE} is missing from the autoencoder folder", path=folder)
    folder, config_path = found, found / CONFIG_FILE
    try:
        config = json.loads(config_path.read_text())
    except ValueError as e:
        raise InputError(f"not valid JSON ({e})", path=config_path) from e
    cls_name = config.get("_class_name", "AutoencoderKL") if isinstance(config, dict) else None
    if cls_name != "AutoencoderKL":
        raise InputError(f"expected an AutoencoderKL config, found class {cls_name!r}", path=config_path)
    if not any((folder / name).is_file() for name in WEIGHT_NAMES):
        raise InputError(
            f"weights file {WEIGHTS_FILE} is missing from the autoencoder folder "
            f"(it holds {sorted(p.name for p in folder.iterdir())})",
            path=folder,
        )
    try:
        with quiet():
            vae = AutoencoderKL.from_pretrained(
                folder, torch_dtype=torch.float32, low_cpu_mem_usage=False, local_files_only=True
            )
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        raise InputError(f"could not load the autoencoder ({type(e).__name__}: {e})", path=folder) from e
    return vae.eval()
