"""Where each AE seed's runs lie (igae.layout) and which AE seed a fit records."""

from __future__ import annotations

from pathlib import Path

import pytest

from igae.errors import InputError
from igae.layout import ae_run_name, ae_runs, fit_dir, has_space, parse_ae_run_name
from igae.nerf.run import fit_ae_seed


def test_run_names_round_trip_and_other_folders_are_not_runs() -> None:
    assert ae_run_name("igae", 3) == "igae_s3" and parse_ae_run_name("igae_s3") == ("igae", 3)
    assert ae_run_name("standard", "{ae_seed}") == "standard_s{ae_seed}"  # a path template
    for name in ("igae", "rgb", "igae_s", "igae_sx", "my_vae_s1", "standard_s1_old"):
        assert parse_ae_run_name(name) is None, name


def test_runs_are_listed_in_ae_order_then_seed_and_fits_resolve_to_the_first_seed(tmp_path: Path) -> None:
    for name in ("igae_s1", "standard_s10", "standard_s2", "igae_s0", "my_vae", "rgb"):
        (tmp_path / name / "ngp" / "scene_000").mkdir(parents=True)
    (tmp_path / "finetuned_s0").write_text("a file, not a run")
    assert [(ae, seed) for ae, seed, _ in ae_runs(tmp_path)] == [("standard", 2), ("standard", 10), ("igae", 0),
                                                                 ("igae", 1)]
    assert fit_dir(tmp_path, "standard", "ngp", "scene_000") == tmp_path / "standard_s2/ngp/scene_000"
    assert fit_dir(tmp_path, "igae", "ngp", "scene_000", ae_seed=1) == tmp_path / "igae_s1/ngp/scene_000"
    assert fit_dir(tmp_path, "rgb", "ngp", "scene_000") == tmp_path / "rgb/ngp/scene_000"
    assert has_space(tmp_path, "rgb") and has_space(tmp_path, "igae") and not has_space(tmp_path, "finetuned")
    with pytest.raises(InputError, match="no fits of latent space 'finetuned'"):
        fit_dir(tmp_path, "finetuned", "ngp", "scene_000")


def test_a_fit_records_the_given_or_the_recorded_ae_seed_and_refuses_a_mismatch(tmp_path: Path) -> None:
    assert fit_ae_seed(1, 1, tmp_path) == 1
    assert fit_ae_seed(None, 2, tmp_path) == 2  # the AE folder's own seed
    assert fit_ae_seed(3, None, tmp_path) == 3  # an imported AE records none
    assert fit_ae_seed(None, None, tmp_path) is None
    with pytest.raises(InputError, match="--ae-seed 1, but this autoencoder records seed 0"):
        fit_ae_seed(1, 0, tmp_path)
