"""The offline composer's keep score: a fitted model over its candidate features, read from JSON.

Two kinds (``benchmarks/fit_composer.py`` writes either; a helper module of ``offline_composer.py``):

- ``trees``: gradient-boosted trees (scikit-learn's ``HistGradientBoostingClassifier`` at fit time,
  evaluated here in NumPy, so nothing beyond NumPy is needed at run time): per tree, flat node arrays
  (feature, threshold, left, right, leaf value); a row goes left where ``x[feature] <= threshold``.
- ``logistic``: one weight per feature and an intercept.

Both give a probability; features the file does not name count as absent (weight 0 / never split on).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class KeepModel:
    """A fitted keep score and its default bar (``keep``: the probability an adapter needs)."""

    keep: float
    coef: np.ndarray | None = None  # logistic
    intercept: float = 0.0
    trees: dict[str, np.ndarray] | None = None  # stacked node arrays, one row per tree
    depth: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any], features: Sequence[str]) -> KeepModel:
        keep = float(data.get("keep", 0.5))
        index = {f: i for i, f in enumerate(features)}
        if data.get("kind", "logistic") == "logistic":
            weights = dict(zip(data["features"], data["coef"], strict=True))
            return cls(keep, np.array([weights.get(f, 0.0) for f in features]), float(data["intercept"]))
        remap = np.array([index.get(f, -1) for f in data["features"]])
        trees = data["trees"]
        width = max(len(t["feature"]) for t in trees)

        def stack(key: str, fill: float, dtype: Any) -> np.ndarray:
            return np.array([list(t[key]) + [fill] * (width - len(t[key])) for t in trees], dtype=dtype)

        feature = stack("feature", 0, np.int64)
        leaf = stack("leaf", 1, bool)
        if np.any(remap[feature[~leaf]] < 0):
            raise ValueError("the keep model splits on a feature this composer does not compute")
        nodes = {"feature": np.where(leaf, 0, remap[feature]), "threshold": stack("threshold", 0.0, np.float64),
                 "left": stack("left", 0, np.int64), "right": stack("right", 0, np.int64), "leaf": leaf,
                 "value": stack("value", 0.0, np.float64)}
        return cls(keep, intercept=float(data["baseline"]), trees=nodes, depth=int(data["depth"]))

    @classmethod
    def load(cls, path: Path, features: Sequence[str]) -> KeepModel:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")), features)

    def probability(self, features: np.ndarray) -> np.ndarray:
        """The probability per row of ``features`` (one column per feature, in the composer's order)."""
        x = np.asarray(features, dtype=np.float64)
        if self.trees is None:
            z = x @ self.coef + self.intercept if len(x) else np.zeros(0)
        else:
            z = self.intercept + self._tree_sum(x)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))

    def _tree_sum(self, x: np.ndarray) -> np.ndarray:
        t = self.trees
        assert t is not None
        n_trees = t["feature"].shape[0]
        tree = np.arange(n_trees)[None, :]
        node = np.zeros((len(x), n_trees), dtype=np.int64)
        rows = np.arange(len(x))[:, None]
        for _ in range(self.depth + 1):  # every path ends in a leaf within depth + 1 steps
            go_left = x[rows, t["feature"][tree, node]] <= t["threshold"][tree, node]
            step = np.where(go_left, t["left"][tree, node], t["right"][tree, node])
            node = np.where(t["leaf"][tree, node], node, step)
        return t["value"][tree, node].sum(axis=1)
