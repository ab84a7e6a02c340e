"""Bring your own autoencoder (`igae import-ae`) and the calibrated latent scale (normalizer_scale: auto)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from igae.autoencoder.calibration import calibrate_scale, latent_stats, resolve_normalizer
from igae.autoencoder.model import AEArchitecture, Autoencoder
from igae.cli import main
from igae.errors import InputError

from test_nerf_fit import write_nerfstudio_ball

REPO = Path(__file__).resolve().parents[1]
SMOKE = ["--params", str(REPO / "params.yaml"), "--preset", "smoke"]
# f8 (4 levels) with 16 latent channels, like ostris/vae-kl-f8-d16, at tiny widths so it is cheap.
F8_D16 = AEArchitecture((8, 16, 16, 16), 1, 16, 4)


def _spread(z: torch.Tensor, s: float) -> float:
    return float(torch.tanh(s * z.double()).std(unbiased=False))


@pytest.mark.parametrize("raw_std, target", [(5.5, 0.1), (1.1, 0.1), (1.1, 0.4), (30.0, 0.05)])
def test_calibrated_scale_hits_the_target_std(raw_std: float, target: float) -> None:
    z = torch.randn(4, 20000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * raw_std + 0.3
    s = calibrate_scale(z, target)
    assert abs(_spread(z, s) - target) < 1e-3 * target  # 4 significant digits of s
    assert _spread(z, s * 0.98) < target < _spread(z, s * 1.02)  # the crossing, not some other point
    assert calibrate_scale(z.clone(), target) == s  # deterministic
    if target == 0.1 and raw_std == 5.5:  # SD-VAE-like latents: close to the paper's s = 0.02
        assert 0.017 < s < 0.02


def test_calibration_rejects_what_it_cannot_do() -> None:
    z = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    with pytest.raises(InputError, match="normalizer_target_std"):
        calibrate_scale(z, 1.0)
    with pytest.raises(InputError, match="out of reach"):
        calibrate_scale(z.abs() + 1.0, 0.5)  # all positive: tanh(s z) -> 1 for every element, std -> 0
    with pytest.raises(InputError, match="constant"):
        calibrate_scale(torch.full((100,), 2.0), 0.1)


def test_resolve_normalizer_auto_and_fixed() -> None:
    ae = Autoencoder.from_architecture(AEArchitecture((8, 16, 16), 1, 4, 4), seed=0)
    images = [torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(1)), torch.rand(2, 3, 36, 40)]
    record = resolve_normalizer(ae, "auto", 0.1, images, "random images", max_images=6)
    stats = record["latent_stats"]
    assert record["method"] == "bisection" and ae.normalizer.scale == record["scale"] == stats["scale"]
    assert abs(stats["normalized_std"] - 0.1) < 2e-4 and stats["images"] == 6 and stats["raw_std"] > 0
    assert record["calibrated_on"] == "random images" and record["target_std"] == 0.1
    assert len(stats["raw_std_per_channel"]) == 4
    # The recorded stats are those of the latents at the chosen scale.
    z = ae.encode(images[0]).transpose(0, 1).reshape(4, -1)
    assert abs(latent_stats(z.double(), ae.normalizer.scale, 5)["normalized_std"] - 0.1) < 0.05

    fixed = resolve_normalizer(ae, 0.02, 0.1, images, "random images", max_images=6)
    assert fixed["method"] == "fixed" and ae.normalizer.scale == 0.02 and fixed["target_std"] is None
    # auto without images: s from the diffusers scaling_factor (std(scaling_factor * z) = 1 by convention).
    guess = resolve_normalizer(ae, "auto", 0.1, None, "", max_images=6)
    assert guess["method"] == "scaling_factor" and guess["latent_stats"] is None
    assert guess["scale"] == pytest.approx(0.1 * ae.vae.config.scaling_factor, rel=1e-3)


# ------------------------------------------------------------------ import-ae through the CLI

@pytest.fixture(scope="module")
def plain_f8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised f8 / 16-channel AutoencoderKL saved by plain diffusers (no igae files)."""
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("byo") / "my_vae"
    AutoencoderKL(**F8_D16.diffusers_config(), scaling_factor=0.3).save_pretrained(folder)
    assert not (folder / "igae_autoencoder.json").exists()
    return folder


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_nerfstudio_ball(tmp_path_factory.mktemp("scenes") / "ball", 32, 32)


