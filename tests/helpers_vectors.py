"""Clustered test vectors and recall@k against exact search, shared by the vector index tests."""

from __future__ import annotations

import numpy as np


def clustered(n: int = 6000, dim: int = 48, *, seed: int = 0, clusters: int = 60, spread: float = 0.8,
              query_spread: float = 0.8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ids from 10, unit rows, 30 queries)``: rows around ``clusters`` random centres."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, dim))
    data = centers[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, dim))
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    queries = centers[rng.integers(0, clusters, 30)] + query_spread * rng.standard_normal((30, dim))
    return np.arange(10, 10 + n), data.astype(np.float32), queries.astype(np.float32)


def recall(index, exact, queries, k: int = 150, allowed=None) -> float:
    """Mean share of ``exact``'s top ``k`` that ``index`` returns too."""
    got = [set(index.query(q, k, allowed=allowed)[0].tolist()) for q in queries]
    want = [set(exact.query(q, k, allowed=allowed)[0].tolist()) for q in queries]
    return float(np.mean([len(g & w) / len(w) for g, w in zip(got, want, strict=True)]))
