"""Object sources: catalogue (real Debian package), procedural, folder, objaverse (faked)."""

from __future__ import annotations

import os
import re
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image
from trimesh.visual.material import SimpleMaterial

from igae.assets import (
    CatalogueSource,
    FolderSource,
    ObjaverseSource,
    ObjectRecord,
    ObjectSource,
    ProceduralSource,
    is_flat,
    make_source,
)
from igae.assets.base import has_texture
from igae.assets.catalogue import parse_java_properties, read_archive
from igae.assets.procedural import KINDS
from igae.errors import InputError, OfflineError

REPO = Path(__file__).resolve().parents[1]
ID_PATTERN = re.compile(r"[a-z0-9_/-]+")


@pytest.fixture(scope="module")
def cache_dir() -> Path:
    """``$IGAE_CACHE_DIR``, else ``<repo>/data/cache`` (the package is fetched there when missing)."""
    return Path(os.environ.get("IGAE_CACHE_DIR", REPO / "data" / "cache"))


@pytest.fixture(scope="module")
def catalogue(cache_dir: Path) -> CatalogueSource:
    return CatalogueSource(cache_dir)


def _extents(parts: list[trimesh.Trimesh]) -> np.ndarray:
    """``(3,)`` size of the bounding box of all parts."""
    lo = np.min([p.bounds[0] for p in parts], axis=0)
    hi = np.max([p.bounds[1] for p in parts], axis=0)
    return hi - lo


def _area_centroid(parts: list[trimesh.Trimesh]) -> np.ndarray:
    """``(3,)`` surface-area centroid, as a fraction of the bounding box along each axis."""
    tris = np.concatenate([p.triangles for p in parts])
    area = np.concatenate([p.area_faces for p in parts])
    centre = (tris.mean(axis=1) * area[:, None]).sum(axis=0) / area.sum()
    lo = tris.reshape(-1, 3).min(axis=0)
    return (centre - lo) / _extents(parts)


def _slab_depth(parts: list[trimesh.Trimesh], z_lo: float, z_hi: float) -> float:
    """Y extent of the vertices whose height lies in [z_lo, z_hi] (fractions of the Z extent)."""
    v = np.concatenate([p.vertices for p in parts])
    z = (v[:, 2] - v[:, 2].min()) / np.ptp(v[:, 2])
    y = v[(z >= z_lo) & (z <= z_hi), 1]
    return float(np.ptp(y))


# --------------------------------------------------------------------------- #
# catalogue
# --------------------------------------------------------------------------- #


def test_catalogue_lists_filtered_records(catalogue: CatalogueSource) -> None:
    records = catalogue.list_objects()
    assert len(records) >= 300
    ids = [r.object_id for r in records]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(ID_PATTERN.fullmatch(i) for i in ids)
    assert {r.category for r in records}.isdisjoint({"Doors and windows", "Staircases"})
    assert all(r.source == "catalogue" for r in records)
    assert all(r.creator.strip() and r.licence.strip() for r in records)
    assert {r.licence for r in records} == {"CC0 1.0 (public domain)", "CC BY 3.0", "CC BY 3.0 US"}
    for r in records:
        if r.licence.startswith("CC BY"):
            # Attribution licences: the credit line must carry both creator and licence.
            assert r.creator in r.attribution and r.licence in r.attribution
    # A second listing is identical (deterministic order and content).
    assert CatalogueSource(catalogue.cache_dir).list_objects() == records


def test_catalogue_filter_rejects_flat_and_doors(catalogue: CatalogueSource) -> None:
    kept = {r.object_id for r in catalogue.list_objects()}
    rug = catalogue.entry("catalogue/katorlegaz/oriental-rug")
    assert rug.record.name == "Oriental rug"
    assert is_flat(rug.size_cm, 0.08)
    assert catalogue.rejection_reason(rug) == "flat" and rug.record.object_id not in kept
    door = catalogue.entry("catalogue/scopia/door")
    assert door.door_or_window and catalogue.rejection_reason(door) == "door_or_window"
    assert door.record.object_id not in kept
    assert "catalogue/blendswap-cc-0/armchair" in kept
    assert not is_flat(catalogue.entry("catalogue/blendswap-cc-0/armchair").size_cm, 0.08)
    assert is_flat((100.0, 100.0, 1.0), 0.08)
    assert not is_flat((50.0, 50.0, 90.0), 0.08)
    # A looser threshold keeps the rug.
    assert "catalogue/katorlegaz/oriental-rug" in {
        r.object_id for r in CatalogueSource(catalogue.cache_dir, min_thickness_ratio=0.005).list_objects()
    }


