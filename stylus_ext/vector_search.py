"""Queries over the vector index of :mod:`stylus_ext.index`: exact (NumPy over the memory-mapped
rows), projected (:mod:`stylus_ext.projected`), Annoy (re-scored exactly) or faiss IVF
(:mod:`stylus_ext.ivf`), with allowed-id filters."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stylus_ext import ivf, projected

log = logging.getLogger("stylus")

ANNOY_SEARCH_K_PER_RESULT = 200
ANNOY_MIN_SEARCH_K = 20_000


class IndexMismatchError(RuntimeError):
    """The index was built with another encoder (or dimension) than the one asked for."""


def _load_faiss(path: Path) -> Any:
    if ivf.faiss_module() is None:
        log.info("faiss is not installed; searching the index exactly")
        return None
    return ivf.load(path)


class VectorIndex:
    """Nearest-neighbour search over adapter vectors (cosine similarity).

    ``query(vec, k)`` returns ``(ids, sims)``: adapter ids and cosine similarities, best first.
    ``kind`` is ``"exact"``, ``"projected"``, ``"faiss"`` or ``"annoy"``; all share the memory-mapped
    vector matrix, which gives every returned similarity exactly.
    """

    def __init__(self, ids: np.ndarray, vectors: np.ndarray, *, encoder: str, annoy_index: Any = None,
                 faiss_index: Any = None, faiss_path: Path | None = None, nprobe: int = 0, version: int = 0,
                 paths: Sequence[Path] = (), projection: projected.Projection | None = None,
                 examples: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        if vectors.ndim != 2 or len(ids) != vectors.shape[0]:
            raise ValueError(f"index: {len(ids)} ids for vectors of shape {vectors.shape}")
        self.ids = np.asarray(ids, dtype=np.int64)
        self.vectors = vectors
        self.encoder = encoder
        self.dimension = int(vectors.shape[1])
        self.version = version
        self.paths = tuple(paths)
        self._annoy = annoy_index
        self._projection = projection
        self._faiss = faiss_index
        self._faiss_path = faiss_path if faiss_index is None else None  # loaded on demand (_ensure_faiss)
        self._queries = 0
        self.nprobe = int(nprobe or ivf.FAISS_NPROBE)
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None
        # example-prompt vectors (float32 rows) and each adapter row's range of them
        self._examples, self._example_starts = examples if examples is not None else (None, None)

    def _ensure_faiss(self) -> Any:
        """The faiss index, read (memory-mapped) on first need; None when faiss is missing (exact)."""
        if self._faiss is None and self._faiss_path is not None:
            path, self._faiss_path = self._faiss_path, None
            self._faiss = _load_faiss(path)
        return self._faiss

    @property
    def kind(self) -> str:
        if self._ensure_faiss() is not None:
            return "faiss"
        if self._projection is not None:
            return "projected"
        return "annoy" if self._annoy is not None else "exact"

    @property
    def count(self) -> int:
        return int(self.ids.shape[0])

    def __len__(self) -> int:
        return self.count

    def row_of(self, adapter_id: int) -> int | None:
        row = int(self.rows_for([adapter_id])[0])
        return row if row >= 0 else None

    def check_encoder(self, identity: str, dimension: int | None = None) -> None:
        """Raise :class:`IndexMismatchError` unless the index was built with this encoder."""
        if identity != self.encoder or (dimension and dimension != self.dimension):
            raise IndexMismatchError(
                f"the index was built with encoder {self.encoder!r} ({self.dimension}-d), not {identity!r}"
                + (f" ({dimension}-d)" if dimension else "")
                + "; vectors of different encoders cannot be mixed — re-index with `stylus index --encoder ...`"
            )

    def _prepare(self, vec: Any) -> np.ndarray:
        q = np.asarray(vec, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dimension:
            raise IndexMismatchError(f"query vector has {q.shape[0]} values, the index {self.dimension}")
        norm = float(np.linalg.norm(q))
        return q / norm if norm > 0 else q

    def query(self, vec: Any, k: int, *, allowed: Any = None, search_k: int | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` adapter ids and cosine similarities; ``allowed`` (adapter ids, or a row mask from
        :meth:`mask_for`) restricts them."""
        q = self._prepare(vec)
        k = max(0, min(int(k), self.count))
        if k == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        mask = self.mask_for(allowed) if allowed is not None else None
        self._queries += 1
        # A process's first query is answered exactly from the memory-mapped rows: a one-shot CLI
        # answer never pays for importing faiss (~0.25 s); later queries use it.
        if (self._queries > 1 or self._faiss is not None) and self._ensure_faiss() is not None:
            return ivf.search(self, q, k, mask, search_k)
        if self._projection is not None:
            return self._projected(q, k, mask)
        if self._annoy is None:
            return self._exact(q, k, mask)
        return self._approximate(q, k, mask, search_k)

    def mask_for(self, allowed: Any) -> np.ndarray:
        """Row mask for ``allowed`` adapter ids (a row mask passes through unchanged)."""
        if isinstance(allowed, np.ndarray) and allowed.dtype == bool and allowed.shape == self.ids.shape:
            return allowed
        return np.isin(self.ids, np.fromiter((int(i) for i in allowed), dtype=np.int64))

    def _exact(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        sims = self.vectors @ q
        if mask is not None:
            sims = np.where(mask, sims, -np.inf)
            k = min(k, int(mask.sum()))
            if k == 0:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        top = np.argpartition(-sims, k - 1)[:k] if k < sims.shape[0] else np.arange(sims.shape[0])
        # Stable, deterministic order: by similarity, ties by adapter id.
        order = np.lexsort((self.ids[top], -sims[top]))
        top = top[order]
        return self.ids[top].copy(), sims[top].astype(np.float32)

    def _projected(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if mask is not None and int(mask.sum()) <= max(projected.EXACT_ALLOWED, self.count // 20):
            return self._exact(q, k, mask)  # few rows left: exact over them
        # by similarity, ties by adapter id (as exact search)
        rows, sims = projected.search_rows(self.vectors, self._projection, q, k, mask, tie=self.ids)
        return self.ids[rows], sims.astype(np.float32)

    def _approximate(self, q: np.ndarray, k: int, mask: np.ndarray | None, search_k: int | None
                     ) -> tuple[np.ndarray, np.ndarray]:
        want = k
        while True:
            budget = search_k or max(ANNOY_MIN_SEARCH_K, ANNOY_SEARCH_K_PER_RESULT * want)
            rows = self._annoy.get_nns_by_vector(q.tolist(), want, search_k=budget)
            rows = np.asarray(rows, dtype=np.int64)
            if mask is not None:
                rows = rows[mask[rows]]
            if len(rows) >= k or want >= self.count:
                break
            want = min(self.count, want * 4)
        rows = rows[:k]
        # Re-score exactly from the stored vectors (Annoy's distances are approximate).
        sims = self.vectors[rows] @ q if len(rows) else np.zeros(0, dtype=np.float32)
        order = np.lexsort((self.ids[rows], -sims))
        return self.ids[rows[order]].copy(), sims[order].astype(np.float32)

    @property
    def has_examples(self) -> bool:
        return self._examples is not None and bool(len(self._examples))

    def rows_for(self, ids: Any) -> np.ndarray:
        """Index row of each adapter id (-1 for ids not in the index), vectorised."""
        ids = np.asarray(ids, dtype=np.int64)
        if self._sorted is None:
            order = np.argsort(self.ids, kind="stable")
            self._sorted = (self.ids[order], order)
        keys, order = self._sorted
        if not len(keys):
            return np.full(len(ids), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(keys, ids), len(keys) - 1)
        return np.where(keys[pos] == ids, order[pos], -1)

    def example_similarity(self, vec: Any, ids: Any) -> np.ndarray:
        """Per adapter id: the best cosine of ``vec`` to one of its example prompts' vectors (0 for an
        adapter without any, or not in the index, and for every id of an index built without them)."""
        out = np.zeros(len(ids), dtype=np.float64)
        if not self.has_examples or not len(ids):
            return out
        q = self._prepare(vec)
        rows = self.rows_for(ids)
        known = rows >= 0
        starts = np.where(known, self._example_starts[np.maximum(rows, 0)], 0)
        counts = np.where(known, self._example_starts[np.maximum(rows, 0) + 1] - starts, 0)
        have = counts > 0
        if not have.any():
            return out
        sizes = counts[have]
        first = np.cumsum(sizes) - sizes  # each adapter's segment of the gathered rows
        flat = np.repeat(starts[have] - first, sizes) + np.arange(int(sizes.sum()))
        sims = self._examples[flat] @ q
        out[have] = np.maximum.reduceat(sims, first)
        return out

    def vectors_for(self, ids: Sequence[int]) -> np.ndarray:
        """Stored vectors of ``ids`` (rows in that order); zeros for ids not in the index."""
        out = np.zeros((len(ids), self.dimension), dtype=np.float32)
        rows = self.rows_for(ids)
        known = rows >= 0
        out[known] = self.vectors[rows[known]]
        return out

    def close(self) -> None:
        if self._annoy is not None:
            self._annoy.unload()
            self._annoy = None
        maps = [getattr(self.vectors, "_mmap", None), getattr(self._examples, "_mmap", None)]
        self._examples = self._example_starts = None
        if self._projection is not None:
            maps.append(getattr(self._projection.rows, "_mmap", None))
        self._faiss = self._faiss_path = self._projection = None
        self.vectors = np.zeros((0, self.dimension), dtype=np.float32)
        self.ids = np.zeros(0, dtype=np.int64)
        for mm in maps:  # unmapped now, so Windows lets the next build delete the files
            if mm is not None:
                with contextlib.suppress(Exception):
                    mm.close()

    def __enter__(self) -> VectorIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
