"""``stylus sync civitai``, ``stylus match`` and ``stylus download``: the Civitai commands, declared
as ``sdk.Command``s (their flags come from the options below) over the host's catalog operations."""

from __future__ import annotations

import json
from typing import Any

from stylus_ext import sdk

#: ``--api-base`` and ``--delay`` (shared by sync, match and download).
CONNECTION = (
    sdk.Option("api_base", str, None, "Civitai API base URL (env STYLUS_CIVITAI_BASE_URL; default "
               "https://civitai.com/api/v1); the API key comes only from env STYLUS_CIVITAI_API_KEY or an "
               "owner-only key file"),
    sdk.Option("delay", float, None, "seconds between requests (default 0.75)"),
)


def _client(values: dict[str, Any]) -> sdk.CivitaiClient:
    return sdk.CivitaiClient.from_env(values["api_base"], min_interval=values["delay"])


def run_sync(ctx: sdk.CommandContext) -> int:
    v = ctx.values
    source = ctx.create(
        "source", "civitai", base_url=v["api_base"], min_interval=v["delay"], types=v["types"],
        base_models=v["base_models"], nsfw=v["nsfw"], min_downloads=v["min_downloads"],
        min_rating=v["min_rating"], query=v["query"], tags=",".join(v["tag"]) if v["tag"] else None,
        sort=v["sort"], limit=v["limit"])
    catalog = ctx.catalog()
    try:
        report = ctx.operation("civitai.sync")(catalog, source, restart=v["restart"], progress=ctx.progress)
        ctx.echo(f"civitai sync: {report.summary()}")
        if report.error:
            ctx.warn(report.error)
            return 1
        if v["index"]:
            indexed = ctx.operation("index")(catalog, progress=ctx.progress)
            ctx.echo(f"index: {indexed.summary()}")
        elif report.changed_ids:
            ctx.echo("run `stylus index` to make the new cards searchable")
        return 0
    finally:
        source.close()
        catalog.close()


def run_match(ctx: sdk.CommandContext) -> int:
    v = ctx.values
    client = _client(v)
    catalog = ctx.catalog()
    try:
        report = ctx.operation("civitai.match")(
            catalog, client, write_info_files=v["write_info"], retry_missing=v["retry_missing"],
            autov3_fallback=not v["no_autov3"], progress=ctx.progress)
        ctx.echo(f"civitai match: {report.summary()}")
        for path, reason in report.errors:
            ctx.warn(f"{path}: {reason}")
        if report.error:
            ctx.warn(report.error)
            return 1
        if report.matched:
            ctx.echo("run `stylus index` to refresh the matched entries")
        return 0
    finally:
        client.session.close()
        catalog.close()


def run_download(ctx: sdk.CommandContext) -> int:
    v = ctx.values
    resolve, download = ctx.operation("civitai.resolve"), ctx.operation("civitai.download")
    client = _client(v)
    catalog = ctx.catalog(create=False)
    failed = 0
    try:
        for ref in v["adapters"]:
            adapter_id = resolve(catalog, ref)
            if adapter_id is None:
                failed += 1
                ctx.echo(_dumps({"adapter": ref, "status": "failed", "reason": "not in the catalog"}) if v["json"]
                         else f"{ref}: not in the catalog")
                continue
            result = download(catalog, adapter_id, v["lora_dir"], max_size_mb=v["max_size_mb"],
                              allowed_base_models=sdk.split_list(v["base_models"]), client=client)
            failed += not result.ready
            if v["json"]:
                ctx.echo(_dumps({"adapter": ref, "id": result.catalog_id or adapter_id, "status": result.status,
                                 "path": result.path, "reason": result.reason, "bytes": result.bytes}))
            else:
                where = f" → {result.path}" if result.path else ""
                ctx.echo(f"{ref}: {result.status}{where}" + (f" ({result.reason})" if result.reason else ""))
        return 1 if failed else 0
    finally:
        client.session.close()
        catalog.close()


def _dumps(obj: Any) -> str:
    """Deterministic JSON (sorted keys): the same input gives byte-identical output."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)


SYNC = sdk.Command(
    "sync", "fetch adapter cards from Civitai into the catalog (resumable)", run_sync,
    description="Page through Civitai's model list into the catalog. An interrupted run resumes from its "
                "last page; changed models update their entries.",
    arguments=(sdk.Option("source", str, "civitai", "where to sync from", choices=("civitai",)),),
    options=(*CONNECTION,
             sdk.Option("types", str, None, "model types, comma-separated (default LORA,LoCon,DoRA)"),
             sdk.Option("base_models", str, None, "Civitai base models, comma-separated (e.g. 'SD 1.5,SDXL 1.0,Pony')"),
             sdk.Option("nsfw", bool, None, "include NSFW models (off by default)"),
             sdk.Option("min_downloads", int, None, "minimum download count"),
             sdk.Option("min_rating", float, None, "minimum rating, 0-5"),
             sdk.Option("query", str, None, "full-text search"),
             sdk.Option("tag", str, None, "required tag (repeatable)"),
             sdk.Option("sort", str, None, "Civitai sort order (default 'Most Downloaded')"),
             sdk.Option("limit", int, None, "at most N models this run; the next run continues (default: all)"),
             sdk.Option("restart", bool, False, "ignore a stored cursor and start from page 1"),
             sdk.Option("index", bool, False, "then refine, embed and index the new/changed cards")),
    repeatable=("tag",))

MATCH = sdk.Command(
    "match", "find the Civitai cards of local LoRA files by hash", run_match,
    description="Hash (lazily, cached) the installed files that lack Civitai metadata and look them up on "
                "Civitai. Files Civitai does not know are remembered and not asked again (see --retry-missing).",
    options=(*CONNECTION,
             sdk.Option("write_info", bool, False, "also write <stem>.civitai.info beside matched files"),
             sdk.Option("retry_missing", bool, False, "ask again about files Civitai did not know"),
             sdk.Option("no_autov3", bool, False, "do not retry misses by AutoV3 (one request per unknown file)")))

DOWNLOAD = sdk.Command(
    "download", "download catalog adapters from Civitai into a LoRA folder", run_download,
    description="Download (resumable, SHA256-verified) and install adapters. ADAPTER is a catalog id, vNNN "
                "for a Civitai version id, or an adapter name.",
    arguments=(sdk.Option("adapters", str, (), "catalog id, vNNN or adapter name"),),
    options=(sdk.Option("lora_dir", str, None, "the WebUI's LoRA folder"),
             sdk.Option("max_size_mb", float, None, "skip larger files"),
             sdk.Option("base_models", str, None,
                        "only these base models (families like SD1,SDXL,Pony or Civitai names), comma-separated"),
             sdk.Option("json", bool, False, "JSON output (one line per adapter)"),
             *CONNECTION),
    repeatable=("adapters",), required=("lora_dir",))

COMMANDS = (SYNC, MATCH, DOWNLOAD)
