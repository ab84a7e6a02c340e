"""Decoder cost on this machine: which CPU settings make ``Autoencoder.decode`` faster.

Run: ``.venv/bin/python benchmarks/bench_decoder.py [--resolutions 64,128] [--archs f4,f8]
[--threads 1,2] [--repeats 7] [--out results/benchmarks/decoder]`` (``--refresh``: rewrite the
findings of an existing ``decoder.md`` from its ``decoder.csv``, timing nothing)

Writes ``decoder.csv`` (one row per cell and variant) and ``decoder.md`` (the printed table, which
``make readme`` puts in the README's speed section) to ``--out``.

For each AE architecture (``f4``: params.yaml's ``autoencoder.architecture``; ``f8``: the paper's
f8 / 16-channel AE, block widths 128-256-512-512, 2 layers per block), image resolution and
thread count, it times the decode of random latents (random-init weights: the cost does not depend
on the weights) under these variants, all computing the same images:

- ``no_grad``: what the pipeline did before (``torch.no_grad``, NCHW, one frame per call);
- ``inference_mode``: ``torch.inference_mode`` instead of ``no_grad``;
- ``channels_last``: weights and latents in ``torch.channels_last`` memory format;
- ``fused_qkv``: diffusers' ``fuse_qkv_projections`` (one matmul for the attention's q, k, v);
- ``compile``: ``torch.compile`` (inductor, CPU) of the decoder, after its warm-up compile;
- ``batch8``: 8 frames per decoder call (ms per frame = call time / 8), ``no_grad``, NCHW;
- ``bf16``: ``torch.autocast("cpu", torch.bfloat16)`` (for information: it changes the decoded
  pixels far beyond float rounding, see ``max_abs_diff``, so fits do not use it).

Each line ends with the decode's floating-point work per frame (``FlopCounterMode``) and the
rate reached at batch 1 and batch 8: batching can only save what the batch-1 call loses to
per-call overhead and under-filled kernels, which that pair of rates shows.

Timing: the variants run interleaved (round r runs every variant once, in an order that rotates
with r), and each cell is the median over rounds, so a load change on a shared machine hits all
variants alike. ``max_abs_diff`` is the largest difference from the ``no_grad`` images (a variant
that changes the decoded pixels beyond float rounding would change the fits' test metrics).
The table states the thread count, machine and load average; numbers taken on a busy machine are
indicative.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Iterator

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402

from igae.autoencoder.model import AEArchitecture, Autoencoder  # noqa: E402
from igae.config import load_params  # noqa: E402
from igae.io import write_text_atomic  # noqa: E402

PAPER_F8 = AEArchitecture(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=16,
                          norm_num_groups=32)
"""The paper's f8 / 16-channel AE shape (``ostris/vae-kl-f8-d16``-like; SD-VAE widths)."""

VARIANTS = ("no_grad", "inference_mode", "channels_last", "fused_qkv", "compile", "batch8", "bf16")


def architectures(params_path: Path, preset: str | None) -> dict[str, AEArchitecture]:
    """``{"f4": params.yaml's AE, "f8": the paper's}``."""
    arch = load_params(params_path, preset=preset).autoencoder.architecture
    return {"f4": AEArchitecture(**arch.model_dump()), "f8": PAPER_F8}


