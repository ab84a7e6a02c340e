"""Bad 3D objects through the command line: ``igae select-objects`` and ``igae render-scenes``.

Each test builds a tiny params file (a preset over a copy of params.yaml) whose objects
come from a folder of meshes or from a handmade Sweet Home 3D package in a temporary
cache, breaks one object, and runs the stage commands. A bad object must end with exit
code 2, an ``error:`` line naming the file and the problem, no traceback, and no output:
``--out`` does not exist afterwards, no temporary sibling is left behind, and an output
of an earlier good run is left byte for byte as it was.

Where the problem shows: the folder source lists files by name only and the catalogue
source reads only the archives' properties files, so ``select-objects`` catches an
archive it cannot open, while a mesh that cannot be loaded or rendered is caught by
``render-scenes``. The broken object is the last one of the training set, so at least one
good scene has been rendered into the temporary folder before the failure.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import trimesh

from igae.cli import main

REPO = Path(__file__).resolve().parents[1]
PRESET = "bad_objects"
PACKAGE = "sweethome3d-furniture"
MODELS = 4  # two training scenes, one held-out (test) scene and one validation scene


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #


def _write_params(root: Path, assets: dict[str, object]) -> Path:
    """``root/params.yaml`` (a copy of the project's) plus a tiny preset with these ``assets`` keys."""
    (root / "presets").mkdir(parents=True)
    params = root / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    preset = {
        "assets": {"cache_dir": str(root / "cache"), "heldout_categories": [], **assets},
        "scenes": {
            "resolution": 8,
            "supersample": 1,
            "train": {"count": MODELS - 2, "views": 2, "test_views": 1},
            "heldout": {"count": 1, "views": 2, "test_views": 1},
            "validation": {"count": 1, "views": 2, "test_views": 1},
        },
    }
    (root / "presets" / f"{PRESET}.yaml").write_text(json.dumps(preset, indent=1))  # JSON is YAML
    return params


def _igae(params: Path, command: str, *args: str) -> list[str]:
    return [command, "--params", str(params), "--preset", PRESET, *args]


def _select(params: Path, data: Path) -> list[dict[str, str]]:
    """Run select-objects into ``data/objects.json`` (must succeed); the training records, in render order."""
    assert main(_igae(params, "select-objects", "--out", str(data / "objects.json"))) == 0
    return json.loads((data / "objects.json").read_text())["sets"]["train"]


def _render(params: Path, data: Path) -> int:
    return main(_igae(params, "render-scenes", "--objects", str(data / "objects.json"), "--set", "train",
                      "--out", str(data / "scenes")))


def _assert_clear_failure(code: int, err: str, words: list[str]) -> None:
    """Exit code 2; stderr is progress lines then one ``error:`` line holding every word; no traceback."""
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), err
    assert all(line.startswith("[igae] ") for line in lines[:-1]), err
    for word in words:
        assert word in lines[-1], f"{word!r} not in {lines[-1]!r}"


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """``{relative path: (bytes, mtime_ns)}`` of every file under ``folder`` (folders as empty entries)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        data = path.read_bytes() if path.is_file() else b""
        out[path.relative_to(folder).as_posix()] = (data, path.stat().st_mtime_ns)
    return out


# --------------------------------------------------------------------------- #
# folder source
# --------------------------------------------------------------------------- #


def _good_meshes() -> list[trimesh.Trimesh]:
    return [
        trimesh.creation.box(extents=(1.0, 0.5, 0.25)),
        trimesh.creation.icosphere(subdivisions=1),
        trimesh.creation.cone(radius=0.5, height=1.0, sections=8),
        trimesh.creation.cylinder(radius=0.4, height=0.8, sections=8),
    ]


def _real_glb() -> bytes:
    return trimesh.creation.box(extents=(1.0, 2.0, 3.0)).export(file_type="glb")


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


# name -> (file suffix, bad file contents, words the error line must hold besides the file name)
FOLDER_CASES: dict[str, tuple[str, Callable[[], bytes], list[str]]] = {
    "glb of random bytes": (".glb", lambda: np.random.default_rng(0).bytes(600), ["cannot read mesh file"]),
    "glb truncated to half": (".glb", lambda: _half(_real_glb()), ["cannot read mesh file"]),
    "glb of 0 bytes": (".glb", lambda: b"", ["the mesh file is empty"]),
    "obj with vertices but no faces": (".obj", lambda: b"v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\n", ["no faces"]),
    "obj whose vertices all coincide": (".obj", lambda: b"v 0 0 0\nv 0 0 0\nv 0 0 0\nf 1 2 3\n", ["zero size"]),
}


@pytest.mark.parametrize("rerun", [False, True], ids=["fresh", "over-a-good-render"])
@pytest.mark.parametrize("case", sorted(FOLDER_CASES))
def test_bad_mesh_in_folder_fails_render_scenes_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, rerun: bool
) -> None:
    suffix, bad_bytes, words = FOLDER_CASES[case]
    meshes, data = tmp_path / "meshes", tmp_path / "data"
    meshes.mkdir()
    data.mkdir()
    for i, mesh in enumerate(_good_meshes()):
        mesh.export(meshes / f"object_{i}{suffix}")
    params = _write_params(tmp_path, {"source": "folder", "folder": {"path": str(meshes), "up_axis": "y"}})
    train = _select(params, data)
    before: dict[str, tuple[bytes, int]] = {}
    if rerun:
        assert _render(params, data) == 0
        before = _snapshot(data / "scenes")
        assert "manifest.json" in before and "scene_001/transforms.json" in before
    bad = Path(train[-1]["origin"])
    bad.write_bytes(bad_bytes())
    capsys.readouterr()

    code = _render(params, data)

    _assert_clear_failure(code, capsys.readouterr().err, [bad.name, *words])
    if rerun:
        assert _snapshot(data / "scenes") == before
        assert sorted(p.name for p in data.iterdir()) == ["objects.json", "scenes"]
    else:
        assert sorted(p.name for p in data.iterdir()) == ["objects.json"]


def test_bad_mesh_through_the_real_command(tmp_path: Path) -> None:
    """The same through ``python -m igae`` in a fresh process: its exit status and its stderr."""
    meshes, data = tmp_path / "meshes", tmp_path / "data"
    meshes.mkdir()
    data.mkdir()
    for i, mesh in enumerate(_good_meshes()):
        mesh.export(meshes / f"object_{i}.obj")
    (meshes / "object_1.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    params = _write_params(tmp_path, {"source": "folder", "folder": {"path": str(meshes), "up_axis": "y"}})
    assert main(_igae(params, "select-objects", "--out", str(data / "objects.json"))) == 0  # names only
    sets = json.loads((data / "objects.json").read_text())["sets"]
    set_name = next(name for name, records in sets.items() if any("object_1" in r["origin"] for r in records))
    objects, out = str(data / "objects.json"), str(data / "scenes")
    render = subprocess.run(
        [sys.executable, "-m", "igae",
         *_igae(params, "render-scenes", "--objects", objects, "--set", set_name, "--out", out)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    _assert_clear_failure(render.returncode, render.stderr, ["object_1.obj", "no faces"])
    assert sorted(p.name for p in data.iterdir()) == ["objects.json"]


# --------------------------------------------------------------------------- #
# catalogue source (a handmade package: no network, a few kB)
# --------------------------------------------------------------------------- #


def _box_obj(extents: tuple[float, float, float]) -> bytes:
    box = trimesh.creation.box(extents=extents)
    lines = [f"v {x} {y} {z}" for x, y, z in box.vertices] + [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in box.faces]
    return ("\n".join(lines) + "\n").encode()


def _properties() -> bytes:
    text = "name=Tiny\nlicense=Public domain\n"
    for i in range(1, MODELS + 1):
        text += (f"name#{i}=Box {i}\ncategory#{i}=Misc\ncreator#{i}=Me\nmodel#{i}=/pack/box{i}/box.obj\n"
                 f"width#{i}={i + 1}\ndepth#{i}=2\nheight#{i}=1\n")
    return text.encode("latin-1")


def _sh3f(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _good_members() -> dict[str, bytes]:
    members = {"PluginFurnitureCatalog.properties": _properties()}
    for i in range(1, MODELS + 1):
        members[f"pack/box{i}/box.obj"] = _box_obj((float(i + 1), 1.0, 2.0))
    return members


def _damage_member(archive: bytes, name: str) -> bytes:
    """Invert 16 bytes of one member's stored (possibly compressed) data, headers untouched."""
    info = zipfile.ZipFile(io.BytesIO(archive)).getinfo(name)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data = bytearray(archive)
    for k in range(start + 2, start + 18):
        data[k] ^= 0xFF
    return bytes(data)


