"""User-facing errors: the CLI turns any ``IgaeError`` into a clear message and exit code 2."""

from __future__ import annotations

from pathlib import Path


class IgaeError(Exception):
    """A failure the user must act on; its message says what happened and what to do."""


class InputError(IgaeError):
    """Bad input from the user (a file, a folder, a params key); the message says what and where.

    The CLI prints ``error: <message>`` without a traceback and exits with code 2.
    """

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


class OfflineError(InputError):
    """A remote resource named in params could not be reached (no network, or no such package)."""


class NumericalError(IgaeError):
    """A NaN/inf loss or gradient during training; the message names the step and the term."""


class BusyError(IgaeError):
    """Another live process is already working in the same folder (two trainers on one work folder)."""