def machine() -> str:
    """A one-line description of the CPU this runs on."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} logical CPUs, torch {torch.__version__}"


@contextlib.contextmanager
def _bf16() -> Iterator[None]:
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        yield


def _variant(name: str, ae: Autoencoder, c: int, h: int, w: int) -> tuple[Callable[[], torch.Tensor], int]:
    """A zero-argument decode call for ``name`` and the frames it decodes per call."""
    frames = 8 if name == "batch8" else 1
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(frames, c, h, w, generator=gen) * 30.0  # raw latents of the order the AE sees
    model = ae
    ctx: Callable[[], contextlib.AbstractContextManager] = torch.no_grad
    if name == "inference_mode":
        ctx = torch.inference_mode
    elif name == "channels_last":
        model = copy.deepcopy(ae).to(memory_format=torch.channels_last)
        z = z.contiguous(memory_format=torch.channels_last)
    elif name == "fused_qkv":
        model = copy.deepcopy(ae)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.vae.fuse_qkv_projections()
    elif name == "bf16":
        ctx = _bf16
    elif name == "compile":
        model = copy.deepcopy(ae)
        model.vae.decoder = torch.compile(model.vae.decoder)

    def call() -> torch.Tensor:
        with ctx():
            return model.decode(z).float()

    return call, frames


def bench_cell(ae: Autoencoder, res: int, variants: list[str], repeats: int) -> dict[str, dict[str, float]]:
    """Median ms per frame and max |difference| from ``no_grad`` for each variant at ``res``."""
    f, c = ae.downsampling, ae.latent_channels
    h = w = res // f
    calls = {}
    for name in variants:
        try:
            calls[name] = _variant(name, ae, c, h, w)
            calls[name][0]()  # warm-up (and the compile, for ``compile``)
        except Exception as err:  # noqa: BLE001 - a variant that does not run here is reported, not fatal
            print(f"  {name}: does not run here ({type(err).__name__}: {str(err).splitlines()[0][:120]})",
                  file=sys.stderr)
    names = list(calls)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for k in range(len(names)):  # rotate the order each round
            name = names[(k + r) % len(names)]
            fn, frames = calls[name]
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) / frames)
    reference = calls["no_grad"][0]()[:1] if "no_grad" in calls else None
    gflop = frame_gflop(ae, c, h, w)
    out = {}
    for name in names:
        diff = float("nan") if reference is None else float((calls[name][0]()[:1] - reference).abs().max())
        ms = 1e3 * statistics.median(times[name])
        out[name] = {"ms_per_frame": ms, "max_abs_diff": diff, "gflop_per_frame": gflop, "gflop_per_s": gflop / ms * 1e3}
    return out


def frame_gflop(ae: Autoencoder, c: int, h: int, w: int) -> float:
    """Floating-point work of one frame's decode (GFLOP; convolutions and matmuls, as torch counts them)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        ae.decode(torch.zeros(1, c, h, w))
    return counter.get_total_flops() / 1e9


def batch_findings(frame: pd.DataFrame) -> list[str]:
    """Sentences on 8-frame decode batches, generated from the rows (``decoder.csv``'s columns).

    Per arch, thread count and resolution: the batch's time per frame against one frame per call,
    and how close the batch's rate comes to the fastest rate any float32 variant reached for that
    arch and thread count (variants that change the pixels beyond float rounding, bf16, are left
    out): a batch saves only what one frame per call leaves of the cores' throughput unused.
    """
    exact = frame[frame["max_abs_diff"] <= 1e-4]
    out = []
    for (arch, threads), group in exact.groupby(["arch", "threads"], sort=False):
        cell = {(int(r.resolution), r.variant): r for r in group.itertuples()}
        fastest = group.loc[group["gflop_per_s"].idxmax()]
        for res in sorted({res for res, _ in cell}):
            if (res, "no_grad") not in cell or (res, "batch8") not in cell:
                continue
            one, batch = cell[res, "no_grad"], cell[res, "batch8"]
            out.append(
                f"{arch}, {threads} thread(s), {res}x{res}: {one.ms_per_frame:.1f} ms per frame one at a time, "
                f"{batch.ms_per_frame:.1f} ms in 8-frame batches ({one.ms_per_frame / batch.ms_per_frame:.2f}x). The "
                f"batch runs at {batch.gflop_per_s:.0f} GFLOP/s, {batch.gflop_per_s / fastest.gflop_per_s:.0%} of the "
                f"fastest float32 rate measured for this arch and thread count ({fastest.gflop_per_s:.0f} GFLOP/s, "
                f"{fastest.variant} at {int(fastest.resolution)}x{int(fastest.resolution)}); a 2x gain would need "
                f"{2 * one.gflop_per_s:.0f} GFLOP/s.")
    return out


