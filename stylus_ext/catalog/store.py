"""Identity and merging: one catalog entry per adapter version.

A local file and its Civitai card become ONE row, whichever arrives first, joined by (in order)
the file path, the Civitai version id (from the file's sidecars or the card), the SHA256 / AutoV3
hashes (once the local file is hashed), and — for a file that was renamed or moved — a vanished
entry with the same size and header digest. Merging keeps local facts (path, size, name, user
metadata) and fills remote facts (Civitai ids, download URL, images, description when missing).
The row id, the user's controls (pin, ban, weight) and everything derived from the row survive.

:func:`upsert` does not commit (callers commit in chunks); :func:`upsert_card` does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from stylus_ext import sdk
from stylus_ext.catalog.db import CARD_FIELDS, JSON_FIELDS, Catalog

#: Facts only an installed file has; a remote card never overwrites them.
LOCAL_FIELDS = ("source", "name", "path", "size", "mtime", "header_sha", "alias", "name_problem",
                "preview_path", "activation_text", "negative_text", "training_tags", "sha256", "autov3")
#: Facts only a Civitai card has; a rescanned file keeps them when its sidecars lack them.
REMOTE_FIELDS = ("civitai_model_id", "civitai_version_id", "download_url", "image_urls",
                 "example_prompts", "file_size_kb")


def _empty(value: Any) -> bool:
    return value is None or value in ("", (), "unknown")


def fill(base: sdk.AdapterCard, other: sdk.AdapterCard, fields: tuple[str, ...] | None = None) -> sdk.AdapterCard:
    """``base`` with its empty fields taken from ``other`` (all card fields but LOCAL_FIELDS by default)."""
    names = fields if fields is not None else tuple(f for f in CARD_FIELDS if f not in LOCAL_FIELDS)
    changes: dict[str, Any] = {}
    for name in names:
        if name == "nsfw":
            if other.nsfw and not base.nsfw:
                changes["nsfw"] = True
        elif name == "problems":
            continue
        elif _empty(getattr(base, name)) and not _empty(getattr(other, name)):
            changes[name] = getattr(other, name)
    if "base_model" in changes and not _empty(other.base_model_raw):
        changes["base_model_raw"] = other.base_model_raw
    return dataclasses.replace(base, **changes) if changes else base


def merge(existing: sdk.AdapterCard, incoming: sdk.AdapterCard) -> sdk.AdapterCard:
    """The card of an entry after ``incoming`` arrives for it (see the module docstring)."""
    if existing.path is None and incoming.path is None:
        return incoming  # a fresher remote card replaces the old one
    if existing.path is None:  # a file arrives for an imported card
        return fill(incoming, existing)
    if incoming.path is None:  # a card arrives for an installed file
        return fill(existing, incoming)
    # the file changed (its size or stamp): new local facts, cached hashes dropped; remote-only facts survive
    return fill(incoming, existing, REMOTE_FIELDS)


# ------------------------------------------------------------------------------------------
# Lookups (no commits)
# ------------------------------------------------------------------------------------------


def _select(catalog: Catalog, where: str, params: list[Any], limit: int | None = None) -> list[dict[str, Any]]:
    sql = f"select * from adapters where {where} order by id" + (f" limit {int(limit)}" if limit else "")
    cur = catalog.db.conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, values, strict=True)) for values in cur.fetchall()]


def _one(catalog: Catalog, where: str, params: list[Any]) -> dict[str, Any] | None:
    rows = _select(catalog, where, params, 1)
    return rows[0] if rows else None


def _gone(path: str | None) -> bool:
    return bool(path) and not os.path.exists(path)


def find(catalog: Catalog, card: sdk.AdapterCard,
         renames: dict[tuple[int, str], list[str]] | None = None) -> tuple[dict[str, Any] | None, str]:
    """The row ``card`` belongs to and how it was found (``"path"``, ``"version"``, ``"sha256"``,
    ``"autov3"``, ``"rename"``), or ``(None, "")``.

    ``renames`` (``(size, header_sha) → paths`` of installed entries, built once by a scan) avoids
    one unindexed query per new file."""
    if card.path:
        row = _one(catalog, "path = ?", [card.path])
        if row:
            return row, "path"
    if card.civitai_version_id is not None:
        row = _one(catalog, "civitai_version_id = ?", [card.civitai_version_id])
        if row and (card.path is None or row["path"] is None or _gone(row["path"])):
            return row, "version"
    for key in ("sha256", "autov3"):
        value = getattr(card, key)
        if value:
            want_local = "path is null" if card.path else "path is not null"
            row = _one(catalog, f"{key} = ? and {want_local}", [value])
            if row:
                return row, key
    if card.path and card.header_sha and card.size is not None:
        if renames is not None:
            paths = [p for p in renames.get((card.size, card.header_sha), ()) if p != card.path and _gone(p)]
            rows = [r for r in (_one(catalog, "path = ?", [p]) for p in paths) if r]
        else:
            rows = _select(catalog, "header_sha = ? and size = ? and path is not null", [card.header_sha, card.size])
        for row in rows:
            if row["path"] != card.path and _gone(row["path"]):
                return row, "rename"
    return None, ""


_HASH_SKIP = ("path", "size", "mtime", "header_sha", "sha256", "autov3", "preview_path")


def _columns(card: sdk.AdapterCard) -> dict[str, Any]:
    """``Catalog.card_to_row`` without ``dataclasses.asdict``'s deep copies (the scan's hot path);
    a test checks both give the same row."""
    row = {name: getattr(card, name) for name in CARD_FIELDS}
    keep = {k: (list(v) if isinstance(v, tuple) else v) for k, v in row.items() if k not in _HASH_SKIP}
    digest = hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:16]
    for key in JSON_FIELDS:
        row[key] = json.dumps(list(row[key]), ensure_ascii=False)
    row["nsfw"] = int(bool(card.nsfw))
    row["card_hash"] = digest
    return row


def _insert(catalog: Catalog, card: sdk.AdapterCard) -> int:
    row = _columns(card)
    cols = list(row)
    cur = catalog.db.conn.execute(
        f"insert into adapters ({', '.join(cols)}, added) values ({', '.join('?' * len(cols))}, "
        "strftime('%s','now'))", [row[c] for c in cols])
    return int(cur.lastrowid)


def _update(catalog: Catalog, adapter_id: int, card: sdk.AdapterCard) -> None:
    row = _columns(card)
    cols = list(row)
    catalog.db.conn.execute(f"update adapters set {', '.join(f'{c} = ?' for c in cols)} where id = ?",
                            [*(row[c] for c in cols), adapter_id])


def _absorb(catalog: Catalog, keep_id: int, other: dict[str, Any]) -> None:
    """Move the user's controls of row ``other`` onto ``keep_id`` and delete ``other``."""
    catalog.db.conn.execute(
        "update adapters set pinned = max(coalesce(pinned, 0), ?), banned = max(coalesce(banned, 0), ?), "
        "weight_override = coalesce(weight_override, ?) where id = ?",
        [int(other.get("pinned") or 0), int(other.get("banned") or 0), other.get("weight_override"), keep_id])
    catalog.db.conn.execute("delete from adapters where id = ?", [other["id"]])
    catalog.db.conn.execute("delete from refinements where adapter_id = ?", [other["id"]])


