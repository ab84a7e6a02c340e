"""The image autoencoder: a thin wrapper around ``diffusers.AutoencoderKL``.

Images go in and come out as float32 NCHW in [0, 1]; this module is the one place that
maps them to the [-1, 1] range the network works in, and back. Latents are *raw* (no
``scaling_factor``): normalisation for tri-planes is :class:`LatentNormalizer`'s job.

On disk an autoencoder is a diffusers folder (``config.json`` +
``diffusion_pytorch_model.safetensors``, loadable by plain ``AutoencoderKL.from_pretrained``)
plus ``igae_autoencoder.json`` (metadata, provenance, architecture, normaliser scale).
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from igae.autoencoder.loading import CONFIG_FILE, WEIGHTS_FILE, load_vae
from igae.autoencoder.normalizer import DEFAULT_SCALE, LatentNormalizer
from igae.errors import InputError
from igae.io import atomic_dir, sha256_file, write_json_atomic
from igae.provenance import provenance

log = logging.getLogger(__name__)

IGAE_FILE = "igae_autoencoder.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class AEArchitecture:
    """Shape of an ``AutoencoderKL``: one ``DownEncoderBlock2D``/``UpDecoderBlock2D`` per entry.

    Attributes:
        block_out_channels: channels per resolution level; ``n`` levels downsample by
            ``2 ** (n - 1)`` (3 levels: f4, 4 levels: f8).
        layers_per_block: ResNet layers per encoder block (the decoder has one more).
        latent_channels: channels ``C`` of the latent.
        norm_num_groups: GroupNorm groups; must divide every entry of ``block_out_channels``.
    """

    block_out_channels: tuple[int, ...]
    layers_per_block: int
    latent_channels: int
    norm_num_groups: int

    def __post_init__(self) -> None:
        # Lists from YAML/JSON become tuples so the dataclass stays hashable and frozen.
        object.__setattr__(self, "block_out_channels", tuple(int(c) for c in self.block_out_channels))
        if not self.block_out_channels or min(self.block_out_channels) < 1:
            raise InputError(f"block_out_channels must be positive integers, got {self.block_out_channels}")
        for key in ("layers_per_block", "latent_channels", "norm_num_groups"):
            if int(getattr(self, key)) < 1:
                raise InputError(f"{key} must be >= 1, got {getattr(self, key)}")
        bad = [c for c in self.block_out_channels if c % self.norm_num_groups]
        if bad:
            raise InputError(
                f"norm_num_groups ({self.norm_num_groups}) must divide every entry of "
                f"block_out_channels {self.block_out_channels}; it does not divide {bad}"
            )

    @property
    def downsampling(self) -> int:
        """Image side / latent side."""
        return 2 ** (len(self.block_out_channels) - 1)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["block_out_channels"] = list(self.block_out_channels)
        return d

    def diffusers_config(self) -> dict[str, Any]:
        """Keyword arguments for ``diffusers.AutoencoderKL``."""
        n = len(self.block_out_channels)
        return {
            "in_channels": 3,
            "out_channels": 3,
            "down_block_types": ("DownEncoderBlock2D",) * n,
            "up_block_types": ("UpDecoderBlock2D",) * n,
            "block_out_channels": self.block_out_channels,
            "layers_per_block": self.layers_per_block,
            "latent_channels": self.latent_channels,
            "norm_num_groups": self.norm_num_groups,
            # scaling_factor stays at diffusers' default: we never use it (raw latents).
        }

    @classmethod
    def from_vae_config(cls, config: Any) -> "AEArchitecture":
        """Read the architecture back from an ``AutoencoderKL.config``."""
        return cls(
            block_out_channels=tuple(config.block_out_channels),
            layers_per_block=int(config.layers_per_block),
            latent_channels=int(config.latent_channels),
            norm_num_groups=int(config.norm_num_groups),
        )


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) per image, summed over latent elements.

    Args:
        mean, logvar: ``(N, C, h, w)`` from :meth:`Autoencoder.encode_posterior`.

    Returns:
        ``(N,)``; divide by ``C * h * w`` for a per-element value.
    """
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=(1, 2, 3))


