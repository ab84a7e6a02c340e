"""IG-AE's gain against its joint-step budget, past the presets' budgets: per-fit rows and the table.

  python study.py --collect RUN   # write per_fit.csv from a run folder (see README.md)
  python study.py                 # print the table from per_fit.csv and write summary.md

Each IG-AE budget (``joint_steps``; 0 is the standard AE it starts from), and the fine-tuning ablation
at the final budget, is paired with the standard AE's fit of the same method, test scene and AE seed, and at
the final budget IG-AE also with the ablation. Per row: the gain in latent-NeRF PSNR, the
gain in the AE's own reconstruction PSNR of the same test views (the AE ceiling), and their
difference, the change in the NeRF-to-ceiling gap (positive: the latent NeRF got closer to what its
AE can reconstruct, the 3D-consistency effect IG-AE is for). Means with 95% t-intervals over the units
(scene x AE seed) both sides have; n counts them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from igae.eval.nerf_summary import collect_fits
from igae.eval.paired import mean_ci

HERE = Path(__file__).parent
PER_FIT = HERE / "per_fit.csv"
SUMMARY = HERE / "summary.md"
UNIT = ["scene", "ae_seed"]
"""One paired unit: a test scene and an AE seed (the standard AE and the AEs trained from it share the seed)."""
COLUMNS = ["joint_steps", "space", "method", "scene", "ae_seed", "psnr", "ssim", "perceptual", "ae_ceiling_psnr", "train_s"]


def collect(run: Path) -> pd.DataFrame:
    """Rows of the standard AE's fits (``joint_steps`` 0), the IG-AE snapshots' (``results/budget/fits/
    joint_<k>``), and the final IG-AE's and fine-tuning ablation's (``results/nerf/{igae,finetuned}_s0``, at
    the budget ``budget.json`` names)."""
    import json

    record = json.loads((run / "results/budget/budget.json").read_text())
    main = collect_fits(run / "results/nerf")
    parts = [main[main["space"] == "standard"].assign(joint_steps=0),
             main[main["space"].isin(["igae", "finetuned"])].assign(joint_steps=record["final_joint_steps"])]
    for k in record["snapshots"]:
        parts.append(collect_fits(run / f"results/budget/fits/joint_{k}").assign(joint_steps=k))
    rows = pd.concat(parts, ignore_index=True)
    return rows[rows["method"].isin(record["methods"])][COLUMNS].sort_values(
        ["method", "joint_steps", "space", "ae_seed", "scene"]).reset_index(drop=True)


def table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per method, space and budget, against a baseline (the standard AE; at a budget where the ablation
    was fitted, IG-AE also against it): PSNR gain, ceiling gain and gap change."""
    out = []
    for (method, steps), part in rows[rows["joint_steps"] > 0].groupby(["method", "joint_steps"]):
        spaces = set(part["space"])
        pairs = [(s, "standard") for s in ("finetuned", "igae") if s in spaces]
        pairs += [("igae", "finetuned")] if {"igae", "finetuned"} <= spaces else []
        for space, baseline in pairs:
            a = part[part["space"] == space].set_index(UNIT)
            ref = rows[(rows["method"] == method) & (rows["space"] == baseline)
                       & (rows["joint_steps"] == (0 if baseline == "standard" else steps))].set_index(UNIT)
            a = a.loc[a.index.intersection(ref.index)]  # units both have (the ablation ran for seed 0 only)
            ref = ref.loc[a.index]
            gain = a["psnr"] - ref["psnr"]
            ceiling = a["ae_ceiling_psnr"] - ref["ae_ceiling_psnr"]
            row = {"method": method, "joint_steps": steps, "comparison": f"{space} − {baseline}", "n": len(a)}
            for name, values in (("psnr_gain", gain), ("ceiling_gain", ceiling), ("gap_change", gain - ceiling)):
                ci = mean_ci(values.to_numpy())
                row.update({name: ci.mean, f"{name}_lo": ci.lo, f"{name}_hi": ci.hi})
            out.append(row)
    return pd.DataFrame(out)


def markdown(t: pd.DataFrame) -> str:
    def cell(r: pd.Series, name: str) -> str:
        return f"{r[name]:+.2f} [{r[name + '_lo']:+.2f}, {r[name + '_hi']:+.2f}]"

    lines = ["| method | joint steps | comparison | n | latent NeRF PSNR difference (dB) | AE ceiling difference (dB) "
             "| gap change (dB) |", "|---|---|---|---|---|---|---|"]
    for _, r in t.iterrows():
        lines.append(f"| {r['method']} | {r['joint_steps']} | {r['comparison']} | {r['n']} | {cell(r, 'psnr_gain')} "
                     f"| {cell(r, 'ceiling_gain')} | {cell(r, 'gap_change')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collect", type=Path, help="run folder to read the fits from (writes per_fit.csv)")
    args = parser.parse_args()
    if args.collect:
        collect(args.collect).to_csv(PER_FIT, index=False, float_format="%.6g")
    rows = pd.read_csv(PER_FIT)
    text = ("Generated by `python study.py` from per_fit.csv: means and 95% t-intervals over the units "
            "(test scene x AE seed) both sides of a comparison have.\n\n" + markdown(table(rows)))
    SUMMARY.write_text(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
