"""Download chosen adapters from Civitai into the LoRA folder, on demand.

- Off by default (:class:`DownloadSettings` ``enabled=False``); per-download size cap; allowed base models.
- Resumable: bytes go to ``<lora dir>/.stylus-<version>.part``; an interrupted download continues with
  an HTTP ``Range`` request (a server that ignores it sends the whole file, which restarts the part).
- Verified: SHA256 of the finished file against the card; a mismatch deletes it and is reported.
- Named so the WebUI can reference it: the ``Content-Disposition`` file name, sanitised (no folders,
  no ``..``, no ``: = >`` or control characters, no Windows device names), else a safe name from the
  card; never overwrites a different file. Then ``<stem>.civitai.info`` is written, the catalog row
  becomes installed (path/size/mtime/name) and install listeners run (the WebUI refreshes its LoRA list).
- The transfer itself is :mod:`.transfer`; :func:`stylus_ext.civitai.ensure.ensure_downloaded` gives
  a generation what is ready within a time budget.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stylus_ext.civitai.filenames import fallback_filename, safe_filename
from stylus_ext.civitai.match import atomic_write_text
from stylus_ext.civitai.transfer import Stop, fetch, sha256_file
from stylus_ext.sdk.cards.fileio import fits_int64
from stylus_ext.sdk.civitai.client import CivitaiClient, CivitaiError

log = logging.getLogger("stylus.civitai")

_listeners: list[Callable[[Path], None]] = []


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


def resolve_adapter(catalog: Any, ref: str) -> int | None:
    """The catalog id ``ref`` names: a catalog id, ``v<version id>``, or a name/title (exact, case-insensitive)."""
    ref = ref.strip()
    if ref.isascii() and ref.isdigit():
        return int(ref) if catalog.row(int(ref)) else None  # row() answers None beyond 64 bits
    if ref[:1] in "vV" and ref[1:].isascii() and ref[1:].isdigit():
        if not fits_int64(int(ref[1:])):
            return None
        row = next(catalog.rows("civitai_version_id = ?", [int(ref[1:])]), None)
        return int(row["id"]) if row else None
    row = next(catalog.rows("lower(name) = lower(?) or lower(title) = lower(?)", [ref, ref]), None)
    return int(row["id"]) if row else None


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
        fetched = fetch(client, url, part, cap=cap, deadline=deadline, max_resumes=max_resumes,
                        chunk_size=chunk_size)
    except Stop as stop:
        return DownloadResult(adapter_id, stop.status, reason=stop.reason, bytes=stop.size)
    except CivitaiError as exc:
        return DownloadResult(adapter_id, "failed", reason=f"{exc} (partial file kept; the next try resumes)")
    except OSError as exc:
        return DownloadResult(adapter_id, "failed", reason=f"cannot write {part}: {exc.strerror or exc}")
    return _install(catalog, row, client, part, server_name=fetched, folder=folder, on_installed=on_installed)


def _install(catalog: Any, row: dict[str, Any], client: CivitaiClient, part: Path, *, server_name: str | None,
             folder: Path, on_installed: Callable[[Path], None] | None) -> DownloadResult:
    adapter_id = int(row["id"])
    actual = sha256_file(part)
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
    if target.exists() and sha256_file(target) != actual:
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