class Autoencoder(nn.Module):
    """Image autoencoder with a [0, 1] image interface and raw latents.

    Attributes:
        vae: the wrapped ``diffusers.AutoencoderKL``.
        normalizer: the :class:`LatentNormalizer` that goes with this autoencoder.
        metadata: what :meth:`save` stored (``{}`` for a fresh or pretrained model).
    """

    def __init__(self, vae: nn.Module, normalizer: LatentNormalizer | None = None) -> None:
        super().__init__()
        # Convolution weights in channels-last layout: on the 2-core CPU machine a train_ae step
        # (forward, perceptual loss, backward) takes 0.80 s instead of 0.84 s at 2 threads and 1.23 s
        # instead of 1.40 s at 1 thread, a decoder forward + backward (stage 2 of a latent fit) 88 ms
        # instead of 100 ms (medians, benchmarks/bench_decoder.py measures inference). Inputs and
        # outputs keep the default layout (encode/decode return contiguous tensors); the saved
        # weights are the same values.
        self.vae = vae.to(memory_format=torch.channels_last)
        self.normalizer = normalizer or LatentNormalizer()
        self.metadata: dict[str, Any] = {}

    # ------------------------------------------------------------------ properties

    @property
    def architecture(self) -> AEArchitecture:
        return AEArchitecture.from_vae_config(self.vae.config)

    @property
    def latent_channels(self) -> int:
        return int(self.vae.config.latent_channels)

    @property
    def downsampling(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the encoder and ``quant_conv`` (one optimizer group)."""
        yield from self.vae.encoder.parameters()
        if self.vae.quant_conv is not None:
            yield from self.vae.quant_conv.parameters()

    def decoder_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the decoder and ``post_quant_conv`` (one optimizer group)."""
        yield from self.vae.decoder.parameters()
        if self.vae.post_quant_conv is not None:
            yield from self.vae.post_quant_conv.parameters()

    # ------------------------------------------------------------------ encode / decode

    def _check_images(self, images: torch.Tensor) -> None:
        f = self.downsampling
        if images.ndim != 4 or images.shape[1] != 3:
            raise InputError(f"images must be (N, 3, H, W), got shape {tuple(images.shape)}")
        if images.shape[2] % f or images.shape[3] % f:
            raise InputError(
                f"image height and width must be multiples of the autoencoder's downsampling "
                f"{f}, got {tuple(images.shape[2:])}"
            )

    def encode_posterior(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters of the latent.

        Args:
            images: ``(N, 3, H, W)`` in [0, 1].

        Returns:
            ``(mean, logvar)``, each ``(N, C, H/f, W/f)``; ``logvar`` is clamped to
            [-30, 20] as diffusers does.
        """
        self._check_images(images)
        dist = self.vae.encode(images * 2.0 - 1.0).latent_dist
        return dist.mean.contiguous(), dist.logvar.contiguous()

    def encode(
        self,
        images: torch.Tensor,
        sample: bool = False,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Encode images to raw latents.

        Args:
            images: ``(N, 3, H, W)`` in [0, 1].
            sample: draw ``mean + std * eps`` (KL training) instead of returning the mean.
            generator: for the sample; must live on the model's device.
            noise: ``(N, C, H/f, W/f)`` standard-normal ``eps`` of a sample, drawn by the caller
                (e.g. on the CPU from a seeded generator, the same on every device); implies a
                sample (diffusers' ``latent_dist.sample()`` with this ``eps``).

        Returns:
            ``(N, C, H/f, W/f)`` raw latents (deterministic posterior mean by default),
            differentiable in the mean and the std.
        """
        mean, logvar = self.encode_posterior(images)
        if noise is None and not sample:
            return mean
        if noise is None:
            noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + torch.exp(0.5 * logvar) * noise.to(mean.device)

    def decode(self, latents: torch.Tensor, clamp: bool = False) -> torch.Tensor:
        """Decode raw latents to images.

        Args:
            latents: ``(N, C, h, w)`` raw latents.
            clamp: clamp to [0, 1]. Off by default: in a loss, clamping would zero the
                gradient of every out-of-range pixel, so training sees the raw output; turn
                it on for evaluation and saving.

        Returns:
            ``(N, 3, h*f, w*f)`` images, in [0, 1] when ``clamp`` (otherwise roughly so).
        """
        if latents.ndim != 4 or latents.shape[1] != self.latent_channels:
            raise InputError(
                f"latents must be (N, {self.latent_channels}, h, w), got shape {tuple(latents.shape)}"
            )
        images = ((self.vae.decode(latents).sample + 1.0) * 0.5).contiguous()
        return images.clamp(0.0, 1.0) if clamp else images

    def forward(
        self, images: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Reconstruction ``decode(encode(images))``: ``(N, 3, H, W)`` -> ``(N, 3, H, W)``, unclamped."""
        return self.decode(self.encode(images, sample=sample, generator=generator))

    # ------------------------------------------------------------------ builders

    @classmethod
    def from_architecture(
        cls, arch: AEArchitecture, seed: int, normalizer_scale: float = DEFAULT_SCALE,
        initial_logvar: float | None = None,
    ) -> "Autoencoder":
        """A freshly initialised autoencoder (on the CPU); the same seed gives the same weights.

        ``initial_logvar`` starts the posterior narrow: the log-variance outputs of
        ``quant_conv`` become this constant (zero weights, constant bias). With diffusers'
        default init the posterior std starts near 1, as large as the latents themselves,
        and with a small KL weight the encoder needs thousands of steps to shrink it; a
        short CPU budget would be spent training the decoder on noise (measured here:
        median posterior std 0.52 after 600 steps, photo reconstructions worse than a blur).

        The global RNG state is restored afterwards, so building a model never shifts the
        random streams of the caller. Like every builder here it returns the model in eval
        mode (call ``.train()`` to train): the two modes differ in the last bits because
        attention takes another kernel path.
        """
        from diffusers import AutoencoderKL

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            vae = AutoencoderKL(**arch.diffusers_config())
        if initial_logvar is not None:
            c = arch.latent_channels
            with torch.no_grad():  # quant_conv outputs [mean (c), logvar (c)]
                vae.quant_conv.weight[c:].zero_()
                vae.quant_conv.bias[c:].fill_(initial_logvar)
        return cls(vae, LatentNormalizer(normalizer_scale)).eval()

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        expected_latent_channels: int | None = None,
        normalizer_scale: float = DEFAULT_SCALE,
    ) -> "Autoencoder":
        """Load a diffusers ``AutoencoderKL`` from a local folder or a Hugging Face hub id.

        A local folder holds ``config.json`` + ``diffusion_pytorch_model.safetensors``
        (``.bin`` is accepted too), directly or in a ``vae/`` subfolder. A hub id (e.g.
        ``stabilityai/sd-vae-ft-mse``) is taken from the local hub cache when it is there,
        else downloaded; offline that fails at once with an :class:`~igae.errors.OfflineError`
        that says how to point at a local folder instead. The normaliser gets
        ``normalizer_scale``; for a folder written by :meth:`save`, :meth:`load` restores the
        saved scale and metadata instead.

        Raises:
            InputError: missing folder/file, wrong model class, unreadable weights, or
                latent channels different from ``expected_latent_channels``.
            OfflineError: a hub id that is neither cached nor downloadable.
        """
        vae = load_vae(name_or_path)
        if expected_latent_channels is not None and vae.config.latent_channels != expected_latent_channels:
            raise InputError(
                f"autoencoder has {vae.config.latent_channels} latent channels but "
                f"{expected_latent_channels} were expected",
                path=name_or_path,
            )
        return cls(vae, LatentNormalizer(normalizer_scale)).eval()

    # ------------------------------------------------------------------ save / load

    def save(self, folder: str | Path, metadata: dict[str, Any] | None = None) -> None:
        """Write the autoencoder to ``folder`` atomically (the folder is replaced whole).

        Writes the diffusers files (loadable with no igae code) and ``igae_autoencoder.json``
        with ``metadata`` (its ``seed`` key, if any, goes into the provenance block),
        provenance, architecture, downsampling, latent channels, diffusers' ``scaling_factor``,
        normaliser scale and the weights' SHA-256. The metadata of a stage's AE also holds
        ``normalizer_calibration`` (how ``s`` was chosen) and ``latent_stats`` (raw and
        normalised latent std on its training data).
        """
        metadata = dict(metadata or {})
        with atomic_dir(folder) as tmp:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.vae.save_pretrained(tmp, safe_serialization=True)
            record = {
                "format": "igae-autoencoder",
                "format_version": FORMAT_VERSION,
                "architecture": self.architecture.to_dict(),
                "latent_channels": self.latent_channels,
                "downsampling": self.downsampling,
                # diffusers' scaling_factor (unused here: latents stay raw); latent-space tools
                # that consume this AE's latents multiply by it.
                "scaling_factor": float(getattr(self.vae.config, "scaling_factor", 1.0) or 1.0),
                "normalizer": {"scale": self.normalizer.scale, "eps": self.normalizer.eps},
                "weights_sha256": sha256_file(Path(tmp) / WEIGHTS_FILE),
                "metadata": metadata,
                "provenance": provenance(metadata.get("seed")),
            }
            write_json_atomic(Path(tmp) / IGAE_FILE, record)
        self.metadata = metadata

    @classmethod
    def load(cls, folder: str | Path, expected_latent_channels: int | None = None) -> "Autoencoder":
        """Read back what :meth:`save` wrote; ``.metadata`` holds the saved metadata."""
        folder = Path(folder)
        record_path = folder / IGAE_FILE
        if not record_path.is_file():
            raise InputError(
                f"not an igae autoencoder folder: {IGAE_FILE} is missing (for a plain diffusers "
                "folder use Autoencoder.from_pretrained)",
                path=folder,
            )
        try:
            record = json.loads(record_path.read_text())
            scale = float(record["normalizer"]["scale"])
            eps = float(record["normalizer"]["eps"])
            arch = AEArchitecture(**record["architecture"])
            metadata = dict(record["metadata"])
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"unreadable autoencoder record ({type(e).__name__}: {e})", path=record_path) from e
        ae = cls.from_pretrained(folder, expected_latent_channels=expected_latent_channels)
        if ae.architecture != arch:
            raise InputError(
                f"{IGAE_FILE} describes {arch} but {CONFIG_FILE} describes {ae.architecture}",
                path=folder,
            )
        ae.normalizer = LatentNormalizer(scale, eps)
        ae.metadata = metadata
        return ae
