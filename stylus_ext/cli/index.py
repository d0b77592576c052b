"""``stylus index``: refine → embed → build the vector index (incremental, resumable after Ctrl-C).

The refiner defaults to the catalog's current one (else ``offline``). A refiner that costs money
per card (``vision``) is not run from here unless named with ``--refiner``: run ``stylus refine``
for it; ``--refiner none`` skips refining. The encoder defaults to the one the index was built
with (else ``transformers``); switching encoders re-embeds everything.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("index", help="refine, embed and index the catalog (incremental; resumable)",
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    p.add_argument("--encoder", default=None, help="encoder backend (default: the index's, else transformers)")
    p.add_argument("--refiner", default=None, help="refiner backend, or 'none' (default: the catalog's, else offline)")
    p.add_argument("--kind", choices=("auto", "exact", "projected", "faiss", "annoy"), default="auto",
                   help="vector search: exact NumPy, projected (a NumPy PCA first pass), faiss IVF or Annoy "
                        "(auto: from 50K adapters the faster of projected and faiss where measured faster "
                        "than exact, else exact up to 1M)")
    p.add_argument("--force", action="store_true", help="rebuild the index even when nothing changed")
    p.add_argument("--examples", action=argparse.BooleanOptionalAction, default=None,
                   help="embed the cards' example prompts too (default: on, or the catalog's last choice); "
                        "--no-examples embeds about a fifth as many texts in under half the time, for a large "
                        "catalogue on a CPU, at some cost in retrieval and composer quality (see the README)")
    p.set_defaults(func=run)


def _refiner_choice(explicit: str | None) -> str | None:
    if not explicit:
        return "auto"
    return None if explicit.lower() == "none" else explicit


def run(args: argparse.Namespace, ctx: Any) -> int:
    from stylus_ext.index import read_meta
    from stylus_ext.indexing import index_catalog

    catalog = ctx.catalog(create=False)
    try:
        if not catalog.db["adapters"].count and read_meta(catalog) is None:  # nothing to index, nothing stale
            print("note: the catalog has no adapters yet: run `stylus scan DIR` or `stylus import-cards PATH` first")
            return 0
        encoder = args.encoder or ((read_meta(catalog) or {}).get("encoder") or "transformers").partition(":")[0]
        refiner = _refiner_choice(args.refiner)
        report = index_catalog(catalog, ctx.plugins, refiner=refiner, encoder=encoder, progress=True,
                               kind=None if args.kind == "auto" else args.kind, force=args.force,
                               examples=args.examples)
        if report.refine is not None and hasattr(report.refine, "summary"):
            print(report.refine.summary())
        for note in report.notes:
            print(f"note: {note}")
        print(f"indexed {report.summary()}")
    finally:
        catalog.close()
    return 0