@pytest.mark.parametrize(
    "object_id",
    [
        "catalogue/blendswap-cc-0/oaktable",  # textured, no modelRotation
        "catalogue/scopia/living_room_table",  # textured, modelRotation about Y
        "catalogue/blendswap-cc-0/headphones",  # modelRotation permuting all three axes
        "catalogue/scopia/armchair1",  # modelRotation about X
        "catalogue/scopia/silla_teca",  # textured chair, modelRotation about Y
    ],
)
def test_catalogue_load_parts_z_up_and_textured(catalogue: CatalogueSource, object_id: str) -> None:
    entry = catalogue.entry(object_id)
    parts = catalogue.load_parts(entry.record)
    assert parts and all(len(p.faces) > 0 for p in parts)
    # Z-up: catalogue (width, depth, height) are the mesh's (X, Y, Z) extents, up to scale.
    ext = _extents(parts)
    size = np.array(entry.size_cm)
    np.testing.assert_allclose(ext / ext.max(), size / size.max(), rtol=0.03)
    for part in parts:
        assert isinstance(part.visual, (trimesh.visual.TextureVisuals, trimesh.visual.ColorVisuals))
        if isinstance(part.visual, trimesh.visual.TextureVisuals):
            assert has_texture(part)
            assert part.visual.uv.shape == (len(part.vertices), 2)
            assert part.visual.material.image.mode in ("RGB", "RGBA")
            assert min(part.visual.material.image.size) > 0
    if object_id != "catalogue/blendswap-cc-0/headphones" and object_id != "catalogue/scopia/armchair1":
        assert any(has_texture(p) for p in parts)
    if "table" in object_id:
        # A table's top carries most of its area: upside down it would sit low.
        assert _area_centroid(parts)[2] > 0.7
    if object_id == "catalogue/scopia/armchair1":
        # Upright chair: the top slab is the thin back, the bottom slab spans the seat depth.
        assert _slab_depth(parts, 0.8, 1.0) < 0.6 * _slab_depth(parts, 0.0, 0.2)
    if object_id == "catalogue/scopia/silla_teca":
        # Its back is behind the seat (+Y); the transposed modelRotation puts it at -Y.
        v = np.concatenate([p.vertices for p in parts])
        top = v[v[:, 2] > v[:, 2].min() + 0.8 * np.ptp(v[:, 2])]
        assert top[:, 1].mean() > v[:, 1].min() + 0.6 * np.ptp(v[:, 1])


def test_catalogue_extraction_is_cached(catalogue: CatalogueSource) -> None:
    record = catalogue.entry("catalogue/blendswap-cc-0/oaktable").record
    catalogue.load_parts(record)
    folder = catalogue.cache_dir / "sweethome3d-models" / "BlendSwap-CC-0" / "blendswap-cc-0"
    obj = folder / "oakTable" / "oakTable.obj"
    assert obj.exists()
    before = obj.stat().st_mtime_ns
    catalogue.load_parts(record)
    assert obj.stat().st_mtime_ns == before


def test_catalogue_unknown_id(catalogue: CatalogueSource) -> None:
    with pytest.raises(InputError, match="no catalogue object"):
        catalogue.entry("catalogue/nope/nothing")


def test_read_archive_errors_name_the_file(tmp_path: Path) -> None:
    garbage = tmp_path / "Broken.sh3f"
    garbage.write_bytes(b"this is not a zip")
    with pytest.raises(InputError, match="Broken.sh3f"):
        read_archive(garbage)
    empty = tmp_path / "Empty.sh3f"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(InputError, match=r"Empty\.sh3f.*PluginFurnitureCatalog"):
        read_archive(empty)


def _tiny_archive(path: Path, properties: str, obj: str = "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n") -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("PluginFurnitureCatalog.properties", properties.encode("latin-1"))
        zf.writestr("pack/thing/thing.obj", obj)