def _settle_version(catalog: Catalog, adapter_id: int | None, card: sdk.AdapterCard) -> sdk.AdapterCard:
    """Make ``card``'s Civitai version id free for row ``adapter_id`` (absorbing a remote-only twin)."""
    vid = card.civitai_version_id
    if vid is None:
        return card
    other = _one(catalog, "civitai_version_id = ?", [vid])
    if other is None or other["id"] == adapter_id:
        return card
    if other["path"] is None and adapter_id is not None:
        card = fill(card, Catalog.row_to_card(other))
        _absorb(catalog, adapter_id, other)
        return card
    if other["path"] is None or _gone(other["path"]):
        catalog.db.conn.execute("update adapters set civitai_version_id = null where id = ?", [other["id"]])
        return card
    note = f"same Civitai version {vid} as {other['path']}; kept as a separate entry"
    return dataclasses.replace(card, civitai_version_id=None, problems=(*card.problems, note))


def upsert(catalog: Catalog, card: sdk.AdapterCard, notes: list[str] | None = None,
           renames: dict[tuple[int, str], list[str]] | None = None) -> tuple[int, str]:
    """Insert or merge ``card`` without committing.

    Returns ``(id, status)``; status is ``"added"``, ``"updated"``, ``"unchanged"`` or
    ``"renamed"`` (an installed file found under a new path; its old path is gone). Problems the
    merge adds (e.g. a second copy of a Civitai version) are appended to ``notes``.
    """
    before = len(card.problems)
    row, how = find(catalog, card, renames)
    if row is None:
        if card.path is not None:
            card = _settle_version(catalog, None, card)
            if card.civitai_version_id is not None and _one(catalog, "civitai_version_id = ?",
                                                            [card.civitai_version_id]):
                card = dataclasses.replace(card, civitai_version_id=None)
        if notes is not None:
            notes.extend(card.problems[before:])
        return _insert(catalog, card), "added"
    existing = Catalog.row_to_card(row)
    merged = merge(existing, card)
    if how == "path" and existing.sha256 and _file_unchanged(card.path, existing):
        # only a sidecar changed (the stamp covers both): the cached hashes still hold
        merged = dataclasses.replace(merged, sha256=existing.sha256, autov3=existing.autov3)
    if card.path and existing.path and existing.path != card.path:
        how = "rename"  # found by header digest or by the Civitai version of the vanished file
        if existing.size == card.size and existing.header_sha and existing.header_sha == card.header_sha:
            merged = dataclasses.replace(merged, sha256=existing.sha256, autov3=existing.autov3)
    settled = _settle_version(catalog, int(row["id"]), merged)
    if notes is not None:
        notes.extend(settled.problems[len(merged.problems):])
    merged = settled
    new = _columns(merged)
    if all(_same(row.get(k), v) for k, v in new.items()):
        return int(row["id"]), "unchanged"
    _update(catalog, int(row["id"]), merged)
    return int(row["id"]), "renamed" if how == "rename" else "updated"


