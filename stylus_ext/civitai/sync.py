"""``stylus sync civitai``: page through ``GET /models`` into catalog cards, resumably.

Each page's cards are upserted (one catalog entry per Civitai version: a changed model updates its
entry, never duplicates it) and committed in ONE transaction together with the next cursor and a
fingerprint of the filters (catalog ``meta`` table, key :data:`STATE_KEY`). A run that is interrupted,
crashes or loses the network resumes from that cursor next time (the page in flight is fetched again).
A finished run clears the cursor, so the next run starts over and picks up changes. A run with
different filters starts over too.

Filters the API cannot apply (minimum downloads/rating, several tags, base models per version, NSFW
example images) are applied here, after each page.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

from stylus_ext import sdk
from stylus_ext.civitai.client import CivitaiClient, CivitaiError

log = logging.getLogger("stylus.civitai")

STATE_KEY = "civitai.sync"
DEFAULT_TYPES = ("LORA", "LoCon", "DoRA")
#: Example images above this Civitai ``nsfwLevel`` (1 PG, 2 PG-13, 4 R, 8 X, 16 XXX) lose their
#: prompts when NSFW is off, so mature words never reach the refiner.
SFW_MAX_LEVEL = 2
#: A sync stops after this many pages in a row that add no model it has not seen in this run.
STALE_PAGES = 3


def split_list(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"a, b"`` or ``["a", "b"]`` → ``("a", "b")`` (stripped, empty dropped, order kept)."""
    if value is None:
        return ()
    parts = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return tuple(dict.fromkeys(p.strip() for p in parts if p and p.strip()))


@dataclass(frozen=True)
class SyncFilters:
    """What to fetch. ``limit`` (models per run, 0 = all) is not part of the fingerprint: a limited
    run stops at a page boundary and the next run with the same filters continues from there."""

    types: tuple[str, ...] = DEFAULT_TYPES
    base_models: tuple[str, ...] = ()
    nsfw: bool = False
    min_downloads: int = 0
    min_rating: float = 0.0
    query: str = ""
    tags: tuple[str, ...] = ()
    sort: str = "Most Downloaded"
    period: str = "AllTime"
    page_size: int = 100
    limit: int = 0

    def params(self) -> dict[str, Any]:
        """Query parameters for ``GET /models`` (without cursor/limit)."""
        params: dict[str, Any] = {"nsfw": "true" if self.nsfw else "false", "sort": self.sort, "period": self.period}
        if self.types:
            params["types"] = list(self.types)
        if self.base_models:
            params["baseModels"] = list(self.base_models)
        if self.query:
            params["query"] = self.query
        if self.tags:
            params["tag"] = self.tags[0]  # the API takes one tag; the others are checked here
        return params

    def fingerprint(self) -> str:
        keep = dataclasses.asdict(self)
        keep.pop("limit")
        keep.pop("page_size")
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]

    def drop_reason(self, item: Mapping[str, Any]) -> str:
        """Why a ``/models`` item is dropped by the client-side filters ("" = keep)."""
        if self.types and str(item.get("type", "")).lower() not in {t.lower() for t in self.types}:
            return "type"
        if not self.nsfw and item.get("nsfw") is True:
            return "nsfw"
        stats = item.get("stats") if isinstance(item.get("stats"), dict) else {}
        if self.min_downloads and _num(stats.get("downloadCount")) < self.min_downloads:
            return "downloads"
        if self.min_rating and _rating(stats) < self.min_rating:
            return "rating"
        if self.tags:
            tags = {str(t.get("name", "") if isinstance(t, dict) else t).lower() for t in item.get("tags") or []}
            if not all(t.lower() in tags for t in self.tags):
                return "tags"
        return ""


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _rating(stats: Mapping[str, Any]) -> float:
    """Civitai's 0–5 ``rating``; newer answers only have thumbs: 5 × up / (up + down)."""
    if stats.get("rating") is not None:
        return _num(stats.get("rating"))
    up, down = _num(stats.get("thumbsUpCount")), _num(stats.get("thumbsDownCount"))
    return 5.0 * up / (up + down) if up + down else 0.0


def _sfw_images(item: dict[str, Any]) -> dict[str, Any]:
    """A copy of a model item whose versions keep only SFW example images."""
    item = dict(item)
    versions = []
    for version in item.get("modelVersions") or []:
        if isinstance(version, dict) and isinstance(version.get("images"), list):
            images = [im for im in version["images"] if isinstance(im, dict)
                      and _num(im.get("nsfwLevel", 1)) <= SFW_MAX_LEVEL
                      and im.get("nsfw") not in (True, "Mature", "X")]
            versions.append({**version, "images": images})
        else:
            versions.append(version)
    item["modelVersions"] = versions
    return item


