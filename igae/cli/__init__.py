"""The ``igae`` command: one subcommand per pipeline stage.

Each stage subcommand reads ``--params`` (validated, preset applied), calls one library
function, and writes its outputs atomically. Bad input ends with ``error: ...`` on
stderr and exit code 2, never with a bare traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from igae import __version__
from igae.errors import IgaeError

Handler = Callable[[argparse.Namespace], None]


def _add_params_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: %(default)s)")
    parser.add_argument(
        "--preset", default=None,
        help="preset from presets/<name>.yaml applied over the params file (default: the file's 'preset' key)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (subcommands registered by each stage module)."""
    from igae.cli import ae_stages, data_stages, import_ae, nerf_stages, render_fit, report_stages

    parser = argparse.ArgumentParser(
        prog="igae",
        description="IG-AE pipeline: datasets, autoencoders, latent NeRFs, evaluation. "
        "Each subcommand is one stage; Snakemake and DVC call them with the same arguments.",
    )
    parser.add_argument("--version", action="version", version=f"igae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    data_stages.register(sub, _add_params_args)
    ae_stages.register(sub, _add_params_args)
    import_ae.register(sub, _add_params_args)
    nerf_stages.register(sub, _add_params_args)
    render_fit.register(sub, _add_params_args)
    report_stages.register(sub, _add_params_args)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``igae`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        handler(args)
    except IgaeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
