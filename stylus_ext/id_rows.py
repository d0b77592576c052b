"""Vectorised adapter-id lookups for the retriever: id → row of an index, one version per model.

A search touches about a thousand pool candidates; looking each one up in a Python dict (and
walking the ranked list per Civitai model) cost more than the scoring itself at 100K adapters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


class IdRows:
    """Row of each adapter id in ``ids`` (an index's row order); -1 for ids it does not hold.

    Where an id occurs twice its last row is returned, as a dict built row by row would keep.
    """

    def __init__(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        self.order = np.argsort(ids, kind="stable")
        self.sorted = ids[self.order]

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        if not len(self.sorted):
            return np.full(len(ids), -1, dtype=np.int64)
        pos = np.searchsorted(self.sorted, ids, side="right") - 1
        safe = np.maximum(pos, 0)
        return np.where((pos >= 0) & (self.sorted[safe] == ids), self.order[safe], -1)


class Versions:
    """Civitai model and installed flag of each adapter, from rows ``(id, civitai_model_id, installed)``."""

    def __init__(self, rows: Sequence[tuple[Any, Any, Any]]) -> None:
        codes: dict[Any, int] = {}
        n = len(rows)
        self.rows = IdRows(np.fromiter((int(r[0]) for r in rows), dtype=np.int64, count=n))
        self.models = np.fromiter((-1 if r[1] is None else codes.setdefault(r[1], len(codes)) for r in rows),
                                  dtype=np.int64, count=n)
        self.installed = np.fromiter((bool(r[2]) for r in rows), dtype=bool, count=n)

    def one_each(self, ranked: np.ndarray) -> np.ndarray:
        """``ranked`` (adapter ids, best first) with one version per Civitai model: the best-ranked
        installed one, else the best-ranked; adapters of no (known) model all stay."""
        if not len(self.models) or not len(ranked):
            return ranked
        rows = self.rows(ranked)
        known = rows >= 0
        model = np.where(known, self.models[rows], -1)
        installed = known & self.installed[rows]
        versions = np.flatnonzero(model >= 0)
        if not len(versions):
            return ranked
        # per model: installed first, then by rank; the first of each model wins
        s = versions[np.lexsort((versions, ~installed[versions], model[versions]))]
        first = np.ones(len(s), dtype=bool)
        first[1:] = model[s][1:] != model[s][:-1]
        keep = model < 0
        keep[s[first]] = True
        return ranked[keep]


class FilterTable:
    """The filter columns of every adapter as arrays, from rows ``(id, base_model, installed, banned,
    pinned, name_problem, readable)``. Adapters share a handful of combinations of those values, so a
    filter is decided once per combination (:meth:`passing`), not once per adapter."""

    FIELDS = ("base_model", "installed", "banned", "name_problem", "readable")

    def __init__(self, rows: Sequence[tuple[Any, ...]]) -> None:
        combos: dict[tuple[Any, ...], int] = {}
        n = len(rows)
        self.ids = np.fromiter((int(r[0]) for r in rows), dtype=np.int64, count=n)
        self.pinned = np.fromiter((bool(r[4]) for r in rows), dtype=bool, count=n)
        self.combo = np.fromiter((combos.setdefault((r[1] or "unknown", bool(r[2]), bool(r[3]), r[5] or "",
                                                     bool(r[6])), len(combos)) for r in rows),
                                 dtype=np.int64, count=n)
        self.combos = [dict(zip(self.FIELDS, c, strict=True)) for c in combos]  # code order
        self.rows = IdRows(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def per_combination(self, fn: Callable[[dict[str, Any]], Any], dtype: Any) -> np.ndarray:
        """``fn`` of each combination (a dict of :data:`FIELDS`), indexed by combination code."""
        return np.array([fn(c) for c in self.combos], dtype=dtype)

    def passing(self, test: Callable[[dict[str, Any]], bool]) -> np.ndarray:
        """Row mask of the adapters whose combination passes ``test``."""
        return self.per_combination(test, bool)[self.combo] if len(self.combos) else np.zeros(0, dtype=bool)
