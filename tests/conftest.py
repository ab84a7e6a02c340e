"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """Where Debian packages are unpacked (``make test`` fetches them first)."""
    return Path(os.environ.get("IGAE_CACHE_DIR", REPO / "data" / "cache"))
