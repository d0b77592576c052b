"""``stylus pin|unpin|ban|unban ADAPTER`` and ``stylus weight ADAPTER W`` / ``--clear``.

ADAPTER is a catalog id or a name (``<lora:NAME>``, file stem, or exact title).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from stylus_ext.sdk.cards.fileio import fits_int64

ACTIONS = {
    "pin": ("always offer this adapter to the composer", {"pinned": True}),
    "unpin": ("undo pin", {"pinned": False}),
    "ban": ("never use this adapter", {"banned": True}),
    "unban": ("undo ban", {"banned": False}),
}


def add_parser(sub: Any) -> None:
    for action, (help_text, _) in ACTIONS.items():
        p = sub.add_parser(action, help=help_text)
        p.add_argument("adapter", metavar="ADAPTER", help="catalog id or name")
        p.set_defaults(func=run, action=action)
    p = sub.add_parser("weight", help="override an adapter's weight (or --clear the override)")
    p.add_argument("adapter", metavar="ADAPTER", help="catalog id or name")
    p.add_argument("value", nargs="?", type=float, help="weight, e.g. 0.6")
    p.add_argument("--clear", action="store_true", help="remove the override")
    p.set_defaults(func=run, action="weight")


def resolve_adapter(catalog: Any, ref: str) -> int:
    """Catalog id for ``ref``: an id, a name, an alias, a file stem, or an exact title."""
    ref = ref.strip()
    if ref.isascii() and ref.isdigit():
        if len(ref) > 19 or not fits_int64(int(ref)):
            raise LookupError(f"no adapter with id {ref[:30]}{'…' if len(ref) > 30 else ''}: catalog ids are "
                              "at most 19 digits (use `stylus search` to find its id)")
        if catalog.row(int(ref)) is not None:
            return int(ref)
    for column in ("name", "alias", "title"):
        ids = [r["id"] for r in catalog.rows(f"{column} = ?", [ref])]
        if not ids:
            ids = [r["id"] for r in catalog.rows(f"lower({column}) = lower(?)", [ref])]
        if len(ids) == 1:
            return int(ids[0])
        if len(ids) > 1:
            raise LookupError(f"{ref!r} matches {len(ids)} adapters (ids {', '.join(map(str, ids[:10]))}); use an id")
    stems = [int(r[0]) for r in catalog.db.execute("select id, path from adapters where path is not null")
             if os.path.splitext(os.path.basename(r[1]))[0] == ref]
    if len(stems) == 1:
        return stems[0]
    if len(stems) > 1:
        raise LookupError(f"{len(stems)} files are named {ref!r} (ids {', '.join(map(str, stems[:10]))}); use an id")
    raise LookupError(f"no adapter named {ref!r} in the catalog (use `stylus search` to find its id)")


def run(args: argparse.Namespace, ctx: Any) -> int:
    catalog = ctx.catalog(create=False)
    try:
        adapter_id = resolve_adapter(catalog, args.adapter)
        if args.action == "weight":
            if args.clear == (args.value is not None):
                raise ValueError("give a weight or --clear (not both)")
            if args.value is not None and not -5 <= args.value <= 5:
                raise ValueError(f"weight {args.value} is outside -5..5")
            catalog.set_controls(adapter_id, weight_override=None if args.clear else args.value)
        else:
            catalog.set_controls(adapter_id, **ACTIONS[args.action][1])
        row = catalog.row(adapter_id) or {}
    finally:
        catalog.close()
    weight = row.get("weight_override")
    print(f"{adapter_id} {row.get('name')}: pinned={bool(row.get('pinned'))} banned={bool(row.get('banned'))} "
          f"weight_override={'none' if weight is None else weight}")
    return 0
