"""What every stage subcommand shares: its progress log on stderr."""

from __future__ import annotations

import sys


def log(message: str) -> None:
    """One progress line on stderr (stdout stays free for a stage's printed results)."""
    print(f"[igae] {message}", file=sys.stderr, flush=True)
