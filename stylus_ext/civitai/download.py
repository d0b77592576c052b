"""Download chosen adapters from Civitai into the LoRA folder, on demand.

- Off by default (:class:`DownloadSettings` ``enabled=False``); per-download size cap; allowed base models.
- Resumable: bytes go to ``<lora dir>/.stylus-<version>.part``; an interrupted download continues with
  an HTTP ``Range`` request (a server that ignores it sends the whole file, which restarts the part).
- Verified: SHA256 of the finished file against the card; a mismatch deletes it and is reported.
- Named so the WebUI can reference it: the ``Content-Disposition`` file name, sanitised (no folders,
  no ``..``, no ``: = >`` or control characters, no Windows device names), else a safe name from the
  card; never overwrites a different file. Then ``<stem>.civitai.info`` is written, the catalog row
  becomes installed (path/size/mtime/name) and install listeners run (the WebUI refreshes its LoRA list).
- :func:`ensure_downloaded` gives a generation what is ready within a time budget and says why the
  rest was skipped; unfinished downloads go on in the background for the next image.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from stylus_ext.civitai.filenames import fallback_filename, filename_from_disposition, safe_filename
from stylus_ext.civitai.match import atomic_write_text
from stylus_ext.sdk.civitai.client import CivitaiClient, CivitaiError

log = logging.getLogger("stylus.civitai")

_listeners: list[Callable[[Path], None]] = []
_in_flight: set[int] = set()
_in_flight_lock = threading.Lock()


def add_install_listener(fn: Callable[[Path], None]) -> None:
    """Call ``fn(path)`` after each installed download (the WebUI refreshes its LoRA list here)."""
    if fn not in _listeners:
        _listeners.append(fn)


def remove_install_listener(fn: Callable[[Path], None]) -> None:
    if fn in _listeners:
        _listeners.remove(fn)


@dataclass(frozen=True)
class DownloadSettings:
    """The user's download settings. ``allowed_base_models`` holds families (``SD1``, ``SDXL``,
    ``Pony``...) or Civitai names (``SD 1.5``); empty allows all. The API key is never persisted."""

    enabled: bool = False
    lora_dir: str | None = None
    max_size_mb: float = 512.0
    allowed_base_models: tuple[str, ...] = ()
    budget_s: float = 20.0
    api_key: str | None = field(default=None, repr=False)


@dataclass
class DownloadResult:
    """``status``: ``installed`` (already there), ``downloaded``, ``skipped`` (a setting or the time
    budget said no; a partial file is kept) or ``failed``."""

    adapter_id: int
    status: str
    path: str | None = None
    reason: str = ""
    bytes: int = 0
    #: the catalog id of the installed entry (differs from ``adapter_id`` when the file joined an
    #: entry that already had it)
    catalog_id: int | None = None

    @property
    def ready(self) -> bool:
        return self.status in ("installed", "downloaded")


@dataclass
class EnsureReport:
    ready: list[tuple[int, str]] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)


def _allowed(row: dict[str, Any], allowed: Iterable[str] | None) -> bool:
    wanted = {a.strip().lower() for a in allowed or () if a and a.strip()}
    if not wanted:
        return True
    return str(row.get("base_model") or "").lower() in wanted or str(row.get("base_model_raw") or "").lower() in wanted


def _download_url(row: dict[str, Any], client: CivitaiClient) -> str | None:
    url = row.get("download_url")
    if isinstance(url, str) and url.startswith(("http://", "https://")):
        return url
    if row.get("civitai_version_id"):
        origin = client.base_url.split("/api/")[0]
        return f"{origin}/api/download/models/{int(row['civitai_version_id'])}"
    return None


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- one download --------------------------------------------------------------------------


def download_adapter(
    catalog: Any,
    adapter_id: int,
    lora_dir: str | Path,
    *,
    max_size_mb: float | None = None,
    allowed_base_models: Iterable[str] | None = None,
    api_key: str | None = None,
    deadline: float | None = None,
    client: CivitaiClient | None = None,
    on_installed: Callable[[Path], None] | None = None,
    max_resumes: int = 3,
    chunk_size: int = 1 << 16,
) -> DownloadResult:
    """Download one catalog adapter into ``lora_dir`` (see the module doc). ``deadline`` is a
    ``time.monotonic()`` value: past it the download stops between chunks and keeps its part file.
    Never raises for network/server/file problems: the result says what happened."""
    row = catalog.row(int(adapter_id))
    if row is None:
        return DownloadResult(adapter_id, "failed", reason=f"no adapter with id {adapter_id}")
    if row.get("path") and Path(row["path"]).is_file():
        return DownloadResult(adapter_id, "installed", path=row["path"])
    if not _allowed(row, allowed_base_models):
        base = row.get("base_model_raw") or row.get("base_model")
        return DownloadResult(adapter_id, "skipped", reason=f"base model {base} is not in the allowed base models")
    cap = int(max_size_mb * 1024 * 1024) if max_size_mb else None
    if cap and row.get("file_size_kb") and float(row["file_size_kb"]) * 1024 > cap:
        return DownloadResult(adapter_id, "skipped", reason=f"file is {float(row['file_size_kb']) / 1024:.0f} MB, "
                              f"over the {max_size_mb:g} MB limit")
    client = client or CivitaiClient(api_key=api_key)
    url = _download_url(row, client)
    if url is None:
        return DownloadResult(adapter_id, "failed", reason="the card has no download URL")
    folder = Path(lora_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return DownloadResult(adapter_id, "failed", reason=f"cannot create {folder}: {exc.strerror or exc}")
    part = folder / f".stylus-{row.get('civitai_version_id') or 'id' + str(row['id'])}.part"
    try:
        fetched = _fetch(client, url, part, cap=cap, deadline=deadline, max_resumes=max_resumes,
                         chunk_size=chunk_size)
    except _Stop as stop:
        return DownloadResult(adapter_id, stop.status, reason=stop.reason, bytes=stop.size)
    except CivitaiError as exc:
        return DownloadResult(adapter_id, "failed", reason=f"{exc} (partial file kept; the next try resumes)")
    except OSError as exc:
        return DownloadResult(adapter_id, "failed", reason=f"cannot write {part}: {exc.strerror or exc}")
    return _install(catalog, row, client, part, server_name=fetched, folder=folder, on_installed=on_installed)


class _Stop(Exception):
    def __init__(self, status: str, reason: str, size: int = 0) -> None:
        super().__init__(reason)
        self.status, self.reason, self.size = status, reason, size


def _fetch(client: CivitaiClient, url: str, part: Path, *, cap: int | None, deadline: float | None,
           max_resumes: int, chunk_size: int) -> str | None:
    """Fill ``part`` with the whole file; returns the server's file name (if any)."""
    name: str | None = None
    resumes = 0
    while True:
        offset = part.stat().st_size if part.exists() else 0
        if deadline is not None and time.monotonic() > deadline:
            raise _Stop("skipped", f"time budget reached ({offset} bytes so far; the next try resumes)", offset)
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        resp = client.request("GET", url, headers=headers, stream=True, ok_statuses=(200, 206, 416))
        try:
            name = filename_from_disposition(resp.headers.get("Content-Disposition")) or name
            if resp.status_code == 416:  # nothing left to send: the part is complete, if there is one
                if not offset:
                    raise _Stop("failed", "the server refused the download (HTTP 416, range not satisfiable) "
                                "and nothing was downloaded; try again later")
                return name
            if resp.status_code == 206:
                m = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
                if not m or int(m.group(1)) != offset:
                    offset = 0  # a range we did not ask for: start over
                    resp.close()
                    part.unlink(missing_ok=True)
                    continue
            else:
                offset = 0  # 200: the whole file
            length = resp.headers.get("Content-Length")
            total = offset + int(length) if length and length.isdigit() else None
            if cap and total and total > cap:
                part.unlink(missing_ok=True)
                raise _Stop("skipped", f"file is {total / 2**20:.0f} MB, over the {cap / 2**20:g} MB limit")
            with open(part, "ab" if offset else "wb") as fh:
                size = offset
                for chunk in resp.iter_content(chunk_size):
                    fh.write(chunk)
                    size += len(chunk)
                    if cap and size > cap:
                        fh.close()
                        part.unlink(missing_ok=True)
                        raise _Stop("skipped", f"file is over the {cap / 2**20:g} MB limit")
                    if deadline is not None and time.monotonic() > deadline:
                        raise _Stop("skipped", f"time budget reached ({size} bytes so far; the next try resumes)",
                                    size)
            if total is not None and size < total:
                raise requests.ConnectionError("connection closed early")
            return name
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError, requests.Timeout) as exc:
            resumes += 1
            have = part.stat().st_size if part.exists() else 0
            if resumes > max_resumes:
                raise CivitaiError(f"download interrupted {resumes} times ({have} bytes so far)") from None
            log.info("civitai: download interrupted at %d bytes (%s); resuming", have, type(exc).__name__)
        finally:
            resp.close()


