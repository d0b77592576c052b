"""Batch planning (pure): every batch must hold ONE adapter set, seeds move with their images."""

from __future__ import annotations

import random

import pytest

from stylus_ext.webui.batching import plan_batches

pytestmark = pytest.mark.a1111


def check(keys: list[object], batch_size: int) -> None:
    plan = plan_batches(keys, batch_size)
    assert sorted(plan.order) == list(range(len(keys))), "a permutation: no image lost or repeated"
    assert plan.batch_size * plan.n_iter == len(keys) and 1 <= plan.batch_size <= batch_size
    for batch in plan.batches():
        assert len({keys[i] for i in batch}) == 1, f"mixed batch {batch}"
    reordered = plan.apply(keys)
    groups = [k for i, k in enumerate(reordered) if i == 0 or reordered[i - 1] != k]
    assert len(groups) == len(set(keys)), "each set is generated in one contiguous run (fewest switches)"


def test_alternating_sets_are_grouped_without_shrinking_batches() -> None:
    keys = ["a", "b"] * 4
    plan = plan_batches(keys, 4)
    check(keys, 4)
    assert plan.batch_size == 4 and plan.changed
    assert plan.apply(list(range(100, 108))) == [100, 102, 104, 106, 101, 103, 105, 107]
    assert plan.message.startswith("8 images in 2 batches: 2 different adapter sets")
    assert "order changed: 6 image(s) moved" in plan.message, "the user is told the order changed"
    assert "order changed" not in plan_batches(["a", "a", "b", "b"], 2).message


def test_uneven_groups_lower_the_batch_size() -> None:
    keys = ["a", "a", "a", "b", "c", "c", "a", "a"]
    plan = plan_batches(keys, 4)
    check(keys, 4)
    assert plan.batch_size == 1 and "batch size 4 → 1" in plan.message


def test_even_groups_of_two() -> None:
    keys = ["a", "b", "a", "b", "c", "c", "a", "a"]  # a×4, b×2, c×2 → batches of 2
    plan = plan_batches(keys, 4)
    check(keys, 4)
    assert plan.batch_size == 2


def test_already_homogeneous_batches_keep_the_users_order() -> None:
    keys = ["a"] * 4 + ["b"] * 4
    plan = plan_batches(keys, 4)
    assert not plan.changed and plan.order == tuple(range(8)) and plan.batch_size == 4
    assert not plan_batches(["x"] * 6, 3).message


def test_groups_follow_the_most_shared_adapters() -> None:
    a = (("castle", "0.6"),)
    ab = (("castle", "0.6"), ("water", "0.5"))
    c = (("ghibli", "0.6"),)
    bc = (("ghibli", "0.6"), ("water", "0.5"))
    keys = [a, c, ab, bc]
    plan = plan_batches(keys, 2)
    seq = plan.apply(keys)
    assert seq[0] == a and seq[1] == ab, "after 'castle' comes the set that keeps castle loaded"
    assert seq.index(bc) < seq.index(c) or seq[2] == bc


def test_random_cases_always_give_one_set_per_batch() -> None:
    rng = random.Random(5)
    for _ in range(300):
        bs = rng.randint(1, 8)
        n_iter = rng.randint(1, 4)
        keys = [rng.choice("abcd") for _ in range(bs * n_iter)]
        check(keys, bs)


def test_length_not_a_multiple_of_batch_size() -> None:
    keys = ["a", "b", "a", "b", "a"]
    check(keys, 2)
    assert plan_batches([], 4).order == ()