def test_read_archive_parses_a_model(tmp_path: Path) -> None:
    archive = tmp_path / "Pack.sh3f"
    _tiny_archive(
        archive,
        "name=Tiny pack\nlicense=Creative Commons Attribution 3.0 license\n"
        "name#1=Caf\\u00e9 table\ncategory#1=Kitchen\ncreator#1=Jo \\: Smith\n"
        "model#1=/pack/thing/thing.obj\nwidth#1=10\ndepth#1=20\nheight#1=30\n"
        "doorOrWindow#1=false\nmodelRotation#1=0 0 1 -1 0 0 0 -1 0\n",
    )
    (entry,) = read_archive(archive)
    assert entry.record.name == "Café table" and entry.record.creator == "Jo : Smith"
    assert entry.record.licence == "CC BY 3.0" and entry.record.object_id == "catalogue/pack/thing"
    assert entry.size_cm == (10.0, 20.0, 30.0)
    np.testing.assert_array_equal(entry.model_rotation, [[0, 0, 1], [-1, 0, 0], [0, -1, 0]])
    bad = tmp_path / "Bad.sh3f"
    _tiny_archive(bad, "license=Public domain\nname#1=X\nmodel#1=/pack/thing/thing.obj\nwidth#1=abc\n")
    with pytest.raises(InputError, match=r"Bad\.sh3f.*width#1"):
        read_archive(bad)


def _box_obj(extents: tuple[float, float, float]) -> str:
    box = trimesh.creation.box(extents=extents)
    lines = [f"v {x} {y} {z}" for x, y, z in box.vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in box.faces]
    return "\n".join(lines) + "\n"


def test_catalogue_source_on_a_handmade_package(tmp_path: Path) -> None:
    # A fake unpacked package: fetch_debian_package reuses a folder marked .complete.
    root = tmp_path / "sweethome3d-furniture"
    furniture = root / "usr/share/sweethome3d/furniture"
    furniture.mkdir(parents=True)
    (root / ".complete").write_text("sweethome3d-furniture_0_all.deb\n")
    header = "name=Tiny\nlicense=Public domain\n"
    block = "name#1=Box\ncategory#1=Misc\ncreator#1=Me\nmodel#1=/pack/thing/thing.obj\n"
    block += "width#1=3\ndepth#1=2\nheight#1=1\n"
    # Raw box (1, 2, 3); catalogue size (width, depth, height) = SH3D (X, Z, Y) after the rotation.
    _tiny_archive(
        furniture / "Tiny.sh3f",
        header + block + "modelRotation#1=0 0 1 -1 0 0 0 -1 0\n",
        obj=_box_obj((1.0, 2.0, 3.0)),
    )
    source = CatalogueSource(tmp_path)
    (record,) = source.list_objects()
    assert record.origin == "sweethome3d-furniture_0_all.deb:Tiny.sh3f:/pack/thing/thing.obj"
    assert record.licence == "CC0 1.0 (public domain)"
    # p' = R @ p gives SH3D extents (3, 1, 2); Z-up makes them (width, depth, height) = (3, 2, 1).
    # The transposed matrix would give (2, 1, 3).
    np.testing.assert_allclose(_extents(source.load_parts(record)), [3.0, 2.0, 1.0], atol=1e-9)
    assert (tmp_path / "sweethome3d-models/Tiny/pack/thing/thing.obj").exists()
    # A model without faces is an error naming the OBJ (fresh cache: the package is
    # linked in, the model folder is extracted anew).
    _tiny_archive(furniture / "Tiny.sh3f", header + block, obj="v 0 0 0\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "sweethome3d-furniture").symlink_to(root)
    source = CatalogueSource(tmp_path / "other")
    with pytest.raises(InputError, match=r"thing\.obj.*no faces"):
        source.load_parts(source.list_objects()[0])


def test_parse_java_properties_escapes() -> None:
    text = (
        "# comment\n! another comment\n"
        "a\\:b = x\\u20ACy\n"
        "key\\ with\\ spaces:value\n"
        "multi = one, \\\n    two\n"
        "tabs\\tand\\nnewlines=\\t\\n\n"
        "ends_with_backslash = c:\\\\\n"
        "empty=\n"
        "  padded   =   kept trailing  \n"
    )
    props = parse_java_properties(text)
    assert props["a:b"] == "x€y"
    assert props["key with spaces"] == "value"
    assert props["multi"] == "one, two"
    assert props["tabs\tand\nnewlines"] == "\t\n"
    assert props["ends_with_backslash"] == "c:\\"
    assert props["empty"] == ""
    assert props["padded"] == "kept trailing  "
    assert len(props) == 7
    with pytest.raises(ValueError, match="uXXXX"):
        parse_java_properties("bad=\\u12G4\n")


# --------------------------------------------------------------------------- #
# procedural
# --------------------------------------------------------------------------- #


def _visual_signature(part: trimesh.Trimesh) -> tuple:
    if has_texture(part):
        return ("tex", part.visual.uv.tobytes(), part.visual.material.image.tobytes())
    return ("col", np.asarray(part.visual.face_colors).tobytes())


def test_procedural_is_deterministic() -> None:
    a, b = ProceduralSource(12, seed=5), ProceduralSource(12, seed=5)
    records = a.list_objects()
    assert records == b.list_objects() and len(records) == 12
    for record in records:
        pa, pb = a.load_parts(record), b.load_parts(record)
        assert len(pa) == len(pb)
        for x, y in zip(pa, pb):
            np.testing.assert_array_equal(x.vertices, y.vertices)
            np.testing.assert_array_equal(x.faces, y.faces)
            assert _visual_signature(x) == _visual_signature(y)


def test_procedural_seeds_differ() -> None:
    a = ProceduralSource(3, seed=0)
    b = ProceduralSource(3, seed=1)
    va = np.concatenate([p.vertices for p in a.load_parts(a.list_objects()[0])])
    vb = np.concatenate([p.vertices for p in b.load_parts(b.list_objects()[0])])
    assert va.shape != vb.shape or not np.allclose(va, vb)
    assert a.list_objects()[0].object_id != b.list_objects()[0].object_id


def test_procedural_covers_kinds_and_textures() -> None:
    source = ProceduralSource(30, seed=0)
    records = source.list_objects()
    kinds: set[str] = set()
    textured = 0
    for record in records:
        parts = source.load_parts(record)
        assert 2 <= len(parts) <= 5
        part_kinds = [p.metadata["primitive"] for p in parts]
        kinds.update(part_kinds)
        assert record.category in part_kinds
        assert record.licence == "CC0 1.0 (generated)" and record.creator == "igae procedural"
        for part in parts:
            assert len(part.faces) > 0
            if isinstance(part.visual, trimesh.visual.TextureVisuals):
                textured += 1
                assert part.visual.uv.shape == (len(part.vertices), 2)
                assert np.isfinite(part.visual.uv).all()
                image = part.visual.material.image
                assert image.mode == "RGB" and image.size == (64, 64)
                assert len(np.unique(np.asarray(image).reshape(-1, 3), axis=0)) > 1
            else:
                assert isinstance(part.visual, trimesh.visual.ColorVisuals)
                assert part.visual.kind == "face"
    assert kinds == set(KINDS)
    assert textured >= 10


def _solid(part: trimesh.Trimesh) -> trimesh.Trimesh:
    solid = trimesh.Trimesh(part.vertices.copy(), part.faces.copy(), process=False)
    solid.merge_vertices()  # textured parts have seam copies; merged they are closed
    return solid


def test_procedural_parts_form_one_object() -> None:
    source = ProceduralSource(8, seed=11)
    for record in source.list_objects():
        solids = [_solid(p) for p in source.load_parts(record)]
        points = [trimesh.sample.sample_surface(s, 2000, seed=0)[0] for s in solids]
        n = len(solids)
        linked = {0}
        frontier = [0]
        while frontier:
            i = frontier.pop()
            for j in range(n):
                if j in linked:
                    continue
                # Parts touch when some surface point of one lies inside the other.
                if solids[j].contains(points[i]).any() or solids[i].contains(points[j]).any():
                    linked.add(j)
                    frontier.append(j)
        assert linked == set(range(n)), record.object_id


def test_procedural_bad_arguments() -> None:
    with pytest.raises(InputError, match="count"):
        ProceduralSource(0, seed=1)
    with pytest.raises(InputError, match="seed"):
        ProceduralSource(3, seed=-1)
    source = ProceduralSource(3, seed=1)
    with pytest.raises(InputError, match="not one of"):
        source.load_parts(ProceduralSource(10, seed=1).list_objects()[9])


# --------------------------------------------------------------------------- #
# folder
# --------------------------------------------------------------------------- #


def _textured_box() -> trimesh.Trimesh:
    """A 1 x 0.5 x 0.25 box (X, Y, Z) with a random 16x16 texture and per-face UVs."""
    box = trimesh.creation.box(extents=(1.0, 0.5, 0.25))
    box = trimesh.Trimesh(box.vertices[box.faces].reshape(-1, 3), np.arange(36).reshape(-1, 3), process=False)
    uv = np.random.default_rng(0).random((36, 2))
    image = Image.fromarray((np.random.default_rng(1).random((16, 16, 3)) * 255).astype(np.uint8))
    box.visual = trimesh.visual.TextureVisuals(uv=uv, material=SimpleMaterial(image=image))
    return box


@pytest.fixture()
def mesh_folder(tmp_path: Path) -> Path:
    root = tmp_path / "meshes"
    (root / "chairs").mkdir(parents=True)
    (root / "balls").mkdir()
    _textured_box().export(root / "chairs" / "Tex Box.glb")
    _textured_box().export(root / "chairs" / "tex_box.obj")
    ball = trimesh.creation.icosphere(subdivisions=2)
    ball.visual.vertex_colors = [255, 0, 0, 255]
    ball.export(root / "balls" / "ball.ply")
    (root / "notes.txt").write_text("not a mesh")
    return root


def test_folder_lists_and_loads(mesh_folder: Path) -> None:
    source = FolderSource(mesh_folder)
    records = source.list_objects()
    assert [r.object_id for r in records] == [
        "folder/balls/ball_ply",
        "folder/chairs/tex_box_glb",
        "folder/chairs/tex_box_obj",
    ]
    assert [r.category for r in records] == ["balls", "chairs", "chairs"]
    assert all(r.licence == "unknown (user-supplied)" and r.source == "folder" for r in records)
    assert records[1].name == "Tex Box" and records[1].origin.endswith("Tex Box.glb")
    ball, glb, obj = (source.load_parts(r) for r in records)
    assert isinstance(ball[0].visual, trimesh.visual.ColorVisuals)
    assert tuple(ball[0].visual.vertex_colors[0]) == (255, 0, 0, 255)
    for parts in (glb, obj):
        # Y-up file: the box's Y side (0.5) becomes Z, its Z side (0.25) becomes Y.
        np.testing.assert_allclose(_extents(parts), [1.0, 0.25, 0.5], atol=1e-6)
        assert any(has_texture(p) for p in parts)
    z_up = FolderSource(mesh_folder, up_axis="z")
    np.testing.assert_allclose(_extents(z_up.load_parts(records[1])), [1.0, 0.5, 0.25], atol=1e-6)


def test_folder_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"empty.*\.glb"):
        FolderSource(empty).list_objects()
    with pytest.raises(InputError, match="does not exist"):
        FolderSource(tmp_path / "missing").list_objects()
    with pytest.raises(InputError, match="up_axis"):
        FolderSource(tmp_path, up_axis="x")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "bad.glb").write_bytes(b"glTF but not really")
    (tmp_path / "broken" / "points.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    source = FolderSource(tmp_path / "broken")
    bad, points = source.list_objects()
    with pytest.raises(InputError, match="bad.glb"):
        source.load_parts(bad)
    with pytest.raises(InputError, match=r"points\.obj.*no faces"):
        source.load_parts(points)


# --------------------------------------------------------------------------- #
# objaverse (fake module; the real one needs the network)
# --------------------------------------------------------------------------- #

UID = "0123456789abcdef0123456789abcdef"


def _fake_objaverse(glb: Path, calls: list[str]) -> types.ModuleType:
    module = types.ModuleType("objaverse")

    def load_annotations(uids: list[str]) -> dict:
        calls.append("annotations")
        return {
            uid: {
                "name": "Red teapot",
                "license": "by",
                "user": {"username": "potter", "displayName": "A. Potter"},
                "categories": [{"name": "food-drink"}],
                "viewerUrl": f"https://sketchfab.com/3d-models/{uid}",
            }
            for uid in uids
            if uid == UID
        }

    def load_objects(uids: list[str], download_processes: int = 1) -> dict:
        calls.append("objects")
        return {uid: str(glb) for uid in uids if uid == UID}

    module.load_annotations = load_annotations
    module.load_objects = load_objects
    return module


def test_objaverse_with_fake_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    glb = tmp_path / "download" / "teapot.glb"
    glb.parent.mkdir()
    _textured_box().export(glb)
    calls: list[str] = []
    monkeypatch.setitem(sys.modules, "objaverse", _fake_objaverse(glb, calls))
    source = make_source("objaverse", uids=[UID], cache_dir=tmp_path / "cache")
    (record,) = source.list_objects()
    assert record == ObjectRecord(
        object_id=f"objaverse/{UID}",
        name="Red teapot",
        category="food-drink",
        source="objaverse",
        licence="CC BY",
        creator="A. Potter",
        attribution=(
            f'"Red teapot" by A. Potter (https://sketchfab.com/3d-models/{UID}), CC BY, via Objaverse'
        ),
        origin=f"objaverse uid={UID}",
    )
    assert record.to_dict()["licence"] == "CC BY" and set(record.to_dict()) == {
        "object_id", "name", "category", "source", "licence", "creator", "attribution", "origin"
    }
    parts = source.load_parts(record)
    np.testing.assert_allclose(_extents(parts), [1.0, 0.25, 0.5], atol=1e-6)
    assert any(has_texture(p) for p in parts)
    assert calls == ["annotations", "objects"]
    # Cached: a new source neither needs the package nor the network.
    monkeypatch.setitem(sys.modules, "objaverse", None)
    again = ObjaverseSource([UID], tmp_path / "cache")
    assert again.list_objects() == [record]
    assert len(again.load_parts(record)) == len(parts)


def test_objaverse_unknown_uid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "objaverse", _fake_objaverse(tmp_path / "x.glb", []))
    with pytest.raises(InputError, match="no object with uid 'ffff'"):
        ObjaverseSource(["ffff"], tmp_path).list_objects()


