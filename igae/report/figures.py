"""Paper-style figures from the fit and AE outputs (matplotlib, PNG + PDF).

Every figure reads files the pipeline wrote (fit renders, latents, curves, losses, AE metrics);
colours are fixed per space so one AE has one colour everywhere.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless; set before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from igae.eval.nerf_summary import mean_curve  # noqa: E402
from igae.io import write_bytes_atomic  # noqa: E402
from igae.layout import ae_runs, fit_dir, has_space  # noqa: E402
from igae.nerf.artifact import LATENTS_FILE, load_fit  # noqa: E402
from igae.report.tables import AE_NAMES, METHOD_LABELS, SPACE_LABELS, SPACES, ae_run_labels  # noqa: E402

SPACE_COLOURS = dict(zip(SPACES, ("#4d4d4d", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b")))


def save_figure(fig: plt.Figure, folder: Path, stem: str) -> list[Path]:
    """``<stem>.png`` (150 dpi) and ``<stem>.pdf``, atomically and without timestamps (reruns give the same bytes)."""
    paths = []
    for ext, meta in (("png", {"Software": None}), ("pdf", {"CreationDate": None, "Producer": None})):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=ext, dpi=150, bbox_inches="tight", metadata=meta)
        path = folder / f"{stem}.{ext}"
        write_bytes_atomic(path, buffer.getvalue())
        paths.append(path)
    plt.close(fig)
    return paths


def prediction_and_truth(fit: Path, view: str) -> tuple[np.ndarray, np.ndarray]:
    """The render and the ground truth of one test view of a fit (see :meth:`FitArtifact.test_render`)."""
    return load_fit(fit).test_render(view)


def view_psnr(fit: Path, view: str) -> float:
    table = load_fit(fit).per_view()
    return float(table.loc[table["view"] == view, "psnr"].iloc[0])


def qualitative_grid(fits_root: Path, scene: str, methods: list[str], view: str | None = None) -> plt.Figure:
    """Rows: methods; columns: ground truth | RGB NeRF | standard-AE latent NeRF | IG-AE latent NeRF,
    on one test view, each render titled with its PSNR on that view."""
    spaces = [s for s in ("rgb", "standard", "igae") if has_space(fits_root, s)]  # latent: the first AE seed's fits
    first = fit_dir(fits_root, spaces[0], methods[0], scene)
    view = view or str(load_fit(first).per_view()["view"].iloc[0])
    fig, axes = plt.subplots(len(methods), 1 + len(spaces), figsize=(2.0 * (1 + len(spaces)), 2.1 * len(methods)),
                             squeeze=False)
    for r, method in enumerate(methods):
        for c, space in enumerate(spaces):
            fit = fit_dir(fits_root, space, method, scene)
            pred, truth = prediction_and_truth(fit, view)
            if c == 0:
                axes[r, 0].imshow(truth)
                axes[r, 0].set_title("ground truth" if r == 0 else "", fontsize=9)
                axes[r, 0].set_ylabel(METHOD_LABELS.get(method, method), fontsize=9)
            axes[r, c + 1].imshow(pred)
            axes[r, c + 1].set_title(f"{SPACE_LABELS[space]}\n{view_psnr(fit, view):.2f} dB", fontsize=8,
                                     color=SPACE_COLOURS[space])
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{scene}, test view {view}", fontsize=10)
    return fig


def pca_to_rgb(reference: torch.Tensor, *latents: torch.Tensor) -> list[np.ndarray]:
    """Project latents ``(N, C, h, w)`` on the first 3 principal components of ``reference``'s
    pixels (one fixed basis and one fixed colour scale: the 1st-99th percentiles of the
    reference), giving ``(N, h, w, 3)`` images in [0, 1]."""
    c = reference.shape[1]
    pixels = reference.permute(0, 2, 3, 1).reshape(-1, c).double()
    mean = pixels.mean(0)
    _, _, v = torch.linalg.svd(pixels - mean, full_matrices=False)
    basis = v[: min(3, c)].T  # (C, k)
    proj_ref = (pixels - mean) @ basis
    lo, hi = torch.quantile(proj_ref, 0.01, dim=0), torch.quantile(proj_ref, 0.99, dim=0)
    out = []
    for z in latents:
        p = (z.permute(0, 2, 3, 1).double() - mean) @ basis
        p = ((p - lo) / (hi - lo).clamp_min(1e-12)).clamp(0, 1)
        if p.shape[-1] < 3:
            p = torch.cat([p, p[..., -1:].expand(*p.shape[:-1], 3 - p.shape[-1])], dim=-1)
        out.append(p.numpy())
    return out


def latent_consistency(fits_root: Path, scene: str, method: str, views: int = 4) -> plt.Figure:
    """Per AE (standard, IG-AE): encoded ground-truth latents (top) above the latent NeRF's renders
    (bottom) for a few test views, through a fixed PCA per AE. A 3D-consistent latent space is
    one a NeRF can reproduce: its two rows look alike."""
    blobs = {s: load_fit(fit_dir(fits_root, s, method, scene)).latents() for s in ("standard", "igae")
             if has_space(fits_root, s) and (fit_dir(fits_root, s, method, scene) / LATENTS_FILE).is_file()}
    spaces = list(blobs)
    if not spaces:
        return placeholder(f"No latent fit of {scene} with {method} saved its latents (latents.pt).")
    fig, axes = plt.subplots(2 * len(spaces), views, figsize=(1.6 * views, 3.4 * len(spaces)), squeeze=False)
    for k, space in enumerate(spaces):
        blob = blobs[space]
        n = min(views, len(blob["views"]))
        encoded, rendered = pca_to_rgb(blob["encoded"], blob["encoded"][:n], blob["rendered"][:n])
        for i in range(views):
            for row, (images, label) in enumerate(((encoded, "encoded truth"), (rendered, "latent NeRF"))):
                ax = axes[2 * k + row, i]
                ax.set_xticks([])
                ax.set_yticks([])
                if i < n:
                    ax.imshow(images[i], interpolation="nearest")
                if i == 0:
                    ax.set_ylabel(f"{SPACE_LABELS[space]}\n{label}", fontsize=8, color=SPACE_COLOURS[space])
    fig.suptitle(f"Latents of {scene} ({METHOD_LABELS.get(method, method)}), PCA to RGB per AE", fontsize=10)
    return fig


def speed_quality(fits: pd.DataFrame, fits_root: Path) -> plt.Figure:
    """Test PSNR vs training wall time (evaluation excluded), mean over scenes, one panel per method."""
    methods = [m for m in METHOD_LABELS if m in set(fits["method"])]
    fig, axes = plt.subplots(1, len(methods), figsize=(3.4 * len(methods), 3.0), squeeze=False, sharey=True)
    for ax, method in zip(axes[0], methods):
        for space in SPACES:
            sources = fits[(fits["method"] == method) & (fits["space"] == space)]["source"]
            if sources.empty:
                continue
            curve = mean_curve([Path(src).with_name("curve.csv") for src in sources])  # scenes (x AE seeds)
            ax.plot(curve["train_seconds"], curve["psnr"], "o-", color=SPACE_COLOURS[space], label=SPACE_LABELS[space], ms=4)
        ax.set_title(METHOD_LABELS.get(method, method), fontsize=10)
        ax.set_xlabel("training time (s)")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("test PSNR (dB)")
    axes[0, -1].legend(fontsize=7, loc="lower right")
    return fig


def render_time_bars(fits: pd.DataFrame) -> plt.Figure:
    """Rendering time per test frame, field (solid) + decoding (hatched), per method and space."""
    means = fits.groupby(["method", "space"])[["render_field_ms", "render_decode_ms"]].mean()
    methods = [m for m in METHOD_LABELS if m in set(fits["method"])]
    spaces = [s for s in SPACES if s in set(fits["space"])]
    width = 0.8 / len(spaces)
    fig, ax = plt.subplots(figsize=(1.6 * len(methods) + 2, 3.2))
    for j, space in enumerate(spaces):
        x = np.arange(len(methods)) + (j - (len(spaces) - 1) / 2) * width
        field = [means.loc[(m, space), "render_field_ms"] if (m, space) in means.index else 0 for m in methods]
        decode = [means.loc[(m, space), "render_decode_ms"] if (m, space) in means.index else 0 for m in methods]
        ax.bar(x, field, width, color=SPACE_COLOURS[space], label=SPACE_LABELS[space])
        ax.bar(x, decode, width, bottom=field, color=SPACE_COLOURS[space], alpha=0.45, hatch="//")
    ax.set_xticks(np.arange(len(methods)), [METHOD_LABELS.get(m, m) for m in methods])
    ax.set_ylabel("render time per frame (ms)")
    ax.legend(fontsize=7, title="solid: field, hatched: decoding", title_fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return fig


def placeholder(message: str) -> plt.Figure:
    """A small figure that says why there is nothing to plot (keeps the declared outputs complete)."""
    fig, ax = plt.subplots(figsize=(5.0, 1.2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=9, wrap=True)
    return fig


def training_curves(losses_csv: Path, title: str) -> plt.Figure:
    """Each loss term vs step (log scale), phases shaded."""
    table = pd.read_csv(losses_csv)
    if table.empty:
        return placeholder(f"{title}: no training steps were run here (e.g. a pretrained AE).")
    terms = [c for c in table.columns if c not in ("step", "phase", "skipped", "total")]
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    for term in terms:
        col = table[term]
        if col.notna().any() and (col > 0).any():
            smooth = col.rolling(10, min_periods=1).mean()
            ax.plot(table["step"], smooth, label=term, lw=1.2)
    if "phase" in table:
        for k, (phase, part) in enumerate(table.groupby("phase", sort=False)):
            ax.axvspan(part["step"].min(), part["step"].max(), color=f"C{k}", alpha=0.06)
            ax.text(part["step"].mean(), 1.01, phase, transform=ax.get_xaxis_transform(), ha="center", fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("weighted loss (10-step mean)")
    ax.set_title(title, fontsize=10, pad=14)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return fig


def autoencoder_bars(ae_eval_dir: Path) -> plt.Figure:
    """Reconstruction PSNR (mean ± std) of each AE on held-out photos and held-out scene views."""
    sets = (("photos_test", "real photos"), ("heldout_scene_views", "scene views"))
    runs = [r for r in ae_runs(ae_eval_dir) if (r[2] / "metrics.json").is_file()]
    labels = ae_run_labels([(ae, seed) for ae, seed, _ in runs])
    fig, ax = plt.subplots(figsize=(5.0, 3.0))
    width = 0.8 / max(len(runs), 1)
    for j, ((ae, _, folder), label) in enumerate(zip(runs, labels)):
        m = json.loads((folder / "metrics.json").read_text())["metrics"]
        x = np.arange(len(sets)) + (j - (len(runs) - 1) / 2) * width
        ax.bar(x, [m[s]["psnr"]["mean"] for s, _ in sets], width, yerr=[m[s]["psnr"]["std"] for s, _ in sets],
               color=SPACE_COLOURS[ae], label=label, capsize=3)
    ax.set_xticks(np.arange(len(sets)), [label for _, label in sets])
    ax.set_ylabel("reconstruction PSNR (dB)")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return fig
