"""``stylus scan DIR...``: add installed LoRA files to the catalog (incremental)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("scan", help="scan LoRA folders into the catalog (incremental; hashes only with --hash)")
    p.add_argument("folders", nargs="+", metavar="DIR", help="LoRA folders (searched recursively)")
    p.add_argument("--hash", action="store_true",
                   help="also compute missing SHA256/AutoV3 hashes (slow for big folders; cached)")
    p.add_argument("--problems", action="store_true", help="list every file with a problem (also with -v)")
    p.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="list every problem")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Any) -> int:
    from stylus_ext.catalog.scan import scan_folders

    catalog = ctx.catalog()
    try:
        report = scan_folders(catalog, args.folders, plugins=ctx.plugins, progress=True)
        print(f"scanned {report.summary()} in {report.seconds:.2f} s")
        if report.problems:
            if args.problems or getattr(args, "verbose", 0):
                for path, reason in report.problems:
                    print(f"  {path}: {reason}")
            else:
                print(f"  {len(report.problems)} files have problems (see them with --problems or -v)")
        if args.hash:
            from stylus_ext.catalog.hashing import ensure_hashes

            hashed = ensure_hashes(catalog, progress=True)
            print(f"hashes: {hashed.summary()}")
            for path, reason in hashed.problems:
                print(f"  {path}: {reason}", file=sys.stderr)
    finally:
        catalog.close()
    return 0
