"""Seeds derived from the params seed, so every random choice is reproducible and independent."""

from __future__ import annotations

import hashlib


def derive_seed(base: int, *keys: object) -> int:
    """A 31-bit seed from ``base`` and any labels (e.g. ``derive_seed(0, "train", 3)``).

    Stable across processes and Python versions (no ``hash()``), and distinct labels give
    unrelated streams, so adding a scene never changes the cameras of another.
    """
    text = "/".join([str(base), *map(str, keys)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF
