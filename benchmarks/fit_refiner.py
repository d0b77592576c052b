"""Fit the offline refiner's character / real-person model on real Civitai cards with their tags hidden.

Reads the card folder ``bench_refiner.py`` reads, keeps the ``fit`` half of its model-id hash split
and fits, over ``person_features``, "character or celebrity" on every labelled card (``--model
trees``: scikit-learn's gradient-boosted trees, exported as nodes the plugin walks in plain Python;
``logistic``: L2-regularised logistic regression by numpy Newton steps) and "celebrity" on those
(always logistic). Each card is seen three times, as a card without tags, as a file header (stem,
triggers, training tags) and as a bare file (stem + triggers): one model per kind
(``_offline_refiner_person.kind_of``), so the calls also serve folders without cards. The person
threshold per kind is the lowest whose precision reaches ``--precision`` (cards),
``--precision-files`` (headers) or ``--precision-bare`` on out-of-fold predictions over the fit half (5 folds),
so it is not set on the rows the model saw. Writes ``plugins/offline_refiner_person.json`` (rounded
numbers and general English words only: no card text); check the held-out half with ``bench_refiner.py``
afterwards. The shipped file: ``--kinds person`` (the card model with its word model refitted, the
header and bare models kept as they were).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_refiner as bench

OUT = Path(__file__).resolve().parents[1] / "plugins" / "offline_refiner_person.json"


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, steps: int = 30) -> np.ndarray:
    """Weights (bias first) of an L2-regularised logistic regression, by Newton's method."""
    xb = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(xb.shape[1])
    reg = np.full(xb.shape[1], l2)
    reg[0] = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(xb @ w, -30, 30)))
        grad = xb.T @ (p - y) + reg * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return w


def named(names: list[str], w: np.ndarray) -> dict[str, float]:
    """Weights as ``{"bias": b, feature: w, ...}``, rounded (the file stays small and diff-able)."""
    return {"bias": round(float(w[0]), 3), **{n: round(float(v), 3) for n, v in zip(names, w[1:], strict=True)}}


def threshold_for(p: np.ndarray, y: np.ndarray, precision: float) -> float:
    """Lowest threshold whose precision is at least ``precision`` (0.5 when none reaches it)."""
    best = 0.5
    for t in np.arange(0.95, 0.05, -0.005):
        pred = p >= t
        if pred.sum() and (y[pred].mean() >= precision):
            best = float(t)
    return round(best, 3)


def sigmoid_of(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(np.hstack([np.ones((len(x), 1)), x]) @ w, -30, 30)))


def fit_trees(x: np.ndarray, y: np.ndarray, size: tuple[int, int, float, int]):  # type: ignore[no-untyped-def]
    """Boosted trees of ``size`` = (trees, leaves per tree, learning rate, least rows per leaf)."""
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier
    except ImportError:
        sys.exit("--model trees needs scikit-learn at fit time (pip install scikit-learn); or --model logistic")
    trees, leaves, rate, least = size
    return HistGradientBoostingClassifier(max_iter=trees, max_leaf_nodes=leaves, learning_rate=rate,
                                          min_samples_leaf=least, l2_regularization=1.0, random_state=0).fit(x, y)


def export_trees(model, names: list[str]) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """The fitted trees as ``[feature, threshold, left, right, leaf value]`` nodes (feature -1: a leaf)."""
    trees = []
    for (predictor,) in model._predictors:  # binary: one tree per boosting step
        trees.append([[-1 if leaf else int(f), round(float(t), 4), int(lo), int(hi), round(float(v), 4)]
                      for f, t, lo, hi, leaf, v in zip(
                          predictor.nodes["feature_idx"], predictor.nodes["num_threshold"], predictor.nodes["left"],
                          predictor.nodes["right"], predictor.nodes["is_leaf"], predictor.nodes["value"], strict=True)])
    return {"kind": "trees", "features": names, "baseline": round(float(np.ravel(model._baseline_prediction)[0]), 6),
            "trees": trees}


