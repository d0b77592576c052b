"""Civitai's ``GET /models`` pages turned into adapter cards: the filters (what the API applies, and
what is applied here after each page: minimum downloads/rating, several tags, base models per version,
NSFW example images), the cursor, and the page loop that stops on repeated cursors and stale pages.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

from stylus_ext.sdk.cards.civitai_json import ITEM_ERRORS, cards_from_civitai_json
from stylus_ext.sdk.civitai.client import CivitaiClient
from stylus_ext.sdk.records import AdapterCard

log = logging.getLogger("stylus.civitai")

DEFAULT_TYPES = ("LORA", "LoCon", "DoRA")
#: Example images above this Civitai ``nsfwLevel`` (1 PG, 2 PG-13, 4 R, 8 X, 16 XXX) lose their
#: prompts when NSFW is off, so mature words never reach the refiner.
SFW_MAX_LEVEL = 2
#: A sync stops after this many pages in a row that add no model it has not seen in this run.
STALE_PAGES = 3

@dataclass(frozen=True)
class CivitaiFilters:
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
class CivitaiPage:
    """One ``/models`` page turned into cards."""

    number: int
    cursor: str | None
    next_cursor: str | None
    cards: list[AdapterCard]
    models: int
    dropped: dict[str, int]
    total: int | None = None


def cards_from_item(item: dict[str, Any], filters: CivitaiFilters) -> list[AdapterCard]:
    """Cards (one per version) of a ``/models`` item, with source ``civitai``; versions whose base
    model is not wanted are left out."""
    if not filters.nsfw:
        item = _sfw_images(item)
    wanted = {b.lower() for b in filters.base_models}
    return [card for card in cards_from_civitai_json(item, source="civitai")
            if not wanted or card.base_model_raw.lower() in wanted]


def civitai_pages(client: CivitaiClient, filters: CivitaiFilters, cursor: str | None = None,
                  start_page: int = 1) -> Iterator[CivitaiPage]:
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
        cards, dropped = _page_cards(items, filters)
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
        yield CivitaiPage(number, cursor, nxt, cards, len(items), dropped, total if isinstance(total, int) else None)
        if nxt is None or not items:
            return
        if cursor:
            seen_cursors.add(cursor)
        cursor = nxt
        number += 1


def _page_cards(items: list[dict[str, Any]], filters: CivitaiFilters) -> tuple[list[AdapterCard], dict[str, int]]:
    """The cards of one page's items, and how many items each filter dropped (by reason)."""
    cards: list[AdapterCard] = []
    dropped: dict[str, int] = {}
    for item in items:
        reason = filters.drop_reason(item)
        if not reason:
            try:
                got = cards_from_item(item, filters)
            except ITEM_ERRORS as exc:
                log.warning("civitai: model %s skipped: %s", item.get("id"), exc)
                got, reason = [], "unreadable"
            if not got and not reason:
                reason = "base model"
            cards.extend(got)
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
    return cards, dropped
