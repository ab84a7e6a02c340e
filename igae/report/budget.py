"""The budget figure: IG-AE minus standard AE (mean and 95% CI) against IG-AE's joint steps."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from igae.report.tables import METHOD_LABELS  # noqa: E402


def budget_figure(table: pd.DataFrame, goal_db: float = 1.0) -> plt.Figure:
    """One line per NeRF method of ``table`` (:func:`igae.eval.budget.budget_table`), with the CI
    as error bars, the 0 line and the +``goal_db`` goal."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    methods = sorted(table["method"].unique())
    span = max(1, int(table["joint_steps"].max()))
    for i, method in enumerate(methods):
        part = table[table["method"] == method].sort_values("joint_steps")
        shift = (i - (len(methods) - 1) / 2) * 0.01 * span  # keep overlapping error bars apart
        ax.errorbar(part["joint_steps"] + shift, part["mean"],
                    yerr=[part["mean"] - part["lo"], part["hi"] - part["mean"]],
                    marker="o", capsize=3, label=METHOD_LABELS.get(method, method))
    ax.axhline(0.0, color="0.3", lw=0.8)
    ax.axhline(goal_db, color="tab:red", lw=0.8, ls="--", label=f"goal +{goal_db:g} dB")
    metric = str(table["metric"].iloc[0]).upper() if len(table) else "PSNR"
    ax.set_xlabel("IG-AE joint-training steps")
    ax.set_ylabel(f"IG-AE − standard AE, test {metric} (dB)")
    n = int(table["n"].max()) if len(table) else 0
    ax.set_title(f"Mean and 95% CI over {n} paired units (scenes x AE seeds)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig
