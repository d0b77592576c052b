"""Fit the offline refiner's character / real-person model on real Civitai cards with their tags hidden.

Reads the card folder ``bench_refiner.py`` reads, keeps the ``fit`` half of its model-id hash split,
and fits two L2-regularised logistic models over ``person_features`` (numpy Newton steps, no other
dependency): "character or celebrity" on every labelled card, and "celebrity" on those. Each card is
seen three times, as a card without tags, as a file header (stem, triggers, training tags) and as
a bare file (stem + triggers), so the model also serves
folders without cards. The person threshold is the lowest that keeps precision on the fit half at
``--precision`` or above. Writes ``plugins/offline_refiner_person.json`` (rounded weights only: no
card text); check the held-out half with ``bench_refiner.py`` afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
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
    for t in np.arange(0.95, 0.05, -0.01):
        pred = p >= t
        if pred.sum() and (y[pred].mean() >= precision):
            best = float(t)
    return round(best, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", type=Path, default=bench.CARDS)
    parser.add_argument("--l2", type=float, default=3.0)
    parser.add_argument("--precision", type=float, default=0.95, help="target on cards with text")
    parser.add_argument("--precision-files", type=float, default=0.75,
                        help="target on file headers and bare files (a missed character costs as much there)")
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
    for view in ("no-tags", "header", "bare"):
        for r in fit:
            card = bench.VIEWS[view](r.card)
            feats, person, celeb = sets[plugin._PERSON.kind_of(card)]
            feats.append(plugin.person_features(card))
            person.append(r.label in bench.PERSON)
            celeb.append(r.label == "celebrity")
    names = sorted(sets["person"][0][0])
    model: dict[str, object] = {
        "about": "offline refiner person model: logistic weights fitted by benchmarks/fit_refiner.py on the fit "
                 f"half of {len(fit)} tag-labelled Civitai cards (tags hidden, header only, bare), l2={args.l2}",
        "threshold": {"celebrity": 0.5}}
    for key, (feats, person, celeb) in sets.items():
        x = np.array([[f[n] for n in names] for f in feats])
        y, yc = np.array(person, float), np.array(celeb, float)
        w = fit_logistic(x, y, args.l2)
        p = 1 / (1 + np.exp(-np.clip(np.hstack([np.ones((len(x), 1)), x]) @ w, -30, 30)))
        model[key] = named(names, w)
        target = args.precision if key == "person" else args.precision_files
        model["threshold"][key] = threshold_for(p, y, target)  # type: ignore[index]
        print(f"{key}: {len(x)} examples, threshold {model['threshold'][key]}")  # type: ignore[index]
        mask = y == 1
        model[key.replace("person", "celebrity")] = named(names, fit_logistic(x[mask], yc[mask], args.l2))
    args.out.write_text(json.dumps(model, indent=1) + "\n", encoding="utf-8")
    print(f"{len(names)} features; wrote {args.out}")


if __name__ == "__main__":
    main()
