"""Latent renders of a NeRF, used by plain diffusers code: decode them, and edit them in latent space.

Input: the output folder of ``igae render --fit FIT --poses TRANSFORMS --out DIR --latents raw``
(``latents.pt``: raw latents ``(N, C, h, w)`` in the autoencoder's own latent space, and
``latents.json``: the AE folder, diffusers' ``scaling_factor``, the conventions), and a folder of
photos. This script imports nothing from this project: only torch, diffusers, numpy and Pillow.

What it does:

1. **Decode with plain diffusers.** ``AutoencoderKL.from_pretrained(<AE folder>/model)`` decodes
   the raw latents, exactly as any diffusers pipeline decodes its latents
   (``vae.decode(z).sample``, images in [-1, 1]). It reports the PSNR between these images and
   the ones ``igae render`` wrote, which come from the fit's per-scene fine-tuned decoder copy
   (so they are close, not equal).
2. **A latent-space operation learned elsewhere.** A small convolutional network is trained here
   on the AE's latents of the *photos*, in the diffusion convention ``z * scaling_factor``, to
   perform a colour edit (swap red and blue) in latent space: from ``E(x)`` to ``E(edit(D(E(x))))``,
   the edit as this AE sees it (the same as ``E(edit(x))`` for an AE that reconstructs well). It
   is then applied to the NeRF-rendered latents of the views, which it never saw. Measured
   before (identity) and after the edit: the latent MSE against ``E(edit(D(z)))`` and the PSNR of
   the decoded latents against the edit done in pixel space on the decoded NeRF render
   (``edit(D(z))``) and against that edit as the AE can show it (``D(E(edit(D(z))))``); held-out
   photos give the latent MSE for the photo set.

What it shows: rendered latents are tensors of the AE's latent space with the shapes, scale and
conventions that diffusers components expect (``AutoencoderKL`` decodes and encodes them with no
code from this project); a model that learned an operation on the AE's latents of ordinary
images applies, unchanged, to latents a NeRF rendered.

What it does not show: no pretrained latent-diffusion model is used (none can be downloaded
here), so there is no diffusion-based generation or editing to see; the editor is a small
regression network, not a diffusion model; and the numbers depend on the autoencoder: on the
smoke preset's tiny, barely trained AE they say only that the pieces fit together (the edit is
learned partly, and the decoded images are poor), not how good such edits are with a real AE.

Usage::

    python examples/latent_interop.py --render renders/igae_ngp --photos data/photos/test --out interop/
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from PIL import Image


def load_images(folder: Path, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Every PNG/JPEG of ``folder`` as ``(N, 3, H, W)`` in [0, 1] (resized to ``size = (W, H)`` if given)."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not files:
        raise SystemExit(f"error: {folder}: no PNG or JPEG images")
    out = []
    for p in files:
        with Image.open(p) as im:
            im = im.convert("RGB")
            if size is not None:
                im = im.resize(size, Image.BICUBIC)
            out.append(torch.from_numpy(np.array(im)).permute(2, 0, 1).float() / 255.0)
    return torch.stack(out)


def edit(images: torch.Tensor) -> torch.Tensor:
    """The colour edit the latent model learns: swap the red and blue channels."""
    return images[:, [2, 1, 0]]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = F.mse_loss(a.clamp(0, 1), b.clamp(0, 1)).item()
    return 10.0 * math.log10(1.0 / max(mse, 1e-12))


@torch.no_grad()
def encode(vae: AutoencoderKL, images: torch.Tensor) -> torch.Tensor:
    """Raw latents (posterior mean) of ``(N, 3, H, W)`` images in [0, 1]."""
    return torch.cat([vae.encode(images[i : i + 8] * 2 - 1).latent_dist.mean for i in range(0, len(images), 8)])


@torch.no_grad()
def decode(vae: AutoencoderKL, latents: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] of raw latents: what every diffusers pipeline does with its latents."""
    return torch.cat([(vae.decode(latents[i : i + 8]).sample + 1) / 2 for i in range(0, len(latents), 8)]).clamp(0, 1)


class LatentEditor(torch.nn.Module):
    """A small convolutional latent-to-latent network: ``z -> z + step * net(z / spread)``.

    ``spread`` (the latents' typical size) and ``step`` (the typical size of the edit) are set from
    the training latents, so it learns at the same pace whatever the AE's latent scale.
    """

    def __init__(self, channels: int, width: int = 64) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(channels, width, 3, padding=1), torch.nn.SiLU(),
            torch.nn.Conv2d(width, width, 3, padding=1), torch.nn.SiLU(),
            torch.nn.Conv2d(width, channels, 3, padding=1))
        self.register_buffer("spread", torch.tensor(1.0))
        self.register_buffer("step", torch.tensor(1.0))

    def forward(self, scaled: torch.Tensor) -> torch.Tensor:
        """Edited latents in the diffusion convention (``raw * scaling_factor`` in and out), ``(N, C, h, w)``."""
        return scaled + self.step * self.net(scaled / self.spread)


def edit_through_ae(vae: AutoencoderKL, raw: torch.Tensor) -> torch.Tensor:
    """The target of the latent edit: ``E(edit(D(z)))``, the edit as this AE sees it (for a good AE,
    ``D(E(x)) ~ x`` and this is ``E(edit(x))``; for a poor one it is still a function of ``z``)."""
    return encode(vae, edit(decode(vae, raw)))


