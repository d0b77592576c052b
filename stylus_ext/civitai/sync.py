"""``stylus sync civitai``: page through ``GET /models`` into catalog cards, resumably.

Each page's cards are upserted (one catalog entry per Civitai version: a changed model updates its
entry, never duplicates it) and committed in ONE transaction together with the next cursor and a
fingerprint of the filters (catalog ``meta`` table, key :data:`STATE_KEY`). A run that is interrupted,
crashes or loses the network resumes from that cursor next time (the page in flight is fetched again).
A finished run clears the cursor, so the next run starts over and picks up changes. A run with
different filters starts over too. The pages and filters themselves are :mod:`stylus_ext.sdk.civitai.pages`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stylus_ext.sdk.civitai.client import CivitaiError
from stylus_ext.sdk.civitai.pages import CivitaiFilters, CivitaiPage

log = logging.getLogger("stylus.civitai")

STATE_KEY = "civitai.sync"


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
    on_page: Callable[[CivitaiPage, SyncReport], None] | None = None,
) -> SyncReport:
    """Run a sync with a ``civitai`` source backend (anything with ``filters`` and ``pages(cursor,
    start_page)``). Network/API errors end the run with ``report.error`` set; everything committed
    so far stays, and the stored cursor makes the next run resume. ``on_page`` runs after each page
    is committed (an exception there stops the run like a crash would)."""
    from tqdm import tqdm

    filters: CivitaiFilters = source.filters
    fp = filters.fingerprint()
    report = SyncReport()
    cursor, start_page = _resume_point(load_state(catalog), fp, restart, report)
    client = getattr(source, "client", None)
    sent0, retries0 = (client.requests_sent, client.retries) if client else (0, 0)
    bar = tqdm(total=filters.limit or None, unit="model", desc="civitai sync", disable=not progress,
               dynamic_ncols=True)
    try:
        for page in source.pages(cursor, start_page):
            if bar.total is None and page.total:
                bar.total = page.total
            counts, changed = _commit_page(catalog, page, fp, report)
            _count_page(report, page, counts, changed)
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


def _resume_point(state: dict[str, Any], fp: str, restart: bool, report: SyncReport) -> tuple[str | None, int]:
    """``(cursor, page)`` to start from: the stored cursor of an unfinished run with the same filters."""
    if not restart and state.get("fingerprint") == fp and state.get("cursor"):
        start_page = int(state.get("page") or 1)
        report.resumed_from_page = start_page
        log.info("civitai: resuming at page %d", start_page)
        return str(state["cursor"]), start_page
    if state.get("cursor") and state.get("fingerprint") != fp:
        log.info("civitai: filters changed since the unfinished sync; starting over")
    return None, 1


def _commit_page(catalog: Any, page: CivitaiPage, fp: str, report: SyncReport) -> tuple[dict[str, int], list[int]]:
    """Upsert a page's cards and store the cursor after it, in ONE transaction (``set_meta`` commits
    both), so a crash at any point leaves either the whole page + new cursor or neither. Returns the
    counts by status and the ids added or updated."""
    from stylus_ext.catalog.store import UNSTORABLE, atomic, upsert

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
        catalog.set_meta(STATE_KEY, json.dumps({
            "fingerprint": fp, "cursor": page.next_cursor, "page": page.number + 1,
            "complete": page.next_cursor is None, "updated": time.time(),
        }))
    except BaseException:
        catalog.db.conn.rollback()
        raise
    return counts, changed


def _count_page(report: SyncReport, page: CivitaiPage, counts: dict[str, int], changed: list[int]) -> None:
    report.added += counts["added"]
    report.updated += counts["updated"]
    report.unchanged += counts["unchanged"]
    report.changed_ids.extend(changed)
    for reason, n in page.dropped.items():
        report.dropped[reason] = report.dropped.get(reason, 0) + n
    report.pages += 1
    report.models += page.models
    report.complete = page.next_cursor is None
