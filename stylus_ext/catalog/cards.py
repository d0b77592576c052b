"""Civitai model JSON → catalog entries for adapters that are not installed.

Accepted shapes: a raw ``/api/v1/models`` item (one card per ``modelVersions[]`` entry), a
``/models`` page (``{"items": [...]}``), a model-version object (as in ``.civitai.info`` or
``/model-versions/{id}``), a list of any of these, and JSONL files of them. Non-LoRA types
(checkpoints, embeddings, ...) are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stylus_ext import sdk
from stylus_ext.catalog import derive
from stylus_ext.catalog.fileio import display, is_regular, loads, open_regular, storable

#: Largest card file read (a /models page of 100 items with images is a few MB).
MAX_CARD_FILE_BYTES = 256 * 1024 * 1024
CARD_SUFFIXES = (".json", ".info", ".jsonl")


def _is_version(obj: dict[str, Any]) -> bool:
    return "id" in obj and any(k in obj for k in ("modelId", "baseModel", "files", "trainedWords", "downloadUrl"))


#: How deep accepted shapes nest (a page of items of versions); deeper lists are not Civitai JSON.
MAX_SHAPE_DEPTH = 4
#: What a malformed item raises inside the derivation; anything else is a bug and propagates.
ITEM_ERRORS = (ValueError, TypeError, KeyError, AttributeError, RecursionError, OverflowError)


def cards_from_civitai_json(obj: Any, *, source: str = "civitai-json", warn: Callable[[str], None] | None = None,
                            _depth: int = 0) -> list[sdk.AdapterCard]:
    """Adapter cards from any accepted Civitai JSON shape (see module docstring); unknown → ``[]``.

    One bad item (nested 700 deep, ``"id": "²"``) is skipped and named through ``warn(message)``;
    the other items are kept."""
    if _depth > MAX_SHAPE_DEPTH:
        if warn:
            warn(f"JSON nested more than {MAX_SHAPE_DEPTH} levels deep; skipped")
        return []
    if isinstance(obj, list):
        out: list[sdk.AdapterCard] = []
        for number, item in enumerate(obj, 1):
            inner = None if warn is None else _prefixed(warn, f"item {number}" if len(obj) > 1 else "")
            out.extend(cards_from_civitai_json(item, source=source, warn=inner, _depth=_depth + 1))
        return out
    if not isinstance(obj, dict) or not obj:
        return []
    try:
        return _cards_from_object(obj, source, warn, _depth)
    except ITEM_ERRORS as exc:
        if warn:
            label = f"model {obj.get('id')!r}" if isinstance(obj.get("id"), (int, str)) else "an item"
            warn(f"{label[:60]} skipped: {type(exc).__name__}: {str(exc)[:120]}")
        return []


def _prefixed(warn: Callable[[str], None], where: str) -> Callable[[str], None]:
    return (lambda message: warn(f"{where}: {message}")) if where else warn


def _cards_from_object(obj: dict[str, Any], source: str, warn: Callable[[str], None] | None,
                       depth: int) -> list[sdk.AdapterCard]:
    if isinstance(obj.get("items"), list):
        return cards_from_civitai_json(obj["items"], source=source, warn=warn, _depth=depth + 1)
    if isinstance(obj.get("modelVersions"), list):
        if not derive.is_lora_type(derive.as_str(obj.get("type"))):
            return []
        model = {k: v for k, v in obj.items() if k != "modelVersions"}
        out = []
        for number, version in enumerate(obj["modelVersions"], 1):
            if not isinstance(version, dict):
                continue
            if derive.as_int(version.get("id")) is None:
                if warn and "id" in version:
                    warn(f"version {number}: id {str(version.get('id'))[:40]!r} is not a usable id; skipped")
                continue
            try:
                out.append(derive.remote_card(version, model, source=source))
            except ITEM_ERRORS as exc:
                if warn:
                    warn(f"version {number} skipped: {type(exc).__name__}: {str(exc)[:120]}")
        return out
    if isinstance(obj.get("civitai"), dict) and not _is_version(obj):  # LoRA Manager's metadata.json
        return cards_from_civitai_json(obj["civitai"], source=source, warn=warn, _depth=depth + 1)
    if _is_version(obj):
        if derive.as_int(obj.get("id")) is None:
            if warn:
                warn(f"id {str(obj.get('id'))[:40]!r} is not a usable id; skipped")
            return []
        model = derive.as_dict(obj.get("model"))
        if not derive.is_lora_type(derive.as_str(model.get("type"))):
            return []
        return [derive.remote_card(obj, None, source=source)]
    return []


def load_json_file(path: str | Path, limit: int = MAX_CARD_FILE_BYTES) -> tuple[list[Any], str]:
    """JSON values in a file (one JSON document, or JSONL) and a problem ("" when all was read).

    A JSONL line that is not JSON is skipped and named in the problem; the other lines are kept.
    Only regular files are read (a FIFO named ``*.json`` is refused, never waited on)."""
    try:
        with open_regular(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > limit:
                return [], f"larger than {limit // (1024 * 1024)} MB; skipped"
            text = fh.read(limit + 1).decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], "not UTF-8 text"
    except OSError as exc:
        return [], f"cannot read: {exc.strerror or exc}"
    try:
        return [loads(text)], ""
    except ValueError as exc:
        first_error = str(exc)
    values, bad = [], []
    for number, raw_line in enumerate(text.splitlines(), 1):  # JSONL
        line = raw_line.strip()
        if not line:
            continue
        try:
            values.append(loads(line))
        except ValueError as exc:
            bad.append((number, str(exc)))
    if not values:
        return [], f"not valid JSON ({first_error})"
    if not bad:
        return values, ""
    lines = ", ".join(str(n) for n, _ in bad[:10]) + (" ..." if len(bad) > 10 else "")
    return values, f"line {lines}: not valid JSON ({bad[0][1]}); skipped, the other {len(values)} line(s) kept"


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
                        full = os.path.join(root, name)
                        if not storable(full):
                            if warn:
                                warn(display(full), "the name is not valid UTF-8 text; rename it to import it")
                        elif is_regular(full):
                            yield full
                        elif warn:
                            warn(full, "not a regular file (a FIFO, device or socket); skipped")
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
            try:
                with store.atomic(catalog):
                    _, status = store.upsert(catalog, card)
            except store.UNSTORABLE as exc:  # one card SQLite cannot take: named, the rest kept
                report.problems.append((f"card {card.name!r}", f"not stored: {exc}"))
                continue
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
