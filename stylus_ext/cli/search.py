"""``stylus search PROMPT``: the retriever's candidates for a prompt (hybrid dense + BM25)."""

from __future__ import annotations

import argparse
from typing import Any

from stylus_ext import lexical, sdk
from stylus_ext.cli.common import add_prompt_arguments, base_model_arg, dumps, iter_prompts


def add_parser(sub: Any) -> None:
    p = sub.add_parser("search", help="retrieve candidate adapters for a prompt")
    add_prompt_arguments(p)
    p.add_argument("-k", type=int, default=20, help="how many candidates (default 20; the composer gets 150)")
    p.add_argument("--json", action="store_true", help="JSON output (JSONL with --input)")
    p.add_argument("--base-model", metavar="FAMILY", default=None, type=base_model_arg,
                   help="target checkpoint family (SD1, SDXL, Pony, Illustrious, Flux, ...): drops "
                        "incompatible adapters, prefers the same family")
    p.add_argument("--installed-only", action="store_true", help="only adapters installed locally")
    p.set_defaults(func=run)


def candidate_json(c: sdk.Candidate) -> dict[str, Any]:
    """One candidate as deterministic JSON (rounded scores, no timings)."""
    a = c.adapter
    out: dict[str, Any] = {
        "id": a.id, "name": a.name, "title": a.title, "category": a.category,
        "base_model": a.card.base_model, "score": round(c.score, 4), "similarity": round(c.similarity, 4),
        "lexical": round(c.lexical, 4), "installed": a.installed, "pinned": a.pinned,
    }
    if a.card.civitai_model_id is not None:
        out["civitai_model_id"] = a.card.civitai_model_id
    return out


def run(args: argparse.Namespace, ctx: Any) -> int:
    from stylus_ext.retrieve import Retriever

    if args.k < 1:
        raise ValueError("-k must be at least 1")
    catalog = ctx.catalog(create=False)
    try:
        retriever = Retriever(catalog, plugins=ctx.plugins)
        batch = bool(args.input)
        for prompt in iter_prompts(args):
            candidates = retriever.search(prompt, args.k, base_model=args.base_model,
                                          installed_only=args.installed_only)
            if args.json or batch:
                print(dumps({"prompt": prompt, "style": "tags" if lexical.is_tag_style(prompt) else "caption",
                             "candidates": [candidate_json(c) for c in candidates]}), flush=batch)
                continue
            if not candidates:
                print("no matching adapters")
            for rank, c in enumerate(candidates, 1):
                a = c.adapter
                flags = ("" if a.installed else " [not installed]") + (" [pinned]" if a.pinned else "")
                print(f"{rank:3d}. {c.score:.3f} (sim {c.similarity:.2f})  {a.name}  "
                      f"({a.card.base_model}, {a.category}) {a.title}{flags}")
        retriever.close()
    finally:
        catalog.close()
    return 0
