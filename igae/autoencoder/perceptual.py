"""The perceptual metric: one module for training losses and evaluation alike.

Two backends, both with shipped weights and never a random backbone:

- ``"lpips"``: the ``lpips`` package, AlexNet trunk. Its ImageNet AlexNet comes from
  torchvision's download cache; it is used only when that checkpoint file is already
  there, because offline a download attempt fails (or hangs) instead.
- ``"stlpips"``: ST-LPIPS (shift-tolerant LPIPS, Ghildyal & Liu, ECCV 2022), AlexNet trunk,
  from the ``stlpips-pytorch`` wheel, which ships its whole network. Its values are not
  comparable with published LPIPS numbers: report them under the name ST-LPIPS.

``"auto"`` takes LPIPS when its backbone is cached, else ST-LPIPS. The chosen backend's
name is ``PerceptualMetric.backend``; record it with every number.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from igae.errors import InputError, OfflineError

log = logging.getLogger(__name__)

BACKENDS = {"lpips": "LPIPS (alex)", "stlpips": "ST-LPIPS (alex)"}
PREFERENCES = ("auto", *BACKENDS)

_CACHE: dict[tuple[str, str], "PerceptualMetric"] = {}


class PerceptualMetric(nn.Module):
    """A frozen perceptual distance between images in [0, 1].

    Always in eval mode (``train()`` is a no-op for it, so dropout in the LPIPS heads never
    switches on when a parent module is put in training mode); parameters never require
    gradients, but gradients flow through it to the inputs.

    Attributes:
        backend: the metric's exact name, e.g. ``"LPIPS (alex)"`` or ``"ST-LPIPS (alex)"``.
    """

    def __init__(self, net: nn.Module, backend: str) -> None:
        super().__init__()
        self.net = net
        self.backend = backend
        self.net.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "PerceptualMetric":
        """Stay in eval mode whatever ``mode`` is (the metric is fixed, not trained)."""
        return super().train(False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Distance per image pair.

        Args:
            x, y: ``(N, 3, H, W)`` in [0, 1] (mapped here to the [-1, 1] the nets expect).

        Returns:
            ``(N,)``, >= 0, differentiable with respect to ``x`` and ``y``.
        """
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise InputError(
                f"perceptual metric needs two (N, 3, H, W) batches of one shape, got "
                f"{tuple(x.shape)} and {tuple(y.shape)}"
            )
        return self.net(x * 2.0 - 1.0, y * 2.0 - 1.0).reshape(x.shape[0])

    def extra_repr(self) -> str:
        return f"backend={self.backend!r}"


def torchvision_alexnet_checkpoint() -> Path:
    """Where torchvision keeps (or would download) the ImageNet AlexNet that LPIPS needs."""
    from torchvision.models import AlexNet_Weights

    url = AlexNet_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def lpips_backbone_available() -> bool:
    """True when LPIPS's AlexNet is in torchvision's cache, i.e. loads with no download."""
    return torchvision_alexnet_checkpoint().is_file()


def resolve_backend(preference: str = "auto") -> str:
    """The backend key (``"lpips"`` or ``"stlpips"``) that ``preference`` selects here."""
    if preference not in PREFERENCES:
        raise InputError(f"perceptual metric must be one of {list(PREFERENCES)}, got {preference!r}")
    if preference == "auto":
        return "lpips" if lpips_backbone_available() else "stlpips"
    return preference


def load_perceptual(preference: str = "auto", device: str | torch.device = "cpu") -> PerceptualMetric:
    """The perceptual metric, loaded once per process, backend and device.

    Args:
        preference: ``"auto"`` (LPIPS if its backbone is cached, else ST-LPIPS),
            ``"lpips"`` or ``"stlpips"``.
        device: where the metric runs.

    The returned module is shared between callers: do not move it to another device
    (ask for that device instead) or modify it.

    Raises:
        InputError: unknown preference, a backend package that does not import, or weights
            that do not match the network.
        OfflineError: ``"lpips"`` forced while its AlexNet is not in torchvision's cache.
    """
    key = resolve_backend(preference)
    device = torch.device(device)
    cached = _CACHE.get((key, str(device)))
    if cached is not None:
        return cached
    net = _build_lpips() if key == "lpips" else _build_stlpips()
    metric = PerceptualMetric(net, BACKENDS[key]).to(device)
    _CACHE[(key, str(device))] = metric
    log.info("perceptual metric: %s on %s", metric.backend, device)
    return metric


@contextlib.contextmanager
def _captured_output(name: str) -> Iterator[None]:
    """Route the packages' prints ("Setting up [LPIPS] ...") to the logger; hide their warnings."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), warnings.catch_warnings():
        # torchvision's "pretrained is deprecated" and torch.load notices from package code.
        warnings.simplefilter("ignore")
        yield
    for line in buffer.getvalue().splitlines():
        log.debug("%s: %s", name, line)


def _load_heads(net: nn.Module, weights: Path, prefix: str) -> None:
    """Load a shipped state dict into ``net`` and check it covers every ``prefix`` parameter.

    The packages load their weights with ``strict=False``, which would silently leave a
    randomly initialised layer behind a renamed key; this checks instead.
    """
    if not weights.is_file():
        raise InputError("perceptual metric weights file is missing from the installed package", path=weights)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=False)
    needed = {name for name, _ in net.named_parameters() if name.startswith(prefix)}
    missing = sorted(needed - set(state))
    if not needed or missing:
        raise InputError(f"weights do not cover the network (missing {missing or prefix})", path=weights)


def _build_lpips() -> nn.Module:
    checkpoint = torchvision_alexnet_checkpoint()
    if not checkpoint.is_file():
        raise OfflineError(
            "LPIPS needs torchvision's ImageNet AlexNet, which is not in the local cache and "
            f"is not downloaded here. Put {checkpoint.name} (from where the internet is "
            "reachable: torchvision.models.alexnet(weights='IMAGENET1K_V1')) there, or use "
            "the 'stlpips' perceptual metric, which ships its weights.",
            path=checkpoint,
        )
    try:
        import lpips
    except ImportError as e:
        raise InputError(f"the lpips package does not import ({e}); install lpips") from e
    with _captured_output("lpips"):
        try:
            # pretrained=False: the linear heads are loaded (and checked) below; pnet_rand=False
            # keeps the ImageNet backbone, loaded from the cache file checked above.
            net = lpips.LPIPS(net="alex", pretrained=False, pnet_rand=False, verbose=True)
        except Exception as e:  # a corrupt cache file surfaces as one of many types
            raise InputError(f"could not load the AlexNet checkpoint ({type(e).__name__}: {e})",
                             path=checkpoint) from e
    _load_heads(net, Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth", prefix="lin")
    return net


def _build_stlpips() -> nn.Module:
    try:
        from stlpips_pytorch import stlpips
    except ImportError as e:
        raise InputError(
            f"the stlpips-pytorch package does not import ({e}); it needs stlpips-pytorch, "
            "torchvision, IPython and torchsummary installed"
        ) from e
    with _captured_output("stlpips"):
        # pretrained=False only skips the package's own strict=False load; the network is
        # complete in the shipped file, loaded and checked (backbone and heads) below.
        net = stlpips.LPIPS(net="alex", variant="shift_tolerant", pretrained=False, verbose=True)
    weights = Path(stlpips.__file__).parent / "weights" / "vST0.0" / "alex_shift_tolerant.pth"
    _load_heads(net, weights, prefix="")
    return net
