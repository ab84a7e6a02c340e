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


def test_validation_objects_are_disjoint_and_leave_the_other_draws_alone() -> None:
    """Validation objects come from the held-out categories, apart from the test and training objects;
    the training and test objects are those drawn without a validation set."""
    recs = _records(60, ["Kitchen", "Bedroom", "Vehicles"])
    ids = lambda sel, name: [r.object_id for r in sel[name]]  # noqa: E731
    for categories in (["Vehicles"], []):
        with_val = select_objects(recs, 20, 5, categories, seed=3, validation_count=4)
        without = select_objects(recs, 20, 5, categories, seed=3)
        assert ids(with_val, "train") == ids(without, "train") and ids(with_val, "heldout") == ids(without, "heldout")
        assert without["validation"] == [] and len(with_val["validation"]) == 4
        val = set(ids(with_val, "validation"))
        assert not val & set(ids(with_val, "heldout")) and not val & set(ids(with_val, "train"))
        if categories:
            assert {r.category for r in with_val["validation"]} == {"Vehicles"}


def test_too_few_held_out_objects_for_test_and_validation_names_both_keys() -> None:
    recs = _records(30, ["A", "Vehicles"])  # 15 Vehicles
    select_objects(recs, 10, 12, ["Vehicles"], seed=0, validation_count=3)  # exactly enough
    with pytest.raises(InputError, match=r"scenes.heldout.count \(12\) \+ scenes.validation.count \(4\) need 16 "
                                         r"distinct objects but assets.heldout_categories \['Vehicles'\] offers only 15"):
        select_objects(recs, 10, 12, ["Vehicles"], seed=0, validation_count=4)
    with pytest.raises(InputError, match="scenes.validation.count"):
        select_objects(_records(20, ["A"]), 10, 5, [], seed=0, validation_count=6)
