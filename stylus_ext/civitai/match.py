"""``stylus match``: find the Civitai cards of local LoRA files that lack Civitai metadata, by hash.

1. Hashes are computed lazily and cached (:func:`stylus_ext.catalog.hashing.ensure_hashes`): only files
   without a cached SHA256/AutoV3 are read; a file whose hash equals a synced card's is joined with it
   right there, without asking Civitai.
2. Up to 100 SHA256 per ``POST /model-versions/by-hash``; files it does not return are looked up once
   more by AutoV3 (``GET /model-versions/by-hash/{autov3}``: survives metadata edits). When the bulk
   endpoint is unavailable, every file is looked up with the single GET.
3. A hit is stored as ONE catalog entry (the file's row joined to its Civitai card via
   :func:`stylus_ext.catalog.store.upsert_card`); ``write_info`` also writes ``<stem>.civitai.info``.
4. A miss (404) is remembered in the ``meta`` table (``civitai.missing:<SHA256>``) and not asked again
   unless ``retry_missing`` — users hate tools that re-query everything on every start.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stylus_ext import sdk
from stylus_ext.sdk.civitai.client import CivitaiClient, CivitaiError, CivitaiNotFound, CivitaiOffline

log = logging.getLogger("stylus.civitai")

MISSING_PREFIX = "civitai.missing:"
BULK_MAX = 100


@dataclass
class MatchReport:
    """Counts of one ``stylus match`` run; ``errors`` are (path, one-line reason)."""

    candidates: int = 0
    matched: int = 0
    missing: int = 0
    known_missing: int = 0
    joined_locally: int = 0
    no_hash: int = 0
    info_written: int = 0
    requests: int = 0
    error: str = ""
    matched_ids: list[int] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        text = (f"{self.candidates} file(s) without Civitai data: {self.matched} matched, {self.joined_locally} "
                f"joined with synced cards by hash, {self.missing} not on "
                f"Civitai, {self.known_missing} already known missing (use --retry-missing), "
                f"{self.no_hash} without hash; {self.requests} request(s)")
        if self.info_written:
            text += f"; {self.info_written} .civitai.info written"
        return text


def missing_key(sha256: str) -> str:
    return MISSING_PREFIX + sha256.upper()


def is_known_missing(catalog: Any, sha256: str) -> bool:
    return catalog.get_meta(missing_key(sha256)) is not None


def _version_hashes(version: dict[str, Any]) -> set[str]:
    out = set()
    for f in version.get("files") or []:
        hashes = f.get("hashes") if isinstance(f, dict) else None
        if isinstance(hashes, dict):
            out.update(str(v).upper() for v in hashes.values() if v)
    return out


def card_for_file(local: sdk.AdapterCard, version: dict[str, Any]) -> sdk.AdapterCard | None:
    """The Civitai card of ``version`` joined with what only the local file knows (path, name, ...)."""
    from stylus_ext.sdk.cards.civitai_json import cards_from_civitai_json

    cards = cards_from_civitai_json(version)
    vid = version.get("id")
    remote = next((c for c in cards if c.civitai_version_id == vid), cards[0] if cards else None)
    if remote is None:
        return None
    return dataclasses.replace(
        remote,
        source=local.source, name=local.name, alias=local.alias, name_problem=local.name_problem,
        path=local.path, size=local.size, mtime=local.mtime, header_sha=local.header_sha,
        preview_path=local.preview_path or remote.preview_path, training_tags=local.training_tags,
        sha256=local.sha256, autov3=local.autov3,
        preferred_weight=local.preferred_weight if local.preferred_weight else remote.preferred_weight,
        activation_text=local.activation_text or remote.activation_text,
        negative_text=local.negative_text or remote.negative_text,
        base_model=remote.base_model if remote.base_model != "unknown" else local.base_model,
        problems=local.problems,
    )


def write_info(path: str | Path, version: dict[str, Any]) -> bool:
    """Write ``<stem>.civitai.info`` (raw model-version JSON) unless a non-empty one exists."""
    target = Path(path).with_suffix(".civitai.info")
    try:
        if target.exists():
            old = json.loads(target.read_text(encoding="utf-8") or "{}")
            if old:
                return False
    except (OSError, ValueError):
        pass  # unreadable/broken: replace it
    return atomic_write_text(target, json.dumps(version, ensure_ascii=False, indent=1))


def atomic_write_text(target: Path, text: str) -> bool:
    try:
        fd, tmp = tempfile.mkstemp(prefix=".stylus-", suffix=".tmp", dir=str(target.parent))
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
        return True
    except OSError as exc:
        log.warning("could not write %s: %s", target, exc)
        try:
            os.unlink(tmp)
        except (OSError, UnboundLocalError):
            pass
        return False


def match_files(
    catalog: Any,
    client: CivitaiClient,
    *,
    ids: list[int] | None = None,
    write_info_files: bool = False,
    retry_missing: bool = False,
    autov3_fallback: bool = True,
    progress: bool = False,
) -> MatchReport:
    """Look up local files without Civitai data by hash and join them to their cards (see module doc).

    A network/API failure stops the run with ``report.error``; matches stored so far are kept.
    """
    from tqdm import tqdm

    from stylus_ext.catalog.hashing import ensure_hashes

    report = MatchReport()
    todo = _unmatched_ids(catalog, ids)
    report.candidates = len(todo)
    if not todo:
        return report
    ensure_hashes(catalog, todo, progress=progress)
    rows = _rows_to_look_up(catalog, todo, report, retry_missing)
    sent0 = client.requests_sent
    bulk_ok = True
    bar = tqdm(total=len(rows), unit="file", desc="civitai match", disable=not progress, dynamic_ncols=True)
    try:
        for start in range(0, len(rows), BULK_MAX):
            chunk = rows[start:start + BULK_MAX]
            found, bulk_ok = _bulk_lookup(client, chunk) if bulk_ok else ({}, False)
            for row in chunk:
                version = found.get(row["sha256"].upper())
                if version is None:
                    version = _single_lookup(client, row, bulk_ok, autov3_fallback)
                _store(catalog, row, version, report, write_info_files)
                bar.update(1)
    except CivitaiError as exc:
        report.error = str(exc)
    finally:
        bar.close()
        report.requests = client.requests_sent - sent0
    return report


def _unmatched_ids(catalog: Any, ids: list[int] | None) -> list[int]:
    """Catalog ids of local files without Civitai data (among ``ids`` when given)."""
    where = "path is not null and civitai_version_id is null"
    params: list[Any] = []
    if ids is not None:
        if not ids:
            return []
        where += f" and id in ({','.join('?' * len(ids))})"
        params = list(ids)
    return [r["id"] for r in catalog.rows(where, params)]


def _rows_to_look_up(catalog: Any, todo: list[int], report: MatchReport, retry_missing: bool) -> list[dict[str, Any]]:
    """The rows still to ask Civitai about, once hashed: not joined locally, with a hash, not known missing."""
    rows = []
    for adapter_id in todo:
        row = catalog.row(adapter_id)
        if row is None:
            continue
        if row.get("civitai_version_id") is not None:  # hashing joined it with a synced card
            report.joined_locally += 1
            report.matched_ids.append(int(row["id"]))
            continue
        if not row.get("sha256"):
            report.no_hash += 1
            continue
        if not retry_missing and is_known_missing(catalog, row["sha256"]):
            report.known_missing += 1
            continue
        rows.append(row)
    return rows


def _bulk_lookup(client: CivitaiClient, chunk: list[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], bool]:
    """``(versions by upper-case hash, whether the bulk route works)`` for one chunk of rows."""
    found: dict[str, dict[str, Any]] = {}
    try:
        for version in client.versions_by_hashes([r["sha256"].upper() for r in chunk]):
            for h in _version_hashes(version):
                found.setdefault(h, version)
    except CivitaiOffline:
        raise
    except CivitaiError as exc:  # 404/405/400/garbage: the bulk route is not usable here
        log.info("civitai: bulk hash lookup unavailable (%s); using single lookups", exc)
        return found, False
    return found, True


def _single_lookup(client: CivitaiClient, row: dict[str, Any], bulk_ok: bool,
                   autov3_fallback: bool) -> dict[str, Any] | None:
    """One file's version by its SHA-256 (unless the bulk route already said no), then its AutoV3."""
    keys = [] if bulk_ok else [row["sha256"].upper()]
    if autov3_fallback and row.get("autov3"):
        keys.append(row["autov3"][:12].upper())
    for key in keys:
        try:
            return client.version_by_hash(key)
        except CivitaiNotFound:
            continue
    return None


def _store(catalog: Any, row: dict[str, Any], version: dict[str, Any] | None, report: MatchReport,
           write_info_files: bool) -> None:
    from stylus_ext.catalog.store import upsert_card

    sha = row["sha256"].upper()
    if version is None:
        catalog.set_meta(missing_key(sha), json.dumps({"at": int(time.time()), "path": row["path"]}))
        report.missing += 1
        return
    local = catalog.row_to_card(row)
    try:
        card = card_for_file(local, version)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        card = None
        report.errors.append((row["path"], f"unreadable Civitai answer: {exc}"))
    if card is None:
        return
    adapter_id, _status = upsert_card(catalog, card)
    catalog.set_meta(missing_key(sha), None)
    report.matched += 1
    report.matched_ids.append(int(adapter_id))
    if write_info_files and write_info(row["path"], version):
        report.info_written += 1
