"""What a per-scene fit trains on and is tested against, in RGB or in an autoencoder's latent space.

A :class:`FitData` holds, for one scene and one space:

- the training views' targets at render resolution: RGB images, or the normalised latents
  ``norm(z)`` of the training images, encoded **once** here, ``z`` one seeded posterior sample
  per view as latent-nerfstudio caches them (``nerf.posterior: sample``) or the posterior mean;
- the cameras at render resolution: latent intrinsics are the image intrinsics divided by the
  AE's downsampling factor exactly (``fx/f, fy/f, cx/f, cy/f``; :func:`scale_intrinsics`);
- the background in the space (RGB colour, or the AE's latent of a uniform background image);
- the test views (cameras and ground-truth RGB images), used only for evaluation;
- for latent spaces, a **per-scene copy** of the autoencoder whose decoder stage 2 fine-tunes;
  the shared AE (and its files) are never modified.

Images whose size is not a multiple of the AE's downsampling factor are cropped at the right and
bottom edges to the nearest multiple (intrinsics unchanged: the principal point is measured from
the top-left corner); the crop is recorded and the test images are cropped the same way.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor

from igae.autoencoder.model import Autoencoder
from igae.autoencoder.latents import background_latent, encode_normalized
from igae.data.scene import Scene
from igae.errors import InputError
from igae.geometry import scale_intrinsics
from igae.seeding import derive_seed

ENCODE_BATCH = 8
"""Images per encoder call when caching latents (bounds memory for large scenes)."""


@dataclass
class FitData:
    """One scene in one space; tensors on ``device``.

    Attributes:
        space: ``"rgb"`` or the autoencoder's name.
        channels: ``C``: 3, or the latent channels.
        width, height: render resolution (latent resolution for latent spaces).
        downsampling: image pixels per rendered pixel (1 for RGB).
        train_c2w: ``(N, 4, 4)``; train_intrinsics: ``(N, 4)`` at render resolution.
        train_targets: ``(N, C, h, w)`` what stage 1 (or the RGB fit) regresses.
        train_images: ``(N, 3, H, W)`` ground-truth RGB of the training views (stage 2).
        test_c2w: ``(M, 4, 4)``; test_intrinsics: ``(M, 4)`` at render resolution.
        test_images: ``(M, 3, H, W)`` ground-truth RGB of the test views.
        background: ``(C,)`` value behind the scene, in the space.
        output_activation: the field's feature activation (``sigmoid`` for RGB, ``tanh`` for
            normalised latents, which lie in (-1, 1)).
        ae: the per-scene autoencoder copy (latent spaces), else ``None``.
        crop: ``(H, W)`` the images were cropped to, or ``None``.
    """

    space: str
    channels: int
    width: int
    height: int
    downsampling: int
    train_c2w: Tensor
    train_intrinsics: Tensor
    train_targets: Tensor
    train_images: Tensor
    test_c2w: Tensor
    test_intrinsics: Tensor
    test_images: Tensor
    background: Tensor
    output_activation: str
    ae: Autoencoder | None = None
    crop: tuple[int, int] | None = None

    @property
    def is_latent(self) -> bool:
        return self.ae is not None

    def to_rgb(self, rendered: Tensor) -> Tensor:
        """``(N, C, h, w)`` render -> ``(N, 3, H, W)`` RGB (decoded with the per-scene decoder)."""
        if self.ae is None:
            return rendered
        return self.ae.decode(self.ae.normalizer.denormalize(rendered))

    def encode_normalized(self, images: Tensor) -> Tensor:
        """``norm(E(x))`` (posterior mean) of ``(N, 3, H, W)`` images, on the data's device."""
        assert self.ae is not None, "RGB fits have no encoder"
        return encode_normalized(self.ae, images, ENCODE_BATCH).to(images.device)


def split_views(scene: Scene) -> tuple[Scene, Scene]:
    """The scene's own ``train`` and ``test`` splits (test views never train)."""
    return scene.subset("train"), scene.subset("test")


def prepare_rgb(scene: Scene, device: torch.device | str = "cpu") -> FitData:
    """RGB fit data: full-resolution images and intrinsics."""
    train, test = split_views(scene)
    return FitData(
        space="rgb", channels=3, width=scene.width, height=scene.height, downsampling=1,
        train_c2w=train.camera_to_world.to(device), train_intrinsics=train.intrinsics.to(device),
        train_targets=train.images.to(device), train_images=train.images.to(device),
        test_c2w=test.camera_to_world.to(device), test_intrinsics=test.intrinsics.to(device),
        test_images=test.images.to(device), background=torch.tensor(scene.background, device=device),
        output_activation="sigmoid",
    )


def prepare_latent(
    scene: Scene,
    ae: Autoencoder,
    name: str,
    device: torch.device | str = "cpu",
    posterior: str = "mean",
    seed: int = 0,
) -> FitData:
    """Latent fit data: a per-scene copy of ``ae``, the training views encoded once.

    Args:
        posterior: ``"sample"``: each training view's target is ``norm(z)`` of one posterior
            sample (latent-nerfstudio caches ``latent_dist.sample()``), its noise drawn on the
            CPU from a generator seeded by ``(seed, scene folder name)``, so the targets are the
            same on every run and device; ``"mean"``: the posterior mean.
        seed: the run's seed (``posterior="sample"`` only).

    Raises:
        InputError: the image is smaller than four latent pixels per side.
    """
    f = ae.downsampling
    height, width = (scene.height // f) * f, (scene.width // f) * f
    if height < 4 * f or width < 4 * f:
        raise InputError(f"images of {scene.width}x{scene.height} are too small for an AE with "
                         f"downsampling {f}: need at least {4 * f} pixels per side", scene.root)
    crop = None if (height, width) == (scene.height, scene.width) else (height, width)
    train, test = split_views(scene)
    local = copy.deepcopy(ae).to(device)  # the per-scene copy; `ae` stays untouched
    local.eval()
    for p in local.encoder_parameters():
        p.requires_grad_(False)  # the encoder never changes in a latent fit
    train_images = train.images[:, :, :height, :width].to(device)
    if posterior not in ("sample", "mean"):
        raise InputError(f"nerf.posterior must be 'sample' or 'mean', got {posterior!r}")
    noise = None
    if posterior == "sample":
        g = torch.Generator().manual_seed(derive_seed(seed, "nerf/posterior", scene.root.name))
        noise = torch.randn((len(train_images), local.latent_channels, height // f, width // f), generator=g)
    targets = encode_normalized(local, train_images, ENCODE_BATCH, noise=noise).to(device)
    with torch.no_grad():
        background = background_latent(local, scene.background, size=8 * f, normalized=True)
    return FitData(
        space=name, channels=local.latent_channels, width=width // f, height=height // f, downsampling=f,
        train_c2w=train.camera_to_world.to(device),
        train_intrinsics=scale_intrinsics(train.intrinsics, float(f)).to(device),
        train_targets=targets, train_images=train_images,
        test_c2w=test.camera_to_world.to(device),
        test_intrinsics=scale_intrinsics(test.intrinsics, float(f)).to(device),
        test_images=test.images[:, :, :height, :width].to(device), background=background.to(device),
        output_activation="tanh", ae=local, crop=crop,
    )
