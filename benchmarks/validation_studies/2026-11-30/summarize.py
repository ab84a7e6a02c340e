"""Print the joint-phase study's table from per_fit.csv (validation scenes only): per IG-AE variant, the mean
latent-NeRF PSNR difference to the standard AE and to its fine-tuning ablation over the scene x method pairs
both have, and the variant's own reconstruction PSNR (AE ceiling). Run: python summarize.py"""

import csv
from pathlib import Path
from statistics import mean

rows = list(csv.DictReader((Path(__file__).parent / "per_fit.csv").open()))
fits = {(r["autoencoder"], r["method"], r["scene"]): r for r in rows}
aes = sorted({r["autoencoder"] for r in rows})


def differences(ae: str, ref: str) -> list[float]:
    return [float(r["psnr"]) - float(fits[(ref, m, s)]["psnr"])
            for (a, m, s), r in fits.items() if a == ae and (ref, m, s) in fits]


print("| IG-AE variant | overrides | n | IG-AE - standard | IG-AE - fine-tuned | own recon. (dB) |")
print("|---|---|---|---|---|---|")
for ae in (a for a in aes if a.startswith("igae_")):
    tag = ae[len("igae_"):]
    # lr_ae variants have their own ablation (same lr_ae); otherwise the reference ablation
    ablation = next((f"ft_{t}" for t in (tag, tag.split("t4e4")[0]) if f"ft_{t}" in aes), "ft_5e-5")
    vs_std, vs_ft = differences(ae, "standard"), differences(ae, ablation)
    ceiling = mean(float(r["ae_ceiling_psnr"]) for (a, _, _), r in fits.items() if a == ae)
    print(f"| {ae} | {fits[next(k for k in fits if k[0] == ae)]['overrides']} | {len(vs_std)} | {mean(vs_std):+.2f} "
          f"| {mean(vs_ft):+.2f} (vs {ablation}) | {ceiling:.2f} |")
