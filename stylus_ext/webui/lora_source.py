"""The user's LoRAs as the WebUI sees them, and keeping the catalog fresh in the background.

Files are scanned with the catalog's ``scan_folders`` (safetensors header, ``<stem>.json`` user
metadata and other sidecars; incremental). When the WebUI's Lora extension is loaded, its view
(``networks.available_networks``: names, aliases, hashes) is used to (a) add the folders its files
live in and (b) make every catalog name one the WebUI resolves in ``<lora:NAME>`` (an alias the
WebUI refuses — duplicated or forbidden — falls back to the file stem), and to fill AutoV3 hashes.
Indexing never blocks a generation: it runs in one background thread; a generation that finds no
index says so and proceeds with the user's prompt.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stylus_ext.webui import compat

log = logging.getLogger("stylus")
EXTENSIONS = (".safetensors", ".pt", ".ckpt")
CHECK_EVERY_S = 30.0
#: After a failed refresh (no encoder weights offline, a full disk), wait this long before an
#: automatic retry; the Stylus tab's button retries at once.
RETRY_AFTER_S = 300.0


def network_entries(networks: Any | None = None) -> list[dict[str, Any]]:
    """``[{name, filename, alias, shorthash, hash, sd_version}]`` from ``networks.available_networks``."""
    networks = compat.networks() if networks is None else networks
    available = getattr(networks, "available_networks", None)
    if not isinstance(available, dict):
        return []
    out = []
    for name, entry in list(available.items()):
        filename = getattr(entry, "filename", None)
        if not filename:
            continue
        out.append({"name": name, "filename": str(filename), "alias": getattr(entry, "alias", name) or name,
                    "shorthash": getattr(entry, "shorthash", "") or "", "hash": getattr(entry, "hash", "") or "",
                    "sd_version": str(getattr(entry, "sd_version", "") or "")})
    return out


def resolvable(name: str, networks: Any) -> bool:
    """Whether ``<lora:name>`` resolves in the WebUI (mirrors ``networks.load_networks``)."""
    aliases = getattr(networks, "available_network_aliases", {}) or {}
    forbidden = getattr(networks, "forbidden_network_aliases", {}) or {}
    available = getattr(networks, "available_networks", {}) or {}
    if name.lower() in forbidden:
        return name in available
    return name in aliases


def folders(extra: str = "", networks: Any | None = None) -> list[str]:
    """LoRA folders: the WebUI's, the folders of the files it knows, and the user's extra ones."""
    found = compat.lora_folders(extra)
    keys = {os.path.normcase(os.path.abspath(f)) for f in found}
    roots = [os.path.normcase(os.path.abspath(f)) + os.sep for f in found]
    for entry in network_entries(networks):
        folder = os.path.dirname(os.path.abspath(entry["filename"]))
        key = os.path.normcase(folder)
        if key not in keys and not any((key + os.sep).startswith(r) for r in roots):
            keys.add(key)
            roots.append(key + os.sep)
            found.append(folder)
    return found


def signature(paths: Iterable[str]) -> tuple[int, int, float]:
    """``(files, total size, newest mtime)`` of LoRA files and ``.json`` sidecars under ``paths``."""
    count, size, newest = 0, 0, 0.0
    stack = [p for p in paths if os.path.isdir(p)]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=True):
                            stack.append(entry.path)
                        elif entry.name.lower().endswith((*EXTENSIONS, ".json", ".info")):
                            st = entry.stat()
                            count, size, newest = count + 1, size + st.st_size, max(newest, st.st_mtime)
                    except OSError:
                        continue
        except OSError:
            continue
    return count, size, newest


def reconcile(catalog: Any, networks: Any | None = None) -> int:
    """Align catalog names/hashes with the WebUI's view of the files. Returns rows updated."""
    networks = compat.networks() if networks is None else networks
    entries = network_entries(networks)
    if not entries:
        return 0
    by_path = {os.path.normcase(os.path.abspath(e["filename"])): e for e in entries}
    updated = 0
    for row in catalog.rows("path is not null"):
        entry = by_path.get(os.path.normcase(os.path.abspath(row["path"])))
        if entry is None:
            continue
        fields: dict[str, Any] = {}
        if not resolvable(row["name"], networks):
            fields["name"] = entry["name"]
        full = entry["hash"]
        if not row.get("autov3") and isinstance(full, str) and len(full) == 64:
            fields["autov3"] = full.lower()
        if fields:
            catalog.update_fields(int(row["id"]), **fields)
            updated += 1
    return updated


