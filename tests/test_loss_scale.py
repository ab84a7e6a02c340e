"""Each IG-AE / latent-NeRF loss term on the reference's scale.

Every test evaluates a term here on a known input and compares it with the value of the
reference code's formula, written below in this file's own words from a reading of
k-kassab/igae (``ae/utils.py: compute_tv``, ``ae/trainers.py``, ``configs/train_default.yaml``,
``datasets/dataset.py``) and AntoineSchnepf/latent-nerfstudio (``trainer.py``, ``datamanager.py``).
The ``factor`` asserts pin how much each term's effective weight changed against the
formulas used before (the mean TV, [0, 1] MSEs, per-step decay).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from igae.autoencoder.model import AEArchitecture, Autoencoder
from igae.config import load_params
from igae.fields.registry import build_field
from igae.fields.triplane import TriplaneField
from igae.train.ae_losses import autoencoding_terms, image_mse, posterior_noise
from igae.train.igae_trainer import make_triplane_field
from igae.train.schedules import decay_to, epoch_decay, freeze_start, steps_per_epoch

REPO = Path(__file__).resolve().parents[1]
ARCH = AEArchitecture((8, 16, 16), 1, 4, 4)


def default_params():
    return load_params(REPO / "params.yaml")


# ------------------------------------------------------------------ reference formulas
def reference_tv(stack: torch.Tensor) -> torch.Tensor:
    """k-kassab/igae ``compute_tv(t, p=2, q=2)``: the squared 2-norm of all row differences plus
    that of all column differences of the whole tensor (every view's planes), over (H + W)."""
    rows = torch.linalg.vector_norm(stack[..., 1:, :] - stack[..., :-1, :]) ** 2
    cols = torch.linalg.vector_norm(stack[..., :, 1:] - stack[..., :, :-1]) ** 2
    return (rows + cols) / (stack.shape[-2] + stack.shape[-1])


def reference_image_mse(prediction01: torch.Tensor, target01: torch.Tensor) -> torch.Tensor:
    """The reference's image MSE: images normalised with mean 0.5, std 0.5, i.e. to [-1, 1]."""
    return ((prediction01 - 0.5) / 0.5 - (target01 - 0.5) / 0.5).square().mean()


# ------------------------------------------------------------------ tri-plane TV
def test_tv_batch_equals_the_reference_compute_tv_over_the_views_planes() -> None:
    field = TriplaneField(num_scenes=3, resolution=6, features=4, init_std=1.0, seed=3)
    views = torch.tensor([2, 0, 2, 2, 1])  # scenes repeat, as in a batch of views
    stack = torch.stack([field.triplanes[int(s)] for s in views])  # the reference's latent_nerfs[scene_idxs]
    torch.testing.assert_close(field.tv_batch(views), reference_tv(stack))
    # The per-scene NeRF's regulariser keeps its meaning: the mean over unique scenes.
    mean_tv = field.tv_loss([0, 1, 2])
    per_scene = [reference_tv(field.triplanes[s][None]) * 12 / (3 * 4 * 5 * 6) for s in range(3)]  # S / (3 F R)
    torch.testing.assert_close(mean_tv, sum(per_scene) / 3)


def test_tv_factor_against_the_mean_at_default_params() -> None:
    """One view per scene: the sum form is the mean form times B * 3 F (R - 1) / 2."""
    p = default_params().igae
    r, f, b = p.triplane.resolution, p.triplane.features, p.warmup.views_per_batch
    field = TriplaneField(num_scenes=b, resolution=r, features=f, init_std=1.0, seed=0)
    views = torch.arange(b)
    with torch.no_grad():
        ratio = float(field.tv_batch(views) / field.tv_loss(views))
    assert ratio == pytest.approx(b * 3 * f * (r - 1) / 2, rel=1e-4)  # 24192 at 8 x 32 x 64


@pytest.mark.parametrize("phase, ref_weight, ref_batch", [("warmup", 1e-5, 32), ("joint", 1e-4, 16)])
def test_tv_weights_keep_the_reference_per_plane_balance(phase: str, ref_weight: float, ref_batch: int) -> None:
    """TV is a sum over the batch's views and L_latent a mean: weight x batch must equal the
    reference's weight x its batch (configs/train_default.yaml) for the same TV/L_latent balance."""
    for preset in ("default", "paper"):
        cfg = getattr(load_params(REPO / "params.yaml", preset=preset).igae, phase)
        assert cfg.tv * cfg.views_per_batch == pytest.approx(ref_weight * ref_batch)


def test_igae_planes_start_as_the_reference_and_the_nerf_triplane_method_is_unchanged() -> None:
    for preset, std in (("paper", 1.0), ("default", default_params().igae.triplane.init_std)):
        cfg = load_params(REPO / "params.yaml", preset=preset).igae.triplane.model_copy(
            update={"resolution": 64, "features": 32})
        field = make_triplane_field(4, cfg, 4, 1.0, seed=0)
        assert float(field.planes.detach().std()) == pytest.approx(std, rel=0.01)  # reference: torch.randn planes
    nerf = build_field("triplane", 3, 1.0, "sigmoid", 0, resolution=32, features=16, hidden=32)
    assert float(nerf.planes.detach().std()) == pytest.approx(0.1, abs=0.002)


# ------------------------------------------------------------------ image range
def test_image_mse_is_the_reference_mse_on_minus_one_one_images() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 3, 8, 8, generator=g), torch.rand(3, 3, 8, 8, generator=g)
    torch.testing.assert_close(image_mse(a, b), reference_image_mse(a, b))
    assert float(image_mse(a, b) / torch.nn.functional.mse_loss(a, b)) == pytest.approx(4.0, rel=1e-6)


