"""``stylus import-cards PATH...``: import Civitai model JSON as catalog entries."""

from __future__ import annotations

import argparse
from typing import Any

from stylus_ext.cli.common import source_class


def add_parser(sub: Any) -> None:
    p = sub.add_parser("import-cards", help="import Civitai model JSON files/folders (adapters not installed)")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="JSON/JSONL files or folders of them: /api/v1/models items or pages, model-version JSON")
    p.add_argument("--source", default="civitai-json", metavar="NAME",
                   help="a 'cards' catalog source from a plugin (default civitai-json; see `stylus plugins`)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Any) -> int:
    from stylus_ext.catalog.cards import import_cards

    source_class(ctx.plugins, args.source, "cards")
    catalog = ctx.catalog()
    try:
        report = import_cards(catalog, args.paths, plugins=ctx.plugins, progress=True, source=args.source)
    finally:
        catalog.close()
    print(f"imported {report.summary()}")
    for path, reason in report.problems:
        print(f"  {path}: {reason}")
    return 0 if report.cards or not report.problems else 1
