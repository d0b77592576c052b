"""``stylus match``: look up local files without Civitai data on Civitai by hash."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from stylus_ext.cli.sync import add_civitai_arguments


def add_parser(sub: Any) -> None:
    p = sub.add_parser("match", help="find the Civitai cards of local LoRA files by hash",
                       description="Hash (lazily, cached) the installed files that lack Civitai metadata and "
                                   "look them up on Civitai. Files Civitai does not know are remembered and "
                                   "not asked again (see --retry-missing).")
    add_civitai_arguments(p)
    p.add_argument("--write-info", action="store_true", help="also write <stem>.civitai.info beside matched files")
    p.add_argument("--retry-missing", action="store_true", help="ask again about files Civitai did not know")
    p.add_argument("--no-autov3", action="store_true",
                   help="do not retry misses by AutoV3 (one request per unknown file)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Any) -> int:
    from stylus_ext.civitai.match import match_files
    from stylus_ext.sdk.civitai.client import CivitaiClient

    client = CivitaiClient.from_env(args.api_base, min_interval=args.delay)
    catalog = ctx.catalog()
    try:
        report = match_files(catalog, client, write_info_files=args.write_info, retry_missing=args.retry_missing,
                             autov3_fallback=not args.no_autov3, progress=sys.stderr.isatty())
        print(f"civitai match: {report.summary()}")
        for path, reason in report.errors:
            print(f"stylus: {path}: {reason}", file=sys.stderr)
        if report.error:
            print(f"stylus: {report.error}", file=sys.stderr)
            return 1
        if report.matched:
            print("run `stylus index` to refresh the matched entries")
        return 0
    finally:
        client.session.close()
        catalog.close()
