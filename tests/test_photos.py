"""Tests of the real-photo set: sources, split by photo, crops, determinism, reading."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import igae.assets.debian as debian
from igae.data import photo_sources
from igae.data.photo_sources import SOURCES, Photo, collect_photos, dep5_lookup
from igae.data.photos import build_photo_set, read_photo_set, sample_crop_boxes, split_photos
from igae.errors import InputError, OfflineError
from igae.io import sha256_file

REPO = Path(__file__).resolve().parents[1]
CACHE_DIR = Path(os.environ.get("IGAE_CACHE_DIR", REPO / "data" / "cache"))
PIP_SOURCES = ["skimage", "sklearn", "matplotlib"]
RES, CROPS = 32, 3


def _build(out: Path, seed: int = 0, test_fraction: float = 0.25, **kw) -> dict:
    kw.setdefault("sources", PIP_SOURCES)
    return build_photo_set(out, RES, crops_per_photo=CROPS, test_fraction=test_fraction, seed=seed,
                           cache_dir=CACHE_DIR, **kw)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("photos") / "set"
    return out, _build(out)


# --------------------------------------------------------------------------- build


def test_counts_match_photos_times_crops(built):
    out, m = built
    n_photos = len(collect_photos(PIP_SOURCES, CACHE_DIR))
    assert n_photos == 7  # 4 skimage + 2 sklearn + 1 matplotlib
    assert m["totals"]["photos"] == n_photos and m["totals"]["crops"] == n_photos * CROPS
    for split in ("train", "test"):
        t = m["totals"]["per_split"][split]
        assert t["crops"] == t["photos"] * CROPS
        assert len(list((out / split).glob("*.png"))) == t["crops"]
    assert m["totals"]["per_split"]["test"]["photos"] == 2  # round(0.25 * 8)
    assert {s: v["photos"] for s, v in m["totals"]["per_source"].items()} == {"skimage": 4, "sklearn": 2, "matplotlib": 1}


def test_split_is_by_photo(built):
    _, m = built
    train = {c["photo_id"] for c in m["crops"] if c["split"] == "train"}
    test = {c["photo_id"] for c in m["crops"] if c["split"] == "test"}
    assert train and test and not train & test
    assert all(c["file"].startswith(c["split"] + "/") for c in m["crops"])


def test_manifest_entries_have_provenance_and_checksums(built):
    out, m = built
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == m
    assert m["params"]["seed"] == 0 and m["params"]["resolution"] == RES
    for c in m["crops"]:
        for key in ("licence", "credit", "title", "source", "photo_id"):
            assert isinstance(c[key], str) and c[key].strip(), (c["file"], key)
        assert sha256_file(out / c["file"]) == c["sha256"]
        x0, y0, x1, y1 = c["box"]
        photo = m["photos"][c["photo_id"]]
        assert x1 - x0 == y1 - y0 > 0  # square
        assert 0 <= x0 < x1 <= photo["width"] and 0 <= y0 < y1 <= photo["height"]
        assert x1 - x0 >= round(0.35 * min(photo["width"], photo["height"])) - 1
        assert Image.open(out / c["file"]).size == (RES, RES)


def test_rebuild_is_byte_identical_and_seed_matters(built, tmp_path):
    out, _ = built
    again = tmp_path / "again"
    _build(again)
    assert _files(again) == _files(out)
    other = tmp_path / "other"
    m1 = _build(other, seed=1)
    assert {c["sha256"] for c in m1["crops"]}.isdisjoint({c["sha256"] for c in json.loads((out / "manifest.json").read_text())["crops"]})


def test_rebuild_replaces_old_folder(built, tmp_path):
    out = tmp_path / "set"
    _build(out)
    (out / "train" / "stale.png").write_bytes(b"x")
    _build(out, seed=3)
    assert not (out / "train" / "stale.png").exists()


def test_read_photo_set(built):
    out, m = built
    x = read_photo_set(out, "train")
    n = m["totals"]["per_split"]["train"]["crops"]
    assert x.shape == (n, 3, RES, RES) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0 and float(x.std()) > 0.05
    first = sorted(c["file"] for c in m["crops"] if c["split"] == "train")[0]
    ref = np.asarray(Image.open(out / first).convert("RGB"), dtype=np.float32) / 255.0
    assert torch.allclose(x[0], torch.from_numpy(ref).permute(2, 0, 1))
    assert read_photo_set(out, "test").shape[0] == m["totals"]["per_split"]["test"]["crops"]


def test_read_photo_set_errors(built, tmp_path):
    out, _ = built
    with pytest.raises(InputError, match="does not exist"):
        read_photo_set(tmp_path / "nope", "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="manifest"):
        read_photo_set(tmp_path / "empty", "train")
    with pytest.raises(InputError, match="unknown photo split"):
        read_photo_set(out, "val")
    no_test = tmp_path / "no_test"
    _build(no_test, test_fraction=0.0, sources=["sklearn"])
    with pytest.raises(InputError, match="empty"):
        read_photo_set(no_test, "test")


# --------------------------------------------------------------------------- sources


def _write_jpeg(path: Path, w: int, h: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) % 256], -1).astype(np.uint8)
    img = np.clip(img.astype(int) + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, quality=90)


def test_folder_source(tmp_path):
    photos = tmp_path / "photos"
    _write_jpeg(photos / "a.jpg", 300, 200, 0)
    _write_jpeg(photos / "sub" / "b.JPEG", 200, 260, 1)
    _write_jpeg(photos / "sub" / "deeper" / "c.jpeg", 320, 320, 2)
    Image.fromarray(np.full((100, 150, 3), 90, np.uint8)).save(photos / "d.png")
    (photos / "notes.txt").write_text("not a photo")
    (photos / ".hidden.jpg").write_bytes(b"macOS resource fork")
    m = build_photo_set(tmp_path / "set", RES, ["folder"], 2, 0.25, 0, CACHE_DIR, folder=str(photos))
    assert m["totals"]["photos"] == 4 and m["totals"]["crops"] == 8
    assert {c["licence"] for c in m["crops"]} == {"user-supplied"}
    assert {p["origin"] for p in m["photos"].values()} == {"a.jpg", "sub/b.JPEG", "sub/deeper/c.jpeg", "d.png"}

    assert (m["photos"]["folder-d_png"]["width"], m["photos"]["folder-d_png"]["height"]) == (150, 100)

    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    before = _files(tmp_path / "set")
    with pytest.raises(InputError, match="broken.jpg"):
        build_photo_set(tmp_path / "set", RES, ["folder"], 2, 0.25, 0, CACHE_DIR, folder=str(photos))
    assert _files(tmp_path / "set") == before  # a failed build leaves the old set whole


@pytest.mark.parametrize("name", ["tex.png", "tex.jpg"])  # the JPEG is decoded at 1/4 (draft)
def test_crop_is_the_recorded_box(tmp_path, name):
    photos = tmp_path / "p"
    photos.mkdir()
    rng = np.random.default_rng(0)
    src = (rng.random((40, 60, 3)) ** 2 * 255).astype(np.uint8)
    im = Image.fromarray(src).resize((1200, 800), Image.Resampling.BICUBIC)  # smooth texture
    im.save(photos / name, quality=95)
    im = Image.open(photos / name).convert("RGB")  # what a full decode gives
    m = build_photo_set(tmp_path / "set", RES, ["folder"], 4, 0.0, 0, CACHE_DIR, folder=str(photos))
    for c in m["crops"]:
        got = np.asarray(Image.open(tmp_path / "set" / c["file"]), dtype=float)
        x0, y0, x1, y1 = c["box"]
        dx = 80 if x1 + 80 <= 1200 else -80
        want, moved = (
            np.asarray(im.resize((RES, RES), Image.Resampling.LANCZOS, box=b), dtype=float)
            for b in [(x0, y0, x1, y1), (x0 + dx, y0, x1 + dx, y1)]
        )
        err = np.abs(got - want).mean()
        assert err < 2.0, (name, c["box"], err)
        assert np.abs(got - moved).mean() > 4 * max(err, 0.5)


def test_unknown_and_repeated_sources():
    with pytest.raises(InputError) as err:
        collect_photos(["skimage", "imagenet"], CACHE_DIR)
    msg = str(err.value)
    assert "imagenet" in msg and all(name in msg for name in SOURCES)
    with pytest.raises(InputError, match="more than once"):
        collect_photos(["sklearn", "sklearn"], CACHE_DIR)
    with pytest.raises(InputError, match="photos.folder"):
        collect_photos(["folder"], CACHE_DIR)


def test_unavailable_sources_raise_offline_error(monkeypatch, tmp_path):
    def offline(package, cache_dir):
        raise OfflineError(f"could not download Debian package {package!r}")

    monkeypatch.setattr(debian, "fetch_debian_package", offline)
    with pytest.raises(OfflineError, match=r"'opencv-doc'.*photos\.sources"):
        collect_photos(["opencv-doc"], tmp_path)

    real = photo_sources.importlib.util.find_spec
    monkeypatch.setattr(photo_sources.importlib.util, "find_spec",
                        lambda name, *a: None if name == "sklearn" else real(name, *a))
    with pytest.raises(OfflineError, match=r"'sklearn'.*photos\.sources"):
        collect_photos(["sklearn"], tmp_path)


def test_pip_sources_are_colour_photos():
    photos = collect_photos(PIP_SOURCES, CACHE_DIR)
    assert [p.photo_id for p in photos][:4] == [
        "skimage-astronaut", "skimage-chelsea", "skimage-coffee", "skimage-rocket"]
    for p in photos:
        arr = p.load()
        assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3 and min(arr.shape[:2]) >= 256
        # colour, not gray stored as RGB
        assert np.abs(arr[..., 0].astype(int) - arr[..., 2]).mean() > 5, p.photo_id


@pytest.mark.parametrize("source, licence", [("opencv-doc", "Apache-2.0"), ("mate-backgrounds", "GPL-2+")])
def test_debian_sources(source, licence):
    photos = collect_photos([source], CACHE_DIR)
    assert len(photos) >= 5
    for p in photos:
        assert p.source == source and licence in p.licence and p.credit and p.title
        assert "lena" not in p.photo_id.lower()
        arr = p.load()
        assert arr.dtype == np.uint8 and arr.shape[2] == 3 and min(arr.shape[:2]) >= 256, p.photo_id


def test_mate_keeps_one_resolution_per_picture(tmp_path):
    root = tmp_path / "mate-backgrounds"
    nature = root / "usr/share/backgrounds/mate/nature"
    _write_jpeg(nature / "Hill.jpg", 320, 200, 0)
    _write_jpeg(nature / "Hill_640x400.jpg", 640, 400, 0)
    _write_jpeg(nature / "Lake.jpg", 300, 300, 1)
    doc = root / "usr/share/doc/mate-backgrounds"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        "Files: *\nCopyright: 2001, Someone Else <x@y.z>\nLicense: GPL-2+\n\n"
        "Files: nature/Hill*.jpg\nCopyright: 2008, Jane Doe <jane@example.org>\nLicense: CC-BY-SA-4.0\n"
    )
    (root / ".complete").write_text("fake\n")  # fetch_debian_package reuses a complete cache
    photos = collect_photos(["mate-backgrounds"], tmp_path)
    assert [p.origin.rsplit("/", 1)[-1] for p in photos] == ["Hill_640x400.jpg", "Lake.jpg"]
    assert photos[0].credit == "2008, Jane Doe" and photos[0].licence.startswith("CC-BY-SA-4.0")
    assert photos[1].credit == "2001, Someone Else" and photos[1].licence.startswith("GPL-2+")


def test_dep5_lookup_errors(tmp_path):
    f = tmp_path / "copyright"
    f.write_text("Files: a/*\nCopyright: X\nLicense: MIT\n")
    assert dep5_lookup(f, "a/b.jpg") == ("X", "MIT")
    with pytest.raises(InputError, match="no Files"):
        dep5_lookup(f, "b/c.jpg")


def test_photo_loader_and_errors(tmp_path):
    ok = Photo("t-ok", lambda: np.zeros((300, 400, 3), np.uint8), "test", "t", "CC0", "me")
    assert ok.load().shape == (300, 400, 3)
    bad = Photo("t-bad", lambda: np.zeros((30, 40), np.uint8), "test", "t", "CC0", "me")
    with pytest.raises(InputError, match="t-bad"):
        bad.load()
    missing = Photo("t-missing", tmp_path / "gone.jpg", "test", "t", "CC0", "me")
    with pytest.raises(InputError, match="gone.jpg"):
        missing.load()


# --------------------------------------------------------------------------- split and crops


def test_split_photos():
    ids = [f"p{i}" for i in range(10)]
    s = split_photos(ids, 0.01, seed=0)
    assert sum(v == "test" for v in s.values()) == 1  # at least one test photo
    assert split_photos(ids, 0.3, seed=0) == split_photos(list(reversed(ids)), 0.3, seed=0)
    assert split_photos(ids, 0.3, seed=0) != split_photos(ids, 0.3, seed=1)
    assert set(split_photos(ids, 0.0, seed=0).values()) == {"train"}
    with pytest.raises(InputError, match="no training photo"):
        split_photos(["only"], 0.5, seed=0)
    with pytest.raises(InputError, match="test_fraction"):
        split_photos(ids, 1.0, seed=0)


def test_sample_crop_boxes():
    rng = np.random.default_rng(0)
    boxes = sample_crop_boxes(500, 300, 200, 0.35, rng)
    sides = [x1 - x0 for x0, y0, x1, y1 in boxes]
    assert all(x1 - x0 == y1 - y0 for x0, y0, x1, y1 in boxes)
    assert all(0 <= x0 and x1 <= 500 and 0 <= y0 and y1 <= 300 for x0, y0, x1, y1 in boxes)
    assert min(sides) >= 105 and max(sides) <= 300 and max(sides) - min(sides) > 150
    assert len({b[0] for b in boxes}) > 50  # positions vary
