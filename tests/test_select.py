"""Choice of training and held-out objects."""

from __future__ import annotations

import pytest

from igae.assets.base import ObjectRecord
from igae.assets.select import select_objects
from igae.errors import InputError


def _records(n: int, categories: list[str]) -> list[ObjectRecord]:
    return [
        ObjectRecord(
            object_id=f"t/obj{i:03d}", name=f"obj{i}", category=categories[i % len(categories)],
            source="test", licence="CC0", creator="me", attribution="obj by me", origin="test",
        )
        for i in range(n)
    ]


def test_heldout_categories_are_disjoint_from_training() -> None:
    recs = _records(60, ["Kitchen", "Bedroom", "Vehicles"])
    out = select_objects(recs, 20, 5, ["Vehicles"], seed=3)
    assert len(out["train"]) == 20 and len(out["heldout"]) == 5
    assert {r.category for r in out["heldout"]} == {"Vehicles"}
    assert "Vehicles" not in {r.category for r in out["train"]}


def test_without_categories_objects_are_disjoint_and_seeded() -> None:
    recs = _records(30, ["A", "B"])
    a = select_objects(recs, 10, 4, [], seed=1)
    b = select_objects(list(reversed(recs)), 10, 4, [], seed=1)
    c = select_objects(recs, 10, 4, [], seed=2)
    ids = lambda sel: [r.object_id for r in sel["train"] + sel["heldout"]]  # noqa: E731
    assert ids(a) == ids(b), "input order must not matter"
    assert ids(a) != ids(c)
    assert not {r.object_id for r in a["train"]} & {r.object_id for r in a["heldout"]}


def test_too_few_objects_names_the_key() -> None:
    with pytest.raises(InputError, match="scenes.train.count is 50"):
        select_objects(_records(20, ["A"]), 50, 2, [], seed=0)
    with pytest.raises(InputError, match="assets.heldout_categories"):
        select_objects(_records(20, ["A"]), 5, 2, ["Nope"], seed=0)
