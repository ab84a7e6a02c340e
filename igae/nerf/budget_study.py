"""Fit the IG-AE snapshots on the test scenes and compare each budget with the standard AE.

``igae.snapshots`` lists joint-step counts ``k`` after which the IG-AE stage also saved its AE
(``<autoencoders>/igae_s<seed>/snapshots/joint_<k>/``, bit-identical to a run of ``k`` joint steps).
Each snapshot is fitted with ``budget.methods`` on every test scene, by the same :func:`run_fit` as the
benchmark's fits, for every AE seed; :func:`igae.eval.budget.budget_table` then pairs each budget with
the standard AE's fits of the same methods, scenes and seeds, the final IG-AE being the last budget.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from igae.config import Params
from igae.errors import InputError
from igae.io import atomic_dir, check_replaceable, write_json_atomic, write_text_atomic
from igae.layout import ae_run_name, fit_space_folder
from igae.provenance import provenance

RECORD_FILE = "budget.json"
TABLE_FILE = "budget.csv"
FITS_DIR = "fits"
SNAPSHOTS_DIR = "snapshots"
SPACE = "igae"


def snapshot_dir(autoencoders: Path, seed: int, joint_steps: int) -> Path:
    """The AE folder (with ``model/``) of IG-AE seed ``seed`` after ``joint_steps`` joint steps."""
    return autoencoders / ae_run_name(SPACE, seed) / SNAPSHOTS_DIR / f"joint_{joint_steps}"


def run_budget_study(params: Params, scene_set: Path, autoencoders: Path, fits: Path, out: Path, work: Path,
                     threads: int, log: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    """Fit every snapshot and write ``out`` (replaced whole): ``fits/joint_<k>/igae_s<seed>/<method>/<scene>/``,
    ``budget.csv`` (IG-AE minus standard per budget and method: mean, 95% CI, n), ``budget.png``/``.pdf``
    and ``budget.json`` (what was fitted, provenance).

    With ``igae.snapshots`` empty nothing is fitted: ``budget.json`` says so.

    Returns:
        The content of ``budget.json``.

    Raises:
        InputError: no standard-AE fits of ``budget.methods`` to compare with, a snapshot folder that does
            not exist (the IG-AE stage ran with other snapshots), or no scene folders.
    """
    from igae.data.scene import scene_folders
    from igae.eval.budget import budget_fits, budget_table
    from igae.eval.nerf_summary import collect_fits
    from igae.nerf.run import FitJob, renders_turntable, run_fit
    from igae.report.budget import budget_figure
    from igae.report.figures import save_figure

    snapshots = sorted(params.igae.snapshots)
    methods = list(params.budget.methods)
    check_replaceable(out, RECORD_FILE, owned=[TABLE_FILE, FITS_DIR, "budget.png", "budget.pdf"])
    record: dict[str, Any] = {"snapshots": snapshots, "final_joint_steps": params.igae.joint.steps,
                              "methods": methods, "ae_seeds": list(params.ae_seeds), "scene_set": str(scene_set),
                              "seed": params.seed, "provenance": provenance(params.seed)}
    with atomic_dir(out) as tmp:
        if snapshots:
            scenes = scene_folders(scene_set)
            sources = {(k, seed): snapshot_dir(autoencoders, seed, k) for k in snapshots for seed in params.ae_seeds}
            missing = [str(p) for p in sources.values() if not (p / "model").is_dir()]
            if missing:
                raise InputError(f"igae.snapshots {snapshots} needs the snapshot folders {missing}: rerun the IG-AE "
                                 "stage with these snapshots")
            main_fits = collect_fits(fits)
            unfitted = sorted(set(methods) - set(main_fits.loc[main_fits["space"] == "standard", "method"]))
            if unfitted:
                raise InputError(f"budget.methods {unfitted} have no standard-AE fits to compare with (nerf.methods: "
                                 "the study's methods must be fitted in the main benchmark too)", fits)
            total = len(sources) * len(methods) * len(scenes)
            done = 0
            for (k, seed), source in sources.items():
                for method in methods:
                    for scene_index, scene in enumerate(scenes):
                        where = Path(f"joint_{k}") / fit_space_folder(SPACE, seed) / method / scene.name
                        done += 1
                        log(f"budget fit {done}/{total}: joint_{k} seed {seed} {method} {scene.name}")
                        run_fit(FitJob(scene, str(source), method, tmp / FITS_DIR / where, work / where,
                                       space_name=SPACE, progress=False, ae_seed=seed,
                                       turntable=renders_turntable(scene_index, params.nerf.eval)),
                                params, threads, log)
            table = budget_table(budget_fits(tmp / FITS_DIR), main_fits, params.igae.joint.steps)
            write_text_atomic(tmp / TABLE_FILE, table.to_csv(index=False, float_format="%.6g"))
            save_figure(budget_figure(table), tmp, "budget")
            record.update(scenes=[s.name for s in scenes], fits=total, table=table.to_dict(orient="records"))
        else:
            record["note"] = ("igae.snapshots is empty: nothing was fitted. List joint-step counts there (presets/long.yaml "
                              "does) to fit the IG-AE snapshots and compare each budget with the standard AE.")
        write_json_atomic(tmp / RECORD_FILE, record)
    return record
