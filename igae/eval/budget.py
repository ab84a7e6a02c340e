"""How IG-AE's gain over the standard AE grows with its joint-training budget.

IG-AE snapshots (``igae.snapshots``: the AE after ``k`` joint steps, bit-identical to a run of
``k`` joint steps) are fitted on the test scenes like the final IG-AE; each budget is compared with
the standard AE's fits of the same methods and scenes (and AE seeds), as in the main table.

Layout read here: ``<budget>/joint_<k>/<space>/<method>/<scene>/metrics.json`` (the snapshot fits)
and ``<fits>/<space>/<method>/<scene>/metrics.json`` (the workflow's fits: the standard AE's, and the
final IG-AE's, whose budget is ``igae.joint.steps``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from igae.errors import InputError
from igae.eval.nerf_summary import collect_fits
from igae.eval.paired import paired_table

BUDGET_DIR = re.compile(r"joint_(\d+)")


def budget_fits(budget_root: str | Path) -> dict[int, pd.DataFrame]:
    """The snapshot fits of each budget folder ``joint_<k>``, by ``k``."""
    root = Path(budget_root)
    out = {}
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        match = BUDGET_DIR.fullmatch(folder.name)
        if match and folder.is_dir():
            out[int(match.group(1))] = collect_fits(folder)
    if not out:
        raise InputError("no budget fits (joint_<k>/<space>/<method>/<scene>/metrics.json)", root)
    return out


def budget_table(budgets: dict[int, pd.DataFrame], fits: pd.DataFrame, final_joint_steps: int,
                 space: str = "igae", baseline: str = "standard", metric: str = "psnr") -> pd.DataFrame:
    """``space - baseline`` per budget and NeRF method: mean, 95% CI, units.

    Args:
        budgets: snapshot fits by joint steps (:func:`budget_fits`).
        fits: the workflow's fits (the baseline's, and the final ``space`` at ``final_joint_steps``).

    Returns:
        Columns ``joint_steps, method, metric, mean, lo, hi, n``, sorted; methods that the snapshot
        fits cover only (the study may use fewer methods than the main table).
    """
    base = fits[fits["space"] == baseline]
    if base.empty:
        raise InputError(f"no {baseline!r} fits to compare the budgets with")
    rows = []
    all_budgets = {**budgets, final_joint_steps: fits[fits["space"] == space]}
    methods = sorted(set().union(*(set(b["method"]) for b in budgets.values())))
    for steps, part in sorted(all_budgets.items()):
        part = part[(part["space"] == space) & part["method"].isin(methods)]
        table = paired_table(pd.concat([part, base[base["method"].isin(methods)]], ignore_index=True),
                             [(space, baseline)], [metric])
        for row in table.itertuples():
            rows.append({"joint_steps": steps, "method": row.method, "metric": metric, "mean": row.mean,
                         "lo": row.lo, "hi": row.hi, "n": row.n})
    return pd.DataFrame(rows, columns=["joint_steps", "method", "metric", "mean", "lo", "hi", "n"]).sort_values(
        ["method", "joint_steps"]).reset_index(drop=True)
