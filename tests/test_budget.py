"""The budget study: IG-AE minus standard AE per joint-step budget, from snapshot fits."""

from __future__ import annotations

import pandas as pd
import pytest

from igae.eval.budget import budget_table
from igae.report.budget import budget_figure


def _fits(space: str, gains: list[float], methods=("kplanes", "ngp")) -> pd.DataFrame:
    return pd.DataFrame([{"space": space, "method": m, "scene": f"scene_{i:03d}", "psnr": 24.0 + i + g}
                         for m in methods for i, g in enumerate(gains)])


def test_each_budget_is_paired_with_the_standard_fits_of_the_same_scenes() -> None:
    main = pd.concat([_fits("standard", [0.0, 0.0, 0.0], ("kplanes", "ngp", "vanilla")),
                      _fits("igae", [1.0, 1.5, 2.0], ("kplanes", "ngp", "vanilla"))], ignore_index=True)
    budgets = {50: _fits("igae", [0.1, 0.2, 0.3]), 100: _fits("igae", [0.5, 0.5, 0.8])}
    table = budget_table(budgets, main, final_joint_steps=200)
    assert sorted(table["joint_steps"].unique()) == [50, 100, 200]
    assert set(table["method"]) == {"kplanes", "ngp"}  # the study's methods only
    k = table[(table["method"] == "kplanes")].set_index("joint_steps")
    assert k.loc[50, "mean"] == pytest.approx(0.2) and k.loc[100, "mean"] == pytest.approx(0.6)
    assert k.loc[200, "mean"] == pytest.approx(1.5) and k.loc[200, "n"] == 3
    assert k.loc[200, "lo"] < 1.5 < k.loc[200, "hi"]
    fig = budget_figure(table)
    assert len(fig.axes[0].lines) >= 2


def test_budget_study_names_missing_snapshot_folders_and_records_an_empty_study(tmp_path, repo_root) -> None:
    import json

    from igae.config import load_params
    from igae.errors import InputError
    from igae.nerf.budget_study import run_budget_study

    params = load_params(repo_root / "params.yaml", preset="smoke")  # snapshots [2]
    (tmp_path / "scenes" / "scene_000").mkdir(parents=True)
    with pytest.raises(InputError, match=r"igae_s0/snapshots/joint_2.*rerun the IG-AE stage"):
        run_budget_study(params, tmp_path / "scenes", tmp_path / "autoencoders", tmp_path / "fits", tmp_path / "out",
                         tmp_path / "work", 1)
    assert not (tmp_path / "out").exists()  # nothing half-written
    empty = params.model_copy(update={"igae": params.igae.model_copy(update={"snapshots": []})})
    record = run_budget_study(empty, tmp_path / "scenes", tmp_path / "autoencoders", tmp_path / "fits", tmp_path / "out",
                              tmp_path / "work", 1)
    assert "nothing was fitted" in record["note"]
    assert json.loads((tmp_path / "out" / "budget.json").read_text())["snapshots"] == []
