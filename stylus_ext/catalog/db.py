"""The catalog: one SQLite file (via sqlite-utils) holding adapters and everything derived from them.

Tables
- ``adapters``: one row per adapter version; card fields (see :class:`~stylus_ext.sdk.AdapterCard`)
  plus the user's controls (``pinned``, ``banned``, ``weight_override``). ``path`` is set for
  installed files; ``civitai_version_id`` joins a file to its Civitai card.
- ``refinements``: a refiner's output per (adapter, refiner name@version), keyed to ``card_hash``
  so a changed card is refined again; ``error`` records a failure (the adapter keeps a fallback).
- ``embeddings``: vectors cached per (encoder identity, text hash): re-indexing embeds only changes.
- ``problems``: one-line reasons for files that could not be read fully.
- ``meta``: key/value (active index encoder, sync cursors, ...); ``generation`` and
  ``text_generation`` are bumped by triggers on writes to ``adapters`` (schema 3): the keys of what
  is saved beside the catalog.
- ``kept_controls``: the user's controls and refinements of adapters whose files left the catalog,
  keyed by path, header digest, SHA256 and name, so they return with the file (schema 2).

All writes go through :mod:`stylus_ext.catalog.store` (one row serialiser, :func:`card_to_row`);
write transactions start with ``BEGIN IMMEDIATE`` under a busy timeout, so two writers (the WebUI's
background refresh and a CLI scan) wait for each other instead of failing with "database is locked".
A catalog whose folder is read-only opens read-only for the commands that only read.

The schema version is SQLite's ``user_version``; :data:`MIGRATIONS` upgrade older files in place.
A file from a newer Stylus is refused with a clear message instead of being damaged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from stylus_ext import sdk
from stylus_ext.sdk.cards.fileio import fits_int64

JSON_FIELDS = ("tags", "trigger_words", "example_prompts", "image_urls", "training_tags", "problems")
CARD_FIELDS = tuple(f.name for f in dataclasses.fields(sdk.AdapterCard))
_CARD_DEFAULTS = tuple((f.name, f.default) for f in dataclasses.fields(sdk.AdapterCard)
                       if f.default is not dataclasses.MISSING and f.default is not None)
_ADAPTER_SQL = (  # one row per adapter with the active refiner's output (the pk makes it at most one)
    "select " + ", ".join(f"a.{name}" for name in CARD_FIELDS) + ", a.id, a.pinned, a.banned, a.weight_override, "
    "r.adapter_id, r.description, r.category, r.weight from adapters a left join refinements r on r.adapter_id = a.id "
    "and r.refiner = ? and (r.error is null or r.error = '') where a.id in ({marks})")


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


def _m2(db: sqlite_utils.Database) -> None:
    db["kept_controls"].create({"id": int, "path": str, "name": str, "size": int, "header_sha": str,
                                "sha256": str, "pinned": int, "banned": int, "weight_override": float,
                                "refinements": str, "removed": float}, pk="id")
    db["kept_controls"].create_index(["path"])
    db["kept_controls"].create_index(["sha256"])
    db["kept_controls"].create_index(["name"])


def _m3(db: sqlite_utils.Database) -> None:
    """Change counters, bumped by triggers whoever writes: ``generation`` on every write to
    ``adapters``, ``text_generation`` when a row's text can change (insert, delete, a new card hash,
    name or alias). What is saved beside the catalog (filter table, lexical index) is then checked
    against one row instead of a scan of every adapter."""
    for key in ("generation", "text_generation"):
        db.execute("insert or replace into meta (key, value) values (?, '0')", [key])
    db.execute("insert or replace into meta (key, value) values ('catalog_uid', lower(hex(randomblob(8))))")
    bump = "update meta set value = cast(value as integer) + 1 where key in ({keys}); end"
    for name, event, keys in (("insert", "insert", "'generation', 'text_generation'"),
                              ("delete", "delete", "'generation', 'text_generation'"),
                              ("update", "update", "'generation'"),
                              ("text", "update of card_hash, name, alias", "'text_generation'")):
        db.execute(f"create trigger if not exists adapters_generation_{name} after {event} on adapters begin "
                   + bump.format(keys=keys))


def _m4(db: sqlite_utils.Database) -> None:
    """``example_texts``: the text hashes of each adapter's example prompts as embedded
    (``embed.example_texts``), keyed by a hash of the raw prompts: reading them through the prompt
    grammar costs 0.2–0.7 ms a prompt, which an unchanged catalogue should not pay on every index run."""
    db["example_texts"].create({"source": str, "hashes": str}, pk="source")


#: Ordered schema migrations; index i upgrades version i to i+1. Append, never edit.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_m1, _m2, _m3, _m4]
#: Seconds a writer waits for another one before giving up.
BUSY_TIMEOUT_S = 60.0
_HASH_SKIP = ("path", "size", "mtime", "header_sha", "sha256", "autov3", "preview_path")
SCHEMA_VERSION = len(MIGRATIONS)


def generation_key(conn: sqlite3.Connection, counter: str = "generation") -> str | None:
    """A key that changes whenever any adapter row does (``counter="generation"``) or its text can
    (``"text_generation"``): schema 3's counter and the catalog's uid. None for an older catalog
    opened read-only, or no catalog (callers then fingerprint the rows)."""
    try:
        rows = dict(conn.execute("select key, value from meta where key in (?, 'catalog_uid')", [counter]))
    except sqlite3.OperationalError:  # no meta table
        return None
    if counter not in rows or "catalog_uid" not in rows:
        return None
    return f"{rows['catalog_uid']}:{rows[counter]}"


_JSON_AT = tuple(CARD_FIELDS.index(k) for k in JSON_FIELDS)
_DEFAULTS_AT = tuple((CARD_FIELDS.index(k), default) for k, default in _CARD_DEFAULTS)
_NSFW_AT = CARD_FIELDS.index("nsfw")


def _card_from_values(values: list[Any]) -> sdk.AdapterCard:
    """The card of a row's :data:`CARD_FIELDS` values in order (JSON lists decoded, defaults filled);
    positional, with no per-field dict: the retriever reads ~150 cards a search."""
    for i in _JSON_AT:
        raw = values[i]
        values[i] = tuple(json.loads(raw)) if raw and raw != "[]" else ()
    values[_NSFW_AT] = bool(values[_NSFW_AT])
    for i, default in _DEFAULTS_AT:
        if values[i] is None:
            values[i] = default
    return sdk.AdapterCard(*values)


def _make_adapter(adapter_id: int, card: sdk.AdapterCard, refined: Sequence[Any] | None, *, pinned: Any,
                  banned: Any, weight_override: float | None) -> sdk.Adapter:
    """An adapter from its card, the refiner's (description, category, weight) or None, and controls."""
    description, category, weight = refined or (card.description, "concept", card.preferred_weight or 0.8)
    return sdk.Adapter(id=adapter_id, card=card, description=description or card.description,
                       category=category or "concept", weight=float(weight or 0.8), pinned=bool(pinned),
                       banned=bool(banned), weight_override=weight_override)