def fit_person(x: np.ndarray, y: np.ndarray, names: list[str], args: argparse.Namespace, cards: bool
               ) -> tuple[dict[str, object], np.ndarray]:
    """(the exported model, its out-of-fold probabilities on ``x``); ``cards``: the model for cards with
    text (larger trees: more evidence to combine) rather than headers and bare files."""
    size = (args.trees, args.leaves, args.rate, 20) if cards else (args.file_trees, args.file_leaves, 0.1, 40)
    folds = np.arange(len(y)) % 5
    np.random.default_rng(0).shuffle(folds)
    oof = np.zeros(len(y))
    for k in range(5):
        train, test = folds != k, folds == k
        if args.model == "trees":
            oof[test] = fit_trees(x[train], y[train], size).predict_proba(x[test])[:, 1]
        else:
            oof[test] = sigmoid_of(x[test], fit_logistic(x[train], y[train], args.l2))
    if args.model == "trees":
        return export_trees(fit_trees(x, y, size), names), oof
    return named(names, fit_logistic(x, y, args.l2)), oof


def fit_words(bags: list[frozenset[str]], y: np.ndarray, args: argparse.Namespace
              ) -> tuple[dict[str, object], np.ndarray]:
    """The word model (a logistic over which words a card has) and its out-of-fold evidence (the
    probability without the bias, as ``word_features`` gives it).

    Its words are general English only, so it learns how people write about characters and not
    which characters this dump has: entries of the text model's vocabulary (``sdk.word_classes``,
    in corpus-frequency order) ranked below ``--word-rank``, used by at least ``--word-cards`` cards."""
    from stylus_ext.sdk import word_classes

    table = word_classes._table()
    counts = Counter(w for bag in bags for w in bag)
    vocab = sorted(w for w, n in counts.items() if n >= args.word_cards
                   and table.get(w.removeprefix("p:"), (args.word_rank, 0))[0] < args.word_rank)
    column = {w: i for i, w in enumerate(vocab)}
    x = np.zeros((len(bags), len(vocab)))
    for i, bag in enumerate(bags):
        for w in bag:
            if w in column:
                x[i, column[w]] = 1.0
    folds = np.arange(len(y)) % 5
    np.random.default_rng(1).shuffle(folds)
    oof = np.zeros(len(y))
    for k in range(5):
        train, test = folds != k, folds == k
        w = fit_logistic(x[train], y[train], args.word_l2)
        oof[test] = 1 / (1 + np.exp(-np.clip(x[test] @ w[1:], -30, 30)))  # evidence only, as word_features
    w = fit_logistic(x, y, args.word_l2)
    weights = {word: round(float(v), 3) for word, v in zip(vocab, w[1:], strict=True) if abs(v) >= 0.0005}
    return {"bias": round(float(w[0]), 3), "weights": weights}, oof


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", type=Path, default=bench.CARDS)
    parser.add_argument("--model", choices=("trees", "logistic"), default="trees")
    parser.add_argument("--trees", type=int, default=300, help="boosting steps, cards with text (--model trees)")
    parser.add_argument("--leaves", type=int, default=16, help="leaves per tree, cards with text")
    parser.add_argument("--rate", type=float, default=0.05, help="learning rate, cards with text")
    parser.add_argument("--file-trees", type=int, default=200, help="boosting steps, headers and bare files")
    parser.add_argument("--file-leaves", type=int, default=8, help="leaves per tree, headers and bare files")
    parser.add_argument("--l2", type=float, default=3.0, help="logistic regularisation")
    parser.add_argument("--precision", type=float, default=0.955,
                        help="target on cards with text (out-of-fold estimates run a little high: the goal is 0.95)")
    parser.add_argument("--precision-files", type=float, default=0.77,
                        help="target on file headers (a missed character costs as much there)")
    parser.add_argument("--precision-bare", type=float, default=0.80,
                        help="target on bare files (a stem and triggers: less evidence, so a higher bar)")
    parser.add_argument("--word-rank", type=int, default=20000,
                        help="word model: words of the text model's vocabulary ranked below this (0: no word model)")
    parser.add_argument("--kinds", default="person,person_header,person_bare",
                        help="which models to refit (comma-separated); the others stay as the shipped file has them")
    parser.add_argument("--word-kinds", default="person",
                        help="which models get a word model (comma-separated among person, person_header, "
                             "person_bare): only cards with text by default, since the bench's headers hold "
                             "example-prompt terms in place of real training tags, and a word model fitted "
                             "on those filed 7 more of the real user folder's 165 characters wrongly")
    parser.add_argument("--word-cards", type=int, default=10, help="word model: words used by at least this many cards")
    parser.add_argument("--word-l2", type=float, default=10.0, help="word model: logistic regularisation")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    from stylus_ext.plugins import PluginManager

    refiner = PluginManager(user_dir=Path(tempfile.gettempdir()) / "stylus-bench-none",
                            entry_points_enabled=False).create("refiner", "offline")
    plugin = sys.modules[type(refiner).__module__]
    rows, _ = bench.load_rows(args.folder)
    fit = [r for r in rows if r.half == "fit"]
    sets: dict[str, tuple[list[dict[str, float]], list[bool], list[bool]]] = {
        k: ([], [], []) for k in ("person", "person_header", "person_bare")}
    bags: dict[str, list[frozenset[str]]] = {k: [] for k in sets}
    for view in ("no-tags", "header", "bare"):
        for r in fit:
            card = bench.VIEWS[view](r.card)
            kind = plugin._PERSON.kind_of(card)
            feats, person, celeb = sets[kind]
            feats.append(plugin.person_features(card))
            feats[-1].pop("text_words", None)  # the shipped word model's: refitted below, out of fold
            bags[kind].append(plugin._PERSON.card_words(card))
            person.append(r.label in bench.PERSON)
            celeb.append(r.label == "celebrity")
    model_words: dict[str, dict[str, object]] = {}
    kinds = [k for k in args.kinds.split(",") if k in sets]
    if args.word_rank:
        for key, (feats, person, _) in ((k, sets[k]) for k in args.word_kinds.split(",") if k in kinds):
            model_words[key], oof_words = fit_words(bags[key], np.array(person, float), args)
            for f, p in zip(feats, oof_words, strict=True):
                f["text_words"] = float(p)
    names = sorted(sets["person"][0][0])
    model: dict[str, object] = {
        "about": f"offline refiner person model ({args.model}) fitted by benchmarks/fit_refiner.py on the fit "
                 f"half of {len(fit)} tag-labelled Civitai cards (tags hidden, header only, bare)",
        "threshold": {"celebrity": 0.5}}
    kept = json.loads(OUT.read_text(encoding="utf-8")) if len(kinds) < len(sets) else {}
    for key in (k for k in sets if k not in kinds):  # not refitted: kept from the existing file as they are
        if key not in kept:
            sys.exit(f"--kinds leaves out {key}, but {OUT} has no {key} model to keep")
        for name in (key, key.replace("person", "celebrity"), "words_" + key):
            if name in kept:
                model[name] = kept[name]
        model["threshold"][key] = kept["threshold"][key]  # type: ignore[index]
    for key, (feats, person, celeb) in ((k, sets[k]) for k in kinds):
        x = np.array([[f.get(n, 0.0) for n in names] for f in feats])  # no word model: text_words 0
        y, yc = np.array(person, float), np.array(celeb, float)
        model[key], oof = fit_person(x, y, names, args, cards=key == "person")
        target = {"person": args.precision, "person_header": args.precision_files}.get(key, args.precision_bare)
        model["threshold"][key] = threshold_for(oof, y, target)  # type: ignore[index]
        t = model["threshold"][key]  # type: ignore[index]
        pred = oof >= t
        print(f"{key}: {len(x)} examples, threshold {t}; out of fold precision "
              f"{y[pred].mean() if pred.any() else 0:.3f} recall {pred[y == 1].mean():.3f}")
        mask = y == 1
        model[key.replace("person", "celebrity")] = named(names, fit_logistic(x[mask], yc[mask], args.l2))
    for key, words in model_words.items():
        model["words_" + key] = words
        print(f"words_{key}: {len(words['weights'])} words")  # type: ignore[arg-type]
    lines = [f" {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in model.items()]
    args.out.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")
    print(f"{len(names)} features; wrote {args.out}")


if __name__ == "__main__":
    main()
