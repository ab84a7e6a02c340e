"""Build the tables, figures, generated findings and the self-contained HTML report from the pipeline's outputs.

Inputs are files only (fits, AE evaluations, AE training losses, the held-out manifest); the
HTML page references the figures and turntables by relative paths, so the ``results/`` folder
can be opened from disk or copied elsewhere whole.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from igae.eval.nerf_summary import collect_fits
from igae.io import write_text_atomic
from igae.layout import ae_runs, fit_dir
from igae.report import figures as figs
from igae.report import statements
from igae.report import tables as tabs
from igae.report.statements import ONE_SEED, Results

SECTIONS = ("summary", "novel-view-synthesis", "latent-consistency", "speed", "autoencoders", "turntables",
            "per-scene", "reproducibility", "data")


@dataclass
class ReportInputs:
    fits: Path          # results/nerf
    ae_eval: Path       # results/ae_eval
    autoencoders: Path  # results/autoencoders
    heldout: Path       # data/scenes/heldout
    tables: Path        # results/tables
    figures: Path       # results/figures
    report: Path        # results/report


def build_tables(r: Results, inp: ReportInputs) -> dict[str, pd.DataFrame]:
    """Write every table (CSV, Markdown, LaTeX) and return them by name."""
    fits = r.fits
    label = r.perceptual
    over = r.units_label
    made = {
        "novel_view_synthesis": (tabs.novel_view_table(fits),
                                 f"Novel-view synthesis on held-out scenes (test views), mean ± std over {over}. "
                                 f"Perceptual metric: {label}. {tabs.CEILING}: the shared AE's own encode -> decode "
                                 f"(posterior mean) of the same test views, before the per-scene decoder fine-tuning "
                                 f"of stage 2."),
        "paired_differences": (tabs.paired_differences_table(r.paired),
                               f"IG-AE minus each other space, per NeRF method: mean of the per-unit differences and "
                               f"its 95% CI (t-interval over {over}; n units). ↑: a positive difference means IG-AE "
                               f"is better; ↓ ({label}): a negative one does."),
        "gain_decomposition": (tabs.gain_decomposition_table(r.decomposition),
                               "Where each latent space's test-PSNR difference comes from, per NeRF method: unit by "
                               "unit, the latent NeRFs' PSNR difference equals the difference of the AEs' own "
                               "encode -> decode PSNR of the same test views (AE ceiling) plus the change of the "
                               "NeRF-to-ceiling gap (latent NeRF PSNR minus its AE ceiling); mean and 95% CI "
                               f"(t-interval over {over}; n units). A gap closer to zero means the NeRF got closer to "
                               "what its AE can reconstruct; the gap also depends on how much detail that "
                               "reconstruction holds, so read it with the ceiling's change."),
        "paired_differences_per_scene": (tabs.per_unit_differences_table(r.units),
                                         "Test-PSNR difference (dB) of every paired unit."),
        "goal_checks": (tabs.goals_table(r.goals),
                        f"The issue's goals per NeRF method: paired PSNR differences with their 95% CI over {over}, "
                        "and latent / RGB time ratios (means over scenes; the slowest latent space counts)."
                        + (f" {ONE_SEED}" if r.one_seed else "")),
        "novel_view_synthesis_per_scene": (tabs.per_scene_table(fits), "Test PSNR (dB) of every fit."),
        "speed": (tabs.speed_table(fits), "Training time (evaluation excluded), time outside training (setup, the curve's and the final "
                                          "evaluation, render timing, turntable) and rendering time per test frame "
                                          f"after a warm-up, means over scenes; device: {', '.join(sorted(set(fits['device'].astype(str))))}."),
        "equal_time": (tabs.equal_time_display(r.equal_time),
                       "Latent fits against RGB fits at equal wall-clock budget, test PSNR (dB), means over units. At "
                       "the latent fit's budget: the RGB fit's PSNR at the latent fit's training time, interpolated "
                       "linearly on the RGB fit's PSNR-vs-time curve; outside the curve's range there is no value "
                       "(counted, not extrapolated). Continued (when nerf.equal_time.extra_stage2_steps > 0): the "
                       "latent fit trained further in stage 2, against the RGB fit's final PSNR; both training times "
                       "are shown. The training times come from separate jobs, often minutes apart (in a run on few "
                       "cores, RGB fits run while the AEs train and latent fits after them): a change in the "
                       "machine's speed between them moves these differences beyond what their CIs, over scenes, "
                       "cover."),
        "autoencoding": (tabs.autoencoding_table(inp.ae_eval), "Autoencoder reconstruction on held-out real photos and "
                                                               "held-out scene views, mean ± std."),
    }
    for name, (table, caption) in made.items():
        tabs.write_table(table, inp.tables, name, caption)
    return {name: table for name, (table, _) in made.items()}


def build_figures(fits: pd.DataFrame, inp: ReportInputs) -> dict[str, list[str]]:
    """Write every figure; returns section -> figure stems."""
    out: dict[str, list[str]] = {"novel-view-synthesis": [], "latent-consistency": [], "speed": [], "autoencoders": []}
    methods = [m for m in tabs.METHOD_LABELS if m in set(fits["method"])]
    latent_method = methods[0]
    for scene in sorted(fits["scene"].unique()):
        figs.save_figure(figs.qualitative_grid(inp.fits, scene, methods), inp.figures, f"qualitative_{scene}")
        out["novel-view-synthesis"].append(f"qualitative_{scene}")
        figs.save_figure(figs.latent_consistency(inp.fits, scene, latent_method), inp.figures, f"latents_{scene}")
        out["latent-consistency"].append(f"latents_{scene}")
    figs.save_figure(figs.speed_quality(fits, inp.fits), inp.figures, "psnr_vs_time")
    figs.save_figure(figs.render_time_bars(fits), inp.figures, "render_time")
    out["speed"] += ["psnr_vs_time", "render_time"]
    figs.save_figure(figs.autoencoder_bars(inp.ae_eval), inp.figures, "autoencoders")
    out["autoencoders"].append("autoencoders")
    for ae in tabs.AE_NAMES:  # the first AE seed's training
        folder = next((f for name, _, f in ae_runs(inp.autoencoders) if name == ae), None)
        losses = None if folder is None else folder / "losses.csv"
        if losses is not None and losses.is_file():
            figs.save_figure(figs.training_curves(losses, f"{tabs.SPACE_LABELS[ae]} training losses"),
                             inp.figures, f"training_{ae}")
            out["autoencoders"].append(f"training_{ae}")
    return out


CAPTIONS = {
    "qualitative": "Same test view, never trained on: ground truth, the RGB NeRF, and latent NeRFs decoded by "
                   "the standard AE and by IG-AE, each with its PSNR on this view.",
    "latents": "Encoded ground truth (top of each pair) vs the latent NeRF's render after both stages (bottom), for "
               "the standard AE and IG-AE, through a fixed PCA per AE. A NeRF can only reproduce latents that agree "
               "across views: the closer the rows, the more 3D-consistent the latent space on this scene. Stage 2 "
               "lets the rendered latents move with the decoder copy (held by nerf.stage2.latent_weight).",
    "psnr_vs_time": "Test PSNR against training wall time (evaluations excluded), mean over held-out scenes; the "
                    "RGB fits' curves have nerf.eval.rgb_curve_points points.",
    "render_time": "Rendering time per test frame after a warm-up: field (solid) and decoding (hatched).",
    "autoencoders": "Reconstruction PSNR of each AE on held-out photos and held-out scene views.",
    "training": "Per-step losses (10-step mean, log scale); shaded spans are training phases.",
}
"""What each figure shows (no findings: the generated sentences of :mod:`igae.report.statements` follow
the captions that have them, see :data:`CAPTION_FINDINGS`)."""
CAPTION_FINDINGS = {"psnr_vs_time": "speed_time", "render_time": "speed_render"}
"""figure stem prefix -> the generated sentences appended to its caption."""


def _caption(stem: str, found: dict[str, list[str]] | None = None) -> str:
    """The figure's neutral caption, then the generated sentences that belong to it (if any)."""
    text = next((text for key, text in CAPTIONS.items() if stem.startswith(key)), "")
    part = next((name for key, name in CAPTION_FINDINGS.items() if stem.startswith(key)), None)
    return " ".join([text, *(found or {}).get(part, [])]) if part else text


