"""Boosted regression trees evaluated in NumPy, feature by feature (no model library at run time).

A fitted ensemble (scikit-learn's or LightGBM's, exported by the ``benchmarks/fit_*.py`` scripts) is
stored as flat node arrays per tree — ``feature``, ``threshold``, ``left``, ``right``, ``leaf``,
``value`` — where a row goes left when ``x[feature] <= threshold``. Walking every tree node by node
costs one gather over rows × trees per level (55 ms for 900 rows × 300 trees here), so
:class:`Trees` evaluates them the way QuickScorer (Lucchese et al., SIGIR 2015) does:

- the leaves of a tree are numbered left to right, one bit each (at most 64 leaves a tree; the
  narrowest unsigned type that holds them);
- a node whose test fails (``x > threshold``) rules out the leaves of its left subtree, and the
  leaf a row ends in is the leftmost one no failed test rules out;
- for one feature, the failed tests of a value are the nodes with the smallest thresholds, so the
  ruled-out leaves of every tree are one precomputed row per threshold rank: one ``searchsorted``
  and one gather per feature, whatever the depth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_WIDTHS = ((8, np.uint8), (16, np.uint16), (32, np.uint32), (64, np.uint64))  # leaves → mask type


@dataclass(frozen=True)
class Trees:
    """A sum of regression trees over the columns of a feature matrix, plus ``baseline``."""

    columns: tuple[int, ...]  # the feature matrix column each table below reads
    thresholds: tuple[np.ndarray, ...]  # per column: its nodes' thresholds, ascending
    reach: tuple[np.ndarray, ...]  # per column: (thresholds + 1) × trees leaf masks still reachable
    values: np.ndarray  # trees × leaves, leaf values left to right
    baseline: float = 0.0

    @classmethod
    def from_dicts(cls, trees: Sequence[Mapping[str, Sequence[Any]]], features: Sequence[str],
                   columns: Sequence[str], baseline: float = 0.0) -> Trees:
        """Trees whose ``feature`` numbers index ``features``, read against matrices of ``columns``.

        Raises ValueError for a tree that splits on a name ``columns`` lacks or has over 64 leaves.
        """
        where = {name: i for i, name in enumerate(columns)}
        nodes: dict[int, list[tuple[float, int, int]]] = {}  # column → (threshold, tree, mask)
        leaf_values: list[list[float]] = []
        for t, tree in enumerate(trees):
            values, masks = _leaves_and_masks(tree)
            leaf_values.append(values)
            for node, mask in masks.items():
                name = features[int(tree["feature"][node])]
                if name not in where:
                    raise ValueError(f"a tree splits on {name!r}, a feature this model is not given")
                nodes.setdefault(where[name], []).append((float(tree["threshold"][node]), t, mask))
        width = max((len(v) for v in leaf_values), default=1)
        dtype = next(d for bits, d in _WIDTHS if width <= bits)
        values = np.zeros((len(leaf_values), width))
        for t, v in enumerate(leaf_values):
            values[t, :len(v)] = v
        cols, thresholds, reach = [], [], []
        full = int(np.iinfo(dtype).max)
        for col, entries in sorted(nodes.items()):
            entries.sort(key=lambda e: e[0])
            steps = np.full((len(entries) + 1, len(trees)), full, dtype=dtype)
            for j, (_, t, mask) in enumerate(entries, start=1):
                steps[j, t] = mask & full
            cols.append(col)
            thresholds.append(np.array([e[0] for e in entries]))
            reach.append(np.bitwise_and.accumulate(steps, axis=0))
        return cls(tuple(cols), tuple(thresholds), tuple(reach), values, float(baseline))

    def decision(self, x: np.ndarray) -> np.ndarray:
        """The ensemble's raw sum per row of ``x`` (rows × the ``columns`` it was built for)."""
        x = np.asarray(x, dtype=np.float64)
        n, n_trees = len(x), self.values.shape[0]
        if not n or not n_trees:
            return np.full(n, self.baseline)
        if not self.reach:  # no tree splits: every row ends in each tree's only leaf
            return self.baseline + np.full(n, float(self.values[:, 0].sum()))
        dtype = self.reach[0].dtype
        alive = np.full((n, n_trees), np.iinfo(dtype).max, dtype=dtype)
        for col, thr, table in zip(self.columns, self.thresholds, self.reach, strict=True):
            alive &= table[np.searchsorted(thr, x[:, col], side="left")]
        lowest = alive & (~alive + dtype.type(1))  # the leftmost leaf still reachable
        leaf = np.frexp(lowest.astype(np.float64))[1] - 1
        return self.baseline + self.values[np.arange(n_trees)[None, :], leaf].sum(axis=1)


def _leaves_and_masks(tree: Mapping[str, Sequence[Any]]) -> tuple[list[float], dict[int, int]]:
    """Leaf values left to right, and per internal node the bits of the leaves of its left subtree."""
    values: list[float] = []
    masks: dict[int, int] = {}

    def walk(node: int) -> int:  # returns the bits of the leaves under ``node``
        if tree["leaf"][node]:
            if len(values) == 64:
                raise ValueError("a tree has more than 64 leaves")
            values.append(float(tree["value"][node]))
            return 1 << (len(values) - 1)
        left = walk(int(tree["left"][node]))
        right = walk(int(tree["right"][node]))
        masks[node] = ~left & 0xFFFF_FFFF_FFFF_FFFF  # a failed test rules out the left subtree
        return left | right

    walk(0)
    return values, masks
