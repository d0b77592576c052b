"""Scale benchmark (performance issue): search and compose latency at 1K–300K adapters, dense peers.

Through the product's own path: generated catalogues (``scale_data.py``: realistic card text, the
lexical index and the vector index written by ``stylus index``'s code), a :class:`Retriever` for
search and a :class:`Stylus` pipeline for compose (retrieve + compose + mask + rewrite, including the
prompt embedding: the compose pass uses its own retriever, so no prompt vector is cached from the
search pass). 200 prompts (half captions, half tag prompts), k=150, 4 images per compose.

Each size also times a cold ``stylus compose`` (a fresh process, from start to answer; median of 3).

Then the dense side alone on each catalogue's vectors with the real prompt vectors as queries:
exact vs the product's faiss IVF at every size (the crossover), and at ``--peers-at`` the peer
indexes (faiss SQ8, SQ8 + exact re-rank, HNSW, Annoy) — latency, recall@150 against exact, build.

Figures are latencies on a shared machine: read them as ratios within one run (the load average
is printed beside each row).

    .venv/bin/python benchmarks/bench_scale.py                       # 1K, 10K, 100K
    .venv/bin/python benchmarks/bench_scale.py --sizes 1000,10000,100000,300000 --prompts 200
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale_data

SEEDS = (0, 1, 2, 3)
K = 150


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def pct(ms: list[float]) -> tuple[float, float]:
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def timed(fn: Any, items: list[Any]) -> list[float]:
    out = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def measure_product(path: Path, plugins: Any, encoder: Any, prompts: list[str], warm: list[str]) -> dict[str, Any]:
    from stylus_ext import sdk
    from stylus_ext.catalog.db import Catalog
    from stylus_ext.index import load_index
    from stylus_ext.lexical import clean_prompt
    from stylus_ext.pipeline import Stylus, StylusSettings
    from stylus_ext.retrieve import Retriever

    catalog = Catalog(path, create=False)
    index = load_index(catalog)
    searcher = Retriever(catalog, encoder=encoder, index=index, plugins=plugins)
    for p in warm:
        searcher.search(p, K)
    search = timed(lambda p: searcher.search(p, K), prompts)
    stylus = Stylus(catalog, plugins, StylusSettings(top_k=K),
                    retriever=Retriever(catalog, encoder=encoder, index=index, plugins=plugins))
    for p in warm:
        stylus.plan(p, SEEDS)
    compose = timed(lambda p: stylus.plan(p, SEEDS), prompts)
    queries = np.asarray(encoder.encode([clean_prompt(p) for p in prompts]), dtype=np.float32)
    encode = timed(lambda p: encoder.encode([clean_prompt(p)]), prompts[:50])
    with sdk.single_blas_thread():  # as the product's searches run
        dense = timed(lambda q: index.query(q, K), list(queries))
    result = {"search": pct(search), "compose": pct(compose), "encode": pct(encode)[0], "dense": pct(dense)[0],
              "kind": index.kind, "vectors": np.array(index.vectors), "queries": queries, "load": load()}
    index.close()
    catalog.close()
    return result


def cold_compose(path: Path, prompt: str, runs: int = 3) -> float:
    """Median seconds of a one-shot ``stylus compose`` from process start to answer (a fresh process each)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "stylus_ext", "--catalog", str(path), "compose", prompt],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def dense_row(name: str, search: Any, queries: np.ndarray, truth: list[set[int]], build: float) -> str:
    """One table row: latency (one BLAS thread, as the product's searches run) and recall@150."""
    from stylus_ext import sdk

    ms, recall = [], []
    with sdk.single_blas_thread():
        for q, want in zip(queries, truth, strict=True):
            t0 = time.perf_counter()
            rows = search(q)
            ms.append((time.perf_counter() - t0) * 1000)
            recall.append(len(want & {int(r) for r in rows}) / len(want))
    p50, p99 = pct(ms)
    return f"| {name} | {p50:.2f} | {p99:.2f} | {np.mean(recall):.3f} | {build:.1f} |"


