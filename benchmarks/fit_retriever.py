"""Fit the retriever's fusion (``stylus_ext/data/ranker.json``) on the real-card TRAIN queries.

Training data: ``recover/queries_train.jsonl`` (a card's example prompt without its tags, trigger
words and name → that card) plus the ``fit`` half of the silver captions (the paper's GPT-4o picks),
both built outside the repo by ``../shared/eval`` (no licence: only the fitted weights, a few dozen
numbers, are written). For every query the retriever's own candidate pool is taken
(:meth:`stylus_ext.retrieve.Retriever.pool`); a candidate is positive when it is a version of the
answer. Each positive is paired with up to ``--negatives`` uniformly drawn negatives of its pool, and
a scikit-learn logistic regression on the differences (positive − negative, standardised) gives the
ranking direction (a RankSVM-style fit); a one-variable logistic fit then calibrates it into a
probability. Dev figures (never used for fitting) are printed.

Then the re-ranker (``--rerank-trees``, 0 for none): LambdaMART (LightGBM's ``lambdarank``, 15-leaf
trees) over each query's best ``--rerank-top`` candidates by the linear score, calibrated to a
probability the same way; the trees are written as flat node arrays that ``sdk.Trees`` evaluates.
They may learn from more queries than the linear fit (``--rerank-train all``: every train query,
so most of their pools are ranked by a linear model that never saw them, as in use), with the
silver captions weighted ``--rerank-silver-weight`` (3-fold CV on the train side favours
``--rerank-train all --rerank-silver-weight 2 --rerank-trees 400``). Recover queries have their
trigger words removed, so trees fitted on them alone never see a typed trigger matter and rank a
card whose trigger the prompt names below others (dev queries with the trigger typed, through
``Retriever.search``: R@1 0.72 with those trees, 0.79 with the earlier 2,500-query trees, 0.89 with
the shipped ones); ``--rerank-typed-weight`` also teaches them every train query
that had a trigger as a user types it (the example prompt less only its ``<lora:>`` tags), which
mends that without a monotone constraint (``--rerank-rising triggers_rel,triggers_log`` did too,
but lost the CV gain). Nor do they see a card's NAME in a query (the recover queries lack it), and
they ranked "hatsune miku" a slit-pupil adapter first, the Miku card fourth: ``--rerank-named-weight``
also teaches them each train answer's name as the whole query (``realcards.name_query``: its title
less brackets and versions), which a monotone bound on the title and trigger features did not mend.
The dense features read the query map (``fit_query_map.py``), fitted on these same train queries:
searched through it, a train query's answer looks closer than a new card's would, and a fit on those
pools trusts the mapped cosine too much (dev recover R@10 0.667 → 0.653 with the map). With
``--query-map-folds`` each train query is searched through the out-of-fold map that never saw its
card. The shipped fit: ``--limit 2500 --rerank-train all --rerank-silver-weight 2 --rerank-trees 400
--rerank-typed-weight 0.5 --rerank-named-weight 0.25 --query-map-folds DIR --typed-weight 1``
(figures in the README). ``--typed-weight`` teaches the linear stage the typed triggers too: it is
the order a small folder gets (``Rerank.min_pool``), and with the map but without them it ranked
a typed coined trigger's card under two characters there; with the example-prompt feature
(``ex_dense``) at weight 0.5 it ranked it under a character whose example prompt also starts
"1girl", at weight 1 only under the two adapters whose trigger the prompt also types.

    pip install scikit-learn lightgbm   # only for fitting; the product reads the JSON
    python benchmarks/fit_retriever.py [--limit N] [--silver-weight 3] [--rerank-trees 200] [--out PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
import pickle
import random
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import realcards as rc  # noqa: E402


def pools(retriever, prompts: list[str], cache: Path | None, maps: list | None = None
          ) -> list[tuple[np.ndarray, np.ndarray]]:
    """The retriever's pool (ids, features) of every prompt; cached in ``cache`` (outside the repo).
    ``maps``: the query map to search each prompt through (out-of-fold maps), else the retriever's."""
    if cache is not None and cache.exists():
        with open(cache, "rb") as fh:
            return pickle.load(fh)
    from stylus_ext import lexical

    retriever.encode(list(dict.fromkeys(lexical.clean_prompt(p) for p in prompts if p.strip())))
    out, shipped = [], retriever.query_map
    for i, prompt in enumerate(prompts):
        retriever.query_map = maps[i] if maps is not None else shipped
        pool = retriever.pool(prompt, size=300)
        out.append((pool.ids, pool.features) if pool is not None else (np.zeros(0, np.int64), np.zeros((0, 0))))
    retriever.query_map = shipped
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with open(cache, "wb") as fh:
            pickle.dump(out, fh)
    return out


