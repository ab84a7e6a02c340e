"""A user's own scenes: automatic scene box, downscaled images, distortion, unbounded scenes, and
never deleting a folder the pipeline did not write."""

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
from igae.data.scene_box import (UnboundedSceneError, apply_transform, auto_scene_box, check_background_border,
                                 check_bounded)
from igae.data.undistort import distort, undistort_image
from igae.errors import InputError
from igae.geometry import look_at
from igae.render.cameras import sample_cameras

from test_nerf_fit import REPO, ball_views, write_nerfstudio_ball

CENTRE = torch.tensor([0.3, -0.2, 0.5])
SCALE = 2.0  # the user's world units: twice the ball's


def write_lego_style(root: Path, size: int = 800, n: int = 8, render: int = 100) -> Path:
    """A NeRF-synthetic folder (RGBA ``size`` x ``size`` PNGs, ``transforms_{train,test}.json``, no
    igae metadata) of the test ball, in a world frame shifted by ``CENTRE`` and scaled by ``SCALE``:
    rendered at ``render`` px, then upsampled (nearest) to ``size`` px."""
    rgb, alpha, c2w, _ = ball_views(n, render, render)
    straight = rgb / alpha.clamp_min(1e-6)[..., None]
    rgba = (torch.cat([straight.clamp(0, 1), alpha[..., None]], dim=-1).numpy() * 255 + 0.5).astype(np.uint8)
    world = c2w.clone()
    world[:, :3, 3] = c2w[:, :3, 3] * SCALE + CENTRE
    root.mkdir(parents=True)
    for name, ids in (("train", range(0, n - 2)), ("test", range(n - 2, n))):
        (root / name).mkdir()
        frames = []
        for j, i in enumerate(ids):
            Image.fromarray(rgba[i], "RGBA").resize((size, size), Image.NEAREST).save(root / name / f"r_{j}.png")
            frames.append({"file_path": f"./{name}/r_{j}", "transform_matrix": world[i].tolist()})
        (root / f"transforms_{name}.json").write_text(json.dumps({"camera_angle_x": math.radians(40.0),
                                                                  "frames": frames}))
    return root


# ------------------------------------------------------------------ scene box
def test_auto_box_finds_the_look_at_point_and_maps_cameras_to_a_unit_box() -> None:
    c2w = sample_cameras(12, 2.6, (-20.0, 60.0), seed=0)
    world = c2w.clone()
    world[:, :3, 3] = c2w[:, :3, 3] * SCALE + CENTRE
    k = torch.tensor([[80.0, 80.0, 32.0, 32.0]]).expand(12, 4)
    box = auto_scene_box(world, k, 64, 64)
    torch.testing.assert_close(box.centre.float(), CENTRE, atol=1e-4, rtol=0)
    assert box.radius == pytest.approx(2.6 * SCALE, rel=1e-4) and box.aabb_half == 1.0
    moved = apply_transform(box.transform, world)
    # The same cameras as the unshifted ones, scaled: rotations untouched, centres scaled about the origin.
    torch.testing.assert_close(moved[:, :3, :3], c2w[:, :3, :3], atol=1e-5, rtol=0)
    torch.testing.assert_close(moved[:, :3, 3], c2w[:, :3, 3] * SCALE * box.scale, atol=1e-5, rtol=0)
    # The box is what a camera at the median distance sees whole: radius * sin(half fov) -> 1.
    half = math.atan(32.0 / 80.0)
    assert box.scale == pytest.approx(1.0 / (2.6 * SCALE * math.sin(half)), rel=1e-4)