def card_hash(card: sdk.AdapterCard) -> str:
    """Hash of the card fields a refiner reads: a changed card is refined and embedded again."""
    keep = {name: (list(v) if isinstance(v, tuple) else v)
            for name in CARD_FIELDS if name not in _HASH_SKIP for v in (getattr(card, name),)}
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:16]


def card_to_row(card: sdk.AdapterCard) -> dict[str, Any]:
    """The ``adapters`` columns of a card: THE row serialiser (every write uses it)."""
    row = {name: getattr(card, name) for name in CARD_FIELDS}
    for key in JSON_FIELDS:
        row[key] = json.dumps(list(row[key]), ensure_ascii=False)
    row["nsfw"] = int(bool(card.nsfw))
    row["card_hash"] = card_hash(card)
    return row


def describe_error(exc: BaseException, path: str | Path = "the catalog") -> str:
    """One line for an SQLite error: what happened and what to do."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    low = text.lower()
    if "malformed" in low or "not a database" in low:
        return (f"the catalog {path} is damaged ({text}); nothing was changed. Restore a backup, or move the "
                "file aside and rebuild it with `stylus scan` and `stylus index`")
    if "full" in low or "too large" in low or "disk i/o" in low:
        return (f"cannot write {path} ({text}): is the disk full? Free some space and run the command again "
                "(work done so far is kept)")
    if "readonly" in low or "read-only" in low:
        return (f"the catalog {path} is read-only ({text}); read-only commands (info, search, compose) still work, "
                "others need a writable --catalog")
    if "locked" in low or "busy" in low:
        return f"the catalog {path} is busy: another Stylus process is writing to it; try again when it finishes"
    return f"catalog {path}: {text}"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


class Catalog:
    """An open catalog file. Cheap to open; use one per thread (SQLite connections are not shared)."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        self.readonly = False
        if not create and not self.path.exists():
            raise CatalogError(f"no catalog at {self.path} (run `stylus scan` or `stylus demo` first)")
        if not self.path.exists():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CatalogError(f"cannot create the catalog folder {self.path.parent} ({exc.strerror or exc}); "
                                   "choose another --catalog or STYLUS_CATALOG") from exc
        if self.path.is_dir():
            raise CatalogError(f"{self.path} is a folder; --catalog takes a file path")
        try:
            conn = self._connect(create)
        except sqlite3.DatabaseError as exc:
            raise CatalogError(describe_error(exc, self.path) if _damaged(exc) else
                               f"{self.path} is not a Stylus catalog ({exc})") from exc
        self.db = sqlite_utils.Database(conn)
        self._migrate()

    def _connect(self, create: bool) -> sqlite3.Connection:
        """A read-write connection in WAL mode; for an existing catalog in a read-only place
        (``create=False``), a read-only one."""
        try:
            conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            return conn
        except sqlite3.OperationalError as exc:
            if create or not _readonly_error(exc):
                if _readonly_error(exc):
                    raise CatalogError(f"cannot open the catalog {self.path}: it or its folder is read-only "
                                       "(SQLite writes beside it); choose another --catalog or STYLUS_CATALOG") from exc
                raise
        self.readonly = True
        uri = self.path.resolve().as_uri()
        for query in ("?mode=ro", "?mode=ro&immutable=1"):  # immutable: no -shm file can be made
            try:
                conn = sqlite3.connect(uri + query, uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
                conn.execute("select count(*) from sqlite_master").fetchone()
                return conn
            except sqlite3.OperationalError:
                continue
        raise CatalogError(f"cannot read the catalog {self.path} (read-only and its WAL files cannot be made)")

    # -- schema ----------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        try:
            version = self.schema_version
            tables = self.db.table_names()
        except sqlite3.DatabaseError as exc:
            raise CatalogError(describe_error(exc, self.path) if _damaged(exc) else
                               f"{self.path} is not a Stylus catalog ({exc})") from exc
        if version > SCHEMA_VERSION:
            raise CatalogError(
                f"{self.path} was written by a newer Stylus (schema {version}, this version knows "
                f"{SCHEMA_VERSION}); upgrade Stylus or point --catalog at another file"
            )
        if version == 0 and tables and "adapters" not in tables:
            raise CatalogError(f"{self.path} is an SQLite file but not a Stylus catalog")
        if version == SCHEMA_VERSION:
            return
        if self.readonly:  # an older schema reads fine; the upgrade waits for a writable open
            return
        with self.write():  # a second process opening it now waits, then sees the new version
            for index in range(self.schema_version, SCHEMA_VERSION):
                MIGRATIONS[index](self.db)
                self.db.execute(f"PRAGMA user_version = {index + 1}")

    @contextmanager
    def write(self) -> Iterator[None]:
        """One write transaction, taken at once (``BEGIN IMMEDIATE``): a second writer waits up to
        :data:`BUSY_TIMEOUT_S` for it instead of failing half-way. Commits, or rolls back on error,
        like ``with connection:`` (a transaction already open is committed with it)."""
        conn = self.db.conn
        if not conn.in_transaction:  # else it joins (and ends) the transaction already open
            conn.execute("begin immediate")
        try:
            yield
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    def close(self) -> None:
        self.db.conn.close()

    # -- meta ------------------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("select value from meta where key = ?", [key]).fetchone()
        return row[0] if row else default

    def generation(self) -> str | None:
        """:func:`generation_key` of this catalog."""
        return generation_key(self.db.conn)

    def set_meta(self, key: str, value: str | None) -> None:
        with self.write():
            if value is None:
                self.db.execute("delete from meta where key = ?", [key])
            else:
                self.db["meta"].upsert({"key": key, "value": value}, pk="key")

    # -- adapters --------------------------------------------------------------------------

    card_to_row = staticmethod(card_to_row)

    @staticmethod
    def row_to_card(row: dict[str, Any]) -> sdk.AdapterCard:
        return _card_from_values([row.get(k) for k in CARD_FIELDS])

    def insert_card(self, card: sdk.AdapterCard) -> int:
        """Add (or merge) an adapter through the one write path (:func:`store.upsert_card`); its id."""
        from stylus_ext.catalog.store import upsert_card

        return upsert_card(self, card)[0]

    def update_card(self, adapter_id: int, card: sdk.AdapterCard) -> None:
        """Replace the card fields of an adapter, keeping its id, controls and derived data."""
        from stylus_ext.catalog.store import replace_card

        replace_card(self, adapter_id, card)

    def update_fields(self, adapter_id: int, **fields: Any) -> None:
        with self.write():
            self.db["adapters"].update(adapter_id, fields)

    def delete(self, ids: Iterable[int]) -> int:
        ids = list(ids)
        with self.write():
            for chunk_start in range(0, len(ids), 500):
                chunk = ids[chunk_start:chunk_start + 500]
                marks = ",".join("?" * len(chunk))
                self.db.execute(f"delete from adapters where id in ({marks})", chunk)
                self.db.execute(f"delete from refinements where adapter_id in ({marks})", chunk)
        return len(ids)

    def rows(self, where: str | None = None, params: Iterable[Any] = ()) -> Iterator[dict[str, Any]]:
        yield from self.db["adapters"].rows_where(where, list(params), order_by="id")

    def row(self, adapter_id: int) -> dict[str, Any] | None:
        if not fits_int64(adapter_id):
            return None  # beyond SQLite's integers: no such id (instead of an OverflowError)
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
        return _make_adapter(int(row["id"]), card, refined, pinned=row.get("pinned"), banned=row.get("banned"),
                             weight_override=row.get("weight_override"))

    def adapters(self, where: str | None = None, params: Iterable[Any] = (),
                 refiner: str | None = None) -> list[sdk.Adapter]:
        refiner = refiner or self.get_meta("refiner")
        return [self.adapter(r, refiner) for r in self.rows(where, params)]

    def adapters_by_id(self, ids: Iterable[int], refiner: str | None = None) -> dict[int, sdk.Adapter]:
        """:meth:`adapter` of each existing id in ``ids``, read in one query per 500 ids (the retriever's path)."""
        wanted = [int(i) for i in dict.fromkeys(ids) if fits_int64(i)]
        out: dict[int, sdk.Adapter] = {}
        n = len(CARD_FIELDS)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            sql = _ADAPTER_SQL.format(marks=",".join("?" * len(chunk)))
            for values in self.db.conn.execute(sql, [refiner, *chunk]):
                card = _card_from_values(list(values[:n]))
                adapter_id, pinned, banned, override, refined, *refinement = values[n:]
                out[adapter_id] = _make_adapter(adapter_id, card, None if refined is None else refinement,
                                                pinned=pinned, banned=banned, weight_override=override)
        return out

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
        if not fits_int64(adapter_id) or self.row(adapter_id) is None:
            raise KeyError(f"no adapter with id {adapter_id}")
        if fields:
            self.update_fields(adapter_id, **fields)

    # -- problems --------------------------------------------------------------------------

    def problems(self) -> list[tuple[str, str]]:
        return [(r["path"], r["reason"]) for r in self.db["problems"].rows_where(order_by="path")]


def _readonly_error(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "readonly" in text or "read-only" in text or "unable to open" in text


def _damaged(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "malformed" in text
