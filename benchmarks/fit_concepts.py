"""Fit the concept splitter's phrase score (``stylus_ext/sdk/data/concept_scores.json``) on the FIT half.

Every noun phrase the splitter finds offers its sub-spans as candidates ("white boat", "boat",
"white"), every verb without an object offers itself ("sitting"); a candidate is positive when it
equals (after the benchmark's normalisation) one of the paper's concepts for that prompt. A logistic
model over word-class features (:mod:`stylus_ext.sdk.concept_score`; scikit-learn, fitting only) scores
them; the threshold is the one that gives the most exact agreement on the fit half at no more than
``--budget`` concepts per prompt. Then the run score (:mod:`stylus_ext.sdk.concept_spans`,
``data/concept_spans.json``): every run of a sentence's words is a candidate, positive when it equals a
paper concept; a logistic model over its word-class features, and the keep threshold with the most fit
exact at the budget. The held-out half is never read here: ``bench_concepts.py`` reports it.

    python benchmarks/fit_concepts.py [--data PATH] [--budget 2.9] [--c 0.3] [--runs-only --runs-c 0.2]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from bench_concepts import DEFAULT, _norm, half
from sklearn.linear_model import LogisticRegression

from stylus_ext.sdk import concept_score, concept_spans
from stylus_ext.sdk.concepts import parse_prompt


def collect(rows: list[dict]) -> tuple[list[list[str]], list[int], list[int]]:
    """Candidate features, labels and choice (group) numbers of every scored choice in the prompts.

    Group numbers of phrase choices are >= 0 (one per phrase); lone verbs get -1.
    """
    feats, labels, groups = [], [], []
    n_groups = 0
    concept_score.WEIGHTS, concept_score.THRESHOLD = {}, float("inf")
    for row in rows:
        refs = {_norm(c) for c in row["concepts"]} - {""}
        concept_score.RECORDER = []
        parse_prompt(row["prompt"])
        for kind, cands in concept_score.RECORDER:
            group = n_groups if kind == "np" else -1
            n_groups += kind == "np"
            for words, f in cands:
                feats.append(f)
                labels.append(int(_norm(" ".join(words)) in refs))
                groups.append(group)
    concept_score.RECORDER = None
    return feats, labels, groups


def _matrix(feats: list[list[str]]) -> tuple[np.ndarray, list[str]]:
    names = sorted({f for fs in feats for f in fs})
    vocab = {f: i for i, f in enumerate(names)}
    x = np.zeros((len(feats), len(vocab)), dtype=np.float32)
    for r, fs in enumerate(feats):
        x[r, [vocab[f] for f in fs]] = 1.0
    return x, names


def fit_verbs(feats: list[list[str]], labels: list[int], c: float) -> dict[str, float]:
    """Logistic: is a lone verb one of the paper's concepts (calibrated: its threshold sets the budget)."""
    x, names = _matrix(feats)
    model = LogisticRegression(C=c, max_iter=2000).fit(x, np.array(labels))
    weights = {f: round(float(w), 4) for f, w in zip(names, model.coef_[0], strict=True) if abs(w) >= 1e-4}
    weights["bias"] = round(float(model.intercept_[0]), 4)
    return weights


def fit_spans(feats: list[list[str]], labels: list[int], groups: list[int], l2: float,
              steps: int = 400) -> dict[str, float]:
    """Conditional logit: which span of a phrase is the paper's concept (phrases with one, Adam, L2)."""
    g = np.array(groups)
    y = np.array(labels, dtype=np.float64)
    has = np.zeros(g.max() + 1)
    np.add.at(has, g, y)
    keep = has[g] > 0
    x, names = _matrix([f for f, k in zip(feats, keep, strict=True) if k])
    g, y = np.unique(g[keep], return_inverse=True)[1], y[keep]
    w, m, v = np.zeros(x.shape[1]), np.zeros(x.shape[1]), np.zeros(x.shape[1])
    for t in range(1, steps + 1):
        s = x @ w
        s -= np.repeat(np.maximum.reduceat(s, _starts(g)), np.diff(np.append(_starts(g), len(g))))
        e = np.exp(s)
        z_all, z_pos = np.bincount(g, e), np.bincount(g, e * y)
        grad_s = e / z_all[g] - e * y / z_pos[g]  # d(-log P(positive span))/ds
        grad = x.T @ grad_s / (g.max() + 1) + l2 * w
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        w -= 0.05 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return {f: round(float(wi), 4) for f, wi in zip(names, w, strict=True) if abs(wi) >= 1e-4}