def _rel(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()


def _table_html(table: pd.DataFrame) -> str:
    return table.to_html(border=0, classes="tbl", na_rep="–", escape=True)


def scaling_html(inp: ReportInputs, rel) -> str:
    """The scaling benchmark's reduced grid (``benchmarks/bench_scaling.py --quick``), when it ran:
    its summary sentences, table and figure, read from ``results/benchmarks/scaling/quick/``."""
    folder = inp.fits.parent / "benchmarks" / "scaling" / "quick"
    if not (folder / "scaling.csv").is_file() or not (folder / "scaling.json").is_file():
        return ""
    meta = json.loads((folder / "scaling.json").read_text())
    table = pd.read_csv(folder / "scaling.csv").set_index(["method", "space", "image_res"])
    cols = ["rays_per_frame", "field_ms", "decode_ms", "decode_ms_batch8", "total_ms", "speedup_vs_rgb",
            "field_us_per_ray", "train_step_ms", "stage2_step_ms", "render_peak_mb", "train_peak_mb"]
    items = "".join(f"<li>{html.escape(line)}</li>" for line in meta.get("summary", []))
    return (f"<h3>Scaling with resolution (reduced grid)</h3><ul>{items}</ul>"
            + _table_html(table[cols].round(2))
            + f'<figure><img src="{rel(folder / "scaling.png")}" alt="scaling"><figcaption>Render time per frame '
              "(field dashed, decode in batches of 8 dotted), training step time and peak memory against image "
              "size, from benchmarks/bench_scaling.py --quick.</figcaption></figure>")


def _list_html(sentences: list[str]) -> str:
    return "<ul class='findings'>" + "".join(f"<li>{html.escape(s)}</li>" for s in sentences) + "</ul>" if sentences else ""


def render_html(r: Results, tables: dict[str, pd.DataFrame], figures: dict[str, list[str]],
                inp: ReportInputs, params: dict[str, Any]) -> str:
    """The report page (one string)."""
    fits = r.fits
    found = statements.sections(r)
    rel = lambda p: html.escape(_rel(p, inp.report))  # noqa: E731
    first_fit = json.loads(Path(fits["source"].iloc[0]).read_text())
    prov = first_fit["provenance"]

    def figure(stem: str) -> str:
        return (f'<figure><img src="{rel(inp.figures / (stem + ".png"))}" alt="{stem}">'
                f'<figcaption>{html.escape(_caption(stem, found))} (<a href="{rel(inp.figures / (stem + ".pdf"))}">PDF</a>)'
                f"</figcaption></figure>")

    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>IG-AE pipeline report</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em;color:#222}"
        "table.tbl{border-collapse:collapse;font-size:12px;margin:1em 0}table.tbl td,table.tbl th{padding:3px 8px;"
        "border-bottom:1px solid #ddd;text-align:right}figure{display:inline-block;margin:1em;max-width:95%}"
        "figure img{max-width:100%;max-height:900px}figcaption{font-size:12px;color:#555;max-width:700px}"
        "pre{background:#f6f6f6;padding:1em;font-size:11px;overflow:auto}.gifs img{width:128px;image-rendering:pixelated}"
        ".gifs td{text-align:center;font-size:11px}</style></head><body>",
        "<h1>IG-AE pipeline report</h1>",
        f"<p>{len(fits)} per-scene fits on {fits['scene'].nunique()} held-out scenes; every number below is computed "
        f"from the fits' <code>metrics.json</code> files (<code>results/nerf/&lt;space&gt;_s&lt;AE seed&gt;/&lt;method&gt;/&lt;scene&gt;/</code>, RGB fits in <code>results/nerf/rgb/</code>), "
        f"evaluated on test views only. Perceptual metric: {html.escape(tabs.perceptual_label(fits))}. "
        f"Device: {html.escape(str(prov.get('device')))}.</p>",
        "<section id='summary'><h2>Summary</h2>", _table_html(tables["novel_view_synthesis"]),
        f"<h3>{statements.TITLES['summary']}</h3>", _list_html(found["summary"]),
        "<h3>Goal checks</h3>", _table_html(tables["goal_checks"]),
        f"<p>{html.escape(statements.ONE_SEED)}</p>" if r.one_seed else "",
        "<h3>Paired differences</h3>",
        f"<p>IG-AE minus each other space on the same units ({html.escape(r.units_label)}): mean and 95% CI "
        f"(t-interval). ↑: a positive difference means IG-AE is better; ↓: a negative one does.</p>",
        _table_html(tables["paired_differences"]),
        "<details><summary>Every comparison as a sentence, and the per-scene differences</summary>",
        _list_html(statements.per_method_sentences(r)), _table_html(tables["paired_differences_per_scene"]),
        "</details>",
        "<h3>Where the differences come from</h3>", _table_html(tables["gain_decomposition"]),
    ]
    parts += ["</section>",
              "<section id='novel-view-synthesis'><h2>Novel-view synthesis</h2>",
              *[figure(s) for s in figures["novel-view-synthesis"]], "</section>",
              "<section id='latent-consistency'><h2>Latent 3D consistency</h2>",
              *[figure(s) for s in figures["latent-consistency"]], "</section>",
              "<section id='speed'><h2>Speed</h2>", _table_html(tables["speed"]),
              "<h3>Equal time</h3>", _table_html(tables["equal_time"]), _list_html(found["speed_time"]),
              *[figure(s) for s in figures["speed"]], scaling_html(inp, rel), "</section>",
              "<section id='autoencoders'><h2>Autoencoders</h2>", _table_html(tables["autoencoding"]),
              *[figure(s) for s in figures["autoencoders"]], "</section>"]
    # Turntables: every space x method of the first scene (new poses on an orbit).
    scene = sorted(fits["scene"].unique())[0]
    spaces = [s for s in tabs.SPACES if s in set(fits["space"])]
    methods = [m for m in tabs.METHOD_LABELS if m in set(fits["method"])]
    rows = ["<tr><th></th>" + "".join(f"<th>{html.escape(tabs.SPACE_LABELS[s])}</th>" for s in spaces) + "</tr>"]
    for m in methods:
        cells = []
        for s in spaces:
            gif = fit_dir(inp.fits, s, m, scene) / "turntable.gif"  # latent spaces: the first AE seed's fit
            cells.append(f"<td><img src='{rel(gif)}' alt='turntable {s} {m}'></td>" if gif.is_file() else "<td>–</td>")
        rows.append(f"<tr><th>{html.escape(tabs.METHOD_LABELS.get(m, m))}</th>{''.join(cells)}</tr>")
    parts += [f"<section id='turntables'><h2>Turntables ({html.escape(scene)})</h2>"
              "<p>Orbits of new poses around the object, rendered by each fit.</p>"
              f"<table class='gifs'>{''.join(rows)}</table></section>",
              "<section id='per-scene'><h2>Per-scene results</h2>", _table_html(tables["novel_view_synthesis_per_scene"]),
              "</section>",
              "<section id='reproducibility'><h2>Reproducibility</h2>",
              f"<p>Seed {html.escape(str(first_fit['seed']))}, preset <code>{html.escape(str(first_fit.get('preset')))}</code>, "
              f"Python {html.escape(str(prov.get('python')))}, {html.escape(str(prov.get('platform')))}.</p>",
              "<h3>Package versions</h3><pre>" + html.escape(yaml.safe_dump(prov.get("versions", {}), sort_keys=True)) + "</pre>",
              "<h3>Parameters (preset applied)</h3><pre>" + html.escape(yaml.safe_dump(params, sort_keys=False)) + "</pre>",
              "</section>"]
    manifest_path = inp.heldout / "manifest.json"
    credits = []
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        for scene_entry in manifest.get("scenes", []):
            obj = scene_entry.get("object", scene_entry)
            credits.append(f"<li>{html.escape(str(scene_entry.get('scene_id', '')))}: "
                           f"{html.escape(str(obj.get('attribution') or obj.get('name', '')))} "
                           f"({html.escape(str(obj.get('licence', '')))})</li>")
    parts += ["<section id='data'><h2>Data and attributions</h2><ul>", *credits, "</ul></section>",
              "<script>window.addEventListener('load',()=>{const imgs=[...document.images];"
              "document.body.dataset.imagesTotal=imgs.length;"
              "document.body.dataset.imagesBroken=imgs.filter(i=>!(i.complete&&i.naturalWidth>0)).length;});</script>",
              "</body></html>"]
    return "\n".join(parts)


def build_report(inp: ReportInputs, params: dict[str, Any]) -> Path:
    """Tables, figures and ``report/index.html``; returns the page's path."""
    results = Results.from_fits(collect_fits(inp.fits))
    tables = build_tables(results, inp)
    write_text_atomic(inp.tables / "findings.md", statements.markdown(statements.sections(results)))
    figures = build_figures(results.fits, inp)
    page = inp.report / "index.html"
    write_text_atomic(page, render_html(results, tables, figures, inp, params))
    return page
