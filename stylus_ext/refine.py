"""Run a refiner over the catalog: card → description, category, weight, cached per card and refiner.

Results go to the ``refinements`` table keyed by (adapter, ``name@version``) and stamped with the
card's hash, so only new or changed cards (or a new refiner version) are refined again. Work is
committed in chunks: Ctrl-C keeps everything finished so far and the next run resumes. A refiner
failure is recorded as a one-line ``error`` (retried on the next run); the adapter meanwhile keeps
its fallback description, category and weight from the card.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from stylus_ext import sdk
from stylus_ext.catalog.db import Catalog

log = logging.getLogger("stylus")

CHUNK = 200


@dataclass
class RefineReport:
    """What a :func:`refine_catalog` run did."""

    refiner: str
    total: int = 0
    refined: int = 0
    cached: int = 0
    failed: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    interrupted: bool = False

    def summary(self) -> str:
        text = f"refiner {self.refiner}: {self.refined} refined, {self.cached} cached, {self.failed} failed"
        return text + (" (interrupted; run again to resume)" if self.interrupted else "")


def refiner_key(refiner: sdk.Refiner) -> str:
    """``name@version``: the cache key and the catalog's ``refiner`` meta value."""
    return f"{refiner.name}@{refiner.version}"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def _validated(result: Any) -> dict[str, Any]:
    """A refiner's answer as table values; anything malformed raises ``ValueError``."""
    if not isinstance(result, sdk.Refinement):
        raise ValueError(f"refiner returned {type(result).__name__}, not a Refinement")
    if not isinstance(result.description, str):
        raise ValueError("description is not text")
    category = result.category if result.category in sdk.CATEGORIES else "concept"
    try:
        weight = float(result.weight)
    except (TypeError, ValueError):
        weight = 0.8
    if not math.isfinite(weight) or not -5 <= weight <= 5:
        weight = 0.8
    return {"description": result.description.strip(), "category": category, "weight": round(weight, 3),
            "error": None}


def pending_ids(catalog: Catalog, key: str, *, retry_errors: bool = True) -> list[int]:
    """Ids of adapters without a current refinement by ``key`` (new, changed card, or failed before)."""
    sql = (
        "select a.id from adapters a left join refinements r on r.adapter_id = a.id and r.refiner = ? "
        "where r.adapter_id is null or r.card_hash is not a.card_hash"
        + (" or (r.error is not null and r.error != '')" if retry_errors else "")
        + " order by a.id"
    )
    return [int(row[0]) for row in catalog.db.execute(sql, [key]).fetchall()]


def pending_rows(catalog: Catalog, key: str, *, retry_errors: bool = True,
                 limit: int | None = None) -> list[dict[str, Any]]:
    """Full rows of the pending adapters (at most ``limit``), in id order (loads them all: prefer a limit)."""
    ids = pending_ids(catalog, key, retry_errors=retry_errors)
    return list(_rows_in_chunks(catalog, ids if limit is None else ids[:max(0, limit)]))


def _rows_in_chunks(catalog: Catalog, ids: list[int]) -> Iterator[dict[str, Any]]:
    """Full adapter rows, read ``CHUNK`` at a time (a 60K-adapter catalog never sits in memory at once)."""
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        yield from catalog.rows(f"id in ({','.join('?' * len(chunk))})", chunk)


def refine_catalog(catalog: Catalog, refiner: sdk.Refiner, *, progress: bool = False,
                   retry_errors: bool = True) -> RefineReport:
    """Refine every adapter whose (card hash, refiner ``name@version``) has no cached result.

    Sets the catalog's meta ``refiner`` to ``name@version`` so readers use these results.
    """
    key = refiner_key(refiner)
    report = RefineReport(refiner=key, total=catalog.count())
    todo = pending_ids(catalog, key, retry_errors=retry_errors)
    report.cached = report.total - len(todo)
    catalog.set_meta("refiner", key)
    bar = _progress(len(todo), progress)
    pending: list[dict[str, Any]] = []
    try:
        for row in _rows_in_chunks(catalog, todo):
            values: dict[str, Any]
            try:
                card = catalog.row_to_card(row)
                values = _validated(refiner.refine(card))
                report.refined += 1
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad card or refiner bug must not stop the run
                reason = _one_line(exc)
                values = {"description": None, "category": None, "weight": None, "error": reason}
                report.failed += 1
                report.errors.append((int(row["id"]), reason))
                log.warning("refiner %s failed on adapter %s (%s): %s", key, row["id"], row.get("name"), reason)
            pending.append({"adapter_id": int(row["id"]), "refiner": key, "card_hash": row.get("card_hash"),
                            **values})
            if len(pending) >= CHUNK:
                _flush(catalog, pending)
            if bar is not None:
                bar.update(1)
    except KeyboardInterrupt:
        report.interrupted = True
        _flush(catalog, pending)
        raise
    finally:
        if bar is not None:
            bar.close()
    _flush(catalog, pending)
    return report


def _flush(catalog: Catalog, pending: list[dict[str, Any]]) -> None:
    if not pending:
        return
    with catalog.db.conn:
        catalog.db["refinements"].upsert_all(pending, pk=("adapter_id", "refiner"))
    pending.clear()


def _progress(total: int, enabled: bool) -> Any:
    if not enabled or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="refine", unit="card", file=sys.stderr, disable=not sys.stderr.isatty())