def next_cursor(metadata: Any) -> str | None:
    """``metadata.nextCursor``, else the ``cursor`` of ``metadata.nextPage``; ``None`` at the end."""
    if not isinstance(metadata, dict):
        return None
    cursor = metadata.get("nextCursor")
    if cursor not in (None, ""):
        return str(cursor)
    next_page = metadata.get("nextPage")
    if isinstance(next_page, str) and next_page:
        values = parse_qs(urlparse(next_page).query).get("cursor")
        if values and values[0]:
            return values[0]
    return None


def _item_key(item: Mapping[str, Any]) -> Any:
    """A model's identity within a run: its id, else its JSON text."""
    model_id = item.get("id")
    if isinstance(model_id, (int, str)) and not isinstance(model_id, bool):
        return ("id", model_id)
    return ("json", json.dumps(item, sort_keys=True, default=str)[:4096])


@dataclass
class Page:
    """One ``/models`` page turned into cards."""

    number: int
    cursor: str | None
    next_cursor: str | None
    cards: list[sdk.AdapterCard]
    models: int
    dropped: dict[str, int]
    total: int | None = None


def cards_from_item(item: dict[str, Any], filters: SyncFilters) -> list[sdk.AdapterCard]:
    """Cards (one per version) of a ``/models`` item, with source ``civitai``; versions whose base
    model is not wanted are left out."""
    from stylus_ext.catalog.cards import cards_from_civitai_json

    if not filters.nsfw:
        item = _sfw_images(item)
    wanted = {b.lower() for b in filters.base_models}
    return [card for card in cards_from_civitai_json(item, source="civitai")
            if not wanted or card.base_model_raw.lower() in wanted]


def iter_pages(client: CivitaiClient, filters: SyncFilters, cursor: str | None = None,
               start_page: int = 1) -> Iterator[Page]:
    """Fetch ``/models`` pages from ``cursor`` on; stops at the end, at ``filters.limit`` models, or
    when the server repeats a cursor. Raises :class:`CivitaiError` (incl. offline) unchanged."""
    seen_cursors: set[str] = set()
    seen_items: set[Any] = set()
    stale_pages = 0
    fetched = 0
    number = start_page
    while True:
        size = filters.page_size
        if filters.limit:
            size = min(size, filters.limit - fetched)
            if size <= 0:
                return
        params = filters.params()
        params["limit"] = size
        if cursor:
            params["cursor"] = cursor
        data = client.models_page(params)
        items = [i for i in data["items"] if isinstance(i, dict)]
        metadata = data.get("metadata")
        nxt = next_cursor(metadata)
        total = metadata.get("totalItems") if isinstance(metadata, dict) else None
        cards: list[sdk.AdapterCard] = []
        dropped: dict[str, int] = {}
        for item in items:
            reason = filters.drop_reason(item)
            if not reason:
                try:
                    got = cards_from_item(item, filters)
                except (ValueError, TypeError, KeyError, AttributeError, RecursionError, OverflowError) as exc:
                    log.warning("civitai: model %s skipped: %s", item.get("id"), exc)
                    got, reason = [], "unreadable"
                if not got and not reason:
                    reason = "base model"
                cards.extend(got)
            if reason:
                dropped[reason] = dropped.get(reason, 0) + 1
        fetched += len(items)
        keys = {_item_key(i) for i in items}
        stale_pages = stale_pages + 1 if keys <= seen_items else 0
        seen_items |= keys
        if nxt is not None and (nxt == cursor or nxt in seen_cursors):
            log.warning("civitai: the server repeated cursor %r; stopping", nxt)
            nxt = None
        elif nxt is not None and stale_pages >= STALE_PAGES:
            log.warning("civitai: %d pages in a row brought nothing new (the server keeps sending the same "
                        "items under new cursors); stopping", stale_pages)
            nxt = None
        yield Page(number, cursor, nxt, cards, len(items), dropped, total if isinstance(total, int) else None)
        if nxt is None or not items:
            return
        if cursor:
            seen_cursors.add(cursor)
        cursor = nxt
        number += 1


