"""Install requirements.lock (then igae, editable) into a virtual environment, with uv where it can be had.

``make setup`` runs this with the venv's own python. pip unpacks the lock's ~6 GB (the CUDA torch
build and its NVIDIA libraries) one wheel at a time: about 3.4 min on the 2-core CPU machine; uv
installs the same pinned versions in parallel in about 25 s. uv's version is the lock's ``uv==`` pin
(the lock lists every package of the environment, uv included).

uv does not read pip's configuration, so the indexes, find-links and constraints that pip is
configured with (``pip config list``: files and ``PIP_*`` variables) are handed to uv as flags;
a machine whose pip reads a local mirror installs from the same mirror with uv. When uv cannot be
installed or its install fails, pip installs the lock as before (a message says so), so a machine
without uv on its index still gets the environment.

Usage: ``python tools/install_env.py --lock requirements.lock --project .``
"""

from __future__ import annotations

import argparse
import ast
import shlex
import subprocess
import sys
from pathlib import Path

# pip configuration keys that choose where packages come from, and uv's flag for each.
# A list-valued pip key holds whitespace-separated values.
PIP_TO_UV = {
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
}
# ``pip config list`` names a file's value by its section ("global", "install") and an environment
# variable's by ":env:"; a PIP_* variable overrides the files, as in pip.
ENV_SCOPE = ":env:"


def pip_sources(config_list: str) -> dict[str, list[str]]:
    """The package sources in ``pip config list`` output, by pip key (a ``PIP_*`` variable wins).

    Args:
        config_list: lines like ``global.extra-index-url='file:///a file:///b'`` or
            ``:env:.find-links='/opt/wheels'``.
    Returns:
        pip key -> values (``extra-index-url``, ``find-links`` and ``constraint`` may hold several).
    """
    found: dict[str, tuple[int, list[str]]] = {}
    for line in config_list.splitlines():
        name, sep, raw = line.partition("=")
        scope, _, key = name.strip().rpartition(".")
        if not sep or key not in PIP_TO_UV:
            continue
        rank = 1 if scope == ENV_SCOPE else 0
        try:
            value = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip().strip("'\"")
        values = str(value).split()
        if key not in found or rank >= found[key][0]:
            found[key] = (rank, values)
    return {key: values for key, (_, values) in found.items()}


def uv_source_flags(sources: dict[str, list[str]]) -> list[str]:
    """uv flags for pip's package sources (see :func:`pip_sources`).

    With more than one index, uv by default takes a package only from the first index that has it;
    pip considers every index, so ``--index-strategy unsafe-best-match`` keeps pip's choice.
    """
    flags: list[str] = []
    for key, flag in PIP_TO_UV.items():
        for value in sources.get(key, []):
            flags += [flag, value]
    if sources.get("extra-index-url"):
        flags += ["--index-strategy", "unsafe-best-match"]
    return flags


def uv_pin(lock: Path) -> str | None:
    """The lock's ``uv==X`` line, or None when the lock pins no uv."""
    for line in lock.read_text().splitlines():
        if line.strip().lower().startswith("uv=="):
            return line.strip()
    return None


def run(cmd: list[str]) -> int:
    print("+", shlex.join(cmd), flush=True)
    return subprocess.call(cmd)


def install_with_uv(python: str, lock: Path, project: Path) -> bool:
    """Install the lock and the project with uv; False (nothing raised) when uv cannot do it."""
    pin = uv_pin(lock)
    if pin is None:
        print(f"install_env: {lock} pins no uv (a line 'uv==X'); installing with pip", flush=True)
        return False
    if run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-cache-dir", pin]):
        print(f"install_env: could not install {pin}; installing with pip", flush=True)
        return False
    config = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    # --compile-bytecode: pip writes .pyc files at install and uv does not; where PYTHONDONTWRITEBYTECODE is
    # set (it is on the CPU machines here) Python then compiles torch & co. at every start: 12.6 s instead of
    # 4.9 s to import torch and diffusers, and a test suite 1.8x slower. Compiling takes ~13 s of the install.
    uv = [str(Path(python).parent / "uv"), "pip", "install", "--quiet", "--no-cache", "--compile-bytecode",
          "--python", python, *uv_source_flags(pip_sources(config))]
    if run([*uv, "-r", str(lock)]) or run([*uv, "--no-deps", "--no-build-isolation", "-e", str(project)]):
        print("install_env: uv could not install the lock; installing with pip", flush=True)
        return False
    return True


def install_with_pip(python: str, lock: Path, project: Path) -> int:
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-cache-dir"]
    return run([*pip, "-r", str(lock)]) or run([*pip, "--no-deps", "--no-build-isolation", "-e", str(project)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock", type=Path, required=True, help="requirements.lock")
    parser.add_argument("--project", type=Path, required=True, help="the folder of pyproject.toml")
    parser.add_argument("--installer", choices=("uv", "pip"), default="uv",
                        help="uv (falls back to pip when it cannot be had) or pip only")
    args = parser.parse_args(argv)
    if not args.lock.is_file():
        print(f"install_env: {args.lock}: no such file", file=sys.stderr)
        return 2
    python = sys.executable
    if args.installer == "uv" and install_with_uv(python, args.lock, args.project):
        return 0
    return install_with_pip(python, args.lock, args.project)


if __name__ == "__main__":
    sys.exit(main())
