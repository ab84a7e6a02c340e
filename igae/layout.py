"""Where the pipeline's autoencoders and fits lie: one AE run per (autoencoder, AE seed).

``results/autoencoders/<ae>_s<k>``, ``results/ae_eval/<ae>_s<k>`` and the latent fits
``results/nerf/<ae>_s<k>/<method>/<scene>`` hold the runs of AE seed ``k`` (``ae_seeds`` in
params); the RGB fits, which no AE touches, lie in ``results/nerf/rgb/<method>/<scene>``. The
stage table (``workflow/stages.py``) builds its paths with :func:`ae_run_name`, the report reads
them back with :func:`ae_runs` and :func:`fit_dir`.
"""

from __future__ import annotations

import re
from pathlib import Path

from igae.config import AE_NAMES, RGB_SPACE
from igae.errors import InputError


def ae_run_name(ae: str, seed: int | str) -> str:
    """Folder name of autoencoder ``ae`` trained with AE seed ``seed`` (a placeholder string such as
    ``"{ae_seed}"`` gives a path template)."""
    return f"{ae}_s{seed}"


_RUN = re.compile(rf"^({'|'.join(map(re.escape, AE_NAMES))})_s(\d+)$")


def parse_ae_run_name(name: str) -> tuple[str, int] | None:
    """``(ae, seed)`` of a folder name made by :func:`ae_run_name`, else None."""
    match = _RUN.match(name)
    return (match.group(1), int(match.group(2))) if match else None


def ae_runs(root: str | Path) -> list[tuple[str, int, Path]]:
    """The AE run folders in ``root`` (e.g. ``results/autoencoders``, ``results/ae_eval``) as
    ``(ae, seed, folder)``, in the order of ``AE_NAMES`` then by seed."""
    runs = []
    for folder in Path(root).iterdir() if Path(root).is_dir() else []:
        parsed = parse_ae_run_name(folder.name) if folder.is_dir() else None
        if parsed:
            runs.append((*parsed, folder))
    return sorted(runs, key=lambda r: (AE_NAMES.index(r[0]), r[1]))


def fit_space_folder(space: str, ae_seed: int | None) -> str:
    """The folder under ``results/nerf`` of a space's fits: ``rgb``, or the AE run's name."""
    if space == RGB_SPACE:
        return RGB_SPACE
    if ae_seed is None:
        raise ValueError(f"fits in latent space {space!r} lie under their AE seed's folder: give the seed")
    return ae_run_name(space, ae_seed)


def first_ae_seed(fits_root: str | Path, space: str) -> int | None:
    """The smallest AE seed with fits of latent space ``space`` under ``fits_root`` (None: none)."""
    seeds = [seed for ae, seed, _ in ae_runs(fits_root) if ae == space]
    return min(seeds) if seeds else None


def fit_dir(fits_root: str | Path, space: str, method: str, scene: str, ae_seed: int | None = None) -> Path:
    """A fit's folder; for a latent space without ``ae_seed``, that of the smallest AE seed present
    (the figures show one AE seed's fits)."""
    if space != RGB_SPACE and ae_seed is None:
        ae_seed = first_ae_seed(fits_root, space)
        if ae_seed is None:
            raise InputError(f"no fits of latent space {space!r} (<space>_s<seed>/ folders)", fits_root)
    return Path(fits_root) / fit_space_folder(space, ae_seed) / method / scene


def has_space(fits_root: str | Path, space: str) -> bool:
    """Whether ``fits_root`` holds fits of ``space`` (any AE seed)."""
    return (Path(fits_root) / RGB_SPACE).is_dir() if space == RGB_SPACE else first_ae_seed(fits_root, space) is not None
