"""Benchmark tables built from the per-fit and per-AE metrics files, written as CSV, Markdown and LaTeX.

No cell is typed by hand: every function here takes the table of fits (one row per fit, from
:func:`igae.eval.nerf_summary.collect_fits`) or the AE evaluation files and aggregates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from igae.config import AE_NAMES, AUTOENCODERS, RGB_SPACE
from igae.errors import InputError
from igae.eval.nerf_summary import CEILING_COLUMNS, GAP_COLUMN, perceptual_backend
from igae.fields.registry import METHOD_LABELS
from igae.io import write_text_atomic
from igae.layout import ae_runs

SPACES = (RGB_SPACE, *AE_NAMES)
SPACE_LABELS = {RGB_SPACE: "RGB NeRF", **AUTOENCODERS}
__all__ = ["AE_NAMES", "METHOD_LABELS", "SPACES", "SPACE_LABELS", "ae_run_labels"]  # names the figures and the page use too


perceptual_label = perceptual_backend
"""The perceptual column's name: the backend actually used (one backend per table)."""


def _ordered(values, order) -> list:
    return [v for v in order if v in set(values)] + sorted(set(values) - set(order))


def _mean_std(values: pd.Series, digits: int) -> str:
    return f"{values.mean():.{digits}f} ± {values.std(ddof=0):.{digits}f}"


CEILING = "AE ceiling PSNR"
"""Column of the main table: the shared AE's own reconstruction PSNR on the same test views."""


def novel_view_table(fits: pd.DataFrame) -> pd.DataFrame:
    """Rows: methods; columns: (space, metric) with "mean ± std" over held-out scenes (units).
    Next to each latent space's PSNR, the AE ceiling (:data:`CEILING`) where the fits recorded it."""
    label = perceptual_label(fits)
    rows = {}
    for method in _ordered(fits["method"], METHOD_LABELS):
        row = {}
        for space in _ordered(fits["space"], SPACES):
            sel = fits[(fits["method"] == method) & (fits["space"] == space)]
            if sel.empty:
                continue
            row[(SPACE_LABELS.get(space, space), "PSNR ↑")] = _mean_std(sel["psnr"], 2)
            if space != RGB_SPACE and sel["ae_ceiling_psnr"].notna().any():
                row[(SPACE_LABELS.get(space, space), CEILING)] = _mean_std(sel["ae_ceiling_psnr"].dropna(), 2)
            row[(SPACE_LABELS.get(space, space), "SSIM ↑")] = _mean_std(sel["ssim"], 3)
            row[(SPACE_LABELS.get(space, space), f"{label} ↓")] = _mean_std(sel["perceptual"], 3)
        rows[METHOD_LABELS.get(method, method)] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    table.index.name = "method"
    return table


def _unit_index(fits: pd.DataFrame) -> list[str]:
    """Row keys of per-unit tables: (method, scene), plus the AE seed when several ran."""
    return ["method", "scene", "ae_seed"] if fits["ae_seed"].dropna().nunique() > 1 else ["method", "scene"]


def per_scene_table(fits: pd.DataFrame) -> pd.DataFrame:
    """Test PSNR of every fit: rows (method, scene[, AE seed]), columns spaces (RGB fits, which have no
    AE seed, repeat on each seed's row)."""
    index = _unit_index(fits)
    if "ae_seed" in index:
        seeds = sorted(fits["ae_seed"].dropna().unique())
        rgb = fits[fits["space"] == RGB_SPACE]
        fits = pd.concat([fits[fits["space"] != RGB_SPACE]] + [rgb.assign(ae_seed=s) for s in seeds])
        fits = fits.assign(ae_seed=fits["ae_seed"].astype(int))
    table = fits.pivot_table(index=index, columns="space", values="psnr", aggfunc="first")
    table = table[_ordered(table.columns, SPACES)].rename(columns=SPACE_LABELS)
    table = table.round(2)
    table.columns.name = "PSNR (dB)"
    return table