@contextmanager
def atomic(catalog: Catalog) -> Iterator[None]:
    """A savepoint: on any exception (Ctrl-C included) the block's writes are undone, earlier
    uncommitted work is kept (callers commit in chunks)."""
    conn = catalog.db.conn
    if not conn.in_transaction:
        conn.execute("begin")  # else the outermost RELEASE would commit every item
    conn.execute("savepoint stylus_item")
    try:
        yield
    except BaseException:
        conn.execute("rollback to stylus_item")
        conn.execute("release stylus_item")
        raise
    conn.execute("release stylus_item")


def _file_unchanged(path: str | None, existing: sdk.AdapterCard) -> bool:
    """True when the model file itself (not its sidecars) is as it was at the last scan."""
    try:
        st = os.stat(path) if path else None
    except OSError:
        return False
    return (st is not None and existing.mtime is not None and st.st_size == existing.size
            and st.st_mtime <= existing.mtime)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and float(a) == float(b)
    if isinstance(b, bool):
        return int(b) == a
    return a == b


def upsert_card(catalog: Catalog, card: sdk.AdapterCard) -> tuple[int, str]:
    """Insert or merge one card and commit: ``(catalog id, "added" | "updated" | "unchanged")``."""
    with atomic(catalog):
        adapter_id, status = upsert(catalog, card)
    catalog.db.conn.commit()
    return adapter_id, "updated" if status == "renamed" else status
