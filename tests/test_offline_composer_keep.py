"""The offline composer's keep model read from JSON: logistic weights, or boosted trees in NumPy."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from stylus_ext import sdk

PLUGIN = Path(__file__).resolve().parent.parent / "plugins" / "offline_composer.py"


@pytest.fixture(scope="module")
def keep_model():
    return sdk.sibling_module(PLUGIN, "_offline_composer_keep").KeepModel


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def test_trees_follow_each_rows_path(keep_model):
    # tree 1: a <= 0.5 → 1.0, else (b <= 2 → -1.0, else 0.5); tree 2: a single leaf 0.25
    tree1 = {"feature": [0, 0, 1, 0, 0], "threshold": [0.5, 0, 2.0, 0, 0], "left": [1, 0, 3, 0, 0],
             "right": [2, 0, 4, 0, 0], "leaf": [False, True, False, True, True], "value": [0, 1.0, 0, -1.0, 0.5]}
    tree2 = {"feature": [0], "threshold": [0], "left": [0], "right": [0], "leaf": [True], "value": [0.25]}
    data = {"kind": "trees", "features": ["a", "b"], "baseline": -0.1, "depth": 2, "trees": [tree1, tree2],
            "keep": 0.3}
    model = keep_model.from_dict(data, ["b", "unused", "a"])  # the composer's order differs from the file's
    rows = np.array([[9.0, 0, 0.5], [1.0, 0, 0.7], [3.0, 0, 0.7]])  # columns: b, unused, a
    expected = [sigmoid(-0.1 + 1.0 + 0.25), sigmoid(-0.1 - 1.0 + 0.25), sigmoid(-0.1 + 0.5 + 0.25)]
    assert np.allclose(model.probability(rows), expected) and model.keep == 0.3


def test_logistic_weights_by_name_and_unknown_splits_refused(keep_model):
    data = {"features": ["a", "b"], "coef": [2.0, -1.0], "intercept": 0.5, "keep": 0.4}
    model = keep_model.from_dict(data, ["b", "a", "c"])
    assert np.allclose(model.probability(np.array([[1.0, 1.0, 7.0]])), [sigmoid(0.5 + 2.0 - 1.0)])
    tree = {"feature": [0, 0, 0], "threshold": [0.5, 0, 0], "left": [1, 0, 0], "right": [2, 0, 0],
            "leaf": [False, True, True], "value": [0, 1, 2]}
    with pytest.raises(ValueError, match="does not compute"):
        keep_model.from_dict({"kind": "trees", "features": ["gone"], "baseline": 0, "depth": 1, "trees": [tree]},
                             ["a"])
