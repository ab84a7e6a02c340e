"""Where a fit's time goes outside training: named laps of wall time, recorded in ``metrics.json``.

A fit spends time besides its training steps: reading the scene and preparing the space
(encoding the training views for latent fits), the PSNR-vs-time curve's test renders during
training, the final test-view evaluation, the render timing, the turntable and writing the
outputs. :class:`Laps` times each part; :meth:`Laps.record` is the ``overhead_seconds`` block
of a fit's ``metrics.json`` (``total`` and its ratio to the training time included), so the
summary and the report can show the overhead per fit.
"""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

import torch


class Laps:
    """Wall seconds of named parts of a fit (CUDA work is synchronised at each lap's ends).

    Usage::

        laps = Laps(device)
        with laps("test_evaluation"):
            evaluation = evaluate_test_views(...)
        laps.add("curve_evaluations", result.eval_seconds)
        metrics["overhead_seconds"] = laps.record(train_seconds)
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.seconds: dict[str, float] = {}

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self._sync()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.add(name, time.perf_counter() - t0)

    def add(self, name: str, seconds: float) -> None:
        """Add ``seconds`` to lap ``name`` (measured elsewhere, e.g. the curve's evaluations)."""
        self.seconds[name] = self.seconds.get(name, 0.0) + float(seconds)

    def record(self, train_seconds: float) -> dict[str, float]:
        """``{part: seconds, ..., "total": sum, "fraction_of_training": total / train_seconds}``."""
        total = sum(self.seconds.values())
        return {**self.seconds, "total": total,
                "fraction_of_training": total / train_seconds if train_seconds > 0 else float("nan")}