class Refresher:
    """Background catalog refresh: scan → reconcile → index (one at a time)."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._last_check = 0.0
        self._last_signature: tuple[int, int, float] | None = None
        self.status = "idle"
        self.last_error = ""
        self._failed_at = 0.0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, reason: str = "", *, force: bool = False) -> bool:
        """Start a refresh unless one is running. Returns whether it started."""
        with self._lock:
            if self.running:
                return False
            if self.last_error and not force and time.monotonic() - self._failed_at < RETRY_AFTER_S:
                return False
            self.status = f"starting ({reason})" if reason else "starting"
            self._thread = threading.Thread(target=self._run, args=(force,), name="stylus-refresh", daemon=True)
            self._thread.start()
            return True

    def join(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def maybe_refresh(self) -> bool:
        """Start a refresh when the LoRA folders changed (checked at most every 30 s)."""
        now = time.monotonic()
        if now - self._last_check < CHECK_EVERY_S and self._last_signature is not None:
            return False
        self._last_check = now
        values = self.runtime.values()
        if not values.get("auto_refresh", True):
            return False
        sig = signature(folders(str(values.get("lora_dirs", ""))))
        if sig == self._last_signature:
            return False
        return self.start("LoRA files changed")

    def _run(self, force: bool) -> None:
        try:
            from stylus_ext.catalog.db import Catalog
            from stylus_ext.catalog.scan import scan_folders
            from stylus_ext.indexing import index_catalog

            values = self.runtime.values()
            paths = folders(str(values.get("lora_dirs", "")))
            self._last_signature = signature(paths)
            if not paths:
                self.status = "no LoRA folder found (set one in Settings → Stylus)"
                return
            path = self.runtime.catalog_path(values)
            if not str(values.get("catalog_path") or "").strip():
                from stylus_ext.paths import default_catalog_path
                from stylus_ext.webui.migrate import adopt_shared_catalog

                if adopt_shared_catalog(Path(path), default_catalog_path(), paths):
                    self.status = "adopted this WebUI's entries from the shared catalog"
            catalog = Catalog(path)
            try:
                self.status = f"scanning {len(paths)} folder(s)"
                scan = scan_folders(catalog, paths, plugins=self.runtime.plugins)
                renamed = reconcile(catalog)
                self.status = "indexing"
                index = index_catalog(catalog, self.runtime.plugins, encoder=self.runtime.encoder(values))
            finally:
                catalog.close()
            self.runtime.invalidate()
            self.status = f"done: {_short(scan)}; {_short(index)}" + (f"; {renamed} name(s) aligned" if renamed else "")
            self.last_error = ""
        except Exception as exc:  # noqa: BLE001 - report, never crash the WebUI
            self.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            self.status = f"failed: {self.last_error}"
            self._failed_at = time.monotonic()
            log.warning("Stylus catalog refresh failed: %s", self.last_error)


def _short(report: Any) -> str:
    text = getattr(report, "summary", None)
    if callable(text):
        try:
            return str(text())
        except Exception:  # noqa: BLE001
            pass
    return str(text) if isinstance(text, str) else type(report).__name__


_refresher: Refresher | None = None


def get_refresher() -> Refresher:
    global _refresher
    from stylus_ext.webui.runtime import get_runtime

    rt = get_runtime()
    if _refresher is None or (_refresher.runtime is not rt and not _refresher.running):
        _refresher = Refresher(rt)
    return _refresher