def product_indexes(vectors: np.ndarray, queries: np.ndarray, truth: list[set[int]], kinds: tuple[str, ...]
                    ) -> list[str]:
    """The product's own index kinds (``build_index`` into a scratch catalog) on these vectors."""
    from stylus_ext import index as vindex
    from stylus_ext.catalog.db import Catalog

    rows = []
    ids = np.arange(len(vectors), dtype=np.int64)
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog(Path(tmp) / "catalog.db")
        for kind in kinds:
            if vindex.choose_kind(len(ids), kind) != kind:
                rows.append(f"| product {kind} | (not installed) | | | |")
                continue
            t0 = time.perf_counter()
            built = vindex.build_index(catalog, ids, vectors, "bench", kind=kind)
            build = time.perf_counter() - t0
            label = f"product {kind}"
            if built.kind == "faiss":
                label += f" (IVF{built._faiss.nlist}, nprobe {built.nprobe})"
            elif built.kind == "projected":
                meta = vindex.read_meta(catalog) or {}
                label += f" (width {meta.get('projected_width')}, re-scores {meta.get('projected_pool')})"
            rows.append(dense_row(label, lambda q, b=built: b.query(q, K)[0], queries, truth, build))
            built.close()
        catalog.close()
    return rows


def faiss_peers(vectors: np.ndarray, queries: np.ndarray, truth: list[set[int]]) -> list[str]:
    """faiss SQ8 (with and without an exact re-rank) and HNSW, built here."""
    try:
        import faiss
    except ImportError:
        return ["| faiss peers | (faiss-cpu not installed) | | | |"]
    d = vectors.shape[1]
    rows = []
    t0 = time.perf_counter()
    sq = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    sq.train(vectors)
    sq.add(vectors)
    build = time.perf_counter() - t0

    def rerank(q: np.ndarray, found: np.ndarray) -> np.ndarray:
        found = found[found >= 0]
        return found[np.argsort(-(vectors[found] @ q))[:K]]

    rows.append(dense_row("faiss SQ8 scan", lambda q: sq.search(q[None], K)[1][0], queries, truth, build))
    rows.append(dense_row("faiss SQ8 top 300 + fp32 re-rank", lambda q: rerank(q, sq.search(q[None], 300)[1][0]),
                          queries, truth, build))
    t0 = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 40
    hnsw.add(vectors)
    build = time.perf_counter() - t0
    for ef in (256, 512):
        params = faiss.SearchParametersHNSW(efSearch=ef)
        rows.append(dense_row(f"faiss HNSW32 efSearch {ef}",
                              lambda q, p=params: hnsw.search(q[None], K, params=p)[1][0], queries, truth, build))
        build = 0.0
    return rows


def onnx_export(encoder: Any) -> Path:
    """An fp32 ONNX export of the encoder's model folder (cached beside the catalogues)."""
    helper = sys.modules["stylus_plugin_helper_transformers_encoder_onnx"]
    path = scale_data.CACHE / "minilm-onnx" / "onnx" / "model.onnx"
    if not path.is_file():
        helper.export(Path(encoder._source), path)
    return path


