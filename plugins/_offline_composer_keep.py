"""The offline composer's keep score: a fitted model over its candidate features, read from JSON.

Two kinds (``benchmarks/fit_composer.py`` writes either; a helper module of ``offline_composer.py``):

- ``trees``: gradient-boosted trees (scikit-learn's ``HistGradientBoostingClassifier`` at fit time,
  evaluated by ``sdk.Trees``, so nothing beyond NumPy is needed at run time): per tree, flat node
  arrays (feature, threshold, left, right, leaf value); a row goes left where ``x[feature] <= threshold``.
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

from stylus_ext import sdk


@dataclass(frozen=True)
class KeepModel:
    """A fitted keep score and its default bar (``keep``: the probability an adapter needs)."""

    keep: float
    coef: np.ndarray | None = None  # logistic
    intercept: float = 0.0
    trees: sdk.Trees | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any], features: Sequence[str]) -> KeepModel:
        keep = float(data.get("keep", 0.5))
        if data.get("kind", "logistic") == "logistic":
            weights = dict(zip(data["features"], data["coef"], strict=True))
            return cls(keep, np.array([weights.get(f, 0.0) for f in features]), float(data["intercept"]))
        try:
            trees = sdk.Trees.from_dicts(data["trees"], data["features"], features)
        except ValueError as exc:
            raise ValueError(f"the keep model splits on a feature this composer does not compute ({exc})") from None
        return cls(keep, intercept=float(data["baseline"]), trees=trees)

    @classmethod
    def load(cls, path: Path, features: Sequence[str]) -> KeepModel:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")), features)

    def probability(self, features: np.ndarray) -> np.ndarray:
        """The probability per row of ``features`` (one column per feature, in the composer's order)."""
        x = np.asarray(features, dtype=np.float64)
        if self.trees is None:
            z = x @ self.coef + self.intercept if len(x) else np.zeros(0)
        else:
            z = self.intercept + self.trees.decision(x)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