def labels(ids: np.ndarray, answers: set[int], model_of: dict[int, int]) -> np.ndarray:
    return np.array([model_of.get(int(i)) in answers for i in ids], dtype=bool)


def pairwise(data, rng: random.Random, negatives: int):
    """Difference rows (positive − negative) within each query: a RankSVM-style logistic fit."""
    rows, weights = [], []
    for (ids, x), y, w in data:
        if not len(ids) or not y.any() or y.all():
            continue
        pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
        # uniform negatives: the pool is already the hard part of the catalogue, and choosing them by
        # any one signal would teach the model to distrust that signal
        chosen = np.array(rng.sample(list(neg), min(negatives, len(neg))), dtype=np.int64)
        for p in pos[:3]:
            rows.append(x[p] - x[chosen])
            weights.append(np.full(len(chosen), w / min(3, len(pos))))
    diffs, wts = np.vstack(rows), np.concatenate(weights)
    return np.vstack([diffs, -diffs]), np.r_[np.ones(len(diffs)), np.zeros(len(diffs))], np.r_[wts, wts]


def fit(data, c: float, rng: random.Random, negatives: int):
    """Pairwise direction ``w``, then a 1-D logistic calibration ``sigmoid(a·(x·w) + b)`` on the pools."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    d, y, w = pairwise(data, rng, negatives)
    scaler = StandardScaler(with_mean=False).fit(d)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    direction = LogisticRegression(C=c, max_iter=3000, fit_intercept=False).fit(d / scale, y, sample_weight=w)
    coef = direction.coef_[0] / scale
    z = np.concatenate([x @ coef for (ids, x), _, _ in data if len(ids)])
    lab = np.concatenate([yy for (ids, _), yy, _ in data if len(ids)])
    calib = LogisticRegression(C=100.0, max_iter=1000).fit(z.reshape(-1, 1), lab)
    a, b = float(calib.coef_[0][0]), float(calib.intercept_[0])
    return coef * a, b


def top_rows(x: np.ndarray, coef: np.ndarray, top: int) -> np.ndarray:
    """The rows of the linear score's best ``top`` candidates (what the re-ranker sees)."""
    return np.argsort(-(x @ coef), kind="stable")[:top]


def lightgbm_trees(booster) -> list[dict]:
    """LightGBM's trees as flat preorder node arrays (a row goes left where ``x <= threshold``)."""
    out = []
    for info in booster.dump_model()["tree_info"]:
        tree: dict[str, list] = {k: [] for k in ("feature", "threshold", "left", "right", "leaf", "value")}

        def add(node: dict, tree=tree) -> int:
            i = len(tree["leaf"])
            leaf = "leaf_value" in node
            for key, value in (("feature", 0 if leaf else int(node["split_feature"])),
                               ("threshold", 0.0 if leaf else float(node["threshold"])), ("left", 0), ("right", 0),
                               ("leaf", leaf), ("value", round(float(node.get("leaf_value", 0.0)), 6))):
                tree[key].append(value)
            if not leaf:
                if node["decision_type"] != "<=":
                    raise ValueError(f"a split LightGBM wrote as {node['decision_type']!r}")
                tree["left"][i] = add(node["left_child"])
                tree["right"][i] = add(node["right_child"])
            return i

        add(info["tree_structure"])
        out.append(tree)
    return out


