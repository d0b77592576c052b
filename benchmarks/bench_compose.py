"""Composer quality and speed: offline composer vs retriever-only (top-3) and random baselines.

Two catalogues, built for real in a temp folder (scan/upsert → offline refiner → MiniLM embeddings →
index): the embedded sample catalogue, and a generated one of ~240 cards with distractors
(``benchmarks/gen_catalog.py``). Labelled prompts: ``benchmarks/data/labelled_prompts_*.jsonl``,
each with groups of acceptable adapters (one group per concept that deserves an adapter) and
adapters that must not be chosen.

Metrics per method: precision (picks inside an expected group / all picks), recall (groups hit /
groups), no-adapter accuracy (prompts that deserve none and got none), forbidden rate (picks of a
forbidden adapter — unnamed characters, look-alikes, NSFW, utility, broad — / all picks).

Speed: per prompt, offline composer + masking + rewriting for N=8 images with 150 candidates
(concept vectors cached, so no encoder forward pass inside), p50/p90; encoder forward passes
(prompt + concepts) reported separately.

``--calibrate`` prints the similarity distribution (best concept ↔ adapter cosine) of right vs
wrong candidates on the generated catalogue, split by whether the pair shares the concept's head
word: the evidence behind the offline composer's thresholds.

    python benchmarks/bench_compose.py [--calibrate] [--only sample|generated]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gen_catalog import make_cards  # noqa: E402

from stylus_ext import sdk  # noqa: E402
from stylus_ext.catalog.db import Catalog  # noqa: E402
from stylus_ext.compose import run_composer  # noqa: E402
from stylus_ext.pipeline import Stylus, StylusSettings  # noqa: E402
from stylus_ext.plugins import PluginManager  # noqa: E402


def build_sample(folder: Path, pm: PluginManager) -> Catalog:
    from stylus_ext.catalog.scan import scan_folders
    from stylus_ext.indexing import index_catalog
    from stylus_ext.sample import make_sample_folder

    src = make_sample_folder(folder / "Lora")
    catalog = Catalog(folder / "sample.db")
    scan_folders(catalog, [str(src)], plugins=pm)
    index_catalog(catalog, pm)
    return catalog


def build_generated(folder: Path, pm: PluginManager) -> Catalog:
    from stylus_ext.catalog.store import upsert_card
    from stylus_ext.indexing import index_catalog

    catalog = Catalog(folder / "generated.db")
    for card in make_cards():
        upsert_card(catalog, card)
    index_catalog(catalog, pm)
    return catalog


def load(name: str) -> list[dict]:
    path = HERE / "data" / f"labelled_prompts_{name}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def score(rows: list[dict], picks: list[list[str]]) -> dict[str, float]:
    tp = n_picks = hit = groups = forb = 0
    none_ok = none_n = 0
    for row, names in zip(rows, picks, strict=True):
        allowed = {n for g in row["expect"] for n in g}
        n_picks += len(names)
        tp += sum(n in allowed for n in names)
        forb += sum(n in set(row["forbid"]) for n in names)
        groups += len(row["expect"])
        hit += sum(bool(set(g) & set(names)) for g in row["expect"])
        if not row["expect"]:
            none_n += 1
            none_ok += not names
    return {"precision": tp / n_picks if n_picks else 1.0, "recall": hit / groups if groups else 1.0,
            "no_adapter_acc": none_ok / none_n if none_n else 1.0, "forbidden": forb / n_picks if n_picks else 0.0,
            "picks_per_prompt": n_picks / len(rows)}


def run_catalog(label: str, catalog: Catalog, rows: list[dict], pm: PluginManager, calibrate: bool,
                failures: bool = False) -> None:
    stylus = Stylus(catalog, pm, StylusSettings(top_k=150))
    offline = pm.create("composer", "offline")
    rng = random.Random(7)
    all_ids = [a for a in catalog.adapters()]
    results: dict[str, list[list[str]]] = {"offline": [], "retriever top-3": [], "random 2": []}
    t_compose, t_encode, n_cands = [], [], []
    cal_right, cal_wrong_anch, cal_wrong_free = [], [], []
    for row in rows:
        prompt = row["prompt"]
        t0 = time.perf_counter()
        cands = stylus.retrieve(prompt)
        request = stylus.request(prompt, cands)
        concepts = [c.text for c in sdk.parse_prompt(prompt).topical]
        if concepts and request.encode is not None:
            request.encode(concepts)  # warm the concept-vector cache: forward passes timed here
        t_encode.append(time.perf_counter() - t0)
        n_cands.append(len(cands))
        # composer + masking + rewriting for 8 images, encoder forward passes excluded (cached)
        t1 = time.perf_counter()
        res = run_composer(request, "offline", plugins=pm, instance=offline)
        by_id = {c.adapter.id: c.adapter for c in cands}
        from stylus_ext.pipeline import Chosen, Selection

        sel = Selection(prompt, tuple((cp.concept, tuple(Chosen(by_id[p.adapter_id], cp.concept, p.reason)
                                                         for p in cp.picks)) for cp in res.composition.concepts),
                        res.composer)
        stylus.images(sel, list(range(8)), "blurry")
        t_compose.append(time.perf_counter() - t1)
        results["offline"].append([c.adapter.name for c in sel.chosen])
        allowed = {n for g in row["expect"] for n in g}
        wrong = [c for c in sel.chosen if c.adapter.name not in allowed]
        missed = [g for g in row["expect"] if not set(g) & {c.adapter.name for c in sel.chosen}]
        if failures and (wrong or missed):
            print(f"[{row['kind']}] {prompt!r}: missed {missed}; wrong: " + "; ".join(c.reason for c in wrong))
        dense = sorted(cands, key=lambda c: (-c.similarity, c.adapter.id))[:3]
        results["retriever top-3"].append([c.adapter.name for c in dense])
        results["random 2"].append([a.name for a in rng.sample(all_ids, 2)])
        if calibrate and concepts and request.candidate_vectors is not None:
            cv = request.encode(concepts)
            sims = cv @ np.asarray(request.candidate_vectors).T
            allowed = {n for g in row["expect"] for n in g}
            heads = {sdk.head_noun(c) for c in concepts}
            for j, c in enumerate(cands):
                s = float(sims[:, j].max())
                words = set(sdk.content_words(f"{c.adapter.title} {c.adapter.name} {' '.join(c.adapter.card.tags)}"))
                if c.adapter.name in allowed:
                    cal_right.append(s)
                elif heads & words:
                    cal_wrong_anch.append(s)
                else:
                    cal_wrong_free.append(s)
    print(f"\n== {label}: {catalog.count()} adapters, {len(rows)} labelled prompts, "
          f"{statistics.mean(n_cands):.0f} candidates/prompt")
    print(f"{'method':18} {'precision':>9} {'recall':>7} {'no-adapter acc':>15} {'forbidden':>10} {'picks/prompt':>13}")
    for method, picks in results.items():
        m = score(rows, picks)
        print(f"{method:18} {m['precision']:9.1%} {m['recall']:7.1%} {m['no_adapter_acc']:15.1%} "
              f"{m['forbidden']:10.1%} {m['picks_per_prompt']:13.2f}")
    kinds = sorted({r["kind"] for r in rows})
    per_kind = []
    for k in kinds:
        idx = [i for i, r in enumerate(rows) if r["kind"] == k]
        m = score([rows[i] for i in idx], [results["offline"][i] for i in idx])
        per_kind.append(f"{k} P{m['precision']:.0%}/R{m['recall']:.0%}/none{m['no_adapter_acc']:.0%}")
    print("offline by kind: " + ", ".join(per_kind))
    tc = sorted(t_compose)
    te = sorted(t_encode)
    print(f"speed: composer+mask+rewrite (8 images) p50 {tc[len(tc) // 2] * 1e3:.1f} ms, "
          f"p90 {tc[int(len(tc) * 0.9)] * 1e3:.1f} ms; retrieval+encoder forward passes p50 "
          f"{te[len(te) // 2] * 1e3:.1f} ms")
    if calibrate:
        def q(xs: list[float]) -> str:
            if not xs:
                return "n=0"
            a = np.asarray(xs)
            return (f"n={len(a)} p5 {np.percentile(a, 5):.2f} p25 {np.percentile(a, 25):.2f} p50 "
                    f"{np.percentile(a, 50):.2f} p95 {np.percentile(a, 95):.2f} p99 {np.percentile(a, 99):.2f}")
        print("calibration (best concept↔adapter cosine):")
        print(f"  right pairs:                 {q(cal_right)}")
        print(f"  wrong, sharing a head word:  {q(cal_wrong_anch)}")
        print(f"  wrong, no shared head word:  {q(cal_wrong_free)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--only", choices=("sample", "generated"))
    ap.add_argument("--keep", metavar="DIR", help="build the catalogues in DIR and reuse them next time")
    ap.add_argument("--failures", action="store_true", help="print the offline composer's mistakes")
    args = ap.parse_args()
    pm = PluginManager(entry_points_enabled=False, user_dir=Path(tempfile.mkdtemp()))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for name, build in (("sample", build_sample), ("generated", build_generated)):
            if args.only not in (None, name):
                continue
            db = folder / f"{name}.db"
            catalog = Catalog(db) if args.keep and db.exists() else build(folder, pm)
            run_catalog(f"{name} catalogue", catalog, load(name), pm, args.calibrate, args.failures)


if __name__ == "__main__":
    main()
