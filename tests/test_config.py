"""params.yaml loading, presets and validation messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from igae.config import deep_merge, load_params, params_json_schema, tuning_variants
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


def test_long_preset_is_a_longer_budget_with_two_seeds_and_three_budgets(repo_root: Path) -> None:
    """presets/long.yaml: at least two AE seeds, more standard-AE and joint steps than the default,
    and snapshots that give the budget study at least 3 budgets (with the final IG-AE)."""
    base = load_params(repo_root / "params.yaml")
    long = load_params(repo_root / "params.yaml", preset="long")
    assert len(long.ae_seeds) >= 2
    assert long.train_ae.steps > base.train_ae.steps and long.igae.joint.steps > base.igae.joint.steps
    assert len({*long.igae.snapshots, long.igae.joint.steps}) >= 3
    assert set(long.budget.methods) <= set(long.nerf.methods)
    assert long.nerf.methods == base.nerf.methods  # the goals' "every method" can be read at long too


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
        ({"scenes.validation.test_views": 0}, ["validation.test_views", ">= 1"]),
        ({"scenes.validation.source": "folder"}, ["scenes.validation", "source is 'folder' but folder is empty"]),
        ({"ae_seeds": [0, 0]}, ["ae_seeds must not repeat a seed"]),
        ({"ae_seeds": []}, ["ae_seeds", "at least 1 item"]),
        ({"ae_seeds": [-1]}, ["ae_seeds.0", "greater than or equal to 0"]),
        ({"tuning.methods": ["toy"]}, ["tuning.methods lists ['toy']", "nerf.method_params has no entry"]),
        ({"tuning.spaces": ["sdxl"]}, ["tuning.spaces", "rgb", "igae"]),
    ],
)
def test_bad_values_name_the_key(repo_root: Path, override: dict, words: list[str]) -> None:
    with pytest.raises(InputError) as info:
        load_params(repo_root / "params.yaml", overrides=override)
    for word in words:
        assert word in str(info.value)


def test_unknown_preset_lists_available(repo_root: Path) -> None:
    with pytest.raises(InputError, match="preset 'nope' does not exist.*available: default, long, paper, smoke$"):
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


def test_tuning_variants_change_only_the_tuned_key(repo_root: Path) -> None:
    base = load_params(repo_root / "params.yaml", overrides={"tuning.values": [0.0, 0.5]})
    variants = tuning_variants(base)
    assert [v for v, _ in variants] == [0.0, 0.5]
    for value, params in variants:
        assert params.nerf.stage2.latent_weight == value
        dumped, original = params.model_dump(), base.model_dump()
        dumped["nerf"]["stage2"].pop("latent_weight"), original["nerf"]["stage2"].pop("latent_weight")
        assert dumped == original


@pytest.mark.parametrize("override, message", [
    ({"tuning.param": "nerf.stage2.nope"}, "tuning.param 'nerf.stage2.nope': params have no such key"),
    ({"tuning.param": "seed", "tuning.values": [1]}, "tuning.param 'seed' is not a key a NeRF fit reads"),
    ({"tuning.param": "nerf.methods", "tuning.values": [["ngp"]]}, "is not a key a NeRF fit reads"),
    ({"tuning.param": "nerf.method_params.ngp.lr"}, "belongs to method 'ngp', which tuning.methods ['kplanes']"),
    ({"tuning.values": [0.1, -1]}, "tuning.values[1] = -1 is not a valid nerf.stage2.latent_weight"),
])
def test_bad_tuning_grid_names_the_key(repo_root: Path, override: dict, message: str) -> None:
    params = load_params(repo_root / "params.yaml", overrides=override)  # the section itself is valid
    with pytest.raises(InputError) as info:
        tuning_variants(params)
    assert message in str(info.value)
