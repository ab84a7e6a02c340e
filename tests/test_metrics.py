"""Image metrics (PSNR, SSIM) and the perceptual metric."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from igae.autoencoder import perceptual as perc
from igae.errors import InputError, OfflineError
from igae.eval.metrics import image_metrics, psnr, ssim


def _images(n: int = 3, h: int = 24, w: int = 20, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # Smooth structure plus noise, so SSIM is far from both 0 and 1.
    base = torch.rand(n, 3, h // 4, w // 4, generator=g)
    up = torch.nn.functional.interpolate(base, size=(h, w), mode="bilinear", align_corners=False)
    return (up + 0.1 * torch.randn(n, 3, h, w, generator=g)).clamp(0, 1)


# ------------------------------------------------------------------ PSNR / SSIM


def test_psnr_matches_hand_computation() -> None:
    x = torch.zeros(2, 3, 4, 4)
    y = x.clone()
    y[0] += 0.1  # MSE 0.01 -> 20 dB
    y[1, 0, 0, 0] = 1.0  # MSE 1/48 -> 10 log10(48)
    got = psnr(x, y)
    assert torch.allclose(got, torch.tensor([20.0, 10 * np.log10(48.0)], dtype=torch.float32), atol=1e-4)
    assert torch.allclose(psnr(x, y, max_val=2.0), got + 20 * float(np.log10(2.0)), atol=1e-4)


def test_psnr_identical_is_inf_and_ssim_is_one() -> None:
    x = _images()
    assert torch.isinf(psnr(x, x)).all()
    assert torch.allclose(ssim(x, x), torch.ones(3), atol=1e-6)


def test_ssim_matches_skimage() -> None:
    x, y = _images(seed=1), _images(seed=2)
    y = (0.6 * x + 0.4 * y).clamp(0, 1)  # related images: SSIM in the middle of its range
    got = ssim(x, y)
    for i in range(x.shape[0]):
        ref = structural_similarity(
            x[i].permute(1, 2, 0).numpy().astype(np.float64),
            y[i].permute(1, 2, 0).numpy().astype(np.float64),
            channel_axis=-1, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, data_range=1.0,
        )
        assert 0.2 < ref < 0.95
        assert abs(float(got[i]) - ref) < 1e-4


def test_ssim_orders_distortions_and_rejects_bad_shapes() -> None:
    x = _images(seed=3)
    g = torch.Generator().manual_seed(4)
    small = (x + 0.02 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    large = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    assert (ssim(x, small) > ssim(x, large)).all()
    with pytest.raises(InputError, match="at least 11"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(InputError, match="one shape"):
        psnr(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))


# ------------------------------------------------------------------ perceptual


@pytest.fixture(scope="module")
def metric() -> perc.PerceptualMetric:
    return perc.load_perceptual("auto")


def test_auto_backend_follows_detection(metric: perc.PerceptualMetric) -> None:
    expected = "LPIPS (alex)" if perc.lpips_backbone_available() else "ST-LPIPS (alex)"
    assert metric.backend == expected
    assert perc.load_perceptual("auto") is metric  # cached per process
    assert not metric.training and not metric.net.training
    metric.train()  # a parent module's train() must not switch dropout on
    assert not metric.net.training
    assert all(not p.requires_grad for p in metric.parameters())


def test_perceptual_values_and_gradient(metric: perc.PerceptualMetric) -> None:
    g = torch.Generator().manual_seed(5)
    x = _images(n=2, h=64, w=64, seed=6)
    slight = (x + 0.03 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    noisy = (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    same = metric(x, x)
    assert same.shape == (2,)
    assert same.abs().max() < 1e-6
    d_slight, d_noisy = metric(x, slight), metric(x, noisy)
    assert (d_slight > 1e-4).all()
    assert (d_noisy > d_slight).all()

    xg = slight.clone().requires_grad_(True)
    metric(xg, x).sum().backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all() and xg.grad.abs().sum() > 0


def test_image_metrics_dict(metric: perc.PerceptualMetric) -> None:
    x = _images(n=2, h=32, w=32, seed=7)
    y = (x + 0.05).clamp(0, 1)
    out = image_metrics(y + 0.5, x, metric)  # out-of-range predictions are clamped
    assert set(out) == {"psnr", "ssim", "perceptual"}
    assert all(v.shape == (2,) for v in out.values())
    assert torch.allclose(out["psnr"], psnr((y + 0.5).clamp(0, 1), x))
    assert set(image_metrics(y, x, None)) == {"psnr", "ssim"}


def test_preferences(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    with pytest.raises(InputError, match="must be one of"):
        perc.load_perceptual("vgg")
    assert perc.load_perceptual("stlpips").backend == "ST-LPIPS (alex)"

    # No AlexNet in torchvision's cache: forcing LPIPS fails at once, naming the file,
    # and "auto" falls back to ST-LPIPS.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(perc, "_CACHE", {})
    assert not perc.lpips_backbone_available()
    assert perc.resolve_backend("auto") == "stlpips"
    with pytest.raises(OfflineError, match="alexnet-owt"):
        perc.load_perceptual("lpips")


def test_lpips_backend_with_cached_backbone(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """The LPIPS path loads from the cache file alone (a stand-in checkpoint here)."""
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(perc, "_CACHE", {})
    ckpt = perc.torchvision_alexnet_checkpoint()
    ckpt.parent.mkdir(parents=True)
    torch.manual_seed(0)
    stand_in = torchvision.models.alexnet(weights=None).state_dict()
    torch.save(stand_in, ckpt)
    assert perc.resolve_backend("auto") == "lpips"
    m = perc.load_perceptual("auto")
    assert m.backend == "LPIPS (alex)"
    # The backbone really is the cached file's, not a random one.
    assert torch.equal(m.net.net.slice1[0].weight, stand_in["features.0.weight"])
    x = _images(n=1, h=64, w=64)
    assert float(m(x, x)) < 1e-6 and float(m(x, 1 - x)) > 0
