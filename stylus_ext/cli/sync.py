"""``stylus sync civitai``: fetch Civitai cards into the catalog (resumable; see stylus_ext.civitai.sync)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_civitai_arguments(p: argparse.ArgumentParser) -> None:
    """``--api-base`` and ``--delay`` (shared by sync, match and download)."""
    p.add_argument("--api-base", metavar="URL", default=None,
                   help="Civitai API base URL (env STYLUS_CIVITAI_BASE_URL; default https://civitai.com/api/v1); "
                        "the API key comes only from env STYLUS_CIVITAI_API_KEY or an owner-only key file")
    p.add_argument("--delay", type=float, default=None, metavar="S",
                   help="seconds between requests (default 0.75)")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("sync", help="fetch adapter cards from Civitai into the catalog (resumable)",
                       description="Page through Civitai's model list into the catalog. An interrupted run "
                                   "resumes from its last page; changed models update their entries.")
    p.add_argument("source", choices=["civitai"], help="where to sync from")
    add_civitai_arguments(p)
    p.add_argument("--types", default=None, help="model types, comma-separated (default LORA,LoCon,DoRA)")
    p.add_argument("--base-models", default=None, metavar="LIST",
                   help="Civitai base models, comma-separated (e.g. 'SD 1.5,SDXL 1.0,Pony')")
    p.add_argument("--nsfw", action="store_true", default=None, help="include NSFW models (off by default)")
    p.add_argument("--min-downloads", type=int, default=None, metavar="N")
    p.add_argument("--min-rating", type=float, default=None, metavar="R", help="0-5")
    p.add_argument("--query", default=None, help="full-text search")
    p.add_argument("--tag", action="append", default=None, help="required tag (repeatable)")
    p.add_argument("--sort", default=None, help="Civitai sort order (default 'Most Downloaded')")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="at most N models this run; the next run continues (default: all)")
    p.add_argument("--restart", action="store_true", help="ignore a stored cursor and start from page 1")
    p.add_argument("--index", action="store_true", help="then refine, embed and index the new/changed cards")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Any) -> int:
    from stylus_ext.civitai.sync import sync_civitai

    source = ctx.plugins.create(
        "source", "civitai", base_url=args.api_base, min_interval=args.delay, types=args.types,
        base_models=args.base_models, nsfw=args.nsfw, min_downloads=args.min_downloads,
        min_rating=args.min_rating, query=args.query, tags=",".join(args.tag) if args.tag else None,
        sort=args.sort, limit=args.limit)
    catalog = ctx.catalog()
    try:
        report = sync_civitai(catalog, source, restart=args.restart, progress=sys.stderr.isatty())
        print(f"civitai sync: {report.summary()}")
        if report.error:
            print(f"stylus: {report.error}", file=sys.stderr)
            return 1
        if args.index:
            from stylus_ext.indexing import index_catalog

            indexed = index_catalog(catalog, ctx.plugins, progress=sys.stderr.isatty())
            print(f"index: {indexed.summary()}")
        elif report.changed_ids:
            print("run `stylus index` to make the new cards searchable")
        return 0
    finally:
        source.close()
        catalog.close()
