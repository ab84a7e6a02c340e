"""Atomic writes: all or nothing, and files readable like any other (not mkstemp's 0600)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from igae.io import atomic_dir, atomic_path, write_text_atomic


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_files_and_folders_get_the_umask_mode(tmp_path: Path, umask_022) -> None:
    write_text_atomic(tmp_path / "a.txt", "x")
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "f").write_text("y")
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    write_text_atomic(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert (tmp_path / "a.txt").read_text() == "old"
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "out") as tmp:
            (tmp / "f").write_text("half")
            raise RuntimeError("killed mid-write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_a_folder_missing_only_its_marker_is_replaceable_when_everything_else_is_owned(tmp_path: Path) -> None:
    """Snakemake deletes a job's declared output (the marker) before rerunning it and leaves the
    rest; such a folder is still the writer's. Anything else still stops the writer."""
    from igae.errors import InputError
    from igae.io import check_replaceable

    out = tmp_path / "budget"
    (out / "fits").mkdir(parents=True)
    (out / "budget.csv").write_text("x\n")
    check_replaceable(out, "budget.json", owned=["budget.csv", "fits", "budget.png"])
    with pytest.raises(InputError, match="not written by igae"):  # without an owned list the marker is required
        check_replaceable(out, "budget.json")
    (out / "notes.txt").write_text("mine\n")
    with pytest.raises(InputError, match="not written by igae"):
        check_replaceable(out, "budget.json", owned=["budget.csv", "fits", "budget.png"])
    (out / "budget.json").write_text("{}\n")
    with pytest.raises(InputError, match="notes.txt"):
        check_replaceable(out, "budget.json", owned=["budget.csv", "fits", "budget.png"])
