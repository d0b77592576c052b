"""Identity and merging: one catalog entry per adapter version.

This module is the catalog's ONE write path: production (scan, import, sync, download) and the test
helpers all add cards through :func:`upsert`, with one row serialiser (:func:`~stylus_ext.catalog.db.card_to_row`).

A local file and its Civitai card become ONE row, whichever arrives first, joined by (in order)
the file path, the Civitai version id (from the file's sidecars or the card), the SHA256 / AutoV3
hashes (once the local file is hashed), and — for a file that was renamed or moved — a vanished
entry with the same size and header digest AND the same SHA256 (the vanished entry's cached hash
against the new file's: a different LoRA with an identical metadata-free header is not a rename).
Merging keeps local facts (path, size, name, user metadata) and fills remote facts (Civitai ids,
download URL, images, description when missing). The row id, the user's controls (pin, ban,
weight) and everything derived from the row survive. A removed file's controls and refinements
are kept (:func:`forget`) and return when the same file is added again (:func:`_restore`).

:func:`upsert` does not commit (callers commit in chunks); :func:`upsert_card` does.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from stylus_ext import sdk
from stylus_ext.catalog.db import CARD_FIELDS, Catalog, card_to_row

#: What SQLite raises for a card it cannot store (an id beyond 64 bits, text that is not UTF-8).
UNSTORABLE = (OverflowError, sqlite3.InterfaceError, UnicodeEncodeError)

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
            if row["path"] != card.path and _gone(row["path"]) and _same_file(row, card.path):
                return row, "rename"
    return None, ""


def _same_file(row: dict[str, Any], path: str) -> bool:
    """Hash evidence for a rename: the vanished entry's cached SHA256 equals the new file's."""
    if not row.get("sha256"):
        return False
    from stylus_ext.catalog.hashing import file_hashes

    try:
        return file_hashes(path)[0] == row["sha256"]
    except OSError:
        return False


def _insert(catalog: Catalog, card: sdk.AdapterCard) -> int:
    row = card_to_row(card)
    cols = list(row)
    cur = catalog.db.conn.execute(
        f"insert into adapters ({', '.join(cols)}, added) values ({', '.join('?' * len(cols))}, "
        "strftime('%s','now'))", [row[c] for c in cols])
    return int(cur.lastrowid)


def _update(catalog: Catalog, adapter_id: int, card: sdk.AdapterCard) -> None:
    row = card_to_row(card)
    cols = list(row)
    catalog.db.conn.execute(f"update adapters set {', '.join(f'{c} = ?' for c in cols)} where id = ?",
                            [*(row[c] for c in cols), adapter_id])


def replace_card(catalog: Catalog, adapter_id: int, card: sdk.AdapterCard) -> None:
    """Replace the card fields of row ``adapter_id`` (id, controls and derived data kept); commits."""
    with catalog.write():
        _update(catalog, adapter_id, card)


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
        adapter_id = _insert(catalog, card)
        if card.path is not None:
            _restore(catalog, adapter_id, card)
        return adapter_id, "added"
    existing = Catalog.row_to_card(row)
    merged = merge(existing, card)
    if how == "path" and existing.sha256 and _file_unchanged(card.path, existing):
        # only a sidecar changed (the stamp covers both): the cached hashes still hold
        merged = dataclasses.replace(merged, sha256=existing.sha256, autov3=existing.autov3)
    if card.path and existing.path and existing.path != card.path:
        if how == "rename":  # proven by SHA256 (see _same_file): the cached hashes hold
            merged = dataclasses.replace(merged, sha256=existing.sha256, autov3=existing.autov3)
        how = "rename"  # or found by the Civitai version of the vanished file
    settled = _settle_version(catalog, int(row["id"]), merged)
    if notes is not None:
        notes.extend(settled.problems[len(merged.problems):])
    merged = settled
    new = card_to_row(merged)
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
        conn.execute("begin immediate")  # waits for another writer; else the outermost RELEASE commits
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


# ------------------------------------------------------------------------------------------
# Removed files: their controls are kept and come back with the file
# ------------------------------------------------------------------------------------------


def forget(catalog: Catalog, ids: Iterable[int]) -> int:
    """Delete rows ``ids``, keeping the pin, ban, weight and refinements of each (commits)."""
    ids = [int(i) for i in ids]
    with catalog.write():
        for adapter_id in ids:
            row = _one(catalog, "id = ?", [adapter_id])
            if row is None:
                continue
            refinements = catalog.db.conn.execute(
                "select refiner, card_hash, description, category, weight, error from refinements "
                "where adapter_id = ?", [adapter_id]).fetchall()
            if row.get("pinned") or row.get("banned") or row.get("weight_override") is not None or refinements:
                catalog.db.conn.execute(
                    "insert into kept_controls (path, name, size, header_sha, sha256, pinned, banned, "
                    "weight_override, refinements, removed) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [row["path"], row["name"], row["size"], row["header_sha"], row["sha256"],
                     int(row.get("pinned") or 0), int(row.get("banned") or 0), row.get("weight_override"),
                     json.dumps([list(r) for r in refinements]), time.time()])
            catalog.db.conn.execute("delete from adapters where id = ?", [adapter_id])
            catalog.db.conn.execute("delete from refinements where adapter_id = ?", [adapter_id])
    return len(ids)


def _kept_for(catalog: Catalog, card: sdk.AdapterCard) -> dict[str, Any] | None:
    """The kept controls of ``card``'s file: same SHA256; or same size and header digest at the same
    path or under the same name."""
    conn = catalog.db.conn
    cur = None
    if card.sha256:
        cur = conn.execute("select * from kept_controls where sha256 = ? order by id desc limit 1", [card.sha256])
    found = cur.fetchone() if cur else None
    if found is None:
        cur = conn.execute(
            "select * from kept_controls where size = ? and header_sha is ? and (path = ? or name = ?) "
            "order by path = ? desc, id desc limit 1",
            [card.size, card.header_sha, card.path, card.name, card.path])
        found = cur.fetchone()
    if found is None:
        return None
    return dict(zip([d[0] for d in cur.description], found, strict=True))


def restore_by_hash(catalog: Catalog, adapter_id: int, sha256: str) -> bool:
    """Once a file is hashed: give it the kept controls of a removed file with the same SHA256, if it
    has none of its own (no commit)."""
    row = _one(catalog, "id = ?", [adapter_id])
    if row is None or row.get("pinned") or row.get("banned") or row.get("weight_override") is not None:
        return False
    kept = _kept_for(catalog, sdk.AdapterCard(source="", name="", sha256=sha256))
    if kept is None or kept["sha256"] != sha256:
        return False
    _apply_kept(catalog, adapter_id, kept)
    return True


def _restore(catalog: Catalog, adapter_id: int, card: sdk.AdapterCard) -> None:
    kept = _kept_for(catalog, card)
    if kept is not None:
        _apply_kept(catalog, adapter_id, kept)


def _apply_kept(catalog: Catalog, adapter_id: int, kept: dict[str, Any]) -> None:
    conn = catalog.db.conn
    conn.execute("update adapters set pinned = ?, banned = ?, weight_override = ? where id = ?",
                 [kept["pinned"], kept["banned"], kept["weight_override"], adapter_id])
    for refiner, chash, description, category, weight, error in json.loads(kept["refinements"] or "[]"):
        conn.execute("insert or replace into refinements (adapter_id, refiner, card_hash, description, category, "
                     "weight, error) values (?, ?, ?, ?, ?, ?, ?)",
                     [adapter_id, refiner, chash, description, category, weight, error])
    conn.execute("delete from kept_controls where id = ?", [kept["id"]])
