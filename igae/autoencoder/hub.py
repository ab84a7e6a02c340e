"""Hugging Face hub access for autoencoders: hub ids, offline detection, a fast reachability probe.

The only module here that may touch the network, and only for a hub id named in params or
on the command line. Offline, it fails within seconds (``HUB_PROBE_TIMEOUT_S``) with an
:class:`~igae.errors.OfflineError` that says how to use a local folder instead, rather than
waiting out huggingface_hub's retries.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import threading
import warnings
from typing import Iterator
from urllib.parse import urlparse

import torch
from torch import nn

from igae.errors import OfflineError

log = logging.getLogger(__name__)

HUB_PROBE_TIMEOUT_S = 3.0
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def looks_like_hub_id(text: str) -> bool:
    """True for ``owner/name`` (a local path that exists is never taken for a hub id by callers)."""
    return bool(_HUB_ID.match(text))


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence diffusers/huggingface_hub chatter (deprecation and accelerate notices)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def hub_offline() -> bool:
    """True when the user asked huggingface_hub to stay offline (read now, not at import)."""
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE", "")
    return value.strip().lower() in {"1", "true", "yes", "on"} or bool(constants.HF_HUB_OFFLINE)


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """Whether a TCP connection to the hub endpoint opens within ``timeout`` seconds.

    huggingface_hub retries an unreachable host for ~25 s before giving up; this probe
    answers in at most ``timeout``. It runs in a daemon thread because DNS resolution has
    no timeout of its own.

    Returns:
        ``(reachable, reason)``; ``reason`` is empty when reachable.
    """
    from huggingface_hub import constants

    url = urlparse(os.environ.get("HF_ENDPOINT") or constants.ENDPOINT)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    result: list[str] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append("")
        except OSError as e:
            result.append(f"{host}:{port} unreachable: {e}")

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    if not result:
        return False, f"no answer from {host}:{port} within {timeout:g} s"
    return result[0] == "", result[0]


def offline_error(name: str, reason: str) -> OfflineError:
    """The error for a hub id that cannot be had here, with what to do instead."""
    return OfflineError(
        f"could not download the autoencoder {name!r} from the Hugging Face hub ({reason}). "
        "Download it where the hub is reachable (e.g. AutoencoderKL.from_pretrained(...)"
        ".save_pretrained(folder)) and point params at that local folder instead: "
        "`autoencoder.pretrained: /path/to/folder` (or `igae import-ae --from /path/to/folder`), "
        "the folder holding config.json + diffusion_pytorch_model.safetensors. "
        f"(If {name!r} was meant as a local folder: it does not exist.)"
    )


def load_hub_vae(name: str) -> nn.Module:
    """A float32 ``AutoencoderKL`` for hub id ``name``: the local hub cache first, else a download.

    ``name`` may be an autoencoder repository (``stabilityai/sd-vae-ft-mse``) or a whole
    diffusers pipeline whose autoencoder lives in its ``vae/`` subfolder
    (``runwayml/stable-diffusion-v1-5``).

    Raises:
        OfflineError: not cached, and ``HF_HUB_OFFLINE`` is set, the hub does not answer
            within ``HUB_PROBE_TIMEOUT_S``, or the download fails.
    """
    from diffusers import AutoencoderKL

    def fetch(local_only: bool) -> nn.Module:
        error: Exception | None = None
        for subfolder in (None, "vae"):
            try:
                with quiet():
                    return AutoencoderKL.from_pretrained(name, subfolder=subfolder, local_files_only=local_only,
                                                         torch_dtype=torch.float32, low_cpu_mem_usage=False).eval()
            except (OSError, ValueError) as e:
                error = error or e
        assert error is not None
        raise error

    try:  # the local hub cache first: works offline when the model was fetched before
        vae = fetch(local_only=True)
        log.info("autoencoder %s loaded from the local hub cache", name)
        return vae
    except (OSError, ValueError):
        pass
    if hub_offline():
        raise offline_error(name, "HF_HUB_OFFLINE is set and the model is not in the local hub cache")
    ok, reason = hub_reachable()
    if not ok:
        raise offline_error(name, reason)
    try:
        return fetch(local_only=False)
    except (OSError, ValueError) as e:
        raise offline_error(name, f"{type(e).__name__}: {e}") from e
