"""Choose which objects become training scenes and which become held-out scenes."""

from __future__ import annotations

import random
from collections import Counter

from igae.assets.base import ObjectRecord
from igae.errors import InputError


def select_objects(
    records: list[ObjectRecord],
    train_count: int,
    heldout_count: int,
    heldout_categories: list[str],
    seed: int,
) -> dict[str, list[ObjectRecord]]:
    """Split objects into disjoint ``train`` and ``heldout`` sets.

    With ``heldout_categories``, held-out objects come only from those categories and
    training objects never do, so the NeRF benchmark runs on object kinds the
    autoencoders never saw. Without, the two sets are disjoint objects of any category.

    Args:
        records: candidate objects (a source's ``list_objects()``), any order.
        train_count, heldout_count: scenes wanted in each set.
        heldout_categories: categories reserved for held-out scenes (may be empty).
        seed: seed of the draw.

    Returns:
        ``{"train": [...], "heldout": [...]}``, each in draw order.

    Raises:
        InputError: too few objects, or a held-out category the source does not have.
    """
    pool = sorted(records, key=lambda r: r.object_id)
    rng = random.Random(seed)
    if heldout_categories:
        known = Counter(r.category for r in pool)
        unknown = [c for c in heldout_categories if c not in known]
        if unknown:
            raise InputError(
                f"assets.heldout_categories: {unknown} not among the source's categories "
                f"{sorted(known)}"
            )
        held_pool = [r for r in pool if r.category in heldout_categories]
        train_pool = [r for r in pool if r.category not in heldout_categories]
    else:
        shuffled = pool[:]
        rng.shuffle(shuffled)
        held_pool, train_pool = shuffled[:heldout_count], shuffled[heldout_count:]
    for name, want, have in (("heldout", heldout_count, held_pool), ("train", train_count, train_pool)):
        if len(have) < want:
            raise InputError(
                f"scenes.{name}.count is {want} but only {len(have)} objects are available for that set "
                f"(assets.source / assets.heldout_categories decide the pool)"
            )
    return {"train": rng.sample(train_pool, train_count), "heldout": rng.sample(held_pool, heldout_count)}
