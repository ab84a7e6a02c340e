"""params.yaml loading, presets and validation messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from igae.config import deep_merge, load_params, params_json_schema
from igae.errors import InputError


def test_default_params_load(repo_root: Path) -> None:
    p = load_params(repo_root / "params.yaml")
    assert p.preset == "default"
    assert p.scenes.resolution == 64
    assert p.assets.source == "catalogue"


@pytest.mark.parametrize("preset", ["smoke", "paper"])
def test_presets_override_without_copying(repo_root: Path, preset: str) -> None:
    base = load_params(repo_root / "params.yaml")
    p = load_params(repo_root / "params.yaml", preset=preset)
    assert p.preset == preset
    override = yaml.safe_load((repo_root / "presets" / f"{preset}.yaml").read_text())
    assert p.model_dump()["scenes"]["resolution"] == override["scenes"]["resolution"]
    # keys the preset does not name keep params.yaml's values
    assert p.scenes.fov_deg == base.scenes.fov_deg
    assert p.seed == base.seed


@pytest.mark.parametrize(
    "override, words",
    [
        ({"scenes.resolution": -3}, ["scenes.resolution", "greater than or equal to 8", "-3"]),
        ({"scenes.bogus": 1}, ["scenes.bogus", "unknown key", "resolution"]),
        ({"assets.source": "nope"}, ["assets.source", "catalogue", "procedural"]),
        ({"scenes.train.views": "many"}, ["scenes.train.views", "integer"]),
        ({"scenes.heldout.test_views": 0}, ["heldout.test_views", ">= 1"]),
        ({"scenes.train.test_views": 99}, ["scenes.train", "test_views (99) must be below views"]),
        ({"photos.sources": ["folder"]}, ["photos.folder is empty"]),
        ({"scenes.elevation_deg": [80, 10]}, ["elevation_deg"]),
        ({"train_ae.steps": -1}, ["train_ae.steps", "greater than or equal to 0", "-1"]),
        ({"scenes.resolution": 66}, ["scenes.resolution (66)", "divisible by the AE's downsampling factor 4"]),
        ({"nerf.methods": ["ngp", "nerf2"]}, ["nerf.methods", "unknown method(s) ['nerf2']", "registry", "kplanes"]),
        ({"nerf.method_params.nerf2": {"lr": 0.1, "lr_stage2": 0.1, "adam_eps": 1e-8, "hyper": {}, "regularizers": {}}},
         ["nerf.method_params", "unknown method(s) ['nerf2']"]),
        ({"nerf.autoencoders": ["igae", "sdxl"]}, ["nerf.autoencoders", "standard", "finetuned"]),
    ],
)
def test_bad_values_name_the_key(repo_root: Path, override: dict, words: list[str]) -> None:
    with pytest.raises(InputError) as info:
        load_params(repo_root / "params.yaml", overrides=override)
    for word in words:
        assert word in str(info.value)


def test_unknown_preset_lists_available(repo_root: Path) -> None:
    with pytest.raises(InputError, match="preset 'nope' does not exist.*available: default, paper, smoke$"):
        load_params(repo_root / "params.yaml", preset="nope")


def test_default_preset_file_overrides_nothing(repo_root: Path) -> None:
    """presets/default.yaml exists (so a stage can depend on the preset file it uses) and changes no value."""
    assert (repo_root / "presets" / "default.yaml").is_file()
    assert load_params(repo_root / "params.yaml") == load_params(repo_root / "params.yaml", preset="default")
    raw = yaml.safe_load((repo_root / "params.yaml").read_text())
    assert load_params(repo_root / "params.yaml").model_dump(mode="json") == json.loads(json.dumps(raw))


def test_unreadable_params_file(tmp_path: Path) -> None:
    bad = tmp_path / "params.yaml"
    bad.write_text("seed: [unclosed\n")
    with pytest.raises(InputError, match="params.yaml: not valid YAML"):
        load_params(bad)
    with pytest.raises(InputError, match="file not found"):
        load_params(tmp_path / "missing.yaml")


def test_deep_merge_does_not_mutate() -> None:
    base = {"a": {"b": 1, "c": 2}, "d": 3}
    out = deep_merge(base, {"a": {"b": 9}})
    assert out == {"a": {"b": 9, "c": 2}, "d": 3}
    assert base["a"]["b"] == 1


def test_committed_schema_matches_models(repo_root: Path) -> None:
    committed = json.loads((repo_root / "workflow/schemas/params.schema.json").read_text())
    assert committed == json.loads(json.dumps(params_json_schema())), "run `make schema`"
