"""``stylus scan DIR...``: add installed LoRA files to the catalog (incremental)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from stylus_ext.cli.common import source_class


def add_parser(sub: Any) -> None:
    p = sub.add_parser("scan", help="scan LoRA folders into the catalog (incremental; hashes only with --hash)")
    p.add_argument("folders", nargs="*", metavar="DIR",
                   help="LoRA folders (searched recursively); without DIR, --problems lists the catalog's problems")
    p.add_argument("--hash", action="store_true",
                   help="also compute missing SHA256/AutoV3 hashes (slow for big folders; cached)")
    p.add_argument("--source", default="local", metavar="NAME",
                   help="a 'files' catalog source from a plugin (default local; see `stylus plugins`)")
    p.add_argument("--prune", action="store_true",
                   help="remove the entries of vanished files even when that looks like a missing drive or moved "
                        "folder (an empty folder, or most entries at once); their pins, bans and weights are kept "
                        "and return with the files")
    p.add_argument("--problems", action="store_true", help="list every file with a problem (also with -v)")
    p.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="list every problem")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Any) -> int:
    from stylus_ext.catalog.scan import scan_folders

    if not args.folders:
        if not args.problems:
            raise ValueError("give one or more LoRA folders: stylus scan DIR [DIR ...]")
        catalog = ctx.catalog(create=False)
        try:
            problems = catalog.problems()
        finally:
            catalog.close()
        for path, reason in problems:
            print(f"{path}: {reason}")
        print(f"{len(problems)} file(s) with problems", file=sys.stderr)
        return 0
    source_class(ctx.plugins, args.source, "files")
    args.folders = [os.path.expanduser(f) for f in args.folders]  # a quoted "~/sd/models/Lora"
    missing = [f for f in args.folders if not os.path.isdir(f)]
    for folder in missing:
        print(f"stylus: warning: {folder} is not a folder (nothing scanned there; its adapters, if any, "
              "stay in the catalog until a scan of it finds them gone)", file=sys.stderr)
    if len(missing) == len(args.folders):
        return 1
    catalog = ctx.catalog()
    try:
        report = scan_folders(catalog, args.folders, plugins=ctx.plugins, progress=True, source=args.source,
                              prune=args.prune)
        print(f"scanned {report.summary()} in {report.seconds:.2f} s")
        if not report.files and not report.removed:
            print("note: no LoRA files (.safetensors, .pt, .ckpt) found there: is this your WebUI's models/Lora?")
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
