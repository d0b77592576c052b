"""Fit the offline composer's keep score (``plugins/offline_composer.json``) on real prompts.

Supervision, each prompt through the product's path (``Stylus.retrieve`` → ``request``) and the
composer's own steps (``candidate_pairs``: the candidates it weighs, the retriever's best
``CONSIDER``; the shipped score was fitted over all 150, whose features for those rows are the same);
a candidate is positive when it is a version of an answer:

- the real-card TRAIN queries (a card's example prompt → the LoRA its author used, with its tags,
  trigger words and name removed);
- the ``fit`` half of the silver captions (the paper's GPT-4o composer's picks);
- our own "no adapter fits" prompts (``benchmarks/data/no_fit_prompts_fit.txt``, apart from the measured
  set; short and long, captions and tag lists), weighted up (``--no-fit-weight``): they are few, and
  they are what teaches the score to refuse.

The retriever's score reads the query map (``fit_query_map.py``), which was fitted on these same
train and silver prompts: ``--query-map-folds`` searches each through the out-of-fold map that never
saw it, so the score learns how far a retriever score is to be trusted on a prompt it did not learn.

``--typed-weight`` also fits on those recover prompts with their trigger typed (measured, not used:
README). The score is a sign-bounded L2 logistic regression (scipy). ``--model trees`` fits gradient-boosted
trees instead (scikit-learn at fit time only; depth 3, 100 steps; word evidence monotone), which the
composer also reads (evaluated in NumPy); why the logistic ships is in the README.

The keep threshold is chosen on no-fit prompts the fit did not see: two folds of them, each fitted
without one half and thresholded on it (the lowest bar leaving ``--empty`` of that half empty); the
shipped bar is the mean of the two. Measured
reasons for the choices (``--leave-out``, ``--recover-weight``) are in the README's owner's decisions.
Dev figures come from ``bench_real_cards.py``.

    python benchmarks/fit_composer.py [--limit 1500] [--empty 0.9] [--cache FILE] [--query-map-folds DIR]
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


def composer_module():
    from stylus_ext.plugins import get_plugins

    return sys.modules[get_plugins().backend_class("composer", "offline").__module__]


def collect(stylus, mod, items, leave_out: float, rng: random.Random, maps: list | None = None):
    """Rows of (features, label, group, source, is_leave_out, is_character_query) for ``items`` of
    (prompt, answers, is_character, source); ``maps``: the query map each prompt is searched through
    (out-of-fold maps; None: the shipped one)."""
    xs, ys, groups, outs, sources, chars = [], [], [], [], [], []
    shipped = stylus.retriever.query_map
    for g, (prompt, answers, character, source) in enumerate(items):
        stylus.retriever.query_map = maps[g] if maps is not None and maps[g] is not None else shipped
        candidates = stylus.retrieve(prompt)
        out = bool(answers) and rng.random() < leave_out
        if out:
            candidates = [c for c in candidates if c.adapter.card.civitai_model_id not in answers]
        request = stylus.request(prompt, candidates)
        pairs = mod.candidate_pairs(request)
        if not pairs["rows"]:
            continue
        label = np.array([request.candidates[j].adapter.card.civitai_model_id in answers for j in pairs["rows"]])
        xs.append(pairs["features"])
        ys.append(label)
        groups.append(np.full(len(label), g))
        outs.append(np.full(len(label), out))
        sources.append(np.full(len(label), source))
        chars.append(np.full(len(label), character))
    return (np.vstack(xs), np.concatenate(ys), np.concatenate(groups), np.concatenate(sources),
            np.concatenate(outs), np.concatenate(chars))


#: Signs the keep score must respect: evidence in the user's own words never counts against an
#: adapter, narrowness never for it. The train prompts had their trigger words and names removed, so
#: without these bounds a fit learns that word evidence is a bad sign — an artefact of the data.
POSITIVE = ("ret_logit", "ret_rank", "sim", "anchor_trigger", "anchor_title", "anchor_tag", "exact_trigger",
            "overlap", "style_match", "caption_anchor_title", "caption_anchor_tag", "caption_sim")
NEGATIVE = ("extras", "missing", "style_for_subject")


def fit_bounded(x, y, names, c: float, weight=None):
    """Weighted L2 logistic regression with sign bounds (scipy L-BFGS-B); returns (coef, intercept)."""
    from scipy.optimize import minimize

    bounds = [(0, None) if n in POSITIVE else (None, 0) if n in NEGATIVE else (None, None) for n in names]
    bounds.append((None, None))
    xb = np.hstack([x, np.ones((len(x), 1))])
    yf = y.astype(np.float64)
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)

    def loss(v):
        z = xb @ v
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
        value = np.sum(w * (np.logaddexp(0, z) - yf * z)) + 0.5 / c * np.sum(v[:-1] ** 2)
        grad = xb.T @ (w * (p - yf)) + np.r_[v[:-1] / c, 0.0]
        return value, grad

    result = minimize(loss, np.zeros(xb.shape[1]), jac=True, method="L-BFGS-B", bounds=bounds,
                      options={"maxiter": 2000})
    return result.x[:-1], float(result.x[-1])


def probability(x, coef, intercept):
    return 1.0 / (1.0 + np.exp(-np.clip(x @ coef + intercept, -30, 30)))


def group_max(values, groups, ids):
    return np.array([values[groups == g].max() for g in ids])


def bar_for(prob, groups, ids, empty: float) -> float:
    """The lowest bar (a step of 0.01) that leaves ``empty`` of the prompts ``ids`` with nothing kept."""
    tops = group_max(prob, groups, ids)
    for bar in np.arange(0.02, 0.96, 0.01):
        if np.mean(tops < bar) >= empty:
            return float(round(bar, 2))
    return 0.95


def figures_at(prob, y, groups, sources, chars, bar: float, no_fit_ids) -> dict[str, float]:
    """Keep rate (non-character recover prompts), silver hit, adapters per prompt (≤ 2 kept shown)."""
    kept = prob >= bar
    out: dict[str, float] = {}
    for source in ("recover", "typed", "silver"):
        ids = np.unique(groups[(sources == source) & ~chars])
        if len(ids):
            out[f"{source}_kept"] = float(np.mean([(kept & y)[groups == g].any() for g in ids]))
            out[f"{source}_per_prompt"] = float(np.mean([min(2, kept[groups == g].sum()) for g in ids]))
    out["empty_no_fit"] = float(np.mean(group_max(prob, groups, no_fit_ids) < bar))
    return out


def cross_validated_bar(x, y, groups, sources, chars, fit, empty: float):
    """Two folds of the no-fit prompts: fit without one half, take the bar on it; the mean bar and the
    held-out figures of each fold. ``fit(train_mask)`` returns a function rows → probability."""
    no_fit = np.unique(groups[sources == "no_fit"])
    bars, folds = [], []
    for k in (0, 1):
        held = no_fit[k::2]
        prob = fit(~np.isin(groups, held))(x)
        bar = bar_for(prob, groups, held, empty)
        bars.append(bar)
        folds.append({"bar": bar, **figures_at(prob, y, groups, sources, chars, bar, held)})
    return float(round(np.mean(bars), 2)), folds


#: Trees may use every feature freely except word evidence, which only ever counts for an adapter
#: (monotone): the recover train prompts had their trigger words removed, see POSITIVE.
EVIDENCE = ("anchor_trigger", "anchor_title", "anchor_tag", "exact_trigger", "caption_anchor_title",
            "caption_anchor_tag")


def fit_model(kind: str, x, y, names, weight, c: float) -> dict:
    """The keep model's JSON (the part ``_offline_composer_keep.KeepModel.from_dict`` reads)."""
    if kind == "logistic":
        coef, intercept = fit_bounded(x, y, names, c, weight)
        return {"kind": "logistic", "features": list(names), "coef": [round(float(v), 6) for v in coef],
                "intercept": round(float(intercept), 6)}
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(max_depth=3, max_iter=100, learning_rate=0.1, l2_regularization=1.0,
                                           monotonic_cst=[1 if n in EVIDENCE else 0 for n in names],
                                           random_state=0)
    model.fit(x, y, sample_weight=weight)
    trees = []
    for (predictor,) in model._predictors:  # binary: one tree per boosting step
        nodes = predictor.nodes
        trees.append({"feature": nodes["feature_idx"].tolist(), "threshold": nodes["num_threshold"].tolist(),
                      "left": nodes["left"].tolist(), "right": nodes["right"].tolist(),
                      "leaf": nodes["is_leaf"].astype(bool).tolist(),
                      "value": [round(float(v), 6) for v in nodes["value"]]})
    depth = max(int(p.nodes["depth"].max()) for (p,) in model._predictors)
    return {"kind": "trees", "features": list(names), "baseline": float(np.ravel(model._baseline_prediction)[0]),
            "depth": depth, "trees": trees}


