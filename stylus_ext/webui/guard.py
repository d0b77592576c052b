"""The last line of defence before a ``<lora:...>`` tag is written: an adapter whose file is not on
disk, cannot be read, or is a broken safetensors file never gets a tag.

The retriever already drops files the scan found broken; this catches what changed since the scan
(a file replaced, truncated or deleted while the WebUI runs) and adapters that are only Civitai
cards. Each file is checked once per (size, mtime); the user is told once per file and reason.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from typing import Any

from stylus_ext.catalog.readable import check_file, fatal_problem

NOT_ON_DISK = "not on disk in this WebUI's LoRA folders"


class FileGuard:
    def __init__(self) -> None:
        self._checked: dict[str, tuple[tuple[int, float], str]] = {}
        self._told: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def problem(self, adapter: Any) -> str:
        """Why ``adapter`` must not be tagged ("" when its file is loadable)."""
        path = getattr(adapter.card, "path", None)
        if not path:
            return NOT_ON_DISK
        recorded = fatal_problem(getattr(adapter.card, "problems", ()))
        if recorded:
            return recorded
        try:
            st = os.stat(path)
        except OSError as exc:
            return f"cannot read: {exc.strerror or exc}"
        key = (st.st_size, st.st_mtime)
        with self._lock:
            cached = self._checked.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        reason = check_file(path)
        with self._lock:
            self._checked[path] = (key, reason)
        return reason

    def filter(self, selection: Any) -> tuple[Any, list[str]]:
        """``selection`` without the adapters that must not be tagged, and one-time warnings."""
        bad = {}
        for chosen in selection.chosen:
            reason = self.problem(chosen.adapter)
            if reason:
                bad[chosen.adapter.id] = (chosen.adapter, reason)
        if not bad:
            return selection, []
        concepts = tuple((concept, tuple(c for c in picks if c.adapter.id not in bad))
                         for concept, picks in selection.concepts)
        warnings = []
        for adapter, reason in bad.values():
            key = (str(adapter.card.path or adapter.name), reason)
            with self._lock:
                if key in self._told:
                    continue
                self._told.add(key)
            where = f" ({adapter.card.path})" if adapter.card.path else ""
            warnings.append(f"left out {adapter.name}{where}: {reason} — repair or remove the file, then press "
                            "Refresh catalog in the Stylus tab")
        return dataclasses.replace(selection, concepts=concepts), warnings
