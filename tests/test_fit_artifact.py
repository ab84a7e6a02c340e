"""The fit as an artifact (write_fit / load_fit) and `igae render` of a trained fit at new poses."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from igae.cli import main
from igae.data import read_scene
from igae.eval.metrics import psnr
from igae.nerf.artifact import DECODER_FILE, FIELD_FILE, FIT_ENTRIES, LATENTS_FILE, load_fit
from igae.nerf.render_poses import read_poses, render_poses

from test_nerf_fit import REPO, tiny_ae, write_nerfstudio_ball


def _fit(scene: Path, autoencoder: str, method: str, out: Path, *extra: str) -> None:
    assert main(["fit-nerf", "--params", str(REPO / "params.yaml"), "--preset", "smoke", "--scene", str(scene),
                 "--autoencoder", autoencoder, "--method", method, "--out", str(out), "--quiet", *extra]) == 0


@pytest.fixture(scope="module")
def fits(tmp_path_factory) -> dict[str, Path]:
    """A latent (occupancy sampler) and an RGB fit of one small scene, and the scene."""
    root = tmp_path_factory.mktemp("artifact")
    scene = write_nerfstudio_ball(root / "ball", 32, 32)
    tiny_ae(root / "ae")
    _fit(scene, str(root / "ae"), "ngp", root / "latent")
    _fit(scene, "rgb", "vanilla", root / "rgb")
    return {"scene": scene, "latent": root / "latent", "rgb": root / "rgb", "ae": root / "ae"}


def _all_tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _all_tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _all_tensors(v)


def test_every_saved_tensor_is_on_the_cpu_and_the_fit_loads_with_map_location_cpu(fits) -> None:
    for name in (FIELD_FILE, DECODER_FILE, LATENTS_FILE):
        blob = torch.load(fits["latent"] / name, map_location=None)  # no remapping: the devices as saved
        tensors = list(_all_tensors(blob))
        assert tensors and all(t.device.type == "cpu" for t in tensors), name
    fit = load_fit(fits["latent"], map_location="cpu")
    model = fit.model("cpu")
    assert fit.method == "ngp" and fit.is_latent and model.ae is not None and model.downsampling == 4
    # The rebuilt field, decoder copy and occupancy grid are the saved ones.
    saved = torch.load(fits["latent"] / FIELD_FILE)
    for k, v in model.field.state_dict().items():
        assert torch.equal(v, saved["state_dict"][k]), k
    assert torch.equal(model.sampler.state_dict()["occupied"], saved["sampler_state"]["occupied"])
    decoder = torch.load(fits["latent"] / DECODER_FILE)["decoder_state_dict"]
    for k, v in model.ae.state_dict().items():
        assert torch.equal(v, decoder[k]), k
    assert not any(torch.equal(v, tiny_ae().state_dict()[k]) for k, v in model.ae.state_dict().items()
                   if k.startswith("vae.decoder.conv_out"))  # the fine-tuned copy, not the shared AE


def test_load_fit_rejects_a_folder_that_is_not_a_fit(tmp_path: Path) -> None:
    from igae.errors import InputError

    with pytest.raises(InputError, match="metrics.json"):
        load_fit(tmp_path)


@pytest.mark.parametrize("kind", ["latent", "rgb"])
def test_rendering_the_fits_own_test_poses_reproduces_its_test_metrics_and_renders(fits, kind: str) -> None:
    fit = load_fit(fits[kind])
    torch.set_num_threads(int(fit.metrics["threads"]))
    model = fit.model("cpu")
    scene = read_scene(fits["scene"], splits_required=("train", "test"))
    poses = read_poses(fits["scene"] / "transforms.json", tuple(fit.metrics["image_size"]))
    test_ids = scene.split["test"]
    frames = list(render_poses(model, poses, batch=3))
    rgb = torch.cat([f.rgb for f in frames])[test_ids]
    per_view = fit.per_view()
    values = psnr(rgb, scene.images[test_ids])
    assert list(per_view["view"]) == [poses.names[i] for i in test_ids]
    np.testing.assert_allclose(values.numpy(), per_view["psnr"].to_numpy(), atol=1e-4, rtol=0)
    # The command writes the same pixels as the fit's own test renders (left panel of renders/<view>.png).
    out = fits[kind].parent / f"render_{kind}"
    assert main(["render", "--fit", str(fits[kind]), "--poses", str(fits["scene"] / "transforms.json"),
                 "--out", str(out), "--threads", str(fit.metrics["threads"]), "--batch", "4"]) == 0
    for view in per_view["view"]:
        mine = np.asarray(Image.open(out / "images" / f"{view}.png"))
        theirs, _ = fit.test_render(view)
        assert np.array_equal(mine, theirs), view
    record = json.loads((out / "render.json").read_text())
    assert record["frames"] == poses.names and record["size"] == [32, 32]


def test_render_writes_raw_latents_that_plain_diffusers_decodes(fits, tmp_path: Path) -> None:
    from diffusers import AutoencoderKL

    fit = load_fit(fits["latent"])
    scene_tf = fits["scene"] / "transforms.json"
    for convention in ("raw", "normalized"):
        assert main(["render", "--fit", str(fits["latent"]), "--poses", str(scene_tf), "--out",
                     str(tmp_path / convention), "--latents", convention, "--size", "48x40"]) == 0
    raw = torch.load(tmp_path / "raw" / "latents.pt")
    normalized = torch.load(tmp_path / "normalized" / "latents.pt")
    meta = json.loads((tmp_path / "raw" / "latents.json").read_text())
    assert raw.shape == normalized.shape == (8, 4, 10, 12) and meta["shape"] == [8, 4, 10, 12]
    np.testing.assert_array_equal(np.load(tmp_path / "raw" / "latents.npy"), raw.numpy())
    s, eps = meta["normalizer"]["scale"], meta["normalizer"]["eps"]
    torch.testing.assert_close(raw, torch.atanh(normalized.clamp(-1 + eps, 1 - eps)) / s)
    assert normalized.abs().max() < 1 and meta["convention"] == "raw" and meta["scaling_factor"] is not None
    assert Path(meta["autoencoder_model"]) == fits["ae"] / "model"
    # The fit's decoder copy, applied through plain diffusers, gives the images `igae render` wrote.
    vae = AutoencoderKL.from_pretrained(meta["autoencoder_model"]).eval()
    vae.load_state_dict({k[len("vae."):]: v for k, v in torch.load(fits["latent"] / DECODER_FILE)
                         ["decoder_state_dict"].items()})
    with torch.no_grad():
        images = ((vae.decode(raw[:2]).sample + 1) / 2).clamp(0, 1)
    written = torch.stack([torch.from_numpy(np.array(Image.open(tmp_path / "raw" / "images" / f"{n}.png")))
                           for n in meta["frames"][:2]]).permute(0, 3, 1, 2) / 255.0
    assert images.shape == (2, 3, 40, 48)
    assert (images - written).abs().max() <= 1.0 / 255 + 1e-6
    # At the fit's own size, the test poses' latents are the fit's rendered test latents.
    torch.set_num_threads(int(fit.metrics["threads"]))
    assert main(["render", "--fit", str(fits["latent"]), "--poses", str(scene_tf), "--out", str(tmp_path / "native"),
                 "--latents", "normalized", "--threads", str(fit.metrics["threads"])]) == 0
    native = torch.load(tmp_path / "native" / "latents.pt")
    test_ids = read_scene(fits["scene"], splits_required=("train", "test")).split["test"]
    torch.testing.assert_close(native[test_ids], fit.latents()["rendered"], atol=1e-5, rtol=0)


def test_render_refuses_bad_input_and_folders_it_did_not_write(fits, tmp_path: Path, capsys) -> None:
    scene_tf = str(fits["scene"] / "transforms.json")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    cases = [
        (["--fit", str(fits["rgb"]), "--latents", "raw"], "RGB fit"),
        (["--fit", str(fits["latent"]), "--size", "30x30"], "multiples"),
        (["--fit", str(fits["latent"]), "--size", "big"], "--size"),
        (["--fit", str(tmp_path)], "metrics.json"),
    ]
    for extra, words in cases:
        assert main(["render", "--poses", scene_tf, "--out", str(tmp_path / "o"), *extra]) == 2
        assert words in capsys.readouterr().err
        assert not (tmp_path / "o").exists()
    assert main(["render", "--fit", str(fits["rgb"]), "--poses", scene_tf, "--out", str(mine)]) == 2
    assert "not written by igae" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep me"


def test_latent_interop_example_decodes_with_plain_diffusers_and_transfers_a_latent_edit(fits, tmp_path: Path) -> None:
    """examples/latent_interop.py on a smoke fit's raw latents and a few real photos."""
    import importlib.util

    from skimage import data as samples

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
                 "colorwheel"):
        Image.fromarray(getattr(samples, name)()).resize((128, 128)).save(photos / f"{name}.png")
    render = tmp_path / "render"
    assert main(["render", "--fit", str(fits["latent"]), "--poses", str(fits["scene"] / "transforms.json"),
                 "--out", str(render), "--latents", "raw"]) == 0
    spec = importlib.util.spec_from_file_location("latent_interop", REPO / "examples" / "latent_interop.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    report = example.main(["--render", str(render), "--photos", str(photos), "--out", str(tmp_path / "out")])
    assert report["latent_shape"] == [8, 4, 8, 8] and report["image_shape"] == [8, 3, 32, 32]
    assert 10 < report["psnr_shared_decoder_vs_fit_decoder_copy"] < 100
    photo = report["photos_heldout"]
    assert photo["latent_mse_after"] < 0.75 * photo["latent_mse_before"], photo  # it learned the edit (held-out photos)
    nerf = report["nerf_views"]
    assert all(math.isfinite(v) for v in nerf.values())
    assert nerf["latent_mse_after"] < 0.75 * nerf["latent_mse_before"], nerf  # and it transfers to NeRF latents
    assert (tmp_path / "out" / "comparison.png").is_file() and (tmp_path / "out" / "report.json").is_file()


def test_a_fit_reruns_into_its_folder_after_snakemake_deleted_metrics_json(fits, tmp_path: Path, capsys) -> None:
    """Snakemake deletes a job's declared outputs (each fit's metrics.json) before it reruns the job:
    the fit accepts a folder of its own entries without metrics.json, and writes the same fit again;
    a folder with anything else in it is still refused, and left as it was."""
    import shutil

    # FIT_ENTRIES names everything a fit writes (else a rerun would refuse the fit's own folder).
    for kind in ("latent", "rgb"):
        assert {p.name for p in fits[kind].iterdir()} <= set(FIT_ENTRIES), kind
    folder = tmp_path / "latent"
    shutil.copytree(fits["latent"], folder)
    before = json.loads((folder / "metrics.json").read_text())
    (folder / "metrics.json").unlink()
    _fit(fits["scene"], str(fits["ae"]), "ngp", folder)
    after = json.loads((folder / "metrics.json").read_text())
    assert after["metrics"] == before["metrics"]  # the same deterministic fit
    (folder / "metrics.json").unlink()
    (folder / "notes.txt").write_text("keep me")
    assert main(["fit-nerf", "--params", str(REPO / "params.yaml"), "--preset", "smoke", "--scene", str(fits["scene"]),
                 "--autoencoder", str(fits["ae"]), "--method", "ngp", "--out", str(folder), "--quiet"]) == 2
    assert "notes.txt" in capsys.readouterr().err
    assert (folder / "notes.txt").read_text() == "keep me" and (folder / "field.pt").exists()
