"""Choose one fit hyper-parameter on the validation scenes: one set of fits per value, a summary, the choice.

``tuning.param`` takes each of ``tuning.values`` in turn; for each value, every validation scene is
fitted in each of ``tuning.spaces`` with each of ``tuning.methods`` by the same :func:`run_fit` as the
benchmark's fits, and evaluated on that scene's own test split. The choice is the value with the
best mean validation PSNR over all those fits. Test scenes are never read here: hyper-parameters
chosen this way leave the test scenes to make the tables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from igae.config import RGB_SPACE, Params, tuning_variants
from igae.errors import InputError
from igae.io import atomic_dir, check_replaceable, write_json_atomic, write_text_atomic
from igae.layout import ae_run_name, fit_space_folder
from igae.provenance import provenance

CHOICE_FILE = "choice.json"
SUMMARY_FILE = "summary.csv"
FITS_DIR = "fits"
SUMMARY_COLUMNS = ["value_index", "value", "space", "ae_seed", "method", "scene", "psnr", "ssim", "perceptual",
                   "perceptual_backend", "train_s"]


def check_validation_set(scene_set: Path) -> list[Path]:
    """The scene folders of a validation set (sorted).

    Raises:
        InputError: no scene folders, or a manifest that says the set is not the validation set
            (tuning on the test scenes would leak them into the choice).
    """
    manifest = scene_set / "manifest.json"
    if manifest.is_file():
        name = json.loads(manifest.read_text()).get("set")
        if name != "validation":
            raise InputError(f"tuning fits the validation scenes, but this set's manifest says {name!r}: hyper-parameters "
                             "are never chosen on the test (held-out) scenes", manifest)
    from igae.data.scene import scene_folders

    return scene_folders(scene_set)


def choose(summary: pd.DataFrame, param: str) -> dict[str, Any]:
    """The value with the best mean validation PSNR (the first of equals), and every value's means."""
    means = []
    for index, part in summary.groupby("value_index", sort=True):
        means.append({"index": int(index), "value": json.loads(part["value"].iloc[0]), "psnr": float(part["psnr"].mean()),
                      "ssim": float(part["ssim"].mean()), "perceptual": float(part["perceptual"].mean()),
                      "fits": int(len(part))})
    best = max(range(len(means)), key=lambda i: (means[i]["psnr"], -i))
    return {"param": param, "value": means[best]["value"], "index": means[best]["index"], "psnr": means[best]["psnr"],
            "criterion": "highest mean test-split PSNR over the validation scenes x spaces x methods", "values": means}


def run_tuning(params: Params, scene_set: Path, autoencoders: Path, out: Path, work: Path, threads: int,
               log: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    """Fit the validation scenes for every value of ``tuning.param``; write ``out`` (replaced whole):
    ``summary.csv`` (one row per fit), ``choice.json`` and ``fits/v<i>/<space>/<method>/<scene>/``.

    With ``tuning.enabled`` false nothing is fitted: ``choice.json`` says so and ``summary.csv`` has
    no rows. Latent spaces use the AEs of the first of ``ae_seeds`` (``autoencoders/<ae>_s<seed>``).

    Returns:
        The content of ``choice.json``.

    Raises:
        InputError: a bad ``tuning`` section, an AE folder that does not exist, or not a validation set.
    """
    from igae.eval.nerf_summary import fit_row
    from igae.nerf.run import FitJob, renders_turntable, run_fit

    t = params.tuning
    check_replaceable(out, CHOICE_FILE, owned=[SUMMARY_FILE, FITS_DIR])
    variants = tuning_variants(params)  # a bad param or value fails before any fit
    record: dict[str, Any] = {"enabled": t.enabled, "param": t.param, "grid": list(t.values), "spaces": list(t.spaces),
                              "methods": list(t.methods), "scene_set": str(scene_set), "seed": params.seed,
                              "provenance": provenance(params.seed)}
    rows: list[dict[str, Any]] = []
    with atomic_dir(out) as tmp:
        if t.enabled:
            scenes = check_validation_set(scene_set)
            ae_seed = params.ae_seeds[0]
            record["ae_seed"] = ae_seed
            sources = {space: "rgb" if space == RGB_SPACE else str(autoencoders / ae_run_name(space, ae_seed))
                       for space in t.spaces}
            missing = [s for s in sources.values() if s != "rgb" and not (Path(s) / "model").is_dir()]
            if missing:
                raise InputError(f"tuning.spaces needs the autoencoder folders {missing} (ae_seeds[0] = {ae_seed}); "
                                 "train them first (the AE stages)")
            for index, (value, variant) in enumerate(variants):
                log(f"tuning {t.param} = {value!r} ({index + 1}/{len(variants)})")
                for space, source in sources.items():
                    seed = None if space == RGB_SPACE else ae_seed
                    for method in t.methods:
                        for scene_index, scene in enumerate(scenes):
                            where = Path(f"v{index}") / fit_space_folder(space, seed) / method / scene.name
                            metrics = run_fit(FitJob(scene, source, method, tmp / FITS_DIR / where, work / where,
                                                     space_name=space, progress=False, ae_seed=seed,
                                                     turntable=renders_turntable(scene_index, variant.nerf.eval)),
                                              variant, threads, log)
                            row = fit_row(metrics, out / FITS_DIR / where / "metrics.json")
                            rows.append({"value_index": index, "value": json.dumps(value), "ae_seed": seed,
                                         **{k: row[k] for k in SUMMARY_COLUMNS if k in row}})
            record.update(choose(pd.DataFrame(rows), t.param), scenes=[s.name for s in scenes])
        else:
            record["note"] = ("tuning.enabled is false: nothing was fitted. Set it to true to compare the values of "
                              "tuning.param on the validation scenes.")
        summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
        write_text_atomic(tmp / SUMMARY_FILE, summary.to_csv(index=False, float_format="%.6g"))
        write_json_atomic(tmp / CHOICE_FILE, record)
    if t.enabled:
        for entry in record["values"]:
            log(f"{t.param} = {entry['value']!r}: mean validation PSNR {entry['psnr']:.3f} dB over {entry['fits']} fits"
                + ("  <- chosen" if entry["index"] == record["index"] else ""))
    return record
