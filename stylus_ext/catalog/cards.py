"""Civitai model JSON → catalog entries for adapters that are not installed.

Accepted shapes: a raw ``/api/v1/models`` item (one card per ``modelVersions[]`` entry), a
``/models`` page (``{"items": [...]}``), a model-version object (as in ``.civitai.info`` or
``/model-versions/{id}``), a list of any of these, and JSONL files of them. Non-LoRA types
(checkpoints, embeddings, ...) are skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stylus_ext import sdk
from stylus_ext.catalog import derive

#: Largest card file read (a /models page of 100 items with images is a few MB).
MAX_CARD_FILE_BYTES = 256 * 1024 * 1024
CARD_SUFFIXES = (".json", ".info", ".jsonl")


def _is_version(obj: dict[str, Any]) -> bool:
    return "id" in obj and any(k in obj for k in ("modelId", "baseModel", "files", "trainedWords", "downloadUrl"))


def cards_from_civitai_json(obj: Any, *, source: str = "civitai-json") -> list[sdk.AdapterCard]:
    """Adapter cards from any accepted Civitai JSON shape (see module docstring); unknown → ``[]``."""
    if isinstance(obj, list):
        return [card for item in obj for card in cards_from_civitai_json(item, source=source)]
    if not isinstance(obj, dict) or not obj:
        return []
    if isinstance(obj.get("items"), list):
        return cards_from_civitai_json(obj["items"], source=source)
    if isinstance(obj.get("modelVersions"), list):
        if not derive.is_lora_type(derive.as_str(obj.get("type"))):
            return []
        model = {k: v for k, v in obj.items() if k != "modelVersions"}
        return [derive.remote_card(v, model, source=source) for v in obj["modelVersions"]
                if isinstance(v, dict) and derive.as_int(v.get("id")) is not None]
    if isinstance(obj.get("civitai"), dict) and not _is_version(obj):  # LoRA Manager's metadata.json
        return cards_from_civitai_json(obj["civitai"], source=source)
    if _is_version(obj) and derive.as_int(obj.get("id")) is not None:
        model = derive.as_dict(obj.get("model"))
        if not derive.is_lora_type(derive.as_str(model.get("type"))):
            return []
        return [derive.remote_card(obj, None, source=source)]
    return []


def load_json_file(path: str | Path, limit: int = MAX_CARD_FILE_BYTES) -> tuple[list[Any], str]:
    """JSON values in a file (one JSON document, or JSONL); ``([], reason)`` when unreadable."""
    try:
        size = os.path.getsize(path)
        if size > limit:
            return [], f"larger than {limit // (1024 * 1024)} MB; skipped"
        with open(path, "rb") as fh:
            text = fh.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], "not UTF-8 text"
    except OSError as exc:
        return [], f"cannot read: {exc.strerror or exc}"
    try:
        return [json.loads(text)], ""
    except (json.JSONDecodeError, RecursionError) as exc:
        first_error = exc
    values = []
    for raw_line in text.splitlines():  # JSONL
        line = raw_line.strip()
        if not line:
            continue
        try:
            values.append(json.loads(line))
        except (json.JSONDecodeError, RecursionError):
            msg = getattr(first_error, "msg", "nested too deeply")
            return [], f"not valid JSON ({msg})"
    return values, ""


def iter_card_files(paths: Iterable[str | Path], warn: Any = None) -> Iterator[str]:
    """Card files under ``paths`` (files as given; folders searched recursively, sorted)."""
    def onerror(exc: OSError) -> None:
        if warn:
            warn(exc.filename, f"cannot read folder: {exc.strerror or exc}")

    for given in paths:
        path = os.path.abspath(os.fspath(given))
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path, onerror=onerror):
                dirs.sort()
                for name in sorted(files):
                    if name.lower().endswith(CARD_SUFFIXES):
                        yield os.path.join(root, name)
        elif os.path.exists(path):
            yield path
        elif warn:
            warn(path, "no such file or folder")


@dataclass
class ImportReport:
    """Counts of one ``import_cards`` run, and one-line problems per file."""

    files: int = 0
    cards: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.files} files, {self.cards} cards: {self.added} added, {self.updated} updated, "
                f"{self.unchanged} unchanged, {len(self.problems)} problems")


def import_cards(catalog: Any, paths: Iterable[str | Path], *, plugins: Any = None,
                 progress: bool = False, chunk: int = 500, source: str = "civitai-json") -> ImportReport:
    """Import card files through the ``civitai-json`` source (or another ``"cards"`` source); commits every
    ``chunk``."""
    from stylus_ext.catalog import store
    from stylus_ext.catalog.scan import progress_bar

    if plugins is None:
        from stylus_ext.plugins import get_plugins

        plugins = get_plugins()
    report = ImportReport()
    paths = [os.fspath(p) for p in paths]

    def warn(path: str, reason: str) -> None:
        report.problems.append((path, reason))

    bar = progress_bar(progress, "import-cards", "cards")

    def on_progress(done: int, total: int | None) -> None:
        report.files = done
        if bar is not None:
            if total is not None:
                bar.total = total
            bar.n = done
            bar.refresh()

    ctx = sdk.SourceContext(paths=tuple(paths), warn=warn, progress=on_progress)
    backend = plugins.create("source", source)
    pending = 0
    try:
        for card in backend.cards(ctx):
            report.cards += 1
            with store.atomic(catalog):
                _, status = store.upsert(catalog, card)
            key = status if status in ("added", "updated") else "unchanged"
            setattr(report, key, getattr(report, key) + 1)
            pending += 1
            if pending >= chunk:
                catalog.db.conn.commit()
                pending = 0
    finally:
        catalog.db.conn.commit()
        if bar is not None:
            bar.close()
    return report