def _ci(mean: float, lo: float, hi: float, digits: int) -> str:
    """"+1.23 [+0.40, +2.06]"; "+1.23 [n/a]" without an interval."""
    if not np.isfinite(mean):
        return "n/a"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{mean:+.{digits}f} [n/a]"
    return f"{mean:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def _digits(metric: str) -> int:
    return 2 if metric == "psnr" else 3


def paired_differences_table(paired: pd.DataFrame) -> pd.DataFrame:
    """Rows: (method, comparison); columns: each metric's "mean [95% CI]" of the paired differences
    (from :func:`igae.eval.nerf_summary.paired_summary`) and n (units)."""
    return _by_method_and_comparison(paired, lambda r: f"{r.metric_label} {'↓' if r.metric == 'perceptual' else '↑'}",
                                     lambda r: _digits(r.metric))


def _by_method_and_comparison(paired: pd.DataFrame, column: Callable[[Any], str],
                              digits: Callable[[Any], int]) -> pd.DataFrame:
    """:func:`igae.eval.paired.paired_table` rows as a table: rows (method, comparison) in method order
    (comparisons keep theirs), one "mean [95% CI]" column per ``column(row)`` in first-seen order, then n."""
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for r in paired.itertuples():
        key = (METHOD_LABELS.get(r.method, r.method), f"{SPACE_LABELS.get(r.a, r.a)} − {SPACE_LABELS.get(r.b, r.b)}")
        rows.setdefault(key, {})[column(r)] = _ci(r.mean, r.lo, r.hi, digits(r))
        rows[key]["n"] = str(r.n)
    table = pd.DataFrame.from_dict(rows, orient="index")
    if table.empty:
        return table
    order = {label: i for i, label in enumerate(METHOD_LABELS.values())}
    table = table.loc[sorted(table.index, key=lambda k: order.get(k[0], len(order)))]
    table = table[[c for c in table.columns if c != "n"] + ["n"]]
    table.index = pd.MultiIndex.from_tuples(table.index, names=["method", "comparison"])
    return table


DECOMPOSITION_COLUMNS = {"psnr": "latent NeRF PSNR (dB)", CEILING_COLUMNS["psnr"]: "AE ceiling PSNR (dB)",
                         GAP_COLUMN: "NeRF-to-ceiling gap (dB)"}
"""Columns of :func:`gain_decomposition_table`: the difference, its AE part and its NeRF part."""


def gain_decomposition_table(decomposition: pd.DataFrame) -> pd.DataFrame:
    """Rows: (method, comparison); columns: "mean [95% CI]" of the latent NeRF's PSNR difference, of the AE
    ceiling's and of the NeRF-to-ceiling gap's (the first is the sum of the other two, unit by unit), and n
    (from :func:`igae.eval.nerf_summary.gain_decomposition`)."""
    return _by_method_and_comparison(decomposition, lambda r: DECOMPOSITION_COLUMNS[r.metric], lambda r: 2)


def per_unit_differences_table(units: pd.DataFrame) -> pd.DataFrame:
    """Test-PSNR difference of every paired unit: rows (method, scene[, AE seed]), columns comparisons."""
    psnr = units[units["metric"] == "psnr"].copy()
    labels = {f"{a} - {b}": f"{SPACE_LABELS.get(a, a)} − {SPACE_LABELS.get(b, b)}"
              for a, b in (c.split(" - ") for c in psnr["comparison"].unique())}
    index = ["method", "scene", "ae_seed"] if psnr["ae_seed"].dropna().nunique() > 1 else ["method", "scene"]
    if "ae_seed" in index:
        psnr["ae_seed"] = psnr["ae_seed"].astype(int)
    table = psnr.pivot_table(index=index, columns="comparison", values="diff", aggfunc="first")
    table = table[[c for c in labels if c in table.columns]].rename(columns=labels).round(2)
    order = {m: i for i, m in enumerate(METHOD_LABELS)}
    table = table.iloc[sorted(range(len(table)), key=lambda i: (order.get(table.index[i][0], len(order)), table.index[i]))]
    table = table.rename(index=METHOD_LABELS, level="method")
    table.columns.name = "PSNR difference (dB)"
    return table