def _catalogue(tmp_path: Path) -> tuple[Path, Path]:
    """A params file over a cache that holds an unpacked package (fetching reuses a folder marked .complete)."""
    furniture = tmp_path / "cache" / PACKAGE / "usr/share/sweethome3d/furniture"
    furniture.mkdir(parents=True)
    (tmp_path / "cache" / PACKAGE / ".complete").write_text(f"{PACKAGE}_0_all.deb\n")
    (furniture / "Tiny.sh3f").write_bytes(_sh3f(_good_members()))
    params = _write_params(tmp_path, {"source": "catalogue"})
    return params, furniture / "Tiny.sh3f"


PROPS = "PluginFurnitureCatalog.properties"

# name -> (bad archive bytes, words the error line must hold besides the archive's name)
UNREADABLE_ARCHIVES: dict[str, tuple[Callable[[], bytes], list[str]]] = {
    "random bytes": (lambda: np.random.default_rng(1).bytes(2000), ["cannot read furniture archive", "not a zip"]),
    "truncated": (lambda: _sh3f(_good_members())[:700], ["cannot read furniture archive"]),
    "properties fail their CRC": (
        lambda: _damage_member(_sh3f(_good_members(), zipfile.ZIP_STORED), PROPS),
        ["cannot read furniture archive", "Bad CRC-32", PROPS],
    ),
    "properties deflate stream corrupt": (
        lambda: _damage_member(_sh3f(_good_members()), PROPS), ["cannot read furniture archive", "decompressing"],
    ),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE_ARCHIVES))
