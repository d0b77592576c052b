"""``stylus import-cards``: Civitai model JSON files → catalog entries for adapters that are not installed,
through the ``civitai-json`` catalog source (the parsing is :mod:`stylus_ext.sdk.cards.civitai_json`)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stylus_ext import sdk


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
    from stylus_ext.catalog.scan import advance, progress_bar

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
        advance(bar, done, total)

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