def _install(catalog: Any, row: dict[str, Any], client: CivitaiClient, part: Path, *, server_name: str | None,
             folder: Path, on_installed: Callable[[Path], None] | None) -> DownloadResult:
    adapter_id = int(row["id"])
    actual = _sha256_file(part)
    expected = (row.get("sha256") or "").lower()
    if expected and actual != expected:
        part.unlink(missing_ok=True)
        return DownloadResult(adapter_id, "failed", reason=f"SHA256 mismatch (card {expected[:12]}…, file "
                              f"{actual[:12]}…): the file was deleted")
    short = _short_of_card(row, part.stat().st_size) if not expected else ""
    if short:
        return DownloadResult(adapter_id, "failed", reason=short)
    name = safe_filename(server_name) or fallback_filename(row)
    target = folder / name
    if target.exists() and _sha256_file(target) != actual:
        stem, suffix = os.path.splitext(name)
        target = folder / f"{stem}_{row.get('civitai_version_id') or adapter_id}{suffix}"
    if target.resolve().parent != folder.resolve():  # belt and braces: never leave the folder
        part.unlink(missing_ok=True)
        return DownloadResult(adapter_id, "failed", reason=f"refused file name {name!r}")
    try:
        os.replace(part, target)
    except OSError as exc:  # e.g. a name the file system finds too long: the card's safe name instead
        target = folder / fallback_filename(row)
        log.info("civitai: cannot name the file %r (%s); using %s", name, exc.strerror or exc, target.name)
        os.replace(part, target)
    st = target.stat()
    _write_sidecar(target, row, client)
    from stylus_ext.catalog.store import upsert_card

    card = catalog.row_to_card(row)
    card = dataclasses.replace(card, path=str(target), size=st.st_size, mtime=st.st_mtime, name=target.stem,
                               name_problem="", sha256=actual)
    # Joins the card's row (by version id), or a row that already has this file (its twin is absorbed).
    catalog_id, _status = upsert_card(catalog, card)
    for fn in [*([on_installed] if on_installed else []), *_listeners]:
        try:
            fn(target)
        except Exception as exc:  # noqa: BLE001 - a listener must not break the download
            log.warning("install listener failed: %s", exc)
    unverified = "" if row.get("sha256") else " (the card has no SHA256: not verified)"
    return DownloadResult(adapter_id, "downloaded", path=str(target), bytes=st.st_size, reason=unverified.strip(),
                          catalog_id=int(catalog_id))