def fit_rerank(data, coef, args) -> dict:
    """The re-ranker's JSON (``ranking.Rerank.from_dict``): LambdaMART over each pool's linear top
    (``args``: ``rerank_trees``, ``rerank_top``, ``rerank_leaves``, ``rerank_lr``; a query's weight
    is its ``data`` weight)."""
    import lightgbm as lgb
    from sklearn.linear_model import LogisticRegression

    from stylus_ext import ranking, sdk

    top = args.rerank_top
    xs, ys, groups, weights = [], [], [], []
    for (ids, x), y, w in data:
        if len(ids):
            rows = top_rows(x, coef, top)
            xs.append(x[rows])
            ys.append(y[rows])
            groups.append(len(rows))
            weights.append(w)
    x_all, y_all = np.vstack(xs), np.concatenate(ys)
    with_answer = np.repeat([bool(y.any()) for y in ys], groups)
    depth = max(5, int(np.ceil(np.log2(args.rerank_leaves))) + 1)
    model = lgb.LGBMRanker(objective="lambdarank", lambdarank_truncation_level=20, num_leaves=args.rerank_leaves,
                           max_depth=depth, learning_rate=args.rerank_lr, n_estimators=args.rerank_trees,
                           min_child_samples=50, colsample_bytree=0.8, subsample=0.8, subsample_freq=1,
                           reg_lambda=1.0, random_state=0, verbose=-1,
                           monotone_constraints=[int(f.split(":")[-1] in args.rerank_rising) for f in ranking.FEATURES])
    model.fit(x_all[with_answer], y_all[with_answer].astype(int),
              sample_weight=np.repeat(weights, groups)[with_answer],
              group=[g for g, y in zip(groups, ys, strict=True) if y.any()])
    trees = lightgbm_trees(model.booster_)
    evaluator = sdk.Trees.from_dicts(trees, ranking.FEATURES, ranking.FEATURES)
    # in slices: the evaluator holds a rows × trees table
    raw = np.concatenate([evaluator.decision(x_all[i:i + 20_000]) for i in range(0, len(x_all), 20_000)])
    calib = LogisticRegression(C=100.0, max_iter=1000).fit(raw.reshape(-1, 1), y_all)
    return {"top": top, "features": list(ranking.FEATURES), "scale": round(float(calib.coef_[0][0]), 6),
            "offset": round(float(calib.intercept_[0]), 6), "trees": trees}


def offline_metrics(data, score, model_of, k: int = 150) -> tuple[float, float, float]:
    """Mean recall@10, recall@150 and MRR of the answers, ranking each pool by ``score(features)``
    (one per model)."""
    r10 = r150 = mrr = 0.0
    for (ids, x), _, answers in data:
        if not len(ids):
            continue
        order = np.argsort(-score(x), kind="stable")
        ranked = list(dict.fromkeys(model_of.get(int(ids[o])) for o in order))[:k]
        hits = [r for r, m in enumerate(ranked) if m in answers]
        r10 += sum(1 for r in hits if r < 10) / len(answers)
        r150 += len(hits) / len(answers)
        mrr += 1 / (hits[0] + 1) if hits else 0.0
    n = max(1, len(data))
    return r10 / n, r150 / n, mrr / n


