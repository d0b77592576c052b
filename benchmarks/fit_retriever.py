"""Fit the retriever's fusion (``stylus_ext/data/ranker.json``) on the real-card TRAIN queries.

Training data: ``recover/queries_train.jsonl`` (a card's example prompt without its tags, trigger
words and name → that card) plus the ``fit`` half of the silver captions (the paper's GPT-4o picks),
both built outside the repo by ``../shared/eval`` (no licence: only the fitted weights, a few dozen
numbers, are written). For every query the retriever's own candidate pool is taken
(:meth:`stylus_ext.retrieve.Retriever.pool`); a candidate is positive when it is a version of the
answer. All positives and up to ``--negatives`` negatives per query (the best-ranked by a plain
score, plus random ones) train a scikit-learn logistic regression on standardised features; the
scaling is folded into the written coefficients. Dev figures (never used for fitting) are printed.

    pip install scikit-learn   # only for fitting; the product reads the JSON
    python benchmarks/fit_retriever.py [--limit N] [--silver-weight 3] [--out PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import realcards as rc  # noqa: E402

from stylus_ext.ranking import FEATURES  # noqa: E402

_DENSE, _ALL = FEATURES.index("dense"), FEATURES.index("all_rel")


def collect(retriever, items, model_of, negatives: int, rng: random.Random):
    """(X, y, query index) over the pools of ``items`` = [(prompt, set of answer model ids, weight)]."""
    from stylus_ext import lexical

    retriever.encode(list(dict.fromkeys(lexical.clean_prompt(p) for p, _, _ in items if p.strip())))
    xs, ys, ws, qs = [], [], [], []
    for qi, (prompt, answers, weight) in enumerate(items):
        pool = retriever.pool(prompt, size=300)
        if pool is None or not len(pool.ids):
            continue
        label = np.array([model_of.get(int(i)) in answers for i in pool.ids])
        if not label.any():
            continue  # the answer is not in the pool: nothing to learn about its order
        neg = np.flatnonzero(~label)
        quick = pool.features[:, _DENSE] + pool.features[:, _ALL]  # dense + BM25 share: hard negatives first
        hard = neg[np.argsort(-quick[neg])[: negatives // 2]]
        rest = np.setdiff1d(neg, hard)
        easy = np.array(rng.sample(list(rest), min(len(rest), negatives - len(hard))), dtype=np.int64)
        keep = np.concatenate([np.flatnonzero(label), hard, easy]).astype(np.int64)
        xs.append(pool.features[keep])
        ys.append(label[keep])
        ws.append(np.full(len(keep), weight))
        qs.append(np.full(len(keep), qi))
    return np.vstack(xs), np.concatenate(ys), np.concatenate(ws), np.concatenate(qs)


def fit(x, y, w, c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
    model.fit((x - scaler.mean_) / scale, y, sample_weight=w)
    coef = model.coef_[0] / scale
    intercept = float(model.intercept_[0] - np.sum(model.coef_[0] * scaler.mean_ / scale))
    return coef, intercept


def evaluate(retriever, queries, silver) -> dict[str, float]:
    def ranked(prompt):
        return rc.model_ids(c.adapter for c in retriever.search(prompt, 150))

    out = {}
    stats = rc.RankStats()
    for q in queries:
        stats.add(rc.rank_of(q["model_id"], ranked(q["query"])))
    row = stats.row()
    out.update({"recover_R@10": row["R@10"], "recover_R@150": row["R@150"], "recover_MRR": row["MRR"]})
    r10 = r150 = 0.0
    for s in silver:
        picks, got = set(s["picks_in_catalog"]), ranked(s["prompt"])
        r10 += len(picks & set(got[:10])) / len(picks)
        r150 += len(picks & set(got[:150])) / len(picks)
    n = max(1, len(silver))
    out.update({"silver_R@10": r10 / n, "silver_R@150": r150 / n})
    return {k: round(v, 4) for k, v in out.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recover", type=Path, default=rc.default_dir("recover"))
    parser.add_argument("--silver", type=Path, default=rc.default_dir("silver"))
    parser.add_argument("--catalog", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=0, help="train queries to use (0: all)")
    parser.add_argument("--negatives", type=int, default=60)
    parser.add_argument("--silver-weight", type=float, default=3.0)
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=HERE.parent / "stylus_ext" / "data" / "ranker.json")
    args = parser.parse_args()
    from stylus_ext import ranking
    from stylus_ext.catalog.db import Catalog
    from stylus_ext.retrieve import Retriever

    catalog_path = rc.ensure_catalog(args.recover / "cards_heldout",
                                     args.catalog or args.recover / "stylus-catalog.db")
    catalog = Catalog(catalog_path, create=False)
    retriever = Retriever(catalog, cache_size=50_000)
    model_of = {int(i): m for i, m in catalog.db.execute("select id, civitai_model_id from adapters")}
    train = rc.read_jsonl(args.recover / "queries_train.jsonl")
    if args.limit:
        train = random.Random(0).sample(train, min(args.limit, len(train)))
    items = [(q["query"], {q["model_id"]}, 1.0) for q in train]
    silver_fit = rc.silver_rows(args.silver, "fit")
    items += [(s["prompt"], set(s["picks_in_catalog"]), args.silver_weight) for s in silver_fit]
    x, y, w, _ = collect(retriever, items, model_of, args.negatives, random.Random(1))
    print(f"fitting on {len(items)} queries ({len(silver_fit)} silver): {len(y)} rows, {int(y.sum())} positive")
    coef, intercept = fit(x, y, w, args.C)
    model = {"features": list(ranking.FEATURES), "coef": [round(float(v), 6) for v in coef],
             "intercept": round(intercept, 6),
             "note": f"fitted by benchmarks/fit_retriever.py on {len(train)} real-card train queries + "
                     f"{len(silver_fit)} silver captions",
             "fitted": datetime.date.today().isoformat()}
    retriever.ranker = ranking.Ranker.from_dict(model)
    dev = rc.read_jsonl(args.recover / "queries_dev.jsonl")
    model["dev"] = evaluate(retriever, dev, rc.silver_rows(args.silver, "dev"))
    print("dev:", model["dev"])
    for name, value in sorted(zip(ranking.FEATURES, coef, strict=True), key=lambda t: -abs(t[1])):
        print(f"  {name:18s} {value:+.3f}")
    args.out.write_text(json.dumps(model, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
