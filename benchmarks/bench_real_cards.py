"""Real-card benchmark: retrieval and composition on ~8,000 real Civitai cards, the product's own path.

Data (built outside the repo, see ``../shared/eval/README.md``; the dump has no licence, so only
aggregate figures are printed): ``recover`` — a card's own example prompt with its ``<lora:>`` tags,
trigger words and name removed; the answer is that card. ``silver`` — COCO/PartiPrompts captions
with the adapters the Stylus paper's GPT-4o composer picked (hash-split: the ``fit`` half may be
used for fitting, figures here are on the ``dev`` half). ``benchmarks/data/no_fit_prompts.txt`` —
prompts of our own that no adapter should fit.

The catalogue is built with ``stylus import-cards`` + ``stylus index``; retrieval is
``Retriever.search`` (as ``stylus search``), composition ``Stylus.select`` (as ``stylus compose``,
offline composer). Printed:

- retrieval R@1 / R@10 / R@150 / MRR overall, by category and by prompt style, against a plain BM25
  over card text + example prompts (the baseline the retriever must never fall below); also with the
  trigger typed, and with the card's name as the whole query;
- silver R@10 / R@150 / top-3 hit;
- composer: keep rate of the true adapter (non-character recover queries; and, on the queries that
  had one, with the trigger typed: the original prompt less its ``<lora:>`` tags; and with the card's
  name as the whole query: ``realcards.name_query``), adapters per prompt,
  a pick among the paper's picks (silver), nothing added to no-fit prompts, a character picked for
  prompts that name none, Effective LoRA Count of the picks (exp entropy) vs retriever-only top-3;
- time per query.

    python benchmarks/bench_real_cards.py [--split dev|train] [--limit N] [--no-compose]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import realcards as rc  # noqa: E402

CHARACTER = ("character", "celebrity")


def _bm25_baseline(retriever, prompt: str, model_of: dict[int, int]) -> list[int]:
    from stylus_ext import bm25, lexical

    lex = retriever._lexical()
    scores = lex.scores("all", bm25.tokens(lexical.clean_prompt(prompt)))
    top = np.argsort(-scores, kind="stable")[:600]
    out: dict[int, None] = {}
    for row in top:
        if scores[row] <= 0:
            break
        mid = model_of.get(int(lex.ids[row]))
        if mid is not None:
            out.setdefault(mid, None)
    return list(out)


def retrieval(retriever, queries, silver, model_of) -> None:
    from stylus_ext import lexical

    groups: dict[str, rc.RankStats] = defaultdict(rc.RankStats)
    base: dict[str, rc.RankStats] = defaultdict(rc.RankStats)
    times = []
    for q in queries:
        t0 = time.perf_counter()
        ranked = rc.model_ids(c.adapter for c in retriever.search(q["query"], 150))
        times.append(time.perf_counter() - t0)
        rank = rc.rank_of(q["model_id"], ranked)
        b_rank = rc.rank_of(q["model_id"], _bm25_baseline(retriever, q["query"], model_of))
        style = "tags" if lexical.is_tag_style(q["query"]) else "caption"
        for key in ("all", f"category={q.get('category') or 'none'}", f"style={style}"):
            groups[key].add(rank)
            base[key].add(b_rank)
    cols = ("n", "R@1", "R@10", "R@150", "MRR")
    print("\n== recover: retrieval (Retriever.search, one version per model)")
    print(rc.table(sorted(((k, v.row()) for k, v in groups.items()), key=lambda kv: (kv[0] != "all", kv[0])), cols))
    print("-- plain BM25 over card text + example prompts (baseline)")
    print(rc.table([(k, base[k].row()) for k in ("all", "style=tags", "style=caption") if k in base], cols))
    print(f"search time per query: p50 {statistics.median(times) * 1000:.1f} ms, "
          f"p90 {np.percentile(times, 90) * 1000:.1f} ms")
    # users often type the trigger; the fit's recover queries had it removed
    typed = rc.RankStats()
    for q in queries:
        if (prompt := rc.typed_prompt(q)) is not None:
            typed.add(rc.rank_of(q["model_id"], rc.model_ids(c.adapter for c in retriever.search(prompt, 150))))
    print("-- with the trigger typed (the original prompt less its <lora:> tags)")
    print(rc.table([("typed", typed.row())], cols))
    # ... or ask for an adapter by its name: a query the recover set never holds (it removes names)
    named = rc.RankStats()
    for name, model in rc.named_queries(queries, rc.titles(retriever.catalog)):
        named.add(rc.rank_of(model, rc.model_ids(c.adapter for c in retriever.search(name, 150))))
    print("-- the card's name as the whole query (its title less brackets and versions)")
    print(rc.table([("named", named.row())], cols))

    r10 = r150 = top3 = 0.0
    b10 = b150 = 0.0
    for s in silver:
        picks = set(s["picks_in_catalog"])
        ranked = rc.model_ids(c.adapter for c in retriever.search(s["prompt"], 150))
        baseline = _bm25_baseline(retriever, s["prompt"], model_of)
        r10 += len(picks & set(ranked[:10])) / len(picks)
        r150 += len(picks & set(ranked[:150])) / len(picks)
        top3 += bool(picks & set(ranked[:3]))
        b10 += len(picks & set(baseline[:10])) / len(picks)
        b150 += len(picks & set(baseline[:150])) / len(picks)
    n = max(1, len(silver))
    print(f"\n== silver (dev half, {len(silver)} captions): R@10 {r10 / n:.3f}  R@150 {r150 / n:.3f}  "
          f"top-3 hit {top3 / n:.3f}   | plain BM25: R@10 {b10 / n:.3f}  R@150 {b150 / n:.3f}")


def composition(catalog, queries, silver, no_fit, retriever) -> None:
    from stylus_ext.pipeline import Stylus, StylusSettings

    stylus = Stylus(catalog, settings=StylusSettings(), retriever=retriever)
    times = []

    def chosen(prompt: str):
        t0 = time.perf_counter()
        sel = stylus.select(prompt)
        times.append(time.perf_counter() - t0)
        return [c.adapter for c in sel.chosen]

    kept = total = 0
    per_prompt = []
    char_unnamed = [0, 0]
    for q in queries:
        picks = chosen(q["query"])
        per_prompt.append(len(picks))
        if q.get("category") not in CHARACTER:
            total += 1
            kept += q["model_id"] in {a.card.civitai_model_id for a in picks}
            char_unnamed[0] += any(a.category in CHARACTER for a in picks)
            char_unnamed[1] += 1
    # the same queries as a user who types the trigger writes them: the example prompt less only its
    # <lora:> tags (the fitted keep score never saw a trigger: its train prompts had them removed)
    typed = {kind: [0, 0] for kind in ("non-character", "character")}
    for q in queries:
        if (prompt := rc.typed_prompt(q)) is not None:
            got = typed["character" if q.get("category") in CHARACTER else "non-character"]
            picks = chosen(prompt)
            got[0] += q["model_id"] in {a.card.civitai_model_id for a in picks}
            got[1] += 1
    character_of = {q["model_id"]: q.get("category") in CHARACTER for q in queries}
    named = {kind: [0, 0, 0] for kind in ("non-character", "character")}
    for name, model in rc.named_queries(queries, rc.titles(catalog)):
        got = named["character" if character_of[model] else "non-character"]
        picks = chosen(name)
        got[0] += model in {a.card.civitai_model_id for a in picks}
        got[1] += 1
        # another card of that name ("Tsunade (Naruto) LoRa" for the "tsunade" of "Tsunade | Naruto")
        got[2] += model in {a.card.civitai_model_id for a in picks} or any(
            rc.same_name(name, a.title) for a in picks)
    among = 0
    silver_picks: list[int] = []
    retriever_picks: list[int] = []
    silver_counts = []
    for s in silver:
        picks = chosen(s["prompt"])
        silver_counts.append(len(picks))
        mids = [a.card.civitai_model_id for a in picks if a.card.civitai_model_id is not None]
        silver_picks += mids
        retriever_picks += rc.model_ids(c.adapter for c in retriever.search(s["prompt"], 10))[:3]
        among += bool(set(mids) & set(s["picks_in_catalog"]))
        char_unnamed[0] += any(a.category in CHARACTER for a in picks)
        char_unnamed[1] += 1
    empty = 0
    for prompt in no_fit:
        picks = chosen(prompt)
        empty += not picks
        char_unnamed[0] += any(a.category in CHARACTER for a in picks)
        char_unnamed[1] += 1
    n_s = max(1, len(silver))
    print("\n== composer (Stylus.select, offline)")
    print(f"recover: keeps the true adapter in {kept / max(1, total):.3f} of {total} non-character queries; "
          f"{statistics.mean(per_prompt):.2f} adapters per prompt")
    print("recover with the trigger typed (original prompt less its <lora:> tags): keeps the true adapter in "
          + ", ".join(f"{k / max(1, n):.3f} of {n} {kind}" for kind, (k, n) in typed.items()) + " queries")
    print("the card's name as the whole query: keeps that adapter in "
          + ", ".join(f"{k / max(1, n):.3f} of {n} {kind}" for kind, (k, n, _) in named.items())
          + " queries; that adapter or another of the same name in "
          + ", ".join(f"{a / max(1, n):.3f}" for a, n in ((a, n) for _, n, a in named.values())))
    print(f"silver: a pick among the paper's picks in {among / n_s:.3f}; "
          f"{statistics.mean(silver_counts) if silver_counts else 0:.2f} adapters per prompt")
    print(f"no-fit prompts: nothing added to {empty / max(1, len(no_fit)):.3f} of {len(no_fit)}")
    print(f"a character picked for {char_unnamed[0] / max(1, char_unnamed[1]):.3f} of {char_unnamed[1]} "
          f"prompts naming none")
    print(f"Effective LoRA Count on silver: composer {rc.effective_count(silver_picks):.1f} "
          f"({len(set(silver_picks))} distinct) vs retriever-only top-3 {rc.effective_count(retriever_picks):.1f} "
          f"({len(set(retriever_picks))} distinct)")
    print(f"compose time per prompt (retrieve + compose): p50 {statistics.median(times) * 1000:.1f} ms, "
          f"p90 {np.percentile(times, 90) * 1000:.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    rc.data_arguments(parser)
    parser.add_argument("--split", choices=("dev", "train"), default="dev")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--no-compose", action="store_true")
    parser.add_argument("--no-retrieval", action="store_true")
    args = parser.parse_args()
    if not (args.recover / "queries_dev.jsonl").exists():
        print(f"skipped: no real-card sets at {args.recover} (build them: ../shared/eval/README.md, "
              f"or set STYLUS_EVAL_DIR)")
        return 0
    from stylus_ext.catalog.db import Catalog
    from stylus_ext.retrieve import Retriever

    catalog_path = rc.ensure_catalog(args.recover / "cards_heldout",
                                     args.catalog or args.recover / "stylus-catalog.db",
                                     index=not args.skip_index)
    catalog = Catalog(catalog_path, create=False)
    retriever = Retriever(catalog)
    model_of = {int(i): m for i, m in catalog.db.execute("select id, civitai_model_id from adapters")}
    queries = rc.read_jsonl(args.recover / f"queries_{args.split}.jsonl")
    silver = rc.silver_rows(args.silver, "dev") if (args.silver / "silver.jsonl").exists() else []
    if args.limit:
        queries, silver = queries[:args.limit], silver[:args.limit]
    no_fit = [line.strip() for line in (HERE / "data" / "no_fit_prompts.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    print(f"catalogue: {catalog.count()} cards; {len(queries)} recover {args.split} queries, "
          f"{len(silver)} silver captions, {len(no_fit)} no-fit prompts; ranker: "
          f"{retriever.ranker.info.get('note', retriever.ranker.info.get('fitted', ''))}")
    if not args.no_retrieval:
        retrieval(retriever, queries, silver, model_of)
    if not args.no_compose:
        composition(catalog, queries, silver, no_fit, retriever)
    return 0


if __name__ == "__main__":
    sys.exit(main())
