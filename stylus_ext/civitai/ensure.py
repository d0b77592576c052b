"""A generation's downloads within a time budget.

:func:`ensure_downloaded` gives a generation what is ready within ``DownloadSettings.budget_s`` and
says why the rest was skipped; unfinished downloads go on in the background for the next image (one
download per adapter at a time, across threads).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stylus_ext.civitai.download import DownloadResult, DownloadSettings, download_adapter
from stylus_ext.sdk.civitai.client import CivitaiClient

_in_flight: set[int] = set()
_in_flight_lock = threading.Lock()


@dataclass
class EnsureReport:
    ready: list[tuple[int, str]] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)


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
