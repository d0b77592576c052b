"""Query encoders on real cards (performance issue): dense-side recall and time per query.

Query vectors from the product's NumPy MiniLM pass, from ONNX Runtime on an fp32 and an int8 export
of the same weights (when onnxruntime, onnx and torch are installed), and from a static first stage
distilled from MiniLM the model2vec way (each vocabulary token's output vector on its own; a query is
the IDF-weighted mean of its tokens' vectors, IDF from the train queries), all searched against the
catalogue's MiniLM card vectors: top 150 by cosine, one version per model. The static stage is also
scored against card vectors made the same way ("symmetric"). Needs the real-card sets
(``../shared/eval``) and their catalogue (``bench_real_cards.py`` builds it).

    STYLUS_EVAL_DIR=... .venv/bin/python benchmarks/bench_query_encoders.py [--skip-index --catalog CATALOG]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realcards as rc

K = 150


def distil(bert: Any) -> np.ndarray:
    """Each vocabulary token's mean-pooled MiniLM output for ``[CLS] token [SEP]`` (vocabulary × dimension)."""
    vocab = bert.word.shape[0]
    cls, sep = bert.tokenizer.token_to_id("[CLS]"), bert.tokenizer.token_to_id("[SEP]")
    out = np.zeros((vocab, bert.word.shape[1]), np.float32)
    for start in range(0, vocab, 2048):
        ids = np.arange(start, min(vocab, start + 2048))
        out[ids] = bert.pool_ids([[cls, int(t), sep] for t in ids])
    return out


def static_encoder(bert: Any, table: np.ndarray, idf: np.ndarray) -> Callable[[list[str]], np.ndarray]:
    def encode(texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), table.shape[1]), np.float32)
        for row, e in enumerate(bert.tokenizer.encode_batch(texts, add_special_tokens=False)):
            ids = np.array(e.ids, dtype=np.int64)
            if len(ids):
                v = (table[ids] * idf[ids, None]).sum(0)
                out[row] = v / max(float(np.linalg.norm(v)), 1e-9)
        return out
    return encode


def recall(queries: np.ndarray, cards: np.ndarray, row_model: np.ndarray, truths: list[set[int]]
           ) -> tuple[float, float]:
    """Dense-only R@10 and R@150 (models, first version each)."""
    r10 = r150 = 0
    for sims, truth in zip(queries @ cards.T, truths, strict=True):
        ranked = list(dict.fromkeys(row_model[np.argsort(-sims)[:8 * K]].tolist()))[:K]
        r10 += bool(truth & set(ranked[:10]))
        r150 += bool(truth & set(ranked))
    return r10 / len(truths), r150 / len(truths)


def per_query_ms(encode: Callable[[list[str]], np.ndarray], texts: list[str]) -> float:
    from stylus_ext import sdk

    times = []
    with sdk.single_blas_thread():
        for text in texts[:200]:
            t0 = time.perf_counter()
            encode([text])
            times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))


def onnx_encoders(plugins: Any, folder: Path, tmp: Path) -> dict[str, Callable[[list[str]], np.ndarray]]:
    helper = sys.modules["stylus_plugin_helper_transformers_encoder_onnx"]
    try:
        import onnx  # noqa: F401 - export needs it
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        print("(onnxruntime / onnx not installed: no ONNX rows)")
        return {}
    fp32 = helper.export(folder, tmp / "onnx" / "model.onnx")
    int8 = tmp / "model_int8.onnx"
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    reference = plugins.create("encoder", "transformers", runtime="numpy")
    reference.encode(["x"])
    return {name: helper.OnnxBert(path, reference._numpy.tokenizer, 1).encode
            for name, path in (("ONNX Runtime fp32", fp32), ("ONNX Runtime int8", int8))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    rc.data_arguments(ap)
    args = ap.parse_args()
    if not (args.recover / "queries_dev.jsonl").exists() or not (args.silver / "silver.jsonl").exists():
        print(f"skipped: no real-card sets at {args.recover} / {args.silver} (build them: ../shared/eval/README.md, "
              f"or set STYLUS_EVAL_DIR)")
        return 0
    from stylus_ext.catalog.db import Catalog
    from stylus_ext.embed import search_text
    from stylus_ext.index import load_index
    from stylus_ext.lexical import clean_prompt
    from stylus_ext.plugins import PluginManager

    path = rc.ensure_catalog(args.recover / "cards_heldout", args.catalog or args.recover / "stylus-catalog.db",
                             index=not args.skip_index)
    catalog = Catalog(path, create=False)
    index = load_index(catalog)
    cards = np.asarray(index.vectors, np.float32)
    ids = [int(a) for a in index.ids]
    adapters = catalog.adapters_by_id(ids)
    row_model = np.array([adapters[a].card.civitai_model_id or -1 for a in ids])
    plugins = PluginManager(entry_points_enabled=False)
    product = plugins.create("encoder", "transformers", runtime="numpy")
    product.encode(["x"])
    bert = product._numpy
    dev = rc.read_jsonl(Path(args.recover) / "queries_dev.jsonl")
    silver = rc.silver_rows(Path(args.silver))
    sets = {"recover": ([clean_prompt(q["query"]) for q in dev], [{q["model_id"]} for q in dev]),
            "silver": ([r["prompt"] for r in silver], [set(r["picks_in_catalog"]) for r in silver])}
    train = rc.read_jsonl(Path(args.recover) / "queries_train.jsonl")
    df = np.ones(bert.word.shape[0])
    for e in bert.tokenizer.encode_batch([clean_prompt(q["query"]) for q in train], add_special_tokens=False):
        df[list(set(e.ids))] += 1
    idf = np.log((len(train) + 1) / df)
    t0 = time.perf_counter()
    static = static_encoder(bert, distil(bert), idf)
    print(f"{len(ids)} cards; distilled the static table in {time.perf_counter() - t0:.0f} s")
    encoders: dict[str, Callable[[list[str]], np.ndarray]] = {"MiniLM, NumPy pass (the product)": bert.encode}
    with tempfile.TemporaryDirectory() as tmp:
        encoders.update(onnx_encoders(plugins, Path(product._folder), Path(tmp)))
        encoders["static (model2vec-style), MiniLM cards"] = static
        print("\n| query encoder | ms / query | cosine to MiniLM | recover R@10 / R@150 | silver R@10 / R@150 |")
        print("|---|---|---|---|---|")
        for name, encode in encoders.items():
            row = [f"{per_query_ms(encode, sets['silver'][0]):.2f}"]
            vectors = {s: encode(texts) for s, (texts, _) in sets.items()}
            row.append(f"{np.mean(np.sum(vectors['silver'] * bert.encode(sets['silver'][0]), axis=1)):.3f}")
            for s, (_, truths) in sets.items():
                row.append("{:.3f} / {:.3f}".format(*recall(vectors[s], cards, row_model, truths)))
            print(f"| {name} | " + " | ".join(row) + " |", flush=True)
    static_cards = static([search_text(adapters[a]) for a in ids])
    row = [recall(static(texts), static_cards, row_model, truths) for texts, truths in sets.values()]
    print("| static, static cards (symmetric) | | | " + " | ".join("{:.3f} / {:.3f}".format(*r) for r in row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
