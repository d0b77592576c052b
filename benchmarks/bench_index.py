"""Vector index benchmark: build time, p50/p99 query latency, recall@150 vs exact, peak memory.

(``(xN)`` beside the faiss row: the exact/IVF speed-up ``build_index`` measured on these vectors; the
automatic choice takes faiss only from ``APPROX_MIN`` rows and a speed-up of ``FAISS_MIN_SPEEDUP``.)

Synthetic catalog of ``--n`` adapters (default 100,000) with clustered 384-d embeddings (generated,
not encoded), written through :func:`stylus_ext.index.build_index` into a real catalog file, then
queried with vectors drawn from the same distribution. Prints one table; no timings are asserted.

    .venv/bin/python benchmarks/bench_index.py            # 100K, exact + faiss IVF + Annoy (auto settings)
    .venv/bin/python benchmarks/bench_index.py --n 20000 --sweep   # also try other Annoy budgets
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from stylus_ext import index as vindex
from stylus_ext.catalog.db import Catalog


def clustered(n: int, dim: int, clusters: int, rng: np.random.Generator, *, spread: float = 1.2
              ) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around ``clusters`` random centres (within-cluster cosine ≈ 1/(1+spread²) ≈ 0.4,
    like sentence embeddings of one topic) and the centres themselves."""
    centers = rng.standard_normal((clusters, dim)).astype(np.float32)
    labels = rng.integers(0, clusters, n)
    data = centers[labels] + spread * rng.standard_normal((n, dim)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True), centers


def measure(index: vindex.VectorIndex, queries: np.ndarray, k: int, truth: list[set[int]] | None,
            search_k: int | None = None) -> tuple[float, float, float]:
    times, recalls = [], []
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        ids, _ = index.query(q, k, search_k=search_k)
        times.append(time.perf_counter() - t0)
        if truth is not None:
            recalls.append(len(truth[i] & set(ids.tolist())) / k)
    ms = np.array(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), float(np.mean(recalls)) if recalls else 1.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--clusters", type=int, default=500)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=150)
    ap.add_argument("--trees", type=int, default=vindex.ANNOY_TREES)
    ap.add_argument("--sweep", action="store_true", help="also try other Annoy tree counts / search_k budgets")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    data, centers = clustered(args.n, args.dim, args.clusters, rng)
    # Queries: fresh points of random clusters (not copies of catalog rows).
    labels = rng.integers(0, args.clusters, args.queries)
    queries = centers[labels] + 1.2 * rng.standard_normal((args.queries, args.dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    ids = np.arange(1, args.n + 1)
    print(f"synthetic catalog: {args.n:,} adapters, {args.dim}-d, {args.clusters} clusters, "
          f"{args.queries} queries, k={args.k}")
    print(f"{'index':<34}{'build s':>9}{'p50 ms':>9}{'p99 ms':>9}{'recall':>9}{'files MB':>9}{'peak MB':>9}")
    print("(peak MB: tracemalloc peak of build + queries, NumPy/Python allocations; Annoy's own C++ "
          "memory is its mmapped file)")

    def row(name: str, build: float, p50: float, p99: float, rec: float, files_mb: float, peak: float) -> None:
        print(f"{name:<34}{build:>9.2f}{p50:>9.2f}{p99:>9.2f}{rec:>9.3f}{files_mb:>9.1f}{peak:>9.1f}", flush=True)

    def peak_of(fn: object) -> float:
        tracemalloc.start()
        fn()  # type: ignore[operator]
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        return peak

    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog(Path(tmp) / "catalog.db")

        t0 = time.perf_counter()
        exact = vindex.build_index(catalog, ids, data, "bench:synthetic", kind="exact")
        build = time.perf_counter() - t0
        truth = [set(exact.query(q, args.k)[0].tolist()) for q in queries]
        p50, p99, rec = measure(exact, queries, args.k, truth)
        files_mb = sum(p.stat().st_size for p in exact.paths) / 2**20
        exact.close()
        peak = peak_of(lambda: [vindex.build_index(catalog, ids, data, "bench:synthetic", kind="exact").query(
            q, args.k) for q in queries[:5]])
        row("exact (numpy, mmap)", build, p50, p99, rec, files_mb, peak)

        if vindex._faiss() is not None:  # the optional IVF index, forced (auto builds it only when faster)
            t0 = time.perf_counter()
            ivf = vindex.build_index(catalog, ids, data, "bench:synthetic", kind="faiss")
            build = time.perf_counter() - t0
            meta = vindex.read_meta(catalog) or {}
            files_mb = sum(p.stat().st_size for p in ivf.paths) / 2**20
            ivf.query(queries[0], args.k)  # the first query of a process is exact (no faiss import)
            p50, p99, rec = measure(ivf, queries, args.k, truth)
            row(f"faiss IVF-SQ8, nprobe {meta.get('nprobe')} (x{meta.get('faiss_speedup')})", build, p50, p99, rec,
                files_mb, float("nan"))
            ivf.close()
        else:
            print("faiss not installed (pip install faiss-cpu): faiss row skipped")
        if vindex._annoy() is None:
            print("annoy not installed: Annoy rows skipped")
            return 0
        trees_list = [args.trees] if not args.sweep else sorted({10, 50, args.trees})
        for trees in trees_list:
            t0 = time.perf_counter()
            ann = vindex.build_index(catalog, ids, data, "bench:synthetic", kind="annoy", n_trees=trees)
            build = time.perf_counter() - t0
            files_mb = sum(p.stat().st_size for p in ann.paths) / 2**20
            budgets: list[int | None] = [args.k * trees, None]
            if args.sweep:
                budgets = [args.k * trees, 20_000, 50_000, 100_000, 200_000, None]
            for budget in budgets:
                p50, p99, rec = measure(ann, queries, args.k, truth, search_k=budget)
                label = "default" if budget == args.k * trees else (
                    f"search_k={budget:,}" if budget else "auto search_k")
                row(f"annoy {trees} trees, {label}", build, p50, p99, rec, files_mb, float("nan"))
                build = 0.0
            ann.close()
        catalog.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the whole run: {rss:.0f} MB (includes the generated data and all indexes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
