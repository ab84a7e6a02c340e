"""Fetch a Debian package's files without root: ``apt-get download`` then ``dpkg -x``.

Used for the furniture catalogue and the photo packages. Nothing is installed on the
system; the package is unpacked into a cache folder and reused on later calls.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from igae.errors import OfflineError
from igae.io import atomic_dir


def fetch_debian_package(package: str, cache_dir: str | Path) -> Path:
    """Download and unpack a Debian package into ``cache_dir/<package>``; reuse it if present.

    Args:
        package: Debian package name, e.g. ``"sweethome3d-furniture"``.
        cache_dir: folder that holds one unpacked tree per package.

    Returns:
        The unpacked root: files of the package lie under it as under ``/``
        (e.g. ``<root>/usr/share/...``).

    Raises:
        OfflineError: ``apt-get``/``dpkg`` is missing, or the download failed
            (no network, unknown package); the message says which and how to fix it.
    """
    root = Path(cache_dir) / package
    if (root / ".complete").exists():
        return root
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise OfflineError(
                f"cannot fetch Debian package {package!r}: {tool!r} is not on PATH. "
                f"Unpack the package yourself into {root} (with a file .complete beside usr/)."
            )
    with tempfile.TemporaryDirectory(prefix="igae-deb-") as tmp:
        # apt-get download writes into the working directory.
        proc = subprocess.run(
            ["apt-get", "download", package], cwd=tmp, capture_output=True, text=True
        )
        debs = sorted(Path(tmp).glob(f"{package}_*.deb"))
        if proc.returncode != 0 or not debs:
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no .deb produced"]
            raise OfflineError(
                f"could not download Debian package {package!r} with 'apt-get download' "
                f"({detail[0]}). Check the network / apt sources (try 'apt-get update'), "
                f"or unpack it yourself into {root}."
            )
        with atomic_dir(root) as out:
            proc = subprocess.run(["dpkg", "-x", str(debs[0]), str(out)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise OfflineError(f"'dpkg -x' failed on {debs[0].name}: {proc.stderr.strip()}")
            (out / ".complete").write_text(debs[0].name + "\n")
    return root