def train_editor(vae: AutoencoderKL, photos: torch.Tensor, crop: tuple[int, int], scaling: float, steps: int,
                 seed: int) -> tuple[LatentEditor, dict[str, float]]:
    """Fit the latent colour edit on random crops of the training photos; report held-out photos."""
    g = torch.Generator().manual_seed(seed)
    n_val = max(1, len(photos) // 5)
    val, train = photos[:n_val], photos[n_val:]

    def crops(images: torch.Tensor, count: int) -> torch.Tensor:
        h, w = images.shape[2:]
        i = torch.randint(len(images), (count,), generator=g)
        y = torch.randint(h - crop[1] + 1, (count,), generator=g)
        x = torch.randint(w - crop[0] + 1, (count,), generator=g)
        return torch.stack([images[a, :, b : b + crop[1], c : c + crop[0]] for a, b, c in zip(i, y, x)])

    train_raw, val_raw = encode(vae, crops(train, 256)), encode(vae, crops(val, 32))
    inputs, targets = train_raw * scaling, edit_through_ae(vae, train_raw) * scaling
    val_in, val_target = val_raw * scaling, edit_through_ae(vae, val_raw) * scaling
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        editor = LatentEditor(inputs.shape[1])
    editor.spread.fill_(float(inputs.std()))
    editor.step.fill_(float((targets - inputs).std()))
    opt = torch.optim.Adam(editor.parameters(), lr=1e-3)
    for _ in range(steps):
        pick = torch.randint(len(inputs), (32,), generator=g)
        loss = F.mse_loss(editor(inputs[pick]), targets[pick])
        opt.zero_grad()
        loss.backward()
        opt.step()
    editor.eval()
    with torch.no_grad():
        after = F.mse_loss(editor(val_in), val_target).item()
    return editor, {"latent_mse_before": F.mse_loss(val_in, val_target).item(), "latent_mse_after": after,
                    "train_crops": len(inputs), "val_crops": len(val_in), "val_photos": n_val, "steps": steps}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--render", required=True, type=Path, help="an `igae render --latents raw` output folder")
    parser.add_argument("--photos", required=True, type=Path, help="folder of photos to learn the latent edit on")
    parser.add_argument("--out", required=True, type=Path, help="output folder: report.json, comparison.png")
    parser.add_argument("--steps", type=int, default=600, help="training steps of the latent editor")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default: %(default)s)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    meta = json.loads((args.render / "latents.json").read_text())
    if meta["convention"] != "raw":
        raise SystemExit("error: render with --latents raw (the AE's own latent space)")
    raw = torch.load(args.render / "latents.pt")  # (N, C, h, w)
    vae = AutoencoderKL.from_pretrained(meta["autoencoder_model"]).eval()
    scaling = float(vae.config.scaling_factor)
    assert scaling == meta["scaling_factor"] and raw.shape[1] == vae.config.latent_channels

    # 1. Plain diffusers decoding of the NeRF's latents.
    decoded = decode(vae, raw)
    rendered = load_images(args.render / "images")[: len(raw)]
    report: dict = {"frames": len(raw), "latent_shape": list(raw.shape), "image_shape": list(decoded.shape),
                    "scaling_factor": scaling, "autoencoder_model": meta["autoencoder_model"],
                    "psnr_shared_decoder_vs_fit_decoder_copy": psnr(decoded, rendered)}

    # 2. A latent-space colour edit learned on the photos' latents, applied to the NeRF's latents.
    size = (decoded.shape[3], decoded.shape[2])
    photos = load_images(args.photos)
    if photos.shape[2] < size[1] or photos.shape[3] < size[0]:
        photos = F.interpolate(photos, size=(max(size[1], photos.shape[2]), max(size[0], photos.shape[3])),
                               mode="bilinear", align_corners=False)
    editor, photo_numbers = train_editor(vae, photos, size, scaling, args.steps, args.seed)
    with torch.no_grad():
        edited_raw = editor(raw * scaling) / scaling
    edited = decode(vae, edited_raw)
    reference = edit(decoded)  # the same edit done in pixel space on the decoded NeRF render
    target_latent = encode(vae, reference)  # = edit_through_ae(vae, raw)
    report["photos_heldout"] = photo_numbers
    best = decode(vae, target_latent)  # the edit as this AE can show it: D(E(edit(D(z))))
    report["nerf_views"] = {
        "psnr_vs_pixel_edit_before": psnr(decoded, reference), "psnr_vs_pixel_edit_after": psnr(edited, reference),
        "psnr_vs_ae_edit_before": psnr(decoded, best), "psnr_vs_ae_edit_after": psnr(edited, best),
        "latent_mse_before": F.mse_loss(raw * scaling, target_latent * scaling).item(),
        "latent_mse_after": F.mse_loss(edited_raw * scaling, target_latent * scaling).item(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [torch.cat(list(t[:4]), dim=2) for t in (decoded, edited, reference)]  # (3, H, 4W) each
    grid = (torch.cat(rows, dim=1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    Image.fromarray(grid).save(args.out / "comparison.png")  # rows: decoded | latent edit | pixel edit
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