def _refresh(out: Path) -> int:
    """Rewrite ``decoder.md``'s findings from ``decoder.csv`` (no timing): the lines after the table."""
    md, csv_path = out / "decoder.md", out / "decoder.csv"
    lines = md.read_text().splitlines()
    end = max(i for i, line in enumerate(lines) if line.startswith("|")) + 1
    kept = [line for line in lines[end:] if line.startswith(("Max |difference|", "Load average"))]
    findings = batch_findings(pd.read_csv(csv_path))
    write_text_atomic(md, "\n".join(lines[:end] + [""] + kept + [""] + [f"- {f}" for f in findings]) + "\n")
    print("\n".join(findings))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=str(REPO / "params.yaml"))
    parser.add_argument("--preset", default=None)
    parser.add_argument("--resolutions", default="64,128", help="image sides (pixels)")
    parser.add_argument("--archs", default="f4,f8")
    parser.add_argument("--threads", default="1,2", help="torch CPU thread counts to try")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds per cell (median)")
    parser.add_argument("--csv", default=None, help="also write the rows to this CSV")
    parser.add_argument("--out", default=str(REPO / "results" / "benchmarks" / "decoder"),
                        help="folder for decoder.csv and decoder.md (the table `make readme` puts in the README)")
    parser.add_argument("--refresh", action="store_true",
                        help="time nothing: rewrite decoder.md's findings from the decoder.csv in --out")
    args = parser.parse_args(argv)
    if args.refresh:
        return _refresh(Path(args.out))
    archs = architectures(Path(args.params), args.preset)
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS)) + sorted(set(args.archs.split(",")) - set(archs))
    if unknown:
        parser.error(f"unknown variant/arch {unknown}; known: {VARIANTS}, {sorted(archs)}")
    load_start = os.getloadavg()[0]
    title = (f"Decoder ms/frame (median of {args.repeats} interleaved rounds), random-init weights, {machine()}, "
             f"{time.strftime('%Y-%m-%d %H:%M')}")
    print(title, flush=True)
    header = ["arch", "res", "threads", *variants, "GFLOP/frame", "GFLOP/s (no_grad / batch8)"]
    print(" ".join(f"{h:>14}" for h in header), flush=True)
    rows, table = [], []
    for arch_name in args.archs.split(","):
        ae = Autoencoder.from_architecture(archs[arch_name], seed=0)
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            for res in (int(r) for r in args.resolutions.split(",")):
                cell = bench_cell(ae, res, variants, args.repeats)
                any_cell = next(iter(cell.values()))
                line = [arch_name, f"{res}x{res}", str(threads),
                        *(f"{cell[v]['ms_per_frame']:.1f}" if v in cell else "-" for v in variants),
                        f"{any_cell['gflop_per_frame']:.2f}",
                        " / ".join(f"{cell[v]['gflop_per_s']:.0f}" if v in cell else "-" for v in ("no_grad", "batch8"))]
                table.append(line)
                print(" ".join(f"{c:>14}" for c in line), flush=True)
                for v, m in cell.items():
                    rows.append({"arch": arch_name, "resolution": res, "threads": threads, "variant": v, **m})
    if not rows:
        return 1
    diffs = "Max |difference| from no_grad's images: " + ", ".join(
        f"{v} {max(r['max_abs_diff'] for r in rows if r['variant'] == v):.1e}" for v in variants
        if any(r["variant"] == v for r in rows)) + "."
    load = f"Load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end" + (
        " (more runnable processes than CPUs: other work shared the machine, so the times are indicative)."
        if max(load_start, os.getloadavg()[0]) > (os.cpu_count() or 1) else ".")
    print(diffs)
    print(load)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    findings = batch_findings(frame)
    print("\n".join(findings))
    md = [title + ".", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
          *("| " + " | ".join(line) + " |" for line in table), "", diffs, load, "", *(f"- {f}" for f in findings)]
    write_text_atomic(out / "decoder.md", "\n".join(md) + "\n")
    for path in [out / "decoder.csv", *([Path(args.csv)] if args.csv else [])]:
        write_text_atomic(path, frame.to_csv(index=False, float_format="%.6g"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