def test_objaverse_missing_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "objaverse", None)  # makes "import objaverse" fail
    with pytest.raises(InputError, match="pip install objaverse") as info:
        ObjaverseSource([UID], tmp_path).list_objects()
    assert "network" in str(info.value) and not isinstance(info.value, OfflineError)


def test_objaverse_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("objaverse")

    def unreachable(**kwargs: object) -> dict:
        raise ConnectionError("Name or service not known")

    module.load_annotations = unreachable
    module.load_objects = unreachable
    monkeypatch.setitem(sys.modules, "objaverse", module)
    source = ObjaverseSource([UID], tmp_path)
    with pytest.raises(OfflineError, match="needs the network"):
        source.list_objects()
    with pytest.raises(OfflineError, match=f"object {UID}"):
        source.load_parts(ObjectRecord(f"objaverse/{UID}", "x", "x", "objaverse", "x", "x", "x", "x"))


# --------------------------------------------------------------------------- #
# registry
# --------------------------------------------------------------------------- #


def test_make_source(tmp_path: Path) -> None:
    assert isinstance(make_source("procedural", count=2, seed=0), ProceduralSource)
    assert isinstance(make_source("catalogue", cache_dir=tmp_path), CatalogueSource)
    assert isinstance(make_source("folder", path=tmp_path), FolderSource)
    assert make_source("procedural", count=2, seed=0).name == "procedural"
    objaverse = make_source("objaverse", uids=[UID], cache_dir=tmp_path)  # no import until used
    for source in (objaverse, FolderSource(tmp_path), CatalogueSource(tmp_path), ProceduralSource(1, 0)):
        assert isinstance(source, ObjectSource)
    with pytest.raises(InputError, match="catalogue, procedural, folder, objaverse"):
        make_source("shapenet")
    with pytest.raises(InputError, match="bad arguments for object source 'procedural'"):
        make_source("procedural", count=2, seed=0, colour="red")