def goals_table(goals: dict) -> pd.DataFrame:
    """The goal checks (:func:`igae.eval.nerf_summary.check_goals`) as labelled rows: per method and
    goal, the value with its unit, the 95% CI (paired goals) or the value per latent space (time
    ratios), n, the target and whether it is met."""
    def num(v) -> float:
        return float("nan") if v is None else float(v)

    rows = {}
    for method in _ordered(goals, METHOD_LABELS):
        for g in goals[method].values():
            if g["unit"] == "dB":
                value = "n/a" if g["mean"] is None else f"{g['mean']:+.2f} dB"
                lo, hi = num(g["lo"]), num(g["hi"])
                detail = f"[{lo:+.2f}, {hi:+.2f}] dB" if np.isfinite(lo) and np.isfinite(hi) else "n/a"
            else:
                value = "n/a" if g["mean"] is None else f"{g['mean']:.2f}x"
                detail = ", ".join(f"{SPACE_LABELS.get(s, s)} {v:.2f}x" for s, v in g.get("by_space", {}).items()
                                   if v is not None) or "n/a"
            rows[(METHOD_LABELS.get(method, method), g["label"])] = {
                "value": value, "95% CI / per latent space": detail, "n": str(g["n"]), "target": g["rule"],
                "result": {True: "met", False: "not met", None: "undetermined"}[g["met"]]}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(table.index, names=["method", "goal"])
    return table


def equal_time_display(table: pd.DataFrame) -> pd.DataFrame:
    """The equal-time comparisons (:func:`igae.eval.equal_time.equal_time_table`) for the report:
    rows (method, latent space); both fits' training times, then latent - RGB PSNR at the latent
    fit's budget and, when the fits were continued, at the RGB fit's budget."""
    continued = table["continued_psnr"].notna().any() if len(table) else False
    rows = {}
    if len(table):
        m_order, s_order = {m: i for i, m in enumerate(METHOD_LABELS)}, {s: i for i, s in enumerate(SPACES)}
        table = table.iloc[sorted(range(len(table)), key=lambda i: (m_order.get(table["method"].iloc[i], len(m_order)),
                                                                    s_order.get(table["space"].iloc[i], len(s_order))))]
    for r in table.itertuples():
        row = {
            "latent train (s)": f"{r.latent_train_s:.1f}", "RGB train (s)": f"{r.rgb_train_s:.1f}",
            "latent PSNR": f"{r.latent_psnr:.2f}" if np.isfinite(r.latent_psnr) else "n/a",
            "RGB PSNR at latent time": f"{r.rgb_psnr_at_latent_time:.2f}" if np.isfinite(r.rgb_psnr_at_latent_time) else "n/a",
            "latent − RGB at latent time [95% CI]": _ci(r.diff_mean, r.diff_lo, r.diff_hi, 2),
            "n (outside RGB curve)": f"{r.diff_n} ({r.outside})",
        }
        if continued:
            ok = np.isfinite(r.continued_psnr)
            row.update({
                "continued: extra steps": f"{r.extra_steps:.0f}" if ok else "–",
                "continued: latent train (s)": f"{r.continued_train_s:.1f}" if ok else "–",
                "continued: latent PSNR": f"{r.continued_psnr:.2f}" if ok else "–",
                "continued: RGB PSNR": f"{r.rgb_psnr:.2f}" if ok else "–",
                "continued: latent − RGB [95% CI]": _ci(r.cont_diff_mean, r.cont_diff_lo, r.cont_diff_hi, 2),
            })
        rows[(METHOD_LABELS.get(r.method, r.method), SPACE_LABELS.get(r.space, r.space))] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    if not out.empty:
        out.index = pd.MultiIndex.from_tuples(out.index, names=["method", "space"])
    return out


