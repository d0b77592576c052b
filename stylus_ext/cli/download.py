"""``stylus download ADAPTER... --lora-dir DIR``: install catalog adapters from Civitai."""

from __future__ import annotations

import argparse
from typing import Any

from stylus_ext.cli.common import dumps
from stylus_ext.cli.sync import add_civitai_arguments
from stylus_ext.sdk.cards.fileio import fits_int64


def add_parser(sub: Any) -> None:
    p = sub.add_parser("download", help="download catalog adapters from Civitai into a LoRA folder",
                       description="Download (resumable, SHA256-verified) and install adapters. ADAPTER is a "
                                   "catalog id, vNNN for a Civitai version id, or an adapter name.")
    p.add_argument("adapters", nargs="+", metavar="ADAPTER")
    p.add_argument("--lora-dir", required=True, metavar="DIR", help="the WebUI's LoRA folder")
    p.add_argument("--max-size-mb", type=float, default=None, metavar="MB", help="skip larger files")
    p.add_argument("--base-models", default=None, metavar="LIST",
                   help="only these base models (families like SD1,SDXL,Pony or Civitai names), comma-separated")
    p.add_argument("--json", action="store_true", help="JSON output (one line per adapter)")
    add_civitai_arguments(p)
    p.set_defaults(func=run)


def resolve_adapter(catalog: Any, ref: str) -> int | None:
    """Catalog id, ``v<version id>``, or a name/title (exact, case-insensitive)."""
    ref = ref.strip()
    if ref.isascii() and ref.isdigit():
        return int(ref) if catalog.row(int(ref)) else None  # row() answers None beyond 64 bits
    if ref[:1] in "vV" and ref[1:].isascii() and ref[1:].isdigit():
        if not fits_int64(int(ref[1:])):
            return None
        row = next(catalog.rows("civitai_version_id = ?", [int(ref[1:])]), None)
        return int(row["id"]) if row else None
    row = next(catalog.rows("lower(name) = lower(?) or lower(title) = lower(?)", [ref, ref]), None)
    return int(row["id"]) if row else None


def run(args: argparse.Namespace, ctx: Any) -> int:
    from stylus_ext.civitai.download import download_adapter
    from stylus_ext.sdk.civitai.client import CivitaiClient
    from stylus_ext.sdk.options import split_list

    client = CivitaiClient.from_env(args.api_base, min_interval=args.delay)
    catalog = ctx.catalog(create=False)
    failed = 0
    try:
        for ref in args.adapters:
            adapter_id = resolve_adapter(catalog, ref)
            if adapter_id is None:
                failed += 1
                print(dumps({"adapter": ref, "status": "failed", "reason": "not in the catalog"}) if args.json
                      else f"{ref}: not in the catalog")
                continue
            result = download_adapter(catalog, adapter_id, args.lora_dir, max_size_mb=args.max_size_mb,
                                      allowed_base_models=split_list(args.base_models), client=client)
            failed += not result.ready
            if args.json:
                print(dumps({"adapter": ref, "id": result.catalog_id or adapter_id, "status": result.status,
                             "path": result.path, "reason": result.reason, "bytes": result.bytes}))
            else:
                where = f" → {result.path}" if result.path else ""
                print(f"{ref}: {result.status}{where}" + (f" ({result.reason})" if result.reason else ""))
        return 1 if failed else 0
    finally:
        client.session.close()
        catalog.close()
