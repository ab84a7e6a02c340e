"""What produced an output: package versions, platform and seed, for every metadata file."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from typing import Any

TRACKED_PACKAGES = (
    "igae", "torch", "numpy", "trimesh", "embreex", "pillow", "scikit-image", "diffusers",
    "nerfacc", "lpips", "stlpips-pytorch",
)


def package_versions(packages: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    """Installed version of each package, ``None`` where it is not installed."""
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine() -> dict[str, Any]:
    """The CPU model and core count (times are quoted with the machine that measured them)."""
    model = platform.processor() or None
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return {"cpu_model": model, "cpu_count": os.cpu_count()}


def provenance(seed: int | None = None, **extra: Any) -> dict[str, Any]:
    """A metadata block: seed, python, platform, machine and package versions, plus ``extra`` keys."""
    block: dict[str, Any] = {
        "seed": seed,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": machine(),
        "versions": package_versions(),
    }
    block.update(extra)
    return block
