"""Autoencoder wrapper, latent normalizer and background latent (tiny f4 model, 32x32 images)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from igae.autoencoder.latents import background_latent
from igae.autoencoder.model import AEArchitecture, Autoencoder, kl_divergence
from igae.autoencoder.normalizer import LatentNormalizer
from igae.errors import InputError, OfflineError

TINY = AEArchitecture(block_out_channels=(8, 16, 16), layers_per_block=1, latent_channels=4, norm_num_groups=4)


@pytest.fixture(scope="module")
def ae() -> Autoencoder:
    return Autoencoder.from_architecture(TINY, seed=0)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def saved(ae: Autoencoder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ae") / "model"
    ae.save(folder, {"seed": 0, "steps": 3, "note": "tiny"})
    return folder


def test_architecture() -> None:
    assert TINY.downsampling == 4
    assert AEArchitecture((32, 64, 128, 128), 1, 4, 32).downsampling == 8
    assert AEArchitecture([8, 16], 1, 4, 4).block_out_channels == (8, 16)
    with pytest.raises(InputError, match="norm_num_groups"):
        AEArchitecture((8, 12), 1, 4, 8)


def test_shapes_and_determinism(ae: Autoencoder, images: torch.Tensor) -> None:
    assert ae.latent_channels == 4 and ae.downsampling == 4
    assert not ae.training  # builders return eval mode, as diffusers' from_pretrained does
    z = ae.encode(images)
    assert z.shape == (2, 4, 8, 8)
    assert torch.equal(z, ae.encode(images))  # the posterior mean
    out = ae.decode(z)
    assert out.shape == (2, 3, 32, 32)
    clamped = ae.decode(z, clamp=True)
    assert clamped.min() >= 0 and clamped.max() <= 1
    assert torch.equal(clamped, out.clamp(0, 1))
    assert ae(images).shape == images.shape
    with pytest.raises(InputError, match="multiples of"):
        ae.encode(torch.rand(1, 3, 30, 32))


def test_sample_differs_from_mean(ae: Autoencoder, images: torch.Tensor) -> None:
    mean, logvar = ae.encode_posterior(images)
    assert torch.equal(mean, ae.encode(images))
    s1 = ae.encode(images, sample=True, generator=torch.Generator().manual_seed(1))
    s1b = ae.encode(images, sample=True, generator=torch.Generator().manual_seed(1))
    s2 = ae.encode(images, sample=True, generator=torch.Generator().manual_seed(2))
    assert torch.equal(s1, s1b) and not torch.equal(s1, s2)
    assert (s1 - mean).abs().mean() > 1e-3
    # The sample's spread follows the posterior std.
    ratio = ((s1 - mean) / torch.exp(0.5 * logvar)).std().detach()
    assert 0.8 < float(ratio) < 1.2
    kl = kl_divergence(mean, logvar)
    assert kl.shape == (2,) and (kl >= 0).all()
    assert float(kl_divergence(torch.zeros(1, 4, 2, 2), torch.zeros(1, 4, 2, 2))) == 0.0


def test_parameter_groups(ae: Autoencoder) -> None:
    enc = {id(p) for p in ae.encoder_parameters()}
    dec = {id(p) for p in ae.decoder_parameters()}
    assert enc and dec and not enc & dec
    assert enc | dec == {id(p) for p in ae.parameters()}


def test_normalizer_round_trip() -> None:
    norm = LatentNormalizer(0.02)
    z = torch.linspace(-150.0, 150.0, 2001)  # |s z| up to 3
    y = norm.normalize(z)
    assert y.abs().max() < 1
    assert torch.allclose(norm.denormalize(y), z, rtol=1e-4, atol=1e-3)
    # On or past +-1 (what a renderer may output): finite, and monotone at the clamp.
    edge = norm.denormalize(torch.tensor([-1.5, -1.0, 1.0, 1.5]))
    assert torch.isfinite(edge).all() and edge[2] > 300 and edge[0] < -300
    with pytest.raises(InputError):
        LatentNormalizer(0.0)


def test_background_latent(ae: Autoencoder) -> None:
    white = background_latent(ae, (1.0, 1.0, 1.0), size=32)
    black = background_latent(ae, (0.0, 0.0, 0.0), size=32)
    assert white.shape == (4,)
    assert (white - black).abs().max() > 1e-3
    # Recompute: the encoded white image's centre equals the returned latent.
    z = ae.encode(torch.ones(1, 3, 32, 32))[0]
    assert torch.allclose(z[:, 2:6, 2:6].mean(dim=(1, 2)), white, atol=1e-6)
    # Computed on the model's current weights: another model gives another latent.
    other = Autoencoder.from_architecture(TINY, seed=1)
    assert (background_latent(other, (1.0, 1.0, 1.0), size=32) - white).abs().max() > 1e-3
    normalized = background_latent(ae, (1.0, 1.0, 1.0), size=32, normalized=True)
    assert torch.allclose(normalized, torch.tanh(0.02 * white))
    with pytest.raises(InputError, match="three values"):
        background_latent(ae, (1.0, 2.0, 0.0), size=32)


def test_seeded_init() -> None:
    a = Autoencoder.from_architecture(TINY, seed=3).state_dict()
    b = Autoencoder.from_architecture(TINY, seed=3).state_dict()
    c = Autoencoder.from_architecture(TINY, seed=4).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    # Building a model leaves the caller's random stream alone.
    torch.manual_seed(9)
    expected = torch.rand(3)
    torch.manual_seed(9)
    Autoencoder.from_architecture(TINY, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_saved_folder_loads_in_plain_diffusers(
    ae: Autoencoder, saved: Path, images: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffusers import AutoencoderKL

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert {"config.json", "diffusion_pytorch_model.safetensors", "igae_autoencoder.json"} <= {
        p.name for p in saved.iterdir()
    }
    vae = AutoencoderKL.from_pretrained(saved).eval()
    with torch.no_grad():
        x = images * 2 - 1
        z_plain = vae.encode(x).latent_dist.mean
        y_plain = vae.decode(z_plain).sample
        # Plain diffusers' default layout: the same maps up to the rounding of another convolution order.
        torch.testing.assert_close(z_plain, ae.encode(images), rtol=0, atol=1e-5)
        torch.testing.assert_close((y_plain + 1) / 2, ae.decode(z_plain), rtol=0, atol=1e-5)
        # In the layout igae runs it (channels-last weights), bit for bit: the same weights.
        vae.to(memory_format=torch.channels_last)
        z_plain = vae.encode(x).latent_dist.mean
        assert torch.equal(z_plain, ae.encode(images))
        assert torch.equal((vae.decode(z_plain).sample + 1) / 2, ae.decode(z_plain))


def test_load_round_trip(ae: Autoencoder, saved: Path, images: torch.Tensor) -> None:
    loaded = Autoencoder.load(saved)
    assert loaded.metadata == {"seed": 0, "steps": 3, "note": "tiny"}
    assert loaded.architecture == TINY
    assert loaded.normalizer.scale == ae.normalizer.scale
    with torch.no_grad():
        assert torch.equal(loaded.decode(loaded.encode(images)), ae.decode(ae.encode(images)))
    record = json.loads((saved / "igae_autoencoder.json").read_text())
    assert record["provenance"]["seed"] == 0 and record["downsampling"] == 4
    # A plain diffusers folder loads through from_pretrained too.
    assert Autoencoder.from_pretrained(saved, expected_latent_channels=4).latent_channels == 4


def test_load_errors(saved: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(saved, broken)
    (broken / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(InputError, match="diffusion_pytorch_model.safetensors") as err:
        Autoencoder.from_pretrained(broken)
    assert str(broken) in str(err.value)

    with pytest.raises(InputError, match=r"4 latent channels but 16") as err:
        Autoencoder.from_pretrained(saved, expected_latent_channels=16)
    assert str(saved) in str(err.value)

    with pytest.raises(InputError, match="does not exist"):
        Autoencoder.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(InputError, match="igae_autoencoder.json"):
        Autoencoder.load(tmp_path)


@pytest.mark.parametrize("offline_env", [True, False])
def test_hub_id_offline_fails_fast(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, offline_env: bool) -> None:
    monkeypatch.chdir(tmp_path)  # so the id is not accidentally a local folder
    if offline_env:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        # No offline flag: an endpoint that refuses connections stands in for "no network".
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    start = time.monotonic()
    with pytest.raises(OfflineError) as err:
        # An id no hub cache holds, so the cache lookup misses on every machine.
        Autoencoder.from_pretrained("igae-tests/no-such-autoencoder")
    assert time.monotonic() - start < 5.0
    message = str(err.value)
    assert "could not download" in message and "local folder" in message
    assert "autoencoder.pretrained" in message and "config.json" in message


def test_initial_logvar_starts_the_posterior_narrow():
    arch = AEArchitecture((8, 16, 16), 1, 4, 4)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    narrow = Autoencoder.from_architecture(arch, seed=0, initial_logvar=-8.0)
    default = Autoencoder.from_architecture(arch, seed=0)
    with torch.no_grad():
        mean_n, logvar_n = narrow.encode_posterior(x)
        mean_d, logvar_d = default.encode_posterior(x)
    assert torch.allclose(logvar_n, torch.full_like(logvar_n, -8.0))
    assert logvar_d.abs().max() < 2.0  # diffusers' init: std near 1
    assert torch.equal(mean_n, mean_d)  # only the log-variance half changes
