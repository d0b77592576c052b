"""The catalog: one SQLite file (via sqlite-utils) holding adapters and everything derived from them.

Tables
- ``adapters``: one row per adapter version; card fields (see :class:`~stylus_ext.sdk.AdapterCard`)
  plus the user's controls (``pinned``, ``banned``, ``weight_override``). ``path`` is set for
  installed files; ``civitai_version_id`` joins a file to its Civitai card.
- ``refinements``: a refiner's output per (adapter, refiner name@version), keyed to ``card_hash``
  so a changed card is refined again; ``error`` records a failure (the adapter keeps a fallback).
- ``embeddings``: vectors cached per (encoder identity, text hash): re-indexing embeds only changes.
- ``problems``: one-line reasons for files that could not be read fully.
- ``meta``: key/value (active index encoder, sync cursors, ...).

The schema version is SQLite's ``user_version``; :data:`MIGRATIONS` upgrade older files in place.
A file from a newer Stylus is refused with a clear message instead of being damaged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

from stylus_ext import sdk

JSON_FIELDS = ("tags", "trigger_words", "example_prompts", "image_urls", "training_tags", "problems")
CARD_FIELDS = tuple(f.name for f in dataclasses.fields(sdk.AdapterCard))


class CatalogError(RuntimeError):
    """The catalog file cannot be used (newer schema, not a catalog, unreadable)."""


def _m1(db: sqlite_utils.Database) -> None:
    columns: dict[str, Any] = {"id": int}
    for f in dataclasses.fields(sdk.AdapterCard):
        columns[f.name] = str
    columns.update(size=int, mtime=float, preferred_weight=float, nsfw=int, civitai_model_id=int,
                   civitai_version_id=int, file_size_kb=float)
    columns.update(card_hash=str, pinned=int, banned=int, weight_override=float, added=float)
    db["adapters"].create(columns, pk="id", not_null={"source", "name"},
                          defaults={"pinned": 0, "banned": 0, "nsfw": 0})
    db["adapters"].create_index(["path"], unique=True)
    db["adapters"].create_index(["civitai_version_id"], unique=True)
    db["adapters"].create_index(["sha256"])
    db["adapters"].create_index(["autov3"])
    db["adapters"].create_index(["name"])
    db["refinements"].create({"adapter_id": int, "refiner": str, "card_hash": str, "description": str,
                              "category": str, "weight": float, "error": str},
                             pk=("adapter_id", "refiner"))
    db["embeddings"].create({"encoder": str, "text_hash": str, "dim": int, "vector": bytes},
                            pk=("encoder", "text_hash"))
    db["problems"].create({"path": str, "reason": str}, pk="path")
    db["meta"].create({"key": str, "value": str}, pk="key")


#: Ordered schema migrations; index i upgrades version i to i+1. Append, never edit.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_m1]
SCHEMA_VERSION = len(MIGRATIONS)


def card_hash(card: sdk.AdapterCard) -> str:
    """Hash of the card fields a refiner reads: a changed card is refined and embedded again."""
    keep = {k: v for k, v in dataclasses.asdict(card).items()
            if k not in ("path", "size", "mtime", "header_sha", "sha256", "autov3", "preview_path")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:16]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


class Catalog:
    """An open catalog file. Cheap to open; use one per thread (SQLite connections are not shared)."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise CatalogError(f"no catalog at {self.path} (run `stylus scan` or `stylus demo` first)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CatalogError(f"cannot create the catalog folder {self.path.parent} ({exc.strerror or exc}); "
                               "choose another --catalog or STYLUS_CATALOG") from exc
        try:
            conn = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as exc:
            if not os.access(self.path.parent, os.W_OK) or (self.path.exists() and not os.access(self.path, os.W_OK)):
                raise CatalogError(f"cannot open the catalog {self.path}: it or its folder is read-only (SQLite "
                                   "writes beside it); choose another --catalog or STYLUS_CATALOG") from exc
            if isinstance(exc, sqlite3.OperationalError) and self.path.is_dir():
                raise CatalogError(f"{self.path} is a folder; --catalog takes a file path") from exc
            raise CatalogError(f"{self.path} is not a Stylus catalog ({exc})") from exc
        self.db = sqlite_utils.Database(conn)
        self._migrate()

    # -- schema ----------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        try:
            version = self.schema_version
        except sqlite3.DatabaseError as exc:
            raise CatalogError(f"{self.path} is not a Stylus catalog ({exc})") from exc
        if version > SCHEMA_VERSION:
            raise CatalogError(
                f"{self.path} was written by a newer Stylus (schema {version}, this version knows "
                f"{SCHEMA_VERSION}); upgrade Stylus or point --catalog at another file"
            )
        if version == 0 and self.db.table_names() and "adapters" not in self.db.table_names():
            raise CatalogError(f"{self.path} is an SQLite file but not a Stylus catalog")
        for index in range(version, SCHEMA_VERSION):
            with self.db.conn:
                MIGRATIONS[index](self.db)
                self.db.execute(f"PRAGMA user_version = {index + 1}")

    def close(self) -> None:
        self.db.conn.close()

    # -- meta ------------------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("select value from meta where key = ?", [key]).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str | None) -> None:
        with self.db.conn:
            if value is None:
                self.db.execute("delete from meta where key = ?", [key])
            else:
                self.db["meta"].upsert({"key": key, "value": value}, pk="key")

    # -- adapters --------------------------------------------------------------------------

    @staticmethod
    def card_to_row(card: sdk.AdapterCard) -> dict[str, Any]:
        row = dataclasses.asdict(card)
        for key in JSON_FIELDS:
            row[key] = json.dumps(list(row[key]), ensure_ascii=False)
        row["nsfw"] = int(bool(card.nsfw))
        row["card_hash"] = card_hash(card)
        return row

    @staticmethod
    def row_to_card(row: dict[str, Any]) -> sdk.AdapterCard:
        values = {k: row.get(k) for k in CARD_FIELDS}
        for key in JSON_FIELDS:
            raw = values.get(key)
            values[key] = tuple(json.loads(raw)) if raw else ()
        values["nsfw"] = bool(values.get("nsfw"))
        for key, f in ((f.name, f) for f in dataclasses.fields(sdk.AdapterCard)):
            if values[key] is None and f.default is not dataclasses.MISSING and f.default is not None:
                values[key] = f.default
        return sdk.AdapterCard(**values)

    def insert_card(self, card: sdk.AdapterCard) -> int:
        """Insert a new adapter; returns its catalog id."""
        with self.db.conn:
            return int(self.db["adapters"].insert(self.card_to_row(card)).last_pk)

    def update_card(self, adapter_id: int, card: sdk.AdapterCard) -> None:
        """Replace the card fields of an adapter, keeping its id, controls and derived data."""
        with self.db.conn:
            self.db["adapters"].update(adapter_id, self.card_to_row(card))

    def update_fields(self, adapter_id: int, **fields: Any) -> None:
        with self.db.conn:
            self.db["adapters"].update(adapter_id, fields)

    def delete(self, ids: Iterable[int]) -> int:
        ids = list(ids)
        with self.db.conn:
            for chunk_start in range(0, len(ids), 500):
                chunk = ids[chunk_start:chunk_start + 500]
                marks = ",".join("?" * len(chunk))
                self.db.execute(f"delete from adapters where id in ({marks})", chunk)
                self.db.execute(f"delete from refinements where adapter_id in ({marks})", chunk)
        return len(ids)

    def rows(self, where: str | None = None, params: Iterable[Any] = ()) -> Iterator[dict[str, Any]]:
        yield from self.db["adapters"].rows_where(where, list(params), order_by="id")

    def row(self, adapter_id: int) -> dict[str, Any] | None:
        return next(self.rows("id = ?", [adapter_id]), None)

    def count(self, where: str | None = None, params: Iterable[Any] = ()) -> int:
        return self.db["adapters"].count_where(where, list(params)) if where else self.db["adapters"].count

    def adapter(self, row: dict[str, Any], refiner: str | None = None) -> sdk.Adapter:
        """An SDK :class:`~stylus_ext.sdk.Adapter` for a row, with the active refiner's output."""
        card = self.row_to_card(row)
        refined = None
        if refiner:
            refined = self.db.execute(
                "select description, category, weight from refinements "
                "where adapter_id = ? and refiner = ? and (error is null or error = '')",
                [row["id"], refiner]).fetchone()
        description, category, weight = refined or (card.description, "concept", card.preferred_weight or 0.8)
        return sdk.Adapter(
            id=int(row["id"]), card=card, description=description or card.description,
            category=category or "concept", weight=float(weight or 0.8), pinned=bool(row.get("pinned")),
            banned=bool(row.get("banned")), weight_override=row.get("weight_override"),
        )

    def adapters(self, where: str | None = None, params: Iterable[Any] = (),
                 refiner: str | None = None) -> list[sdk.Adapter]:
        refiner = refiner or self.get_meta("refiner")
        return [self.adapter(r, refiner) for r in self.rows(where, params)]

    def get(self, adapter_id: int) -> sdk.Adapter | None:
        row = self.row(adapter_id)
        return self.adapter(row, self.get_meta("refiner")) if row else None

    # -- user controls ---------------------------------------------------------------------

    def set_controls(self, adapter_id: int, *, pinned: bool | None = None, banned: bool | None = None,
                     weight_override: float | bool | None = False) -> None:
        """Pin/ban/override weight. ``weight_override=None`` clears it; ``False`` leaves it."""
        fields: dict[str, Any] = {}
        if pinned is not None:
            fields["pinned"] = int(pinned)
        if banned is not None:
            fields["banned"] = int(banned)
        if weight_override is not False:
            fields["weight_override"] = weight_override
        if self.row(adapter_id) is None:
            raise KeyError(f"no adapter with id {adapter_id}")
        if fields:
            self.update_fields(adapter_id, **fields)

    # -- problems --------------------------------------------------------------------------

    def record_problem(self, path: str, reason: str) -> None:
        with self.db.conn:
            self.db["problems"].upsert({"path": path, "reason": reason}, pk="path")

    def clear_problem(self, path: str) -> None:
        with self.db.conn:
            self.db.execute("delete from problems where path = ?", [path])

    def problems(self) -> list[tuple[str, str]]:
        return [(r["path"], r["reason"]) for r in self.db["problems"].rows_where(order_by="path")]