@dataclass
class SyncReport:
    """What a sync did. ``changed_ids`` are catalog ids added or updated (for incremental indexing)."""

    pages: int = 0
    models: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    retries: int = 0
    resumed_from_page: int | None = None
    complete: bool = False
    error: str = ""
    changed_ids: list[int] = field(default_factory=list)

    def summary(self) -> str:
        dropped = sum(self.dropped.values())
        text = (f"{self.pages} page(s), {self.models} model(s): {self.added} added, {self.updated} updated, "
                f"{self.unchanged} unchanged, {dropped} filtered out; {self.requests} request(s)")
        if self.resumed_from_page:
            text += f"; resumed at page {self.resumed_from_page}"
        if self.error:
            text += "; stopped early, the next run resumes where this one stopped"
        elif not self.complete:
            text += "; limit reached, the next run continues from here"
        return text


def load_state(catalog: Any) -> dict[str, Any]:
    raw = catalog.get_meta(STATE_KEY)
    try:
        state = json.loads(raw) if raw else {}
    except ValueError:
        state = {}
    return state if isinstance(state, dict) else {}


def sync_civitai(
    catalog: Any,
    source: Any,
    *,
    restart: bool = False,
    progress: bool = False,
    on_page: Callable[[Page, SyncReport], None] | None = None,
) -> SyncReport:
    """Run a sync with a ``civitai`` source backend (anything with ``filters`` and ``pages(cursor,
    start_page)``). Network/API errors end the run with ``report.error`` set; everything committed
    so far stays, and the stored cursor makes the next run resume. ``on_page`` runs after each page
    is committed (an exception there stops the run like a crash would)."""
    from tqdm import tqdm

    from stylus_ext.catalog.store import UNSTORABLE, atomic, upsert

    filters: SyncFilters = source.filters
    fp = filters.fingerprint()
    state = load_state(catalog)
    report = SyncReport()
    cursor: str | None = None
    start_page = 1
    if not restart and state.get("fingerprint") == fp and state.get("cursor"):
        cursor = str(state["cursor"])
        start_page = int(state.get("page") or 1)
        report.resumed_from_page = start_page
        log.info("civitai: resuming at page %d", start_page)
    elif state.get("cursor") and state.get("fingerprint") != fp:
        log.info("civitai: filters changed since the unfinished sync; starting over")
    client = getattr(source, "client", None)
    sent0, retries0 = (client.requests_sent, client.retries) if client else (0, 0)
    bar = tqdm(total=filters.limit or None, unit="model", desc="civitai sync", disable=not progress,
               dynamic_ncols=True)
    try:
        for page in source.pages(cursor, start_page):
            if bar.total is None and page.total:
                bar.total = page.total
            counts = {"added": 0, "updated": 0, "unchanged": 0}
            changed: list[int] = []
            try:
                for card in page.cards:
                    try:
                        with atomic(catalog):
                            adapter_id, status = upsert(catalog, card)
                    except UNSTORABLE as exc:  # one card SQLite cannot take: the page still commits
                        log.warning("civitai: card %r (version %s) skipped: %s", card.name[:60],
                                    card.civitai_version_id, exc)
                        report.dropped["unstorable"] = report.dropped.get("unstorable", 0) + 1
                        continue
                    status = "updated" if status == "renamed" else status
                    counts[status] = counts.get(status, 0) + 1
                    if status in ("added", "updated"):
                        changed.append(int(adapter_id))
                # One transaction per page: its cards AND the cursor after it (set_meta commits both),
                # so a crash at any point leaves either the whole page + new cursor or neither.
                catalog.set_meta(STATE_KEY, json.dumps({
                    "fingerprint": fp, "cursor": page.next_cursor, "page": page.number + 1,
                    "complete": page.next_cursor is None, "updated": time.time(),
                }))
            except BaseException:
                catalog.db.conn.rollback()
                raise
            report.added += counts["added"]
            report.updated += counts["updated"]
            report.unchanged += counts["unchanged"]
            report.changed_ids.extend(changed)
            for reason, n in page.dropped.items():
                report.dropped[reason] = report.dropped.get(reason, 0) + n
            report.pages += 1
            report.models += page.models
            report.complete = page.next_cursor is None
            bar.update(page.models)
            bar.set_postfix(added=report.added, updated=report.updated, unchanged=report.unchanged, refresh=False)
            if on_page:
                on_page(page, report)
    except CivitaiError as exc:
        report.error = str(exc)
    finally:
        bar.close()
        if client:
            report.requests = client.requests_sent - sent0
            report.retries = client.retries - retries0
    return report
