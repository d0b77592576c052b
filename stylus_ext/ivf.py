"""The optional faiss IVF index of :mod:`stylus_ext.index` (package ``faiss-cpu``): build, calibrate, search.

See the :mod:`stylus_ext.index` docstring for when it is used. Every result is re-scored exactly
from the float32 rows, so similarities are exact; only which rows are considered is approximate.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("stylus")

FAISS_NPROBE = 8  # first list count tried by calibrate_nprobe (doubled until the target recall)
FAISS_TARGET_RECALL = 0.995
FAISS_CALIBRATION_QUERIES = 64
FAISS_TIMING_QUERIES = 40
FAISS_RERANK_EXTRA = 150  # fetched beyond k (8-bit codes are approximate), then re-scored exactly from fp32
FAISS_EXACT_ALLOWED = 20_000  # a filter leaving at most this many rows is searched exactly
FAISS_TRAIN_PER_LIST = 40


def faiss_module() -> Any:
    """The ``faiss`` module, or None when it is not importable."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def nlist_for(count: int) -> int:
    """IVF lists for ``count`` rows: ~2·√count (100K → 632), so a list holds ~√count/2 rows."""
    return max(1, min(count // 39, int(2 * np.sqrt(count))))


def rerank(matrix: np.ndarray, q: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best of ``rows`` by exact inner product with ``q`` (candidates from a faiss search)."""
    rows = rows[rows >= 0]
    return rows[np.argsort(-(matrix[rows] @ q), kind="stable")[:k]]


def calibrate_nprobe(ivf: Any, matrix: np.ndarray, k: int = 150, target: float = FAISS_TARGET_RECALL) -> int:
    """Smallest list count whose re-ranked results reach ``target`` recall@k against exact search on
    this catalogue's own vectors.

    Probe queries: catalogue rows and normalised sums of two rows (prompts fall between topics);
    the result is then raised by half as a margin for queries unlike the cards.
    """
    faiss = faiss_module()
    n = matrix.shape[0]
    rng = np.random.default_rng(0)
    rows = matrix[rng.integers(0, n, (FAISS_CALIBRATION_QUERIES, 2))]
    queries = np.concatenate([rows[::2, 0], rows[1::2, 0] + rows[1::2, 1]])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    k = min(k, n)
    truth = [set(np.argpartition(-(matrix @ q), k - 1)[:k].tolist()) for q in queries]
    nprobe = FAISS_NPROBE
    while nprobe < ivf.nlist:
        _, found = ivf.search(queries, min(n, k + FAISS_RERANK_EXTRA), params=faiss.SearchParametersIVF(nprobe=nprobe))
        recall = np.mean([len(t & set(rerank(matrix, q, f, k).tolist())) / k
                          for t, q, f in zip(truth, queries, found, strict=True)])
        if recall >= target:
            break
        nprobe *= 2
    return int(min(ivf.nlist, np.ceil(nprobe * 1.5)))


def speedup(ivf: Any, matrix: np.ndarray, nprobe: int, k: int = 150) -> float:
    """Measured exact-scan time / IVF time (search + exact re-rank) for one query at a time."""
    faiss = faiss_module()
    rng = np.random.default_rng(1)
    queries = matrix[rng.integers(0, len(matrix), (FAISS_TIMING_QUERIES, 2))].sum(axis=1)
    params = faiss.SearchParametersIVF(nprobe=nprobe)
    exact, approx = [], []
    for q in queries:  # interleaved, so both see the same background load
        t0 = time.perf_counter()
        np.argpartition(-(matrix @ q), k - 1)[:k]
        t1 = time.perf_counter()
        rerank(matrix, q, ivf.search(q[None, :], k + FAISS_RERANK_EXTRA, params=params)[1][0], k)
        exact.append(t1 - t0)
        approx.append(time.perf_counter() - t1)
    return float(np.median(exact) / max(np.median(approx), 1e-9))


def write(matrix: np.ndarray, path: Path, *, auto: bool, min_speedup: float) -> tuple[int, float]:
    """Build an IVF index with 8-bit codes of ``matrix``: ``(calibrated nprobe, measured speed-up)``.

    It is written to ``path`` unless ``auto`` and it is not ``min_speedup`` times faster
    than the exact scan at the calibrated recall (then exact search is used: it wins there).
    """
    faiss = faiss_module()
    nlist, d = nlist_for(matrix.shape[0]), matrix.shape[1]
    ivf = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(d), d, nlist, faiss.ScalarQuantizer.QT_8bit,
                                        faiss.METRIC_INNER_PRODUCT)
    step = max(1, matrix.shape[0] // (FAISS_TRAIN_PER_LIST * nlist))  # deterministic training sample
    ivf.train(np.ascontiguousarray(matrix[::step]))
    ivf.add(matrix)
    nprobe = calibrate_nprobe(ivf, matrix)
    gain = speedup(ivf, matrix, nprobe)
    if not auto or gain >= min_speedup:
        faiss.write_index(ivf, str(path))
    return nprobe, gain


def search(index: Any, q: np.ndarray, k: int, mask: np.ndarray | None, nprobe: int | None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` of ``index`` (a :class:`~stylus_ext.index.VectorIndex` holding a faiss IVF index):
    scan the ``nprobe`` nearest lists (more when a filter hides rows), re-score exactly."""
    faiss = faiss_module()
    nlist = int(index._faiss.nlist)
    probe = int(nprobe or index.nprobe)
    params = faiss.SearchParametersIVF()
    bits = None
    if mask is not None:
        allowed = int(mask.sum())
        if allowed == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if allowed <= max(FAISS_EXACT_ALLOWED, index.count // 20):  # few rows left: exact over them
            return index._exact(q, k, mask)
        probe = int(np.ceil(probe * index.count / allowed))  # a filter hides rows: look further
        bits = np.packbits(mask, bitorder="little")
        params.sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
    params.nprobe = min(nlist, probe)
    _, found = index._faiss.search(q[None, :], min(index.count, k + FAISS_RERANK_EXTRA), params=params)
    rows = found[0][found[0] >= 0]
    del bits  # the bitmap had to outlive the search
    sims = index.vectors[rows] @ q if len(rows) else np.zeros(0, dtype=np.float32)
    order = np.lexsort((index.ids[rows], -sims))[:k]
    return index.ids[rows[order]].copy(), sims[order].astype(np.float32)


def load(path: Path) -> Any:
    """The faiss IVF file, memory-mapped (a cold start reads only the lists a query probes)."""
    faiss = faiss_module()
    if faiss is None:
        log.info("faiss is not installed; searching the index exactly")
        return None
    try:
        return faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    except RuntimeError as exc:
        log.warning("faiss index unreadable (%s); searching exactly", exc)
        return None
