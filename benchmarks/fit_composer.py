"""Fit the offline composer's keep score (``plugins/offline_composer.json``) on real prompts.

Supervision: the real-card TRAIN queries (a card's example prompt → the LoRA its author used, with
its tags, trigger words and name removed) and the ``fit`` half of the silver captions (the paper's
GPT-4o picks). Each prompt goes through the product's path (``Stylus.retrieve`` → ``request``) and
the composer's own steps (``candidate_pairs``); a candidate is positive when it is a version of an
answer. A share of the recover prompts is also offered with its answer removed from the candidates
("leave-answer-out"): then nothing should be kept, which teaches the score that the best remaining
look-alike is usually wrong — the paper's lesson that retrieval alone hurts images.

An L2 logistic regression with sign bounds (scipy; no class weights: the output is a calibrated
probability) is fitted; the keep threshold is the lowest that leaves at least ``--empty`` of our own "no adapter
fits" prompts empty (``benchmarks/data/no_fit_prompts_fit.txt``, apart from the measured set).
Dev figures come from ``bench_real_cards.py``.

    python benchmarks/fit_composer.py [--limit 3000] [--empty 0.9]
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


def collect(stylus, mod, items, leave_out: float, rng: random.Random):
    """Rows of (features, label, group, is_leave_out, is_no_fit, is_character_query)."""
    xs, ys, groups, outs, nofits, chars = [], [], [], [], [], []
    for g, (prompt, answers, character) in enumerate(items):
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
        nofits.append(np.full(len(label), not answers))
        chars.append(np.full(len(label), character))
    return (np.vstack(xs), np.concatenate(ys), np.concatenate(groups), np.concatenate(outs),
            np.concatenate(nofits), np.concatenate(chars))


#: Signs the keep score must respect: evidence in the user's own words never counts against an
#: adapter, narrowness never for it. The train prompts had their trigger words and names removed, so
#: without these bounds a fit learns that word evidence is a bad sign — an artefact of the data.
POSITIVE = ("ret_logit", "ret_rank", "sim", "anchor_trigger", "anchor_title", "anchor_tag", "exact_trigger",
            "overlap", "style_match")
NEGATIVE = ("extras", "missing", "style_for_subject")


def fit_bounded(x, y, names, c: float):
    """L2 logistic regression with sign bounds (scipy L-BFGS-B); returns (coef, intercept)."""
    from scipy.optimize import minimize

    bounds = [(0, None) if n in POSITIVE else (None, 0) if n in NEGATIVE else (None, None) for n in names]
    bounds.append((None, None))
    xb = np.hstack([x, np.ones((len(x), 1))])
    yf = y.astype(np.float64)

    def loss(w):
        z = xb @ w
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
        value = np.sum(np.logaddexp(0, z) - yf * z) + 0.5 / c * np.sum(w[:-1] ** 2)
        grad = xb.T @ (p - yf) + np.r_[w[:-1] / c, 0.0]
        return value, grad

    w0 = np.zeros(xb.shape[1])
    result = minimize(loss, w0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 2000})
    return result.x[:-1], float(result.x[-1])


def choose_keep(prob, y, groups, outs, nofit, chars, empty: float) -> tuple[float, dict[str, float]]:
    """The lowest threshold leaving ``empty`` of the fit no-fit prompts empty; figures at that threshold."""
    best: tuple[float, dict[str, float]] = (0.95, {})
    answered = ~outs & ~nofit
    for keep in np.arange(0.05, 0.96, 0.01):
        kept = prob >= keep
        if round(keep * 100) % 5 == 0:
            held = np.mean([(kept & y)[groups == g].any() for g in np.unique(groups[answered & ~chars])])
            none = np.mean([not kept[groups == g].any() for g in np.unique(groups[nofit])])
            print(f"  keep {keep:.2f}: answer kept {held:.3f}, no-fit empty {none:.3f}")

        def empty_share(mask: np.ndarray, kept: np.ndarray = kept) -> float:
            ids = np.unique(groups[mask])
            return float(np.mean([not kept[groups == gi].any() for gi in ids])) if len(ids) else 1.0

        keep_rate = np.mean([(kept & y)[groups == gi].any() for gi in np.unique(groups[answered & ~chars])])
        per_prompt = np.mean([min(4, kept[groups == gi].sum()) for gi in np.unique(groups[answered])])
        if empty_share(nofit) >= empty:
            return float(round(keep, 2)), {"keep_rate": float(keep_rate), "empty_no_fit": empty_share(nofit),
                                           "empty_leave_out": empty_share(outs),
                                           "adapters_per_prompt": float(per_prompt)}
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    rc.data_arguments(parser)
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--leave-out", type=float, default=0.3)
    parser.add_argument("--empty", type=float, default=0.9)
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--cache", type=Path, default=None, help="file caching the collected rows (outside the repo)")
    parser.add_argument("--out", type=Path, default=HERE.parent / "plugins" / "offline_composer.json")
    args = parser.parse_args()
    from stylus_ext.catalog.db import Catalog
    from stylus_ext.pipeline import Stylus

    catalog = Catalog(rc.ensure_catalog(args.recover / "cards_heldout",
                                        args.catalog or args.recover / "stylus-catalog.db",
                                     index=not args.skip_index), create=False)
    stylus = Stylus(catalog)
    mod = composer_module()
    train = rc.read_jsonl(args.recover / "queries_train.jsonl")
    train = random.Random(0).sample(train, min(args.limit, len(train)))
    items = [(q["query"], {q["model_id"]}, q.get("category") in ("character", "celebrity")) for q in train]
    items += [(s["prompt"], set(s["picks_in_catalog"]), False) for s in rc.silver_rows(args.silver, "fit")]
    no_fit = [line.strip() for line in (HERE / "data" / "no_fit_prompts_fit.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    items += [(p, set(), False) for p in no_fit]
    if args.cache and args.cache.exists():
        with open(args.cache, "rb") as fh:
            x, y, groups, outs, nofit, chars = pickle.load(fh)
    else:
        x, y, groups, outs, nofit, chars = collect(stylus, mod, items, args.leave_out, random.Random(1))
        if args.cache:
            with open(args.cache, "wb") as fh:
                pickle.dump((x, y, groups, outs, nofit, chars), fh)
    print(f"{len(items)} prompts → {len(y)} candidate rows, {int(y.sum())} positive, "
          f"{len(np.unique(groups[outs]))} leave-answer-out prompts")
    coef, intercept = fit_bounded(x, y, mod.PAIR_FEATURES, args.C)
    prob = 1.0 / (1.0 + np.exp(-(x @ coef + intercept)))
    keep, figures = choose_keep(prob, y, groups, outs, nofit, chars, args.empty)
    data = {"features": list(mod.PAIR_FEATURES), "coef": [round(float(v), 6) for v in coef],
            "intercept": round(float(intercept), 6), "keep": keep,
            "note": f"fitted by benchmarks/fit_composer.py on {len(items)} real prompts",
            "fitted": datetime.date.today().isoformat(), "fit_figures": figures}
    print(json.dumps({k: v for k, v in data.items() if k != "coef"}, indent=1))
    for name, value in sorted(zip(mod.PAIR_FEATURES, coef, strict=True), key=lambda t: -abs(t[1])):
        print(f"  {name:18s} {value:+.3f}")
    args.out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