def exact_truth(vectors: np.ndarray, queries: np.ndarray) -> list[set[int]]:
    k = min(K, len(vectors))
    return [set(np.argpartition(-(vectors @ q), k - 1)[:k].tolist()) for q in queries]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000", help="catalogue sizes (default 1000,10000,100000)")
    ap.add_argument("--prompts", type=int, default=200)
    ap.add_argument("--peers-at", type=int, default=100_000, help="size for the peer table (default 100000, "
                    "else the largest size); 0 = no peers")
    ap.add_argument("--base", type=int, default=1000, help="card texts embedded for real (see scale_data.py)")
    ap.add_argument("--threads", type=int, default=0, help="encoder option threads (default 0 = auto: 1 for queries)")
    ap.add_argument("--fresh", action="store_true", help="rebuild the cached catalogues")
    ap.add_argument("--runtime", choices=("numpy", "onnx"), default="numpy",
                    help="the queries' forward pass: NumPy (default), or ONNX Runtime on an export of the packaged "
                         "model (cached; needs onnxruntime, onnx and torch: pip install -e '.[test]')")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    peers_at = args.peers_at if args.peers_at in sizes else (max(sizes) if args.peers_at else 0)

    from stylus_ext.plugins import PluginManager

    plugins = PluginManager(entry_points_enabled=False)
    encoder = plugins.create("encoder", "transformers", threads=args.threads)
    numpy_encoder = None
    if args.runtime == "onnx":
        numpy_encoder, encoder = encoder, plugins.create("encoder", "transformers", threads=args.threads,
                                                         runtime="onnx", onnx_file=str(onnx_export(encoder)))
    prompts_all = scale_data.make_prompts(args.prompts + 20)
    warm, prompts = prompts_all[:20], prompts_all[20:]
    print(f"scale benchmark: {len(prompts)} prompts, k={K}, {len(SEEDS)} images per compose, encoder "
          f"{encoder.identity} (threads option {args.threads}); {os.cpu_count()} CPUs, load {load()}", flush=True)

    results, crossover, peers = {}, [], []
    for n in sizes:
        path = scale_data.catalogue(n, plugins, encoder, base=args.base, fresh=args.fresh)
        r = results[n] = measure_product(path, plugins, encoder, prompts, warm)
        if numpy_encoder is not None:  # the same prompts through the NumPy forward pass, for the ratio
            from stylus_ext.lexical import clean_prompt

            r["encode_numpy"] = pct(timed(lambda p: numpy_encoder.encode([clean_prompt(p)]), prompts[:50]))[0]
        r["cold"] = cold_compose(path, prompts[0])
        print(f"  {n:,}: search p50 {r['search'][0]:.1f} ms, compose p50 {r['compose'][0]:.1f} ms "
              f"(load {r['load']})", flush=True)
        truth = exact_truth(r["vectors"], r["queries"])
        crossover.append((n, product_indexes(r["vectors"], r["queries"], truth, ("exact", "projected", "faiss"))))
        if n == peers_at:
            peers = product_indexes(r["vectors"], r["queries"], truth, ("annoy",)) + faiss_peers(
                r["vectors"], r["queries"], truth)
            peers = crossover[-1][1] + peers
        del r["vectors"]

    print("\n| catalogue | search p50 / p99 (ms) | compose p50 / p99 (ms) | prompt encode p50 | dense p50 "
          "(index) | cold CLI compose (s) | load 1/5/15 min |")
    print("|---|---|---|---|---|---|---|")
    for n, r in results.items():
        print(f"| {n // 1000}K | {r['search'][0]:.0f} / {r['search'][1]:.0f} | {r['compose'][0]:.0f} / "
              f"{r['compose'][1]:.0f} | {r['encode']:.1f} | {r['dense']:.1f} ({r['kind']}) | {r['cold']:.2f} | "
              f"{r['load']} |")
    for n, r in results.items():
        if "encode_numpy" in r:
            print(f"prompt encode at {n // 1000}K: ONNX Runtime {r['encode']:.1f} ms, NumPy {r['encode_numpy']:.1f} ms "
                  f"(× {r['encode_numpy'] / max(r['encode'], 1e-9):.2f})")
    ordered = sorted(results)
    for a, b in itertools.pairwise(ordered):
        for what in ("search", "compose"):
            growth = results[b][what][0] / results[a][what][0]
            print(f"growth {a // 1000}K → {b // 1000}K ({b / a:.0f}× catalogue): {what} p50 × {growth:.2f}")
    print("\nDense side: exact vs projected vs faiss IVF per size (crossover), recall@150 against exact")
    print("| catalogue | index | p50 ms | p99 ms | recall@150 | build s |")
    print("|---|---|---|---|---|---|")
    for n, rows in crossover:
        for row in rows:
            print(f"| {n // 1000}K " + row)
    if peers:
        print(f"\nPeers at {peers_at // 1000}K × {encoder.dimension} (load {load()})")
        print("| method | p50 ms | p99 ms | recall@150 | build s |")
        print("|---|---|---|---|---|")
        print("\n".join(peers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