def test_autoencoding_terms_match_the_reference_injection_and_synthetic_losses() -> None:
    """ae_synthetic and ae_real_mse: weight x MSE(D(z), x) on [-1, 1] images, z = mean + std * eps."""
    ae = Autoencoder.from_architecture(ARCH, seed=0)
    g = torch.Generator().manual_seed(1)
    views, photos = torch.rand(2, 3, 16, 16, generator=g), torch.rand(3, 3, 16, 16, generator=g)
    noise_v, noise_p = posterior_noise("sample", ae, [(2, 16, 16), (3, 16, 16)], torch.Generator().manual_seed(2))
    terms = autoencoding_terms(ae, views, photos, None, 0.1, 0.1, 0.0, views_noise=noise_v, photos_noise=noise_p)
    with torch.no_grad():
        expected = {}
        for key, x, eps in (("ae_synthetic", views, noise_v), ("ae_real_mse", photos, noise_p)):
            dist = ae.vae.encode(x * 2 - 1).latent_dist  # diffusers' posterior on the [-1, 1] image
            z = dist.mean + dist.std * eps  # latent_dist.sample() with this eps
            recon = ae.vae.decode(z).sample  # [-1, 1]
            expected[key] = 0.1 * (recon - (x * 2 - 1)).square().mean()
    for key in expected:
        torch.testing.assert_close(terms[key].detach(), expected[key], rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------ posterior
def test_posterior_sample_differs_from_the_mean_and_mean_mode_draws_nothing() -> None:
    ae = Autoencoder.from_architecture(ARCH, seed=0)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    (eps,) = posterior_noise("sample", ae, [(2, 16, 16)], torch.Generator().manual_seed(5))
    (again,) = posterior_noise("sample", ae, [(2, 16, 16)], torch.Generator().manual_seed(5))
    assert torch.equal(eps, again) and eps.shape == (2, 4, 4, 4)
    with torch.no_grad():
        assert not torch.allclose(ae.encode(x, noise=eps), ae.encode(x))
    g = torch.Generator().manual_seed(5)
    assert posterior_noise("mean", ae, [(2, 16, 16)], g) == [None]
    assert torch.equal(torch.randn(3, generator=g), torch.randn(3, generator=torch.Generator().manual_seed(5)))
    with pytest.raises(ValueError, match="posterior"):
        posterior_noise("median", ae, [(2, 16, 16)], g)


def test_default_posterior_is_the_references_sample() -> None:
    p = default_params()
    assert p.igae.joint.posterior == "sample" and p.nerf.posterior == "sample"


# ------------------------------------------------------------------ schedules
def reference_epoch_lrs(lr: float, gamma: float, epochs: int, steps_in_epoch: int,
                        freeze_epoch: int | None) -> list[float]:
    """The reference trainer's learning rate at each step: ExponentialLR stepped at the end of
    every epoch; at the start of epoch ``freeze_epoch`` the MLP group's lr is set to 0 (and
    the scheduler keeps multiplying that 0)."""
    out, current = [], lr
    for epoch in range(epochs):
        if epoch == freeze_epoch:
            current = 0.0
        out += [current] * steps_in_epoch
        current *= gamma
    return out


def test_epoch_decay_and_mlp_freeze_match_the_reference_trainer() -> None:
    planes, mlp = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([{"params": [planes], "name": "triplanes"}, {"params": [mlp], "name": "mlp"}], lr=1e-3)
    spe, epochs = steps_per_epoch(38, 8), 50  # ceil(38 / 8) = 5 (a last partial batch, as a DataLoader)
    assert spe == 5
    steps = spe * epochs
    frozen = freeze_start(steps, 0.1)
    assert frozen == 45 * spe  # the reference's freeze_tinymlp_after_n_epoch: 45 of 50
    sched = epoch_decay(opt, 0.988032, spe, frozen_from={"mlp": frozen})
    seen = {"triplanes": [], "mlp": []}
    for _ in range(steps):
        for group in opt.param_groups:
            seen[group["name"]].append(group["lr"])
        opt.step()
        sched.step()
    ref_planes = reference_epoch_lrs(1e-3, 0.988032, epochs, spe, None)
    ref_mlp = reference_epoch_lrs(1e-3, 0.988032, epochs, spe, 45)
    assert seen["triplanes"] == pytest.approx(ref_planes, rel=1e-12)
    assert seen["mlp"] == pytest.approx(ref_mlp, rel=1e-12, abs=0)
    # Against the old 0.999 per step: at the end of the default warm-up (400 steps, 80 per epoch)
    # the lr factor is 0.988^4 = 0.953 instead of 0.999^399 = 0.671.
    assert 0.988032 ** (399 // 80) / 0.999 ** 399 == pytest.approx(1.42, abs=0.01)


def test_decoder_lr_end_factor_is_latent_nerfstudios() -> None:
    """latent-nerfstudio: decoder lr 1e-4, ExponentialLR(0.99969) stepped on each of its 15000
    RGB-alignment steps (train_decoder_range 10000-25000)."""
    s2 = default_params().nerf.stage2
    assert s2.lr_decoder == pytest.approx(1e-4)
    assert s2.lr_decoder_end_factor == pytest.approx(0.99969 ** 15000, rel=0.01)
    decoder = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([decoder], lr=s2.lr_decoder)
    sched = decay_to(opt, s2.lr_decoder_end_factor, 120)
    for _ in range(120):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-4 * s2.lr_decoder_end_factor, rel=1e-9)


def test_schedule_helpers_reject_bad_values() -> None:
    opt = torch.optim.Adam([{"params": [torch.nn.Parameter(torch.zeros(1))], "name": "a"}], lr=1.0)
    with pytest.raises(ValueError, match="frozen_from"):
        epoch_decay(opt, 0.9, 2, frozen_from={"mlp": 3})
    with pytest.raises(ValueError):
        steps_per_epoch(0, 4)
    with pytest.raises(ValueError):
        freeze_start(10, 1.5)
    assert freeze_start(3, 0.1) is None and freeze_start(0, 0.1) is None
    with pytest.raises(ValueError):
        decay_to(opt, 0.0, 10)
    assert math.isclose(decay_to(opt, 0.5, 0).gamma, 1.0)