def test_outward_forward_facing_and_cluttered_scenes_get_the_bounded_scene_message() -> None:
    k = torch.tensor([[40.0, 40.0, 16.0, 16.0]]).expand(12, 4)
    eyes = sample_cameras(12, 2.6, (-20.0, 60.0), seed=0)[:, :3, 3]
    outward = look_at(eyes * 0.01, eyes * 2.0, (0.0, 0.0, 1.0))  # at the centre, looking out
    white = torch.ones(12, 3, 32, 32)
    with pytest.raises(UnboundedSceneError, match="bounded, object-centred"):
        check_bounded(outward, k, 32, 32, white, (1.0, 1.0, 1.0))
    forward = look_at(eyes * 0 + torch.tensor([0.0, -3.0, 0.0]) + torch.randn(12, 3) * 0.05,
                      torch.tensor([0.0, 100.0, 0.0]), (0.0, 0.0, 1.0))
    with pytest.raises(UnboundedSceneError, match="one direction"):
        check_bounded(forward, k, 32, 32, white, (1.0, 1.0, 1.0))
    clutter = torch.rand(12, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with pytest.raises(UnboundedSceneError, match="borders"):
        check_background_border(clutter, (1.0, 1.0, 1.0))
    check_background_border(white, (1.0, 1.0, 1.0))  # an object on its background passes


def test_fit_nerf_stops_on_an_unbounded_scene_unless_allowed(tmp_path: Path, capsys) -> None:
    scene = write_nerfstudio_ball(tmp_path / "ball", 32, 32)
    rng = np.random.default_rng(0)
    for png in sorted((scene / "images").glob("*.png")):  # clutter all around the object: content beyond the box
        image = np.asarray(Image.open(png)).copy()
        ring = np.ones(image.shape[:2], bool)
        ring[4:-4, 4:-4] = False
        image[ring] = rng.integers(0, 256, (int(ring.sum()), 3), dtype=np.uint8)
        Image.fromarray(image).save(png)
    tf = json.loads((scene / "transforms.json").read_text())
    tf["igae"].pop("image_sha256", None)
    (scene / "transforms.json").write_text(json.dumps(tf))
    argv = ["fit-nerf", "--params", str(REPO / "params.yaml"), "--preset", "smoke", "--scene", str(scene),
            "--autoencoder", "rgb", "--method", "vanilla", "--out", str(tmp_path / "fit"), "--quiet"]
    assert main(argv) == 2
    assert "bounded, object-centred" in capsys.readouterr().err and not (tmp_path / "fit").exists()
    assert main([*argv, "--allow-unbounded"]) == 0


# ------------------------------------------------------------------ a user's NeRF-synthetic scene, end to end
def test_a_lego_style_scene_runs_through_fit_nerf_aabb_auto_downscale_4_and_render(tmp_path: Path) -> None:
    scene = write_lego_style(tmp_path / "lego")
    assert Image.open(scene / "train" / "r_0.png").size == (800, 800)
    out = tmp_path / "fit"
    assert main(["fit-nerf", "--params", str(REPO / "params.yaml"), "--preset", "smoke", "--scene", str(scene),
                 "--autoencoder", "rgb", "--method", "ngp", "--out", str(out), "--quiet", "--aabb", "auto",
                 "--downscale", "4", "--threads", "1"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["image_size"] == [200, 200] and m["downscale"] == 4 and m["aabb_half"] == 1.0
    record = m["scene_transform"]
    np.testing.assert_allclose(record["centre"], CENTRE.numpy(), atol=1e-3)
    assert record["radius"] == pytest.approx(2.6 * SCALE, rel=1e-3)
    # Rendering the user's test poses (their own frame) gives the fit's test renders: the transform maps back.
    assert main(["render", "--fit", str(out), "--poses", str(scene / "transforms_test.json"), "--out",
                 str(tmp_path / "render"), "--threads", "1"]) == 0
    for view in m["test_views"]:
        mine = np.asarray(Image.open(tmp_path / "render" / "images" / f"{view}.png"))
        theirs = np.asarray(Image.open(out / "renders" / f"{view}.png").convert("RGB"))[:200, :200]
        assert mine.shape == (200, 200, 3) and np.array_equal(mine, theirs), view
    # The default box for a scene without metadata is automatic too.
    assert main(["fit-nerf", "--params", str(REPO / "params.yaml"), "--preset", "smoke", "--scene", str(scene),
                 "--autoencoder", "rgb", "--method", "vanilla", "--out", str(tmp_path / "default"), "--quiet",
                 "--downscale", "8", "--threads", "1"]) == 0
    default = json.loads((tmp_path / "default" / "metrics.json").read_text())
    assert default["aabb_source"].startswith("auto") and "scene_transform" in default


# ------------------------------------------------------------------ downscale
def test_downscale_reads_images_n_copies_or_resizes_and_scales_intrinsics(tmp_path: Path) -> None:
    scene = write_nerfstudio_ball(tmp_path / "ball", 32, 32)
    full = read_scene(scene)
    resized = read_scene(scene, downscale=2)
    assert (resized.width, resized.height) == (16, 16)
    torch.testing.assert_close(resized.images, torch.nn.functional.avg_pool2d(full.images, 2))
    torch.testing.assert_close(resized.intrinsics, full.intrinsics / 2)
    assert "resized on load" in resized.metadata["downscale"]["source"]
    # nerfstudio's images_2/ copies win when present (here: grey images, so we can tell them apart).
    (scene / "images_2").mkdir()
    for fp in json.loads((scene / "transforms.json").read_text())["frames"]:
        Image.new("RGB", (16, 16), (128, 128, 128)).save(scene / "images_2" / Path(fp["file_path"]).name)
    copies = read_scene(scene, downscale=2)
    assert torch.allclose(copies.images, torch.full_like(copies.images, 128 / 255))
    torch.testing.assert_close(copies.intrinsics, full.intrinsics / 2)
    (scene / "images_2" / "frame_00003.png").unlink()
    with pytest.raises(InputError, match="frame_00003"):
        read_scene(scene, downscale=2)


# ------------------------------------------------------------------ distortion
def _pattern(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A smooth test image as a function of undistorted normalised coordinates: ``(3, ...)``."""
    return torch.stack([0.5 + 0.4 * torch.sin(4 * x) * torch.cos(3 * y), 0.5 + 0.4 * torch.cos(5 * y),
                        0.5 + 0.4 * torch.sin(3 * (x + y))])


def _undistort_points(xd: torch.Tensor, yd: torch.Tensor, model: str, coeffs: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`distort` by Newton iterations with a numerical Jacobian (the test's own inverse)."""
    x, y = xd.clone(), yd.clone()
    h = 1e-6
    for _ in range(30):
        fx, fy = distort(x, y, model, coeffs)
        ex, ey = fx - xd, fy - yd
        a, c = [(d - f) / h for d, f in zip(distort(x + h, y, model, coeffs), (fx, fy))]
        b, d_ = [(d - f) / h for d, f in zip(distort(x, y + h, model, coeffs), (fx, fy))]
        det = a * d_ - b * c
        x, y = x - (d_ * ex - b * ey) / det, y - (-c * ex + a * ey) / det
    return x, y


@pytest.mark.parametrize("model, coeffs", [
    ("OPENCV", {"k1": -0.12, "k2": 0.02, "p1": 0.003, "p2": -0.002}),
    ("OPENCV", {"k1": 0.15, "k2": 0.05}),  # pincushion: the pinhole view zooms in
    ("OPENCV_FISHEYE", {"k1": 0.05, "k2": -0.01, "k3": 0.002, "k4": -0.001}),
])
def test_distorted_nerfstudio_images_are_undistorted_on_load(tmp_path: Path, model: str, coeffs: dict) -> None:
    w = h = 64
    k = [50.0, 52.0, 31.0, 33.0]
    v, u = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    xd, yd = (u + 0.5 - k[2]) / k[0], (v + 0.5 - k[3]) / k[1]
    distorted = _pattern(*_undistort_points(xd, yd, model, coeffs)).float()  # what the camera recorded
    root = tmp_path / "scene"
    (root / "images").mkdir(parents=True)
    frames = []
    for i in range(3):
        Image.fromarray((distorted.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)).save(
            root / "images" / f"f{i}.png")
        frames.append({"file_path": f"images/f{i}.png", "transform_matrix": np.eye(4).tolist()})
    (root / "transforms.json").write_text(json.dumps({"camera_model": model, "fl_x": k[0], "fl_y": k[1], "cx": k[2],
                                                      "cy": k[3], "w": w, "h": h, **coeffs, "frames": frames}))
    scene = read_scene(root, splits_required=("train",))
    fx, fy, cx, cy = scene.intrinsics[0].tolist()
    assert (cx, cy) == (k[2], k[3]) and fx / k[0] == pytest.approx(fy / k[1], rel=1e-6)
    assert scene.metadata["undistorted"]["models"] == [model]
    expected = _pattern((u + 0.5 - cx) / fx, (v + 0.5 - cy) / fy).float()  # the pinhole image of the pattern
    err = (scene.images[0] - expected).abs()
    assert err.mean() < 0.01 and err.max() < 0.08, (float(err.mean()), float(err.max()))
    # Without undistortion the same comparison is far off (the test would notice a no-op).
    assert (distorted - expected).abs().mean() > 2 * err.mean()


def test_undistortion_of_zero_coefficients_is_nearly_the_identity() -> None:
    image = torch.rand(3, 20, 24, generator=torch.Generator().manual_seed(0))
    out, k = undistort_image(image, [20.0, 20.0, 12.0, 10.0], "OPENCV", {"k1": 1e-9})
    assert k[0] == pytest.approx(20.0, rel=1e-4)
    assert (out - image).abs().max() < 1e-3


# ------------------------------------------------------------------ never delete what is not ours
def test_render_scenes_never_replaces_a_folder_holding_scenes_it_did_not_render(tmp_path: Path, capsys) -> None:
    from igae.render.scene_set import check_own_scene_set

    heldout = tmp_path / "heldout"
    mine = write_nerfstudio_ball(heldout / "my_scene", 16, 16)
    before = sorted(p.name for p in mine.rglob("*"))
    with pytest.raises(InputError, match="scenes.heldout.source: folder"):
        check_own_scene_set(heldout)
    # Beside a set it rendered, an extra folder is refused too.
    (heldout / "manifest.json").write_text(json.dumps({"scenes": [{"scene_id": "scene_000"}],
                                                       "provenance": {"versions": {}}}))
    with pytest.raises(InputError, match="my_scene"):
        check_own_scene_set(heldout)
    assert sorted(p.name for p in mine.rglob("*")) == before


def _tree(root: Path) -> dict[str, str]:
    from igae.io import sha256_file

    return {p.relative_to(root).as_posix(): sha256_file(p) if p.is_file() else "dir" for p in sorted(root.rglob("*"))}


SCENES_EDITS = [("resolution", 48), ("supersample", 1), ("background", [0.0, 0.0, 0.0]), ("object_box", 0.8),
                ("radius", 3.0), ("fov_deg", 30.0), ("elevation_deg", [0.0, 45.0]), ("train.count", 3),
                ("train.views", 6), ("train.test_views", 1), ("heldout.count", 5), ("heldout.views", 12),
                ("heldout.test_views", 3), ("heldout.source", "render"), ("heldout.folder", "OTHER")]


def test_a_user_scene_set_survives_a_change_of_every_scenes_key_and_a_rerun(tmp_path: Path) -> None:
    import shutil

    import yaml

    from test_nerf_fit import write_blender_ball

    user = tmp_path / "my_scenes"
    write_nerfstudio_ball(user / "chair", 32, 32)
    write_blender_ball(user / "lego", 32)
    (user / "notes.txt").write_text("not a scene")
    other = tmp_path / "other_scenes"
    write_nerfstudio_ball(other / "mug", 32, 32)
    before, other_before = _tree(user), _tree(other)
    objects = tmp_path / "objects.json"
    objects.write_text(json.dumps({"sets": {"heldout": []}}))
    out = tmp_path / "data" / "scenes" / "heldout"
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    base["scenes"]["heldout"].update(source="folder", folder=str(user))
    shutil.copytree(REPO / "presets", tmp_path / "presets")

    def render_heldout(edit: tuple[str, object] | None) -> None:
        p = json.loads(json.dumps(base))
        if edit is not None:
            *path, key = edit[0].split(".")
            section = p["scenes"]
            for part in path:
                section = section[part]
            section[key] = str(other) if edit[1] == "OTHER" else edit[1]
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
        assert main(["render-scenes", "--params", str(tmp_path / "params.yaml"), "--preset", "smoke", "--objects",
                     str(objects), "--set", "heldout", "--out", str(out)]) == 0

    render_heldout(None)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["name"] for e in manifest["scenes"]] == ["chair", "lego"] and manifest["source"] == "folder"
    assert _tree(out / "scene_000") == _tree(user / "chair")  # the pipeline works on its own copies
    for edit in SCENES_EDITS:
        render_heldout(edit)
        assert _tree(user) == before, edit
        assert _tree(other) == other_before, edit
    render_heldout(None)  # and a rerun with the same params
    assert _tree(user) == before
    # The benchmark's fits run over the imported set as over a rendered one.
    assert main(["fit-nerf", "--params", str(tmp_path / "params.yaml"), "--preset", "smoke", "--scene-set", str(out),
                 "--autoencoder", "rgb", "--method", "vanilla", "--out", str(tmp_path / "fits"), "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "fits").iterdir()) == ["scene_000", "scene_001"]
    assert _tree(user) == before


def test_the_workflow_plans_the_user_scenes_and_writes_nothing_into_their_folder(tmp_path: Path) -> None:
    import re
    import subprocess
    import sys

    import yaml

    from test_workflow import _copy_workflow, _env

    user = tmp_path / "my_scenes"
    for name in ("a", "b", "c"):
        write_nerfstudio_ball(user / name, 32, 32)
    work = _copy_workflow(REPO, tmp_path / "wf")
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["scenes"]["heldout"].update(source="folder", folder=str(user))
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--config", "preset=smoke"],
                          cwd=work, env=_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout + proc.stderr
    fits = set(re.findall(r"results/nerf/rgb/vanilla/(scene_\d+)/metrics.json", text))
    assert fits == {"scene_000", "scene_001", "scene_002"}
    assert str(user) not in text  # no job reads or writes the user's folder by path: only render_scenes copies it
