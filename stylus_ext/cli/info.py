"""``stylus info``: catalog counts, encoder, index state, refiner, problems."""

from __future__ import annotations

import argparse
from typing import Any

from stylus_ext.cli.common import dumps


def add_parser(sub: Any) -> None:
    p = sub.add_parser("info", help="catalog counts, encoder and index state")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=run)


def collect(catalog: Any) -> dict[str, Any]:
    """Everything ``stylus info`` shows, as a JSON-able dict."""
    from stylus_ext import lexical
    from stylus_ext.embed import example_hashes, search_text
    from stylus_ext.index import read_meta
    from stylus_ext.indexing import content_digest, examples_enabled

    db = catalog.db
    refiner = catalog.get_meta("refiner")

    def counts(sql: str, params: list[Any] | None = None) -> dict[str, int]:
        return {str(k if k is not None else "unknown"): int(n) for k, n in db.execute(sql, params or []).fetchall()}

    categories = counts(
        "select coalesce(r.category, 'unrefined'), count(*) from adapters a left join refinements r "
        "on r.adapter_id = a.id and r.refiner = ? and (r.error is null or r.error = '') group by 1 order by 1",
        [refiner or ""])
    meta = read_meta(catalog)
    index: dict[str, Any] = {"state": "missing"}
    if meta:
        index = {k: meta.get(k) for k in ("kind", "version", "count", "dimension")}
        from stylus_ext.catalog.db import text_hash

        adapters = catalog.adapters()
        pairs = sorted((a.id, text_hash(search_text(a))) for a in adapters)
        index["examples"] = examples_enabled(catalog)
        examples = example_hashes(catalog, adapters, store=False)[0] if index["examples"] else {}
        current = content_digest(str(meta.get("encoder", "")), pairs, examples) == meta.get("content")
        index["state"] = "up to date" if current else "stale (run `stylus index`)"
    return {
        "catalog": str(catalog.path),
        "schema": catalog.schema_version,
        "adapters": catalog.count(),
        "installed": catalog.count("path is not null"),
        "pinned": catalog.count("pinned = 1"),
        "banned": catalog.count("banned = 1"),
        "by_base_model": counts("select coalesce(base_model, 'unknown'), count(*) from adapters group by 1 order by 1"),
        "by_category": categories,
        "refiner": refiner,
        "encoder": (meta or {}).get("encoder"),
        "index": index,
        "lexical_index": lexical.has_index(catalog),
        "problems": len(catalog.problems()),
    }


def query_runtime(plugins: Any, identity: str | None) -> str | None:
    """The index's encoder's own words on how queries run here (None when it has none to say)."""
    if not identity:
        return None
    try:
        from stylus_ext.retrieve import _encoder_for

        describe = getattr(_encoder_for(identity, plugins), "query_runtime", None)
        return str(describe()) if callable(describe) else None
    except Exception:  # noqa: BLE001 - a line of `info`, never its failure
        return None


def run(args: argparse.Namespace, ctx: Any) -> int:
    catalog = ctx.catalog(create=False)
    try:
        info = collect(catalog)
    finally:
        catalog.close()
    info["queries"] = query_runtime(ctx.plugins, info["encoder"])
    if args.json:
        print(dumps(info))
        return 0
    print(f"catalog: {info['catalog']} (schema {info['schema']})")
    print(f"adapters: {info['adapters']} ({info['installed']} installed, {info['pinned']} pinned, "
          f"{info['banned']} banned)")
    print("by base model: " + ", ".join(f"{k} {v}" for k, v in info["by_base_model"].items()))
    print("by category: " + ", ".join(f"{k} {v}" for k, v in info["by_category"].items()))
    print(f"refiner: {info['refiner'] or 'none yet'}")
    print(f"encoder: {info['encoder'] or 'none yet'}")
    if info["queries"]:
        print(f"queries: {info['queries']}")
    idx = info["index"]
    if idx["state"] == "missing":
        print("index: missing (run `stylus index`)")
    else:
        print(f"index: {idx['state']}; {idx['kind']}, version {idx['version']}, {idx['count']} vectors, "
              f"{idx['dimension']}-d{'' if idx['examples'] else ', no example-prompt vectors (--no-examples)'}")
    print(f"problems: {info['problems']} file(s) (see `stylus scan --problems`)")
    return 0