def shipped_form(mod, data: dict, names):
    """rows → probability, computed exactly as the composer will compute it from ``data``."""
    return mod.KeepModel.from_dict({**data, "keep": 0.5}, names).probability


def read_prompts(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    rc.data_arguments(parser)
    parser.add_argument("--limit", type=int, default=1500, help="recover train prompts to use")
    parser.add_argument("--leave-out", type=float, default=0.0,
                        help="share of recover prompts offered with their answer removed (all negative)")
    parser.add_argument("--recover-weight", type=float, default=1.0)
    parser.add_argument("--no-fit-weight", type=float, default=20.0)
    parser.add_argument("--typed-weight", type=float, default=0.0,
                        help="also fit on those recover prompts with their trigger typed, at this weight")
    parser.add_argument("--empty", type=float, default=0.9)
    parser.add_argument("--C", type=float, default=0.1, help="logistic only: inverse L2 strength")
    parser.add_argument("--model", choices=("logistic", "trees"), default="logistic")
    parser.add_argument("--cache", type=Path, default=None, help="file caching the collected rows (outside the repo)")
    parser.add_argument("--query-map-folds", type=Path, default=None,
                        help="out-of-fold query maps (fit_query_map.py --folds-dir) for the train and silver prompts")
    parser.add_argument("--drop", action="append", default=[], help="a feature the fit must not use (repeatable)")
    parser.add_argument("--out", type=Path, default=HERE.parent / "plugins" / "offline_composer.json")
    args = parser.parse_args()
    mod = composer_module()
    if args.cache and args.cache.exists():
        with open(args.cache, "rb") as fh:
            x, y, groups, sources, outs, chars = pickle.load(fh)
    else:
        x, y, groups, sources, outs, chars = collect_all(args, mod)
        if args.cache:
            with open(args.cache, "wb") as fh:
                pickle.dump((x, y, groups, sources, outs, chars), fh)
    if args.typed_weight and not (sources == "typed").any():
        parser.error(f"{args.cache} holds no trigger-typed prompts: collect them (a new --cache) for --typed-weight")
    print(f"{len(np.unique(groups))} prompts → {len(y)} candidate rows, {int(y.sum())} positive, "
          f"{len(np.unique(groups[outs]))} leave-answer-out prompts")
    weight = np.select([sources == "no_fit", sources == "recover", sources == "typed"],
                       [args.no_fit_weight, args.recover_weight, args.typed_weight], 1.0)
    keep_rows = weight > 0
    x, y, groups, sources, outs, chars, weight = (v[keep_rows] for v in (x, y, groups, sources, outs, chars, weight))
    names = list(mod.PAIR_FEATURES)
    for name in args.drop:  # a dropped feature reads 0 everywhere: its weight stays 0
        x[:, names.index(name)] = 0.0

    def fit(train):
        return shipped_form(mod, fit_model(args.model, x[train], y[train], names, weight[train], args.C), names)

    keep, folds = cross_validated_bar(x, y, groups, sources, chars, fit, args.empty)
    for k, fold in enumerate(folds):
        print(f"  fold {k} (held-out no-fit half): " + ", ".join(f"{n} {v:.3f}" for n, v in fold.items()))
    model = fit_model(args.model, x, y, names, weight, args.C)
    data = {**model, "keep": keep,
            "note": f"fitted by benchmarks/fit_composer.py on {len(np.unique(groups))} real prompts",
            "fitted": datetime.date.today().isoformat(),
            "settings": {"model": args.model, "leave_out": args.leave_out, "recover_weight": args.recover_weight,
                         "typed_weight": args.typed_weight,
                         "no_fit_weight": args.no_fit_weight, "C": args.C, "empty": args.empty,
                         "drop": args.drop},
            "cross_validated": [{n: round(v, 3) for n, v in f.items()} for f in folds]}
    print(json.dumps({k: v for k, v in data.items() if k not in ("coef", "trees")}, indent=1))
    if args.model == "logistic":
        for name, value in sorted(zip(names, model["coef"], strict=True), key=lambda t: -abs(t[1])):
            print(f"  {name:18s} {value:+.3f}")
    args.out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


def collect_all(args, mod):
    """Collect the candidate rows of every fit prompt through the product's path."""
    from stylus_ext.catalog.db import Catalog
    from stylus_ext.pipeline import Stylus

    catalog = Catalog(rc.ensure_catalog(args.recover / "cards_heldout",
                                        args.catalog or args.recover / "stylus-catalog.db",
                                        index=not args.skip_index), create=False)
    stylus = Stylus(catalog)
    train = rc.read_jsonl(args.recover / "queries_train.jsonl")
    train = random.Random(0).sample(train, min(args.limit, len(train)))
    items = [(q["query"], {q["model_id"]}, q.get("category") in ("character", "celebrity"), "recover")
             for q in train]
    typed = [(p, q) for q in train if (p := rc.typed_prompt(q)) is not None] if args.typed_weight else []
    items += [(p, {q["model_id"]}, q.get("category") in ("character", "celebrity"), "typed") for p, q in typed]
    keys = [str(q["model_id"]) for q in train] + [str(q["model_id"]) for _, q in typed]
    silver = rc.silver_rows(args.silver, "fit")
    items += [(s["prompt"], set(s["picks_in_catalog"]), False, "silver") for s in silver]
    keys += [rc.silver_key(s) for s in silver]
    items += [(p, set(), False, "no_fit") for p in read_prompts(HERE / "data" / "no_fit_prompts_fit.txt")]
    folds = rc.FoldMaps(args.query_map_folds) if args.query_map_folds else None
    maps = [folds.for_key(k) for k in keys] + [None] * (len(items) - len(keys)) if folds else None
    return collect(stylus, mod, items, args.leave_out, random.Random(1), maps)


if __name__ == "__main__":
    sys.exit(main())