def speed_table(fits: pd.DataFrame) -> pd.DataFrame:
    """Per method and space: training time per stage, time outside training (setup, evaluations,
    turntable: ``metrics.json``'s ``overhead_seconds``), render time per frame (field / decoding),
    speed-ups over the RGB fit of the same method, peak memory (host RSS, and GPU memory allocated
    by torch when fits ran on CUDA); means over scenes."""
    cols = ["train_stage1_s", "train_stage2_s", "train_rgb_s", "train_s", "render_field_ms", "render_decode_ms",
            "render_ms", "peak_rss_mb", "overhead_s"]
    on_gpu = "gpu_peak_mb" in fits and bool(fits["gpu_peak_mb"].notna().any())
    means = fits.groupby(["method", "space"])[cols + (["gpu_peak_mb"] if on_gpu else [])].mean()
    rows = []
    for method in _ordered(fits["method"], METHOD_LABELS):
        for space in _ordered(fits["space"], SPACES):
            if (method, space) not in means.index:
                continue
            m = means.loc[(method, space)]
            rgb = means.loc[(method, "rgb")] if (method, "rgb") in means.index else None
            rows.append({
                "method": METHOD_LABELS.get(method, method), "space": SPACE_LABELS.get(space, space),
                "train stage 1 (s)": m["train_stage1_s"], "train stage 2 (s)": m["train_stage2_s"],
                "train RGB (s)": m["train_rgb_s"], "train total (s)": m["train_s"],
                "outside training (s)": m["overhead_s"],
                "render field (ms/frame)": m["render_field_ms"], "render decode (ms/frame)": m["render_decode_ms"],
                "render total (ms/frame)": m["render_ms"],
                "train speed-up vs RGB": np.nan if rgb is None else rgb["train_s"] / m["train_s"],
                "render speed-up vs RGB": np.nan if rgb is None else rgb["render_ms"] / m["render_ms"],
                "peak memory (MB)": m["peak_rss_mb"],
                **({"GPU peak memory (MB)": m["gpu_peak_mb"]} if on_gpu else {}),
            })
    return pd.DataFrame(rows).set_index(["method", "space"]).round(2)


def ae_run_labels(runs: list[tuple[str, int]]) -> list[str]:
    """Table labels of AE runs ``(ae, seed)``: the AE's name, with its seed when several seeds ran."""
    several = len({seed for _, seed in runs}) > 1
    return [f"{SPACE_LABELS[ae]} (AE seed {seed})" if several else SPACE_LABELS[ae] for ae, seed in runs]


def autoencoding_table(ae_eval_dir: str | Path) -> pd.DataFrame:
    """Per AE (and AE seed), reconstruction PSNR / SSIM / perceptual on held-out photos and held-out scene views."""
    rows, label = {}, None
    runs = [r for r in ae_runs(ae_eval_dir) if (r[2] / "metrics.json").is_file()]
    for (ae, _, folder), name in zip(runs, ae_run_labels([(ae, seed) for ae, seed, _ in runs])):
        path = folder / "metrics.json"
        try:
            data = json.loads(path.read_text())
            backend = data["perceptual_backend"]
            sets = data["metrics"]
        except (json.JSONDecodeError, KeyError) as err:
            raise InputError(f"not an eval-ae metrics file ({err})", path) from None
        label = label or backend
        row = {}
        for set_name, title in (("photos_test", "real photos"), ("heldout_scene_views", "scene views")):
            m = sets[set_name]
            row[(title, "PSNR ↑")] = f"{m['psnr']['mean']:.2f} ± {m['psnr']['std']:.2f}"
            row[(title, "SSIM ↑")] = f"{m['ssim']['mean']:.3f} ± {m['ssim']['std']:.3f}"
            if "perceptual" in m:
                row[(title, f"{backend} ↓")] = f"{m['perceptual']['mean']:.3f} ± {m['perceptual']['std']:.3f}"
        rows[name] = row
    if not rows:
        raise InputError("no AE evaluation results (<ae>_s<seed>/metrics.json)", ae_eval_dir)
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    table.index.name = "autoencoder"
    return table


# ------------------------------------------------------------------ writers
def _flat_header(table: pd.DataFrame) -> list[str]:
    names = [" / ".join(str(p) for p in c) if isinstance(c, tuple) else str(c) for c in table.columns]
    index = table.index.names if isinstance(table.index, pd.MultiIndex) else [table.index.name or ""]
    return [str(i or "") for i in index] + names


def _rows(table: pd.DataFrame) -> list[list[str]]:
    out = []
    for idx, row in table.iterrows():
        keys = list(idx) if isinstance(idx, tuple) else [idx]
        out.append([str(k) for k in keys] + [_cell(v) for v in row.tolist()])
    return out


def _cell(value) -> str:
    if isinstance(value, float):
        return "–" if np.isnan(value) else f"{value:g}"
    return str(value)


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (multi-level headers joined with " / ")."""
    header = _flat_header(table)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in _rows(table)]
    return "\n".join(lines) + "\n"


def _tex(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("±", r"$\pm$"), ("↑", r"$\uparrow$"), ("↓", r"$\downarrow$"), ("–", "--"),
                 ("−", "$-$")):
        text = text.replace(a, b)
    return text


def to_latex(table: pd.DataFrame, caption: str) -> str:
    """A booktabs ``table`` environment; a two-level column header gets ``\\cmidrule`` groups."""
    n_index = table.index.nlevels
    lines = [r"\begin{table}[t]", r"\centering", r"\small", r"\begin{tabular}{" + "l" * n_index + "c" * len(table.columns) + "}",
             r"\toprule"]
    if isinstance(table.columns, pd.MultiIndex):
        groups: list[tuple[str, int]] = []
        for top in table.columns.get_level_values(0):
            if groups and groups[-1][0] == top:
                groups[-1] = (top, groups[-1][1] + 1)
            else:
                groups.append((top, 1))
        cells, rules, col = [""] * n_index, [], n_index + 1
        for top, span in groups:
            cells.append(rf"\multicolumn{{{span}}}{{c}}{{{_tex(str(top))}}}")
            rules.append(rf"\cmidrule(lr){{{col}-{col + span - 1}}}")
            col += span
        lines.append(" & ".join(cells) + r" \\")
        lines.append(" ".join(rules))
        sub = [str(c[1]) for c in table.columns]
    else:
        sub = [str(c) for c in table.columns]
    index = table.index.names if isinstance(table.index, pd.MultiIndex) else [table.index.name or ""]
    lines.append(" & ".join(_tex(str(i or "")) for i in index) + " & " + " & ".join(_tex(s) for s in sub) + r" \\")
    lines.append(r"\midrule")
    lines += [" & ".join(_tex(c) for c in r) + r" \\" for r in _rows(table)]
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{_tex(caption)}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(table: pd.DataFrame, folder: str | Path, stem: str, caption: str) -> list[Path]:
    """``<stem>.csv``, ``<stem>.md`` and ``<stem>.tex`` in ``folder``, each written atomically."""
    folder = Path(folder)
    flat = table.copy()
    if isinstance(flat.columns, pd.MultiIndex):
        flat.columns = [" / ".join(c) for c in flat.columns]
    paths = [folder / f"{stem}.csv", folder / f"{stem}.md", folder / f"{stem}.tex"]
    write_text_atomic(paths[0], flat.to_csv())
    write_text_atomic(paths[1], f"{caption}\n\n" + to_markdown(table))
    write_text_atomic(paths[2], to_latex(table, caption))
    return paths