def fit_keep(feats: list[list[str]], labels: list[int], groups: list[int], weights: dict[str, float],
             c: float) -> dict[str, float]:
    """Logistic: is the span the span model picks one of the paper's concepts (else the phrase is dropped)."""
    best: dict[int, tuple[float, int]] = {}
    for i, (f, g) in enumerate(zip(feats, groups, strict=True)):
        s = sum(weights.get(x, 0.0) for x in f)
        if g not in best or s > best[g][0]:
            best[g] = (s, i)
    chosen = [i for _, i in best.values()]
    x, names = _matrix([feats[i] for i in chosen])
    model = LogisticRegression(C=c, max_iter=2000).fit(x, np.array([labels[i] for i in chosen]))
    out = {"keep:" + f: round(float(w), 4) for f, w in zip(names, model.coef_[0], strict=True) if abs(w) >= 1e-4}
    out["keep:bias"] = round(float(model.intercept_[0]), 4)
    return out


def _starts(g: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.r_[True, g[1:] != g[:-1]])


def measure(rows: list[dict]) -> tuple[float, float]:
    """(exact agreement, concepts per prompt) of the splitter as it is now."""
    exact = n = ours = 0
    for row in rows:
        topical = parse_prompt(row["prompt"]).topical
        got = {_norm(c.text) for c in topical}
        ours += len(topical)
        for ref in ({_norm(c) for c in row["concepts"]} - {""}):
            n += 1
            exact += ref in got
    return exact / max(n, 1), ours / max(len(rows), 1)


def collect_runs(rows: list[dict]) -> tuple[list[list[str]], list[int]]:
    """Features and labels of every candidate run of every sentence (the chunker's concepts as they are)."""
    feats, labels = [], []
    saved, concept_spans.WEIGHTS = concept_spans.WEIGHTS, {}
    for row in rows:
        refs = {_norm(c) for c in row["concepts"]} - {""}
        concept_spans.RECORDER = []
        parse_prompt(row["prompt"])
        for cands in concept_spans.RECORDER:
            for text, f in cands:
                feats.append(f)
                labels.append(int(_norm(text) in refs))
    concept_spans.RECORDER, concept_spans.WEIGHTS = None, saved
    return feats, labels