@pytest.fixture(scope="module")
def imported(plain_f8: Path, scene: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("imported") / "my_vae_igae"
    assert main(["import-ae", *SMOKE, "--from", str(plain_f8), "--out", str(out), "--calibrate-on", str(scene)]) == 0
    return out


def test_import_ae_records_the_autoencoder_and_its_calibrated_scale(imported: Path, plain_f8: Path, scene: Path) -> None:
    record = json.loads((imported / "model" / "igae_autoencoder.json").read_text())
    meta = record["metadata"]
    assert record["downsampling"] == 8 and record["latent_channels"] == 16 and record["scaling_factor"] == 0.3
    assert meta["origin"] == "imported" and meta["imported_from"] == str(plain_f8)
    calib = meta["normalizer_calibration"]
    assert calib["method"] == "bisection" and calib["setting"] == "auto" and str(scene) in calib["calibrated_on"]
    assert record["normalizer"]["scale"] == calib["scale"]
    stats = meta["latent_stats"]
    assert stats["images"] == 6  # the scene's train split
    assert abs(stats["normalized_std"] - 0.1) < 1e-3 and stats["raw_std"] > 0
    # The weights are the user's, unchanged.
    ae = Autoencoder.load(imported / "model")
    from diffusers import AutoencoderKL

    plain = AutoencoderKL.from_pretrained(plain_f8, low_cpu_mem_usage=False)
    assert all(torch.equal(a, b) for a, b in zip(ae.vae.state_dict().values(), plain.state_dict().values()))
    assert ae.normalizer.scale == calib["scale"]


def test_a_plain_diffusers_folder_and_an_imported_one_both_fit(plain_f8: Path, imported: Path, scene: Path,
                                                                tmp_path: Path) -> None:
    """fit-nerf takes the import-ae folder, and a plain diffusers folder (imported on the fly,
    calibrated on the scene's train views: the same scale as import-ae on that scene)."""
    for name, ae in (("imported", imported), ("plain", plain_f8)):
        out = tmp_path / name
        assert main(["fit-nerf", *SMOKE, "--scene", str(scene), "--autoencoder", str(ae), "--method", "ngp",
                     "--out", str(out), "--quiet"]) == 0
        m = json.loads((out / "metrics.json").read_text())
        assert m["render_size"] == [4, 4] and m["metrics"]["psnr"] > 0
        assert m["normalizer"]["scale"] == _record(imported)["normalizer"]["scale"]
        assert torch.load(out / "latents.pt")["rendered"].shape == (2, 16, 4, 4)
    # Both fits saw the same normalised targets, so the same scale: identical results.
    a = json.loads((tmp_path / "imported" / "metrics.json").read_text())["metrics"]
    b = json.loads((tmp_path / "plain" / "metrics.json").read_text())["metrics"]
    assert a == b


def test_import_ae_bad_input_fails_clearly(tmp_path: Path, plain_f8: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    cases = [
        (["--from", "igae-tests/no-such-autoencoder"], "could not download"),
        (["--from", str(tmp_path / "nowhere")], "does not exist"),
        (["--from", str(plain_f8), "--calibrate-on", str(tmp_path / "no_images")], "no_images"),
    ]
    (tmp_path / "empty").mkdir()
    cases.append((["--from", str(plain_f8), "--calibrate-on", str(tmp_path / "empty")], "no scene, scene set"))
    for args, words in cases:
        start = time.monotonic()
        assert main(["import-ae", *SMOKE, *args, "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and words in err, err
        assert time.monotonic() - start < 20 and not (tmp_path / "out").exists()


def test_a_plain_folder_where_a_stage_cannot_calibrate_asks_for_import_ae(plain_f8: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval-ae", *SMOKE, "--ae", str(plain_f8), "--name", "x", "--photos", str(tmp_path),
                 "--heldout", str(tmp_path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "igae import-ae" in err and "normalizer_scale" in err, err


# ------------------------------------------------------------------ the pipeline's AE stages on top of it

@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Training scenes, held-out scenes and photos made by the pipeline's own data stages (smoke preset)."""
    root = tmp_path_factory.mktemp("smoke_data")
    assert main(["select-objects", *SMOKE, "--out", str(root / "objects.json")]) == 0
    for split in ("train", "heldout"):
        assert main(["render-scenes", *SMOKE, "--objects", str(root / "objects.json"), "--set", split,
                     "--out", str(root / split)]) == 0
    assert main(["build-photos", *SMOKE, "--out", str(root / "photos")]) == 0
    return {"root": root, "scenes": root / "train", "heldout": root / "heldout", "photos": root / "photos"}


def _record(folder: Path) -> dict:
    return json.loads((folder / "model" / "igae_autoencoder.json").read_text())


def test_train_ae_calibrates_its_scale_and_igae_trains_on_an_imported_autoencoder(
        smoke_data: dict[str, Path], plain_f8: Path) -> None:
    d = smoke_data
    data = ["--scenes", str(d["scenes"]), "--photos", str(d["photos"])]
    # The standard AE: s calibrated on its training views after training (params.yaml: auto, 0.1).
    assert main(["train-ae", *SMOKE, *data, "--out", str(d["root"] / "standard"),
                 "--work", str(d["root"] / "standard.work")]) == 0
    standard = _record(d["root"] / "standard")
    calib, stats = standard["metadata"]["normalizer_calibration"], standard["metadata"]["latent_stats"]
    assert calib["method"] == "bisection" and standard["normalizer"]["scale"] == calib["scale"] == stats["scale"]
    assert abs(stats["normalized_std"] - 0.1) < 1e-3 and stats["images"] == 24  # 4 scenes x 6 train views
    assert standard["metadata"]["origin"] == "trained"

    # IG-AE on top of someone's f8 / 16-channel VAE (params describe a 4-channel f4 AE: not checked
    # against an imported one).
    imported = d["root"] / "imported"
    assert main(["import-ae", *SMOKE, "--from", str(plain_f8), "--out", str(imported),
                 "--calibrate-on", str(d["scenes"]), str(d["photos"])]) == 0
    assert _record(imported)["metadata"]["latent_stats"]["images"] == 24 + 12  # train views + train photos
    assert main(["train-igae", *SMOKE, "--ae", str(imported), *data, "--out", str(d["root"] / "igae"),
                 "--work", str(d["root"] / "igae.work")]) == 0
    igae = _record(d["root"] / "igae")
    assert igae["latent_channels"] == 16 and igae["downsampling"] == 8
    assert igae["normalizer"]["scale"] == _record(imported)["normalizer"]["scale"]  # the start AE's s, kept
    assert igae["metadata"]["origin"] == "imported" and igae["metadata"]["start"] == str(imported)
    assert igae["metadata"]["normalizer_calibration"] == _record(imported)["metadata"]["normalizer_calibration"]
    assert igae["metadata"]["latent_stats"]["raw_std"] > 0  # measured after IG-AE training
    assert torch.load(d["root"] / "igae" / "triplanes.pt", weights_only=False)["state_dict"]

    # eval-ae reports the latent statistics on its evaluation images.
    assert main(["eval-ae", *SMOKE, "--ae", str(d["root"] / "igae"), "--name", "igae", "--photos", str(d["photos"]),
                 "--heldout", str(d["heldout"]), "--out", str(d["root"] / "eval")]) == 0
    metrics = json.loads((d["root"] / "eval" / "metrics.json").read_text())
    assert metrics["normalizer"]["scale"] == igae["normalizer"]["scale"]
    assert set(metrics["latent_stats"]) == {"photos_test", "heldout_scene_views"}
    for s in metrics["latent_stats"].values():
        assert 0 < s["normalized_std"] < 1 and s["raw_std"] > 0 and s["scale"] == igae["normalizer"]["scale"]
    assert metrics["latent_stats_training_views"] == igae["metadata"]["latent_stats"]
