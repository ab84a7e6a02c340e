"""Choose which objects become training, test (held-out) and validation scenes."""

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
    validation_count: int = 0,
) -> dict[str, list[ObjectRecord]]:
    """Split objects into disjoint ``train``, ``heldout`` (test) and ``validation`` sets.

    With ``heldout_categories``, test and validation objects come only from those categories
    and training objects never do, so the NeRF benchmark runs on object kinds the autoencoders
    never saw. Without, the three sets are disjoint objects of any category.

    The draws run in a fixed order, each from what the earlier ones left: training objects,
    then test objects, then validation objects. So the training and test objects are those of
    the same counts and seed whatever ``validation_count`` is (and as before validation sets existed).

    Args:
        records: candidate objects (a source's ``list_objects()``), any order.
        train_count, heldout_count, validation_count: scenes wanted in each set.
        heldout_categories: categories reserved for test and validation scenes (may be empty).
        seed: seed of the draw.

    Returns:
        ``{"train": [...], "heldout": [...], "validation": [...]}``, each in draw order.

    Raises:
        InputError: too few objects (naming the counts and the categories), or a held-out category
            the source does not have.
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
        source = f"assets.heldout_categories {heldout_categories}"
    else:
        shuffled = pool[:]
        rng.shuffle(shuffled)
        held_pool, train_pool = shuffled[:heldout_count], shuffled[heldout_count:]
        source = "assets.source (no assets.heldout_categories: any category)"
    if len(train_pool) < train_count:
        raise InputError(
            f"scenes.train.count is {train_count} but only {len(train_pool)} objects are available for that set "
            f"(assets.source / assets.heldout_categories decide the pool)"
        )
    train = rng.sample(train_pool, train_count)
    if heldout_categories:
        spare = len(held_pool)
    else:  # validation objects come from the objects neither trained on nor tested
        spare = len(held_pool) + len(train_pool) - train_count
    if spare < heldout_count + validation_count:
        raise InputError(
            f"scenes.heldout.count ({heldout_count}) + scenes.validation.count ({validation_count}) need "
            f"{heldout_count + validation_count} distinct objects but {source} offers only {spare}"
            + ("" if heldout_categories else f" beside the {train_count} of scenes.train.count")
            + ": lower the counts or add held-out categories"
        )
    heldout = rng.sample(held_pool, heldout_count)
    taken = {r.object_id for r in (heldout if heldout_categories else train)}
    rest = [r for r in (held_pool if heldout_categories else train_pool) if r.object_id not in taken]
    validation = rng.sample(rest, validation_count)
    return {"train": train, "heldout": heldout, "validation": validation}