def fit_runs(rows: list[dict], c: float, budget: float, out: str, min_count: int = 60) -> None:
    """Logistic P(run is a paper concept); the keep threshold is the best fit exact within the budget."""
    from scipy.sparse import csr_matrix

    feats, labels = collect_runs(rows)
    print(f"{len(labels)} candidate runs, {sum(labels)} positive", file=sys.stderr)
    counts = Counter(f for fs in feats for f in fs)
    vocab = {f: i for i, f in enumerate(sorted(f for f, k in counts.items() if k >= min_count))}
    feats = [[f for f in fs if f in vocab] for fs in feats]
    cols = [vocab[f] for fs in feats for f in fs]
    ptr = np.cumsum([0] + [len(fs) for fs in feats])
    x = csr_matrix((np.ones(len(cols), dtype=np.float32), cols, ptr), shape=(len(feats), len(vocab)))
    model = LogisticRegression(C=c, max_iter=3000).fit(x, np.array(labels))
    weights = {f: round(float(w), 4) for f, w in zip(vocab, model.coef_[0], strict=True) if abs(w) >= 0.01}
    weights["bias"] = round(float(model.intercept_[0]), 4)
    concept_spans.WEIGHTS = weights
    best = None
    for t in np.arange(0.25, 0.3, 0.005):
        concept_spans.THRESHOLD = float(t)
        exact, per = measure(rows)
        print(f"  run threshold {t:.3f}: exact {exact:.1%}, {per:.3f} concepts/prompt", file=sys.stderr)
        if per <= budget and (best is None or exact > best[1]):
            best = (round(float(t), 3), exact, per)
    if best is None:
        raise SystemExit("no run threshold meets the budget")
    concept_spans.THRESHOLD = best[0]
    print(f"chosen run threshold {best[0]}: fit exact {best[1]:.1%} at {best[2]:.3f} concepts/prompt")
    data = {"threshold": best[0], "budget": budget, "c": c, "weights": dict(sorted(weights.items()))}
    Path(out).write_text(json.dumps(data, indent=0) + "\n", encoding="utf-8")
    print(f"wrote {out} ({len(weights)} weights)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DEFAULT))
    ap.add_argument("--budget", type=float, default=2.9, help="most concepts per prompt on the fit half")
    ap.add_argument("--c", type=float, default=0.3, help="inverse L2 strength of the logistic model")
    ap.add_argument("--l2", type=float, default=1e-3, help="L2 strength of the span model")
    ap.add_argument("--out", default=str(concept_score.WEIGHTS_PATH))
    ap.add_argument("--runs-c", type=float, default=0.2, help="inverse L2 strength of the run model")
    ap.add_argument("--runs-out", default=str(concept_spans.WEIGHTS_PATH))
    ap.add_argument("--min-count", type=int, default=60, help="a run feature seen fewer times is dropped")
    ap.add_argument("--runs-only", action="store_true", help="keep the chunker's weights, refit the run model")
    args = ap.parse_args()
    rows = [json.loads(line) for line in Path(args.data).read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if half(r["prompt"]) == "fit"]
    if not args.runs_only:
        saved, concept_spans.WEIGHTS = concept_spans.WEIGHTS, {}
        fit_chunker(rows, args)
        concept_spans.WEIGHTS = saved
    fit_runs(rows, args.runs_c, args.budget, args.runs_out, args.min_count)


def fit_chunker(rows: list[dict], args: argparse.Namespace) -> None:
    """The chunker's phrase and verb scores (``concept_scores.json``), measured without the run model."""
    feats, labels, groups = collect(rows)
    print(f"{len(rows)} fit prompts, {len(labels)} candidates, {sum(labels)} positive", file=sys.stderr)
    verb = [i for i, g in enumerate(groups) if g < 0]
    span = [i for i, g in enumerate(groups) if g >= 0]
    weights = fit_verbs([feats[i] for i in verb], [labels[i] for i in verb], args.c)
    weights.update(fit_spans([feats[i] for i in span], [labels[i] for i in span], [groups[i] for i in span],
                             args.l2))
    weights.update(fit_keep([feats[i] for i in span], [labels[i] for i in span], [groups[i] for i in span],
                            weights, args.c))
    concept_score.WEIGHTS = weights
    best = None
    # (phrase, verb) thresholds: a wider search moves fit exact by < 0.2 points at the budget
    grid = [(-99.0, -0.6), (-1.0, -0.8), (-1.0, -0.9)] + [(tp, t) for tp in (-0.8, -0.7, -0.6, -0.5)
                                                          for t in (-1.6, -1.4, -1.2, -1.0)]
    for tp, t in grid:
        concept_score.PHRASE_THRESHOLD, concept_score.THRESHOLD = tp, float(t)
        exact, per = measure(rows)
        print(f"  phrase {tp:+.1f} verb {t:+.1f}: exact {exact:.1%}, {per:.3f} concepts/prompt", file=sys.stderr)
        if per <= args.budget and (best is None or exact > best[2]):
            best = (tp, float(t), exact, per)
    if best is None:
        raise SystemExit("no threshold meets the budget")
    concept_score.PHRASE_THRESHOLD, concept_score.THRESHOLD = best[0], best[1]  # what the run score sees
    print(f"chosen phrase {best[0]:+.1f} verb {best[1]:+.1f}: fit exact {best[2]:.1%} at {best[3]:.3f} concepts/prompt")
    out = {"threshold": round(best[1], 2), "phrase_threshold": best[0], "budget": args.budget, "c": args.c,
           "weights": dict(sorted(weights.items()))}
    Path(args.out).write_text(json.dumps(out, indent=0) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({len(weights)} weights)")


if __name__ == "__main__":
    main()
