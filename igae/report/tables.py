"""Benchmark tables built from the per-fit and per-AE metrics files, written as CSV, Markdown and LaTeX.

No cell is typed by hand: every function here takes the table of fits (one row per fit, from
:func:`igae.eval.nerf_summary.collect_fits`) or the AE evaluation files and aggregates.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from igae.config import AE_NAMES, AUTOENCODERS, RGB_SPACE
from igae.errors import InputError
from igae.fields.registry import METHOD_LABELS
from igae.io import write_text_atomic
from igae.layout import ae_runs

SPACES = (RGB_SPACE, *AE_NAMES)
SPACE_LABELS = {RGB_SPACE: "RGB NeRF", **AUTOENCODERS}
__all__ = ["AE_NAMES", "METHOD_LABELS", "SPACES", "SPACE_LABELS", "ae_run_labels"]  # names the figures and the page use too


def perceptual_label(fits: pd.DataFrame) -> str:
    """The perceptual column's name: the backend actually used (one backend per table)."""
    backends = sorted(set(fits["perceptual_backend"].dropna()))
    if len(backends) > 1:
        raise InputError(f"fits were evaluated with different perceptual backends {backends}; "
                         f"rerun them with one autoencoder.perceptual setting")
    return backends[0] if backends else "perceptual"


def _ordered(values, order) -> list:
    return [v for v in order if v in set(values)] + sorted(set(values) - set(order))


def _mean_std(values: pd.Series, digits: int) -> str:
    return f"{values.mean():.{digits}f} ± {values.std(ddof=0):.{digits}f}"


def novel_view_table(fits: pd.DataFrame) -> pd.DataFrame:
    """Rows: methods; columns: (space, metric) with "mean ± std" over held-out scenes."""
    label = perceptual_label(fits)
    rows = {}
    for method in _ordered(fits["method"], METHOD_LABELS):
        row = {}
        for space in _ordered(fits["space"], SPACES):
            sel = fits[(fits["method"] == method) & (fits["space"] == space)]
            if sel.empty:
                continue
            row[(SPACE_LABELS.get(space, space), "PSNR ↑")] = _mean_std(sel["psnr"], 2)
            row[(SPACE_LABELS.get(space, space), "SSIM ↑")] = _mean_std(sel["ssim"], 3)
            row[(SPACE_LABELS.get(space, space), f"{label} ↓")] = _mean_std(sel["perceptual"], 3)
        rows[METHOD_LABELS.get(method, method)] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    table.index.name = "method"
    return table


def per_scene_table(fits: pd.DataFrame) -> pd.DataFrame:
    """Test PSNR of every fit: rows (method, scene), columns spaces."""
    table = fits.pivot_table(index=["method", "scene"], columns="space", values="psnr", aggfunc="first")
    table = table[_ordered(table.columns, SPACES)].rename(columns=SPACE_LABELS)
    table = table.round(2)
    table.columns.name = "PSNR (dB)"
    return table


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
                 ("±", r"$\pm$"), ("↑", r"$\uparrow$"), ("↓", r"$\downarrow$"), ("–", "--")):
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