def test_unreadable_archive_fails_select_objects_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    bad_bytes, words = UNREADABLE_ARCHIVES[case]
    params, archive = _catalogue(tmp_path)
    archive.write_bytes(bad_bytes())
    data = tmp_path / "data"
    data.mkdir()

    code = main(_igae(params, "select-objects", "--out", str(data / "objects.json")))

    _assert_clear_failure(code, capsys.readouterr().err, [str(archive), *words])
    assert list(data.iterdir()) == []


# name -> (archive bytes given the model path of the last training object, words besides the archive/model)
BAD_MODELS: dict[str, tuple[Callable[[str], bytes], list[str]]] = {
    "model fails its CRC": (
        lambda model: _damage_member(_sh3f(_good_members(), zipfile.ZIP_STORED), model),
        ["Tiny.sh3f", "cannot extract", "Bad CRC-32"],
    ),
    "model deflate stream corrupt": (
        lambda model: _damage_member(_sh3f(_good_members()), model), ["Tiny.sh3f", "cannot extract"],
    ),
    "model has no faces": (
        lambda model: _sh3f({**_good_members(), model: b"v 0 0 0\nv 1 0 0\nv 0 1 0\n"}), ["box.obj", "no faces"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_bad_model_in_archive_fails_render_scenes_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    make_archive, words = BAD_MODELS[case]
    params, archive = _catalogue(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    train = _select(params, data)
    model = train[-1]["origin"].split(":/", 1)[1]  # origin: "<deb>:<archive>:/<model path>"
    archive.write_bytes(make_archive(model))
    capsys.readouterr()

    code = _render(params, data)

    _assert_clear_failure(code, capsys.readouterr().err, [*words, model.split("/")[1]])
    assert sorted(p.name for p in data.iterdir()) == ["objects.json"]


def test_archive_broken_after_a_good_render_leaves_it_intact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params, archive = _catalogue(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    _select(params, data)
    assert _render(params, data) == 0
    before = _snapshot(data / "scenes")
    archive.write_bytes(_damage_member(_sh3f(_good_members()), PROPS))
    capsys.readouterr()

    code = _render(params, data)

    _assert_clear_failure(code, capsys.readouterr().err, [str(archive), "cannot read furniture archive"])
    assert _snapshot(data / "scenes") == before
    assert sorted(p.name for p in data.iterdir()) == ["objects.json", "scenes"]
