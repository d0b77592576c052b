"""Masking strategies, per-image seeding and weights."""

from __future__ import annotations

import pytest

from stylus_ext.mask import adapter_weight, concept_options, draw_mask


def test_paper_options_one_all_none():
    assert concept_options(2, "paper") == [(False, False), (True, False), (False, True), (True, True)]
    assert concept_options(1, "paper") == [(False,), (True,)]
    assert concept_options(3, "subsets").__len__() == 8
    assert concept_options(3, "all") == [(True, True, True)]
    assert concept_options(3, "none") == [(False, False, False)]
    with pytest.raises(ValueError, match="unknown mask strategy"):
        concept_options(1, "bogus")


def test_mask_depends_only_on_the_image_seed():
    sizes = [2, 1, 3]
    batch = [draw_mask(sizes, "paper", seed) for seed in range(100, 140)]
    alone = draw_mask(sizes, "paper", 117)
    assert batch[17] == alone
    assert len({tuple(m) for m in batch}) > 5  # diversity across seeds


def test_all_empty_excluded_unless_allowed():
    sizes = [1, 0]
    masks = [draw_mask(sizes, "paper", s) for s in range(200)]
    assert all(any(any(m) for m in mask) for mask in masks)
    allowed = [draw_mask(sizes, "subsets", s, allow_empty=True) for s in range(200)]
    assert any(not any(any(m) for m in mask) for mask in allowed)
    assert draw_mask([0, 0], "paper", 1) == [(), ()]


def test_paper_draws_are_roughly_uniform():
    counts: dict[tuple, int] = {}
    for s in range(3000):
        key = tuple(draw_mask([2], "paper", s)[0])
        counts[key] = counts.get(key, 0) + 1
    assert set(counts) == {(True, False), (False, True), (True, True)}
    assert min(counts.values()) > 800


def test_weights():
    assert adapter_weight(0.8, 0.8, 1) == 0.64
    assert adapter_weight(1.0, 0.8, 2) == 0.4
    assert adapter_weight(None, 1.0, 1) == 0.8
    assert adapter_weight(5.0, 1.0, 1) == 1.5  # clamped high
    assert adapter_weight(0.1, 0.5, 3) == 0.1  # clamped low
    assert adapter_weight(float("nan"), 1.0, 1) == 0.8
