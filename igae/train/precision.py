"""Arithmetic of training steps (``training.precision``): fp32, TF32, or autocast to bf16 / fp16.

- ``fp32`` (default): float32 everywhere, and TF32 **off** for CUDA matmuls and cuDNN
  convolutions. torch leaves cuDNN's TF32 on by default, which rounds convolution inputs to
  10 mantissa bits: GPU results would then differ from CPU ones by far more than the last bits.
  With it off they differ only by the order of float operations.
- ``tf32``: float32 storage, TF32 matmuls/convolutions (Ampere and newer GPUs; faster).
- ``bf16`` / ``fp16``: ``torch.autocast`` around each step's forward pass (losses stay float32
  where autocast says so); ``fp16`` adds a gradient scaler (overflowing steps are skipped by
  the scaler, which then lowers its scale). TF32 on.

On CPU every setting runs plain fp32 (the same code path as before this option existed, so CPU
results stay bit-identical); the precision actually used is recorded with each result.
"""

from __future__ import annotations

import contextlib
from typing import ContextManager

import torch

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def configure_precision(name: str, device: torch.device) -> str:
    """Set the process-wide TF32 switches for ``name`` on ``device`` and return the precision in use.

    Returns:
        ``name`` on CUDA, ``"fp32"`` elsewhere.
    """
    if name not in PRECISIONS:
        raise ValueError(f"training.precision must be one of {PRECISIONS}, got {name!r}")
    if device.type != "cuda":
        return "fp32"
    set_tf32(name != "fp32")
    return name


def set_tf32(enabled: bool) -> None:
    """TF32 on or off for CUDA matmuls and cuDNN convolutions/RNNs (torch's ``fp32_precision``
    switches where they exist; mixing them with the legacy ``allow_tf32`` flags is an error)."""
    b = torch.backends
    if hasattr(b.cuda.matmul, "fp32_precision"):
        mode = "tf32" if enabled else "ieee"
        b.cuda.matmul.fp32_precision = mode
        b.cudnn.conv.fp32_precision = mode
        b.cudnn.rnn.fp32_precision = mode
    else:
        b.cuda.matmul.allow_tf32 = enabled
        b.cudnn.allow_tf32 = enabled


def tf32_enabled() -> dict[str, bool]:
    """The current TF32 switches (for records and tests)."""
    b = torch.backends
    if hasattr(b.cuda.matmul, "fp32_precision"):
        return {"matmul": b.cuda.matmul.fp32_precision == "tf32", "cudnn_conv": b.cudnn.conv.fp32_precision == "tf32"}
    return {"matmul": bool(b.cuda.matmul.allow_tf32), "cudnn_conv": bool(b.cudnn.allow_tf32)}


def autocast(precision: str, device: torch.device) -> ContextManager[object]:
    """The context a training step's forward pass runs in (a no-op for fp32/tf32 and on CPU)."""
    if device.type != "cuda" or precision not in _AUTOCAST:
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=_AUTOCAST[precision])


def grad_scaler(precision: str, device: torch.device) -> "torch.amp.GradScaler | None":
    """A gradient scaler for fp16 on CUDA, else None."""
    if device.type != "cuda" or precision != "fp16":
        return None
    return torch.amp.GradScaler("cuda")