def evaluate(retriever, queries, silver) -> dict[str, float]:
    """Recover and silver figures through ``Retriever.search`` itself (the product's path)."""
    def ranked(prompt):
        return rc.model_ids(c.adapter for c in retriever.search(prompt, 150))

    stats = rc.RankStats()
    for q in queries:
        stats.add(rc.rank_of(q["model_id"], ranked(q["query"])))
    row = stats.row()
    r10 = r150 = 0.0
    for s in silver:
        picks, got = set(s["picks_in_catalog"]), ranked(s["prompt"])
        r10 += len(picks & set(got[:10])) / len(picks)
        r150 += len(picks & set(got[:150])) / len(picks)
    n = max(1, len(silver))
    return {"recover_R@10": round(row["R@10"], 4), "recover_R@150": round(row["R@150"], 4),
            "silver_R@10": round(r10 / n, 4), "silver_R@150": round(r150 / n, 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    rc.data_arguments(parser)
    parser.add_argument("--limit", type=int, default=0, help="train queries to use (0: all)")
    parser.add_argument("--negatives", type=int, default=100)
    parser.add_argument("--silver-weight", type=float, default=2.0)
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--typed-weight", type=float, default=0.0,
                        help="also fit the linear stage on its queries with the trigger typed, at this weight")
    parser.add_argument("--rerank-trees", type=int, default=200, help="LambdaMART trees (0: linear only)")
    parser.add_argument("--rerank-top", type=int, default=300, help="candidates the trees re-rank")
    parser.add_argument("--rerank-leaves", type=int, default=15, help="leaves per tree (at most 64)")
    parser.add_argument("--rerank-lr", type=float, default=0.1, help="the trees' learning rate")
    parser.add_argument("--rerank-train", choices=("linear", "all"), default="linear",
                        help="recover queries the trees learn from: the linear fit's (--limit) or every train query")
    parser.add_argument("--rerank-rising", type=lambda v: set(filter(None, v.split(","))), default=set(),
                        help="base features the trees' score may only rise with (comma-separated)")
    parser.add_argument("--rerank-silver-weight", type=float, default=1.0,
                        help="a silver caption's weight for the trees")
    parser.add_argument("--rerank-typed-weight", type=float, default=0.0,
                        help="also teach the trees the train queries with their trigger typed, at this weight")
    parser.add_argument("--rerank-named-weight", type=float, default=0.0,
                        help="also teach the trees each train answer's name as the whole query, at this weight")
    parser.add_argument("--cache", type=Path, default=None, help="folder for cached pools (outside the repo)")
    parser.add_argument("--query-map-folds", type=Path, default=None,
                        help="out-of-fold query maps (fit_query_map.py --folds-dir) for the train queries")
    parser.add_argument("--evaluate", action="store_true", help="also run Retriever.search on dev (slow)")
    parser.add_argument("--out", type=Path, default=HERE.parent / "stylus_ext" / "data" / "ranker.json")
    args = parser.parse_args()
    from stylus_ext import ranking
    from stylus_ext.catalog.db import Catalog
    from stylus_ext.retrieve import Retriever

    catalog_path = rc.ensure_catalog(args.recover / "cards_heldout",
                                     args.catalog or args.recover / "stylus-catalog.db",
                                     index=not args.skip_index)
    catalog = Catalog(catalog_path, create=False)
    retriever = Retriever(catalog, cache_size=50_000)
    model_of = {int(i): m for i, m in catalog.db.execute("select id, civitai_model_id from adapters")}
    train = rc.read_jsonl(args.recover / "queries_train.jsonl")
    # the linear fit's queries: a seeded sample (the same positions whatever else is loaded)
    linear_rows = random.Random(0).sample(range(len(train)), min(args.limit, len(train))) if args.limit else None
    if linear_rows is not None and args.rerank_train == "linear":
        train, linear_rows = [train[i] for i in linear_rows], None
    silver_fit, silver_dev = rc.silver_rows(args.silver, "fit"), rc.silver_rows(args.silver, "dev")
    dev = rc.read_jsonl(args.recover / "queries_dev.jsonl")
    typed = [(p, q) for q in train if (p := rc.typed_prompt(q)) is not None]
    typed_dev = [(p, q) for q in dev if (p := rc.typed_prompt(q)) is not None]
    title_of = rc.titles(catalog)
    sets = {"train": [(q["query"], {q["model_id"]}, 1.0) for q in train],
            "train_typed": [(p, {q["model_id"]}, args.rerank_typed_weight) for p, q in typed]
            if args.rerank_typed_weight else [],
            "dev_typed": [(p, {q["model_id"]}, 1.0) for p, q in typed_dev],
            "train_named": [(n, {m}, args.rerank_named_weight) for n, m in rc.named_queries(train, title_of)]
            if args.rerank_named_weight else [],
            "dev_named": [(n, {m}, 1.0) for n, m in rc.named_queries(dev, title_of)],
            "silver_fit": [(s["prompt"], set(s["picks_in_catalog"]), args.silver_weight) for s in silver_fit],
            "dev": [(q["query"], {q["model_id"]}, 1.0) for q in dev],
            "silver_dev": [(s["prompt"], set(s["picks_in_catalog"]), 1.0) for s in silver_dev]}
    folds = rc.FoldMaps(args.query_map_folds) if args.query_map_folds else None
    silver_keys = [rc.silver_key(s) for s in silver_fit]
    data = {}
    for name, items in sets.items():
        cache = args.cache / f"pools-{name}-{len(items)}.pkl" if args.cache else None
        maps = None
        if folds and name in ("train", "train_typed", "train_named", "silver_fit"):  # what the map learnt from
            maps = [folds.for_key(silver_keys[i] if name == "silver_fit" else str(min(ans)))
                    for i, (_, ans, _) in enumerate(items)]
        got = pools(retriever, [p for p, _, _ in items], cache, maps)
        data[name] = [(pool, labels(pool[0], ans, model_of), w) for pool, (_, ans, w) in zip(got, items, strict=True)]
    linear_train = data["train"] if linear_rows is None else [data["train"][i] for i in linear_rows]
    fit_data = linear_train + data["silver_fit"]
    if args.typed_weight:  # the linear fit's own queries with their trigger typed
        if not data["train_typed"]:
            parser.error("--typed-weight needs --rerank-typed-weight (the typed pools)")
        at = {i: k for k, i in enumerate(i for i, q in enumerate(train) if rc.typed_prompt(q) is not None)}
        rows = range(len(train)) if linear_rows is None else linear_rows
        fit_data += [(data["train_typed"][at[i]][0], data["train_typed"][at[i]][1], args.typed_weight)
                     for i in rows if i in at]
    coef, intercept = fit(fit_data, args.C, random.Random(1), args.negatives)
    print(f"fitted on {len(fit_data)} queries ({len(silver_fit)} silver)")
    model = {"features": list(ranking.FEATURES), "coef": [round(float(v), 6) for v in coef],
             "intercept": round(intercept, 6),
             "note": f"fitted by benchmarks/fit_retriever.py on {len(linear_train)} real-card train queries + "
                     f"{len(silver_fit)} silver captions (pairwise logistic, calibrated"
                     + (f"; LambdaMART re-ranks the top {args.rerank_top}, learnt from {len(train)} train "
                        f"queries + the silver captions at weight {args.rerank_silver_weight:g}"
                        + (f" + {len(typed)} of them with the trigger typed at weight "
                           f"{args.rerank_typed_weight:g}" if args.rerank_typed_weight else "")
                        + (f" + {len(sets['train_named'])} answers' names as the query at weight "
                           f"{args.rerank_named_weight:g}" if args.rerank_named_weight else "") + ")"
                        if args.rerank_trees else ")"),
             "fitted": datetime.date.today().isoformat()}
    stages = {"linear": ranking.Ranker.from_dict(model)}
    if args.rerank_trees:
        silver = [(pool, y, args.rerank_silver_weight) for pool, y, _ in data["silver_fit"]]
        model["rerank"] = fit_rerank(data["train"] + silver + data["train_typed"] + data["train_named"], coef, args)
        stages["rerank"] = ranking.Ranker.from_dict(model)
    figures: dict[str, dict] = {}
    for stage, ranker in stages.items():
        for name in ("dev", "dev_typed", "silver_dev", "dev_named"):
            evals = [(pool, y, ans) for (pool, y, _), (_, ans, _) in zip(data[name], sets[name], strict=True)]
            r10, r150, mrr = offline_metrics(evals, ranker.order_keys, model_of)
            figures[f"{name} ({stage})"] = {"R@10": round(r10, 4), "R@150": round(r150, 4), "MRR": round(mrr, 4)}
    print("dev (pool ranking):", figures)
    model["dev_pool_figures"] = figures
    if not args.evaluate:
        for name, value in sorted(zip(ranking.FEATURES, coef, strict=True), key=lambda t: -abs(t[1])):
            print(f"  {name:18s} {value:+.3f}")
        args.out.write_text(json.dumps(model, separators=(",", ":")) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
        return 0
    retriever.ranker = ranking.Ranker.from_dict(model)
    dev = rc.read_jsonl(args.recover / "queries_dev.jsonl")
    print("dev (search):", evaluate(retriever, dev, silver_dev))
    return 0


if __name__ == "__main__":
    sys.exit(main())
