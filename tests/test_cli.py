"""The igae command: --help for every subcommand, clear errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from igae.cli import build_parser, main


def _subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_every_stage_has_a_subcommand() -> None:
    assert {"fetch-assets", "select-objects", "render-scenes", "build-photos"} <= set(_subcommands())


@pytest.mark.parametrize("name", _subcommands())
def test_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([name, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"igae {name}" in out and len(out) > 200


def test_bad_params_exit_2_without_traceback(tmp_path: Path, repo_root: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text((repo_root / "params.yaml").read_text().replace("resolution: 64", "resolution: -5"))
    proc = subprocess.run(
        [sys.executable, "-m", "igae", "check-params", "--params", str(params)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "scenes.resolution" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_objects_file_is_clear(tmp_path: Path, repo_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([
        "render-scenes", "--params", str(repo_root / "params.yaml"), "--preset", "smoke",
        "--objects", str(tmp_path / "objects.json"), "--set", "train", "--out", str(tmp_path / "out"),
    ])
    assert code == 2
    err = capsys.readouterr().err
    assert "objects.json" in err and "select-objects" in err
    assert not (tmp_path / "out").exists()


def test_check_params_names_a_misspelt_nerf_hyper_parameter(tmp_path: Path, repo_root: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    params = tmp_path / "params.yaml"
    params.write_text((repo_root / "params.yaml").read_text().replace("hyper: {levels: 8", "hyper: {levelz: 8"))
    assert main(["check-params", "--params", str(params)]) == 2
    err = capsys.readouterr().err
    assert "nerf.method_params.ngp.hyper" in err and "levelz" in err and "levels" in err


def test_every_subcommand_is_in_the_help_and_the_readme(repo_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    names = set(sub.choices)
    assert {"fit-nerf", "render"} <= names
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out
    readme = (repo_root / "README.md").read_text()
    for name in names:
        assert f"    {name}" in help_text, name
        assert f"igae {name}" in readme, name
