"""``sdk.Trees``: boosted trees evaluated feature by feature give what walking each tree gives."""

from __future__ import annotations

import numpy as np
import pytest

from stylus_ext import sdk

pytestmark = pytest.mark.a1111  # bit operations and frexp on NumPy 1.26 and 2.3 alike


def random_tree(rng: np.random.Generator, depth: int, n_features: int, thresholds: np.ndarray) -> dict:
    """A random tree in flat arrays (preorder), unbalanced: a branch may stop early."""
    tree: dict[str, list] = {k: [] for k in ("feature", "threshold", "left", "right", "leaf", "value")}

    def add(level: int) -> int:
        i = len(tree["leaf"])
        for key, default in (("feature", 0), ("threshold", 0.0), ("left", 0), ("right", 0), ("leaf", True),
                             ("value", float(rng.normal()))):
            tree[key].append(default)
        if level < depth and (level == 0 or rng.random() < 0.8):
            tree["leaf"][i], tree["value"][i] = False, 0.0
            tree["feature"][i] = int(rng.integers(n_features))
            tree["threshold"][i] = float(rng.choice(thresholds))
            tree["left"][i] = add(level + 1)
            tree["right"][i] = add(level + 1)
        return i

    add(0)
    return tree


def walk(trees: list[dict], x: np.ndarray) -> np.ndarray:
    """The reference: each row down each tree, node by node."""
    out = np.zeros(len(x))
    for r, row in enumerate(x):
        for t in trees:
            node = 0
            while not t["leaf"][node]:
                node = t["left"][node] if row[t["feature"][node]] <= t["threshold"][node] else t["right"][node]
            out[r] += t["value"][node]
    return out


@pytest.mark.parametrize("depth", [1, 3, 6])
def test_the_sum_matches_walking_every_tree(depth):
    rng = np.random.default_rng(depth)
    grid = np.round(np.linspace(-2, 2, 9), 2)  # shared thresholds: many ties between nodes and values
    trees = [random_tree(rng, depth, 5, grid) for _ in range(40)]
    x = rng.choice(np.r_[grid, rng.normal(size=20)], size=(200, 5))  # values on thresholds go left
    names = [f"f{i}" for i in range(5)]
    model = sdk.Trees.from_dicts(trees, names, names, baseline=0.5)
    assert np.allclose(model.decision(x), 0.5 + walk(trees, x))


def test_columns_are_found_by_name_and_a_stump_is_its_leaf():
    tree = {"feature": [1, 0, 0], "threshold": [0.0, 0, 0], "left": [1, 0, 0], "right": [2, 0, 0],
            "leaf": [False, True, True], "value": [0.0, -1.0, 2.0]}
    stump = {"feature": [0], "threshold": [0.0], "left": [0], "right": [0], "leaf": [True], "value": [0.25]}
    model = sdk.Trees.from_dicts([tree, stump], ["a", "b"], ["b", "c", "a"])  # b is column 0 here
    assert model.decision(np.array([[-1.0, 9.0, 9.0], [1.0, -9.0, -9.0]])).tolist() == [-0.75, 2.25]
    assert sdk.Trees.from_dicts([stump], ["a"], ["a"]).decision(np.zeros((3, 1))).tolist() == [0.25] * 3
    assert model.decision(np.zeros((0, 3))).shape == (0,)


def test_a_split_on_a_missing_feature_or_a_huge_tree_is_refused():
    tree = {"feature": [0, 0, 0], "threshold": [0.5, 0, 0], "left": [1, 0, 0], "right": [2, 0, 0],
            "leaf": [False, True, True], "value": [0, 1, 2]}
    with pytest.raises(ValueError, match="'gone'"):
        sdk.Trees.from_dicts([tree], ["gone"], ["a"])
    rng = np.random.default_rng(0)
    big = random_tree(rng, 8, 2, np.arange(5.0))
    while sum(big["leaf"]) <= 64:
        big = random_tree(rng, 8, 2, np.arange(5.0))
    with pytest.raises(ValueError, match="64 leaves"):
        sdk.Trees.from_dicts([big], ["a", "b"], ["a", "b"])
