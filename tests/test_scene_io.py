"""Scene folders: nerfstudio write/read round trip, NeRF-synthetic reading, validation, atomicity."""

from __future__ import annotations

import json
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from igae.data import Scene, read_scene, write_scene
from igae.data import nerfstudio_format
from igae.errors import InputError

W, H, N = 48, 32, 10
INTR = (50.0, 52.5, 23.75, 16.25)


def look_at(eye: np.ndarray, target=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Camera-to-world (4, 4) in OpenGL axes: the camera's -Z points from ``eye`` at ``target``."""
    eye = np.asarray(eye, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    true_up = np.cross(right, forward)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, true_up, -forward, eye
    return m


def ring_poses(n: int, radius: float = 2.5) -> np.ndarray:
    """(n, 4, 4) cameras on a tilted ring around the origin."""
    angles = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return np.stack([look_at([radius * np.cos(a), radius * np.sin(a), 0.3 + 0.1 * i]) for i, a in enumerate(angles)])


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(N, H, W, 3), dtype=np.uint8)
    split = {"train": [1, 2, 3, 5, 6, 7, 9], "test": [0, 4, 8]}
    metadata = {"object": {"name": "cube", "source": "procedural"}, "seed": 7}
    return images, ring_poses(N), split, metadata


@pytest.fixture
def scene_dir(tmp_path, data) -> Path:
    images, poses, split, metadata = data
    return write_scene(tmp_path / "scene", images, poses, INTR, split, metadata)


def edit_transforms(folder: Path, fn) -> None:
    path = folder / "transforms.json"
    meta = json.loads(path.read_text())
    fn(meta)
    path.write_text(json.dumps(meta))


# --------------------------------------------------------------------------- nerfstudio


def test_nerfstudio_round_trip(tmp_path, data):
    images, poses, split, metadata = data
    out = write_scene(tmp_path / "s", images, poses, INTR, split, metadata, background=(0.0, 0.5, 1.0))
    scene = read_scene(out)
    assert isinstance(scene, Scene) and len(scene) == N
    assert (scene.width, scene.height) == (W, H)
    assert scene.images.dtype == torch.float32 and scene.images.shape == (N, 3, H, W)
    back = (scene.images.permute(0, 2, 3, 1).numpy() * 255.0).round().astype(np.uint8)
    np.testing.assert_array_equal(back, images)
    np.testing.assert_allclose(scene.camera_to_world.numpy(), poses, atol=1e-6)
    np.testing.assert_allclose(scene.intrinsics.numpy(), np.tile(INTR, (N, 1)), rtol=1e-7)
    assert scene.split == split
    assert scene.file_paths == [f"images/frame_{i:05d}.png" for i in range(N)]
    assert scene.background == (0.0, 0.5, 1.0)
    assert scene.metadata["object"] == metadata["object"] and scene.metadata["seed"] == 7
    assert scene.metadata["split_source"] == "transforms"
    assert len(scene.metadata["image_sha256"]) == N
    meta = json.loads((out / "transforms.json").read_text())
    assert meta["camera_model"] == "OPENCV" and meta["k1"] == meta["p2"] == 0.0
    assert meta["camera_angle_x"] == pytest.approx(2 * math.atan(W / (2 * INTR[0])))


def test_float_images_and_float32_poses_round_trip(tmp_path, data):
    images, poses, split, metadata = data
    poses32 = poses.astype(np.float32)
    out = write_scene(tmp_path / "s", images / 255.0, poses32, INTR, split, metadata)
    scene = read_scene(out)
    assert torch.allclose(scene.images, torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0, atol=1e-6)
    # float32 -> float64 repr -> float32 is exact.
    np.testing.assert_array_equal(scene.camera_to_world.numpy(), poses32)


def test_write_is_byte_identical(tmp_path, data):
    images, poses, split, metadata = data
    a = write_scene(tmp_path / "a", images, poses, INTR, split, metadata)
    b = write_scene(tmp_path / "b", images, poses, INTR, split, metadata)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == N + 1
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    # Rewriting in place replaces the folder with the same bytes.
    before = (a / "transforms.json").read_bytes()
    write_scene(a, images, poses, INTR, split, metadata)
    assert (a / "transforms.json").read_bytes() == before


def test_per_frame_intrinsics(scene_dir):
    def per_frame(meta):
        meta["frames"][3].update(fl_x=40.0, fl_y=41.0, cx=20.0, cy=15.0)
        meta["frames"][5]["cx"] = 25.5
        del meta["fl_y"]  # falls back to fl_x for frames without their own fl_y

    edit_transforms(scene_dir, per_frame)
    k = read_scene(scene_dir).intrinsics.numpy()
    np.testing.assert_allclose(k[3], [40.0, 41.0, 20.0, 15.0])
    np.testing.assert_allclose(k[5], [INTR[0], INTR[0], 25.5, INTR[3]])
    np.testing.assert_allclose(k[0], [INTR[0], INTR[0], INTR[2], INTR[3]])


def test_camera_angle_x_and_centre_fallbacks(scene_dir):
    def strip(meta):
        for key in ("fl_x", "fl_y", "cx", "cy", "w", "h"):
            del meta[key]
        meta["camera_angle_x"] = 1.0

    edit_transforms(scene_dir, strip)
    scene = read_scene(scene_dir)
    f = 0.5 * W / math.tan(0.5)
    np.testing.assert_allclose(scene.intrinsics[0].numpy(), [f, f, W / 2, H / 2], rtol=1e-6)
    assert (scene.width, scene.height) == (W, H)  # from the first image


def test_default_split_is_recorded(scene_dir):
    edit_transforms(scene_dir, lambda m: [m.pop("train_filenames"), m.pop("test_filenames")])
    scene = read_scene(scene_dir)
    assert scene.split == {"train": [1, 2, 3, 4, 5, 6, 7, 9], "test": [0, 8]}
    assert scene.metadata["split_source"] == "default_every_8th"


def test_split_filenames_tolerate_dot_slash(scene_dir):
    edit_transforms(scene_dir, lambda m: m.update(val_filenames=["./images/frame_00004.png"]))
    assert read_scene(scene_dir).split["val"] == [4]


def test_subset(scene_dir, data):
    scene = read_scene(scene_dir)
    test = scene.subset("test")
    assert len(test) == 3 and test.split == {"test": [0, 1, 2]}
    assert torch.equal(test.images[1], scene.images[4])
    assert torch.equal(test.camera_to_world[2], scene.camera_to_world[8])
    assert test.file_paths == ["images/frame_00000.png", "images/frame_00004.png", "images/frame_00008.png"]
    with pytest.raises(InputError, match="val") as e:
        scene.subset("val")
    assert "scene" in str(e.value)


def test_background_from_file_and_argument(tmp_path, data):
    images, poses, split, metadata = data
    out = write_scene(tmp_path / "s", images, poses, INTR, split, metadata, background=(0.0, 0.0, 0.0))
    assert read_scene(out).background == (0.0, 0.0, 0.0)
    assert read_scene(out, background=(1.0, 0.0, 0.0)).background == (1.0, 0.0, 0.0)
    edit_transforms(out, lambda m: m["igae"].pop("background"))
    assert read_scene(out).background == (1.0, 1.0, 1.0)


def _png16(arr: np.ndarray) -> bytes:
    """A minimal 16-bit PNG (grey or RGB) for ``arr`` (H, W, C) uint16: Pillow cannot write 48-bit RGB."""
    h, w, c = arr.shape

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))
    header = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 3: 2}[c], 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_16bit_png_jpeg_and_rgba_frames(scene_dir):
    rng = np.random.default_rng(1)
    grey16 = rng.integers(0, 65536, size=(H, W, 1), dtype=np.uint16)
    rgb16 = rng.integers(0, 65536, size=(H, W, 3), dtype=np.uint16)
    (scene_dir / "images/frame_00001.png").write_bytes(_png16(grey16))
    (scene_dir / "images/frame_00002.png").write_bytes(_png16(rgb16))
    flat = np.full((H, W, 3), (200, 40, 90), dtype=np.uint8)
    Image.fromarray(flat).save(scene_dir / "images/frame_00003.jpg", quality=95)
    rgba = np.zeros((H, W, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 51  # red at alpha 0.2 over black
    Image.fromarray(rgba).save(scene_dir / "images/frame_00004.png")
    def use_jpeg(meta):
        meta["frames"][3]["file_path"] = "images/frame_00003.jpg"
        meta["train_filenames"][2] = "images/frame_00003.jpg"

    edit_transforms(scene_dir, use_jpeg)

    imgs = read_scene(scene_dir, background=(0.0, 0.0, 0.0)).images
    np.testing.assert_allclose(imgs[1, 0].numpy(), grey16[..., 0] / 65535.0, atol=1e-6)
    np.testing.assert_allclose(imgs[1, 2].numpy(), grey16[..., 0] / 65535.0, atol=1e-6)
    np.testing.assert_allclose(imgs[2].permute(1, 2, 0).numpy(), rgb16 / 65535.0, atol=1.0 / 255.0 + 1e-6)
    np.testing.assert_allclose(imgs[3].permute(1, 2, 0).numpy(), flat / 255.0, atol=3.0 / 255.0)
    np.testing.assert_allclose(imgs[4, :, 0, 0].numpy(), [0.2, 0.0, 0.0], atol=1e-6)


# --------------------------------------------------------------------------- NeRF-synthetic


def make_blender(root: Path, width: int = 40, height: int = 24, angle: float = 0.69) -> tuple[np.ndarray, dict]:
    """A NeRF-synthetic style folder: RGBA PNGs in train/ and test/, per-split transforms files."""
    rng = np.random.default_rng(2)
    poses = ring_poses(6)
    rgba = rng.integers(0, 256, size=(6, height, width, 4), dtype=np.uint8)
    rgba[0, 0, 0] = (200, 100, 0, 128)  # half-transparent pixel checked below
    rgba[0, 0, 1] = (10, 20, 30, 255)
    rgba[0, 0, 2] = (10, 20, 30, 0)
    layout = {"train": [0, 1, 2, 3], "test": [4, 5]}
    for name, ids in layout.items():
        (root / name).mkdir(parents=True)
        frames = []
        for j, i in enumerate(ids):
            Image.fromarray(rgba[i]).save(root / name / f"r_{j}.png")
            # One path already carries its extension; the reader must accept both.
            fp = f"./{name}/r_{j}" + (".png" if (name, j) == ("test", 1) else "")
            frames.append({"file_path": fp, "rotation": 0.0126, "transform_matrix": poses[i].tolist()})
        (root / f"transforms_{name}.json").write_text(json.dumps({"camera_angle_x": angle, "frames": frames}))
    return rgba, {"poses": poses, "layout": layout}


def test_blender_layout(tmp_path):
    root = tmp_path / "lego"
    rgba, info = make_blender(root)
    bg = (0.0, 0.0, 1.0)
    scene = read_scene(root, background=bg, splits_required=("train", "test"))
    assert len(scene) == 6 and (scene.width, scene.height) == (40, 24)
    assert scene.split == {"train": [0, 1, 2, 3], "test": [4, 5]}
    assert scene.metadata["split_source"] == "blender_split_files"
    assert scene.file_paths[0] == "./train/r_0.png" and scene.file_paths[5] == "./test/r_1.png"
    a = 128 / 255.0
    expected = np.array([200, 100, 0]) / 255.0 * a + np.array(bg) * (1 - a)
    np.testing.assert_allclose(scene.images[0, :, 0, 0].numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(scene.images[0, :, 0, 1].numpy(), np.array([10, 20, 30]) / 255.0, atol=1e-6)
    np.testing.assert_allclose(scene.images[0, :, 0, 2].numpy(), bg, atol=1e-6)
    f = 0.5 * 40 / math.tan(0.5 * 0.69)
    np.testing.assert_allclose(scene.intrinsics.numpy(), np.tile([f, f, 20.0, 12.0], (6, 1)), rtol=1e-6)
    np.testing.assert_allclose(scene.camera_to_world.numpy(), info["poses"], atol=1e-6)
    # Default background is white.
    white = read_scene(root).images[0, :, 0, 2]
    np.testing.assert_allclose(white.numpy(), [1.0, 1.0, 1.0])


def test_blender_missing_test_file_is_an_error_only_when_required(tmp_path):
    root = tmp_path / "lego"
    make_blender(root)
    (root / "transforms_test.json").unlink()
    assert list(read_scene(root).split) == ["train"]
    with pytest.raises(InputError, match="'test' is empty or missing"):
        read_scene(root, splits_required=("train", "test"))


# --------------------------------------------------------------------------- bad inputs


def _truncate(d: Path) -> None:
    p = d / "images/frame_00002.png"
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])


def _text_png(d: Path) -> None:
    (d / "images/frame_00001.png").write_text("this is not an image\n")


def _set_pose(i: int, fn):
    def edit(d: Path) -> None:
        def f(m):
            pose = np.array(m["frames"][i]["transform_matrix"])
            m["frames"][i]["transform_matrix"] = fn(pose).tolist()

        edit_transforms(d, f)

    return edit


def _scale_rotation(p: np.ndarray) -> np.ndarray:
    p[:3, :3] *= 1.1
    return p


def _nan(p: np.ndarray) -> np.ndarray:
    p[1, 3] = float("nan")
    return p


def _last_row(p: np.ndarray) -> np.ndarray:
    p[3] = [0.0, 0.0, 0.5, 1.0]
    return p


def _mixed_sizes(d: Path) -> None:
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(d / "images/frame_00004.png")


def _mixed_declared_sizes(d: Path) -> None:
    edit_transforms(d, lambda m: m["frames"][6].update(w=64))


BAD_NERFSTUDIO = {
    "truncated_png": (_truncate, (), ["frame_00002.png", "truncated"]),
    "text_as_png": (_text_png, (), ["frame_00001.png", "not a recognised image"]),
    "missing_image": (lambda d: (d / "images/frame_00003.png").unlink(), (), ["frame_00003.png", "not found"]),
    "not_json": (lambda d: (d / "transforms.json").write_text('{"frames": [\n  {"file_path": x}'), (),
                 ["transforms.json", "not valid JSON", "line 2"]),
    "no_frames": (lambda d: edit_transforms(d, lambda m: m.pop("frames")), (), ["transforms.json", "no 'frames'"]),
    "empty_frames": (lambda d: edit_transforms(d, lambda m: m.update(frames=[])), (), ["transforms.json", "empty"]),
    "nan_pose": (_set_pose(2, _nan), (), ["transforms.json", "frame_00002.png", "NaN"]),
    "non_orthonormal": (_set_pose(5, _scale_rotation), (), ["transforms.json", "frame_00005.png", "not orthonormal"]),
    "last_row": (_set_pose(1, _last_row), (), ["transforms.json", "frame_00001.png", "last row"]),
    "not_4x4": (_set_pose(0, lambda p: p[:3]), (), ["transforms.json", "frame_00000.png", "not 4x4"]),
    "zero_focal": (lambda d: edit_transforms(d, lambda m: m.update(fl_x=0)), (), ["transforms.json", "focal"]),
    "negative_focal": (lambda d: edit_transforms(d, lambda m: m.update(fl_y=-3.0)), (), ["transforms.json", "focal"]),
    "nan_focal": (lambda d: edit_transforms(d, lambda m: m["frames"][4].update(fl_x=float("nan"))), (),
                  ["transforms.json", "frame_00004.png", "focal"]),
    "mixed_sizes": (_mixed_sizes, (), ["frame_00004.png", "image size 40x40 differs"]),
    "mixed_declared_sizes": (_mixed_declared_sizes, (), ["transforms.json", "mixed image sizes", "frame_00006.png"]),
    "empty_test_split": (lambda d: edit_transforms(d, lambda m: m.update(test_filenames=[])), ("train", "test"),
                         ["transforms.json", "'test' is empty"]),
    "unknown_split_file": (lambda d: edit_transforms(d, lambda m: m["train_filenames"].append("images/nope.png")), (),
                           ["transforms.json", "images/nope.png", "matches no frame"]),
    # OPENCV k1-k3/p1-p2 and OPENCV_FISHEYE k1-k4 are undistorted on load (tests/test_user_scenes.py);
    # other coefficients and models are refused.
    "distortion": (lambda d: edit_transforms(d, lambda m: m.update(k5=0.1)), (), ["transforms.json", "k5"]),
    "fisheye_p1": (lambda d: edit_transforms(d, lambda m: m.update(camera_model="OPENCV_FISHEYE", p1=0.1)), (),
                   ["transforms.json", "OPENCV_FISHEYE takes k1, k2, k3, k4", "p1"]),
    "pinhole_k1": (lambda d: edit_transforms(d, lambda m: m.update(camera_model="PINHOLE", k1=0.1)), (),
                   ["transforms.json", "PINHOLE has no distortion"]),
    "equirect": (lambda d: edit_transforms(d, lambda m: m.update(camera_model="EQUIRECTANGULAR")), (),
                 ["transforms.json", "camera_model 'EQUIRECTANGULAR'"]),
}


@pytest.mark.parametrize("case", sorted(BAD_NERFSTUDIO))
def test_bad_nerfstudio_input(scene_dir, case):
    mutate, required, words = BAD_NERFSTUDIO[case]
    mutate(scene_dir)
    with pytest.raises(InputError) as e:
        read_scene(scene_dir, splits_required=required or ("train",))
    for word in words:
        assert word in str(e.value), (word, str(e.value))


def test_unknown_format(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="unknown scene format: expected transforms.json") as e:
        read_scene(tmp_path / "empty")
    assert "empty" in str(e.value)


def _blender_bad_angle(root: Path) -> None:
    meta = json.loads((root / "transforms_train.json").read_text())
    meta["camera_angle_x"] = 0.0
    (root / "transforms_train.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda r: Image.fromarray(np.zeros((24, 30, 4), np.uint8)).save(r / "test/r_0.png"),
         ["r_0.png", "image size 30x24 differs from 40x24"]),
        (_blender_bad_angle, ["transforms_train.json", "camera_angle_x"]),
        (lambda r: (r / "train/r_2.png").unlink(), ["r_2.png", "not found"]),
    ],
    ids=["mixed_sizes", "zero_angle", "missing_image"],
)
def test_bad_blender_input(tmp_path, mutate, words):
    root = tmp_path / "lego"
    make_blender(root)
    mutate(root)
    with pytest.raises(InputError) as e:
        read_scene(root)
    for word in words:
        assert word in str(e.value), (word, str(e.value))


