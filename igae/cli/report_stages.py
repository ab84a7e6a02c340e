"""The report stage: ``igae report`` (tables, figures, HTML page)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from igae.cli.common import log
from igae.config import load_params


def cmd_report(args: argparse.Namespace) -> None:
    from igae.report.build import ReportInputs, build_report

    params = load_params(args.params, preset=args.preset)
    results = Path(args.results)
    inputs = ReportInputs(fits=results / "nerf", ae_eval=results / "ae_eval", autoencoders=results / "autoencoders",
                          heldout=Path(args.heldout), tables=results / "tables", figures=results / "figures",
                          report=results / "report")
    page = build_report(inputs, params.model_dump(mode="json"))
    log(f"wrote {inputs.tables}/, {inputs.figures}/ and {page}")


def register(sub: argparse._SubParsersAction, add_params_args: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``report`` to the ``igae`` parser."""
    help_ = ("Build the benchmark tables (CSV, Markdown, LaTeX), the figures (PNG, PDF) and the HTML report "
             "from the fits and AE evaluations under --results.")
    p = sub.add_parser("report", help=help_, description=help_)
    add_params_args(p)
    p.add_argument("--results", default="results", help="results folder: reads nerf/, ae_eval/, autoencoders/; "
                   "writes tables/, figures/, report/index.html (default: %(default)s)")
    p.add_argument("--heldout", default="data/scenes/heldout", help="held-out scene set, for its attributions")
    p.set_defaults(handler=cmd_report)
