"""tools/install_env.py: pip's package sources handed to uv, and pip when uv cannot install."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("install_env", REPO / "tools" / "install_env.py")
install_env = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(install_env)

CONFIG = """global.cert='/etc/ssl/certs/ca-certificates.crt'
global.constraint='/etc/xdg/pip/constraints.txt'
global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'
global.find-links='/opt/wheels'
global.index-url='https://mirror.example/simple'
:env:.index-url='https://env.example/simple'
:env:.default-timeout='180'
"""


def test_pip_sources_reads_lists_and_lets_an_environment_variable_win() -> None:
    sources = install_env.pip_sources(CONFIG)
    assert sources == {
        "constraint": ["/etc/xdg/pip/constraints.txt"],
        "extra-index-url": ["file:///opt/pypi/simple", "file:///opt/pypi-more/simple"],
        "find-links": ["/opt/wheels"],
        "index-url": ["https://env.example/simple"],  # PIP_INDEX_URL overrides the file
    }
    # the same keys in the other order: the environment still wins
    reordered = "\n".join(reversed(CONFIG.splitlines()))
    assert install_env.pip_sources(reordered)["index-url"] == ["https://env.example/simple"]


def test_uv_flags_keep_pips_sources_and_its_any_index_choice() -> None:
    flags = install_env.uv_source_flags(install_env.pip_sources(CONFIG))
    pairs = list(zip(flags[::2], flags[1::2]))
    assert ("--index-url", "https://env.example/simple") in pairs
    assert ("--extra-index-url", "file:///opt/pypi/simple") in pairs
    assert ("--extra-index-url", "file:///opt/pypi-more/simple") in pairs
    assert ("--find-links", "/opt/wheels") in pairs
    assert ("--constraint", "/etc/xdg/pip/constraints.txt") in pairs
    assert ("--index-strategy", "unsafe-best-match") in pairs
    assert install_env.uv_source_flags({}) == []  # no configuration: uv's defaults, as pip's


def test_the_lock_pins_uv_and_the_makefile_installs_through_the_script() -> None:
    assert install_env.uv_pin(REPO / "requirements.lock").startswith("uv==")
    assert "tools/install_env.py" in (REPO / "Makefile").read_text()


@pytest.mark.parametrize("failing", ["uv-install", "uv-lock", "no-pin"])
def test_pip_installs_the_lock_when_uv_cannot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              failing: str) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("six==1.17.0\n" + ("" if failing == "no-pin" else "uv==0.13.9\n"))
    calls: list[list[str]] = []

    def fake_run(cmd: list[str]) -> int:
        calls.append(cmd)
        if failing == "uv-install" and cmd[-1].startswith("uv=="):
            return 1
        if failing == "uv-lock" and cmd[0].endswith("uv"):
            return 2
        return 0

    monkeypatch.setattr(install_env, "run", fake_run)
    assert install_env.main(["--lock", str(lock), "--project", str(tmp_path)]) == 0
    pip_lock = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "--no-cache-dir", "-r", str(lock)]
    assert pip_lock in calls  # pip did the install
    assert calls[-1][-2:] == ["-e", str(tmp_path)]  # and then the project, editable


def test_a_missing_lock_is_named_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert install_env.main(["--lock", str(tmp_path / "nope.lock"), "--project", str(tmp_path)]) == 2
    assert "nope.lock: no such file" in capsys.readouterr().err


def test_uv_installs_when_it_can(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("uv==0.13.9\n")
    calls: list[list[str]] = []
    monkeypatch.setattr(install_env, "run", lambda cmd: calls.append(cmd) or 0)
    assert install_env.main(["--lock", str(lock), "--project", str(tmp_path)]) == 0
    assert calls[0][-1] == "uv==0.13.9"
    assert [c[:3] for c in calls[1:]] == [[str(Path(sys.executable).parent / "uv"), "pip", "install"]] * 2
    assert all("--compile-bytecode" in c for c in calls[1:])  # as pip does: no compiling at every start
    assert not any(c[1:3] == ["-m", "pip"] and "-r" in c for c in calls)  # pip never installed the lock