# --------------------------------------------------------------------------- atomicity


def test_failed_write_leaves_old_folder(tmp_path, data, monkeypatch):
    images, poses, split, metadata = data
    out = write_scene(tmp_path / "scene", images, poses, INTR, split, metadata)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    real_save, calls = nerfstudio_format.save_png_atomic, []

    def failing_save(path, image):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full (simulated)")
        real_save(path, image)

    monkeypatch.setattr(nerfstudio_format, "save_png_atomic", failing_save)
    with pytest.raises(OSError, match="simulated"):
        write_scene(out, 255 - images, poses, INTR, split, {"seed": 8})
    with pytest.raises(OSError, match="simulated"):
        calls.clear()
        write_scene(tmp_path / "fresh", images, poses, INTR, split, metadata)

    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene"]  # no temp or half folder
    assert read_scene(out).metadata["seed"] == 7


def test_writer_rejects_bad_arguments(tmp_path, data):
    images, poses, split, metadata = data
    bad_pose = poses.copy()
    bad_pose[2, :3, :3] *= 2.0
    with pytest.raises(ValueError, match="camera_to_world\\[2\\].*orthonormal"):
        write_scene(tmp_path / "s", images, bad_pose, INTR, split, metadata)
    with pytest.raises(ValueError, match="positive focal"):
        write_scene(tmp_path / "s", images, poses, (0.0, 1.0, 2.0, 3.0), split, metadata)
    with pytest.raises(ValueError, match="outside"):
        write_scene(tmp_path / "s", images, poses, INTR, {"train": [N]}, metadata)
    assert not (tmp_path / "s").exists()