def _short_of_card(row: dict[str, Any], size: int) -> str:
    """Why a file without a SHA256 to check is incomplete ("" when its size fits the card's ``sizeKB``)."""
    kb = row.get("file_size_kb")
    if not kb or size >= float(kb) * 1024 - 1024:  # sizeKB is rounded: 1 KB of slack
        return ""
    return (f"the transfer ended at {size} bytes but the card says about {float(kb) * 1024:.0f} "
            "and has no SHA256 to check: not installed (the partial file is kept; the next try resumes)")


def _write_sidecar(target: Path, row: dict[str, Any], client: CivitaiClient) -> None:
    info = target.with_suffix(".civitai.info")
    if info.exists():
        return
    version: Any = None
    if row.get("civitai_version_id"):
        try:
            version = client.model_version(int(row["civitai_version_id"]))
        except CivitaiError as exc:
            log.info("civitai: no model-version JSON for the sidecar (%s); writing a short one", exc)
    if not isinstance(version, dict):
        version = {
            "id": row.get("civitai_version_id"), "modelId": row.get("civitai_model_id"),
            "baseModel": row.get("base_model_raw") or None,
            "trainedWords": json.loads(row.get("trigger_words") or "[]"),
            "model": {"name": row.get("title") or row.get("name"), "type": row.get("kind") or "LORA",
                      "nsfw": bool(row.get("nsfw"))},
            "description": row.get("description") or "",
            "files": [{"name": target.name, "primary": True, "hashes": {"SHA256": (row.get("sha256") or "").upper()}}],
            "downloadUrl": row.get("download_url"),
        }
    atomic_write_text(info, json.dumps(version, ensure_ascii=False, indent=1))


# -- many, within a time budget ------------------------------------------------------------


def ensure_downloaded(
    catalog: Any,
    adapter_ids: Iterable[int],
    settings: DownloadSettings,
    *,
    client: CivitaiClient | None = None,
    on_installed: Callable[[Path], None] | None = None,
    background: bool = True,
) -> EnsureReport:
    """Make ``adapter_ids`` available for a generation within ``settings.budget_s`` seconds.

    Installed adapters are ready at once. With downloads off, the rest is skipped with that reason.
    Otherwise they download one at a time in a worker thread (own catalog connection); after the
    budget, what is not ready is skipped for this image — with ``background`` it keeps downloading
    for the next one, else it stops at the deadline and keeps its part file for a later resume.
    """
    report = EnsureReport()
    todo = _to_download(catalog, adapter_ids, settings, report)
    if not todo:
        return report
    deadline = time.monotonic() + max(0.0, settings.budget_s)
    results: dict[int, DownloadResult] = {}
    worker = threading.Thread(
        target=_download_all, name="stylus-download", daemon=True,
        args=(catalog.path, todo, settings, results),
        kwargs={"client": client, "deadline": None if background else deadline, "on_installed": on_installed})
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    for adapter_id in todo:
        result = results.get(adapter_id)
        if result is None:
            report.skipped.append((adapter_id, f"not ready within {settings.budget_s:g} s"
                                   + ("; still downloading for the next image" if background else "")))
        elif result.ready and result.path:
            report.ready.append((adapter_id, result.path))
        else:
            report.skipped.append((adapter_id, result.reason or result.status))
    return report


def _to_download(catalog: Any, adapter_ids: Iterable[int], settings: DownloadSettings,
                 report: EnsureReport) -> list[int]:
    """The ids to download (claimed in ``_in_flight``); the others go to ``report`` as ready or skipped."""
    todo: list[int] = []
    for adapter_id in dict.fromkeys(int(i) for i in adapter_ids):
        row = catalog.row(adapter_id)
        if row is None:
            report.skipped.append((adapter_id, "not in the catalog"))
        elif row.get("path") and Path(row["path"]).is_file():
            report.ready.append((adapter_id, row["path"]))
        elif not settings.enabled:
            report.skipped.append((adapter_id, "not installed and downloads are off"))
        elif not settings.lora_dir:
            report.skipped.append((adapter_id, "not installed and no LoRA folder is set for downloads"))
        else:
            with _in_flight_lock:
                busy = adapter_id in _in_flight
                if not busy:
                    _in_flight.add(adapter_id)
            if busy:
                report.skipped.append((adapter_id, "already downloading"))
            else:
                todo.append(adapter_id)
    return todo


def _download_all(path: Any, todo: list[int], settings: DownloadSettings, results: dict[int, DownloadResult], *,
                  client: CivitaiClient | None, deadline: float | None,
                  on_installed: Callable[[Path], None] | None) -> None:
    """The worker thread: download ``todo`` one at a time on its own catalog connection."""
    from stylus_ext.catalog.db import Catalog

    own = Catalog(path)
    worker_client = client or CivitaiClient(api_key=settings.api_key)
    try:
        for adapter_id in todo:
            try:
                results[adapter_id] = download_adapter(
                    own, adapter_id, settings.lora_dir or ".", max_size_mb=settings.max_size_mb,
                    allowed_base_models=settings.allowed_base_models, client=worker_client,
                    deadline=deadline, on_installed=on_installed)
            except Exception as exc:  # noqa: BLE001 - report, never kill the generation
                results[adapter_id] = DownloadResult(adapter_id, "failed", reason=f"{type(exc).__name__}: {exc}")
            finally:
                with _in_flight_lock:
                    _in_flight.discard(adapter_id)
    finally:
        own.close()
