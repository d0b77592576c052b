"""Scan LoRA folders into the catalog, incrementally, through the ``local`` catalog source.

One SELECT loads ``path → (size, stamp)`` for every installed entry; the source skips files whose
(path, size, stamp) are unchanged without reading them, so a no-change rescan of 10,000 files is
one directory walk. New and changed files are merged (:mod:`stylus_ext.catalog.store`), renamed
files keep their entry (found by Civitai version id, or size + header digest confirmed by the cached
SHA256), vanished files leave the catalog — except under folders that could not be read, under a
folder that is now empty (an unmounted drive), or when most entries would go at once (a moved
folder): those are kept until a scan with ``prune=True`` (``stylus scan --prune``). A removed file's
pin, ban, weight and refinements are kept and return with the file. Work is committed in chunks: an
interrupted scan keeps what it did and the next run resumes. One scan per catalog runs at a time
(a lock file beside it); a second one waits for the first.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stylus_ext.catalog import store
from stylus_ext.catalog.db import Catalog, CatalogError, card_hash
from stylus_ext.sdk.cards.fields import name_problem
from stylus_ext.sdk.cards.fileio import display

log = logging.getLogger("stylus")

#: A scan removes at most this many entries at once without ``prune``, unless that is under
#: MASS_REMOVAL_SHARE of the entries under the scanned folders.
MASS_REMOVAL_MIN = 10
MASS_REMOVAL_SHARE = 0.5
#: A scan commits at least this often (seconds), so it never holds the write lock for long.
COMMIT_EVERY_S = 0.5
#: Seconds a scan waits for another scan of the same catalog.
LOCK_WAIT_S = 600.0


class ScanBusy(CatalogError):
    """Another scan of the same catalog is running (and did not finish in time)."""


@dataclass
class ScanReport:
    """What a scan did. ``problems`` lists (path, one-line reason) for files under the scanned folders."""

    files: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    renamed: int = 0
    kept_unreadable: int = 0
    kept_missing: int = 0
    kept_reason: str = ""
    interrupted: bool = False
    seconds: float = 0.0
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.renamed)

    def summary(self) -> str:
        text = (f"{self.files} files: {self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.removed} removed, {self.renamed} renamed, {len(self.problems)} problems")
        if self.kept_unreadable:
            text += f"; {self.kept_unreadable} entries kept under unreadable folders"
        if self.kept_missing:
            text += (f"; {self.kept_missing} entries whose files are gone were kept ({self.kept_reason}; "
                     "`stylus scan --prune` removes them)")
        if self.interrupted:
            text += " (interrupted: run the scan again to finish)"
        return text


def progress_bar(enabled: bool, desc: str, unit: str) -> Any:
    """A tqdm bar on stderr when ``enabled`` and stderr is a terminal, else None."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(desc=desc, unit=unit, file=sys.stderr, disable=not sys.stderr.isatty(), leave=False)


def advance(bar: Any, done: int, total: int | None) -> None:
    """Show ``done`` of ``total`` on a :func:`progress_bar` (``None``: no bar)."""
    if bar is not None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()


def _under(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def scan_folders(catalog: Catalog, folders: Iterable[str | Path], *, plugins: Any = None,
                 progress: bool = False, chunk: int = 200, source: str = "local", prune: bool = False,
                 lock_wait: float = LOCK_WAIT_S) -> ScanReport:
    """Scan ``folders`` (recursively) with the ``local`` source and update ``catalog``.

    Entries of vanished files are removed unless the removal looks like a missing drive or folder
    (see the module docstring); ``prune=True`` removes them anyway. Raises :class:`ScanBusy` when
    another scan holds the catalog for more than ``lock_wait`` seconds."""
    with scan_lock(catalog, lock_wait):
        return _scan(catalog, folders, plugins=plugins, progress=progress, chunk=chunk, source=source, prune=prune)


@contextmanager
def scan_lock(catalog: Catalog, wait: float = LOCK_WAIT_S) -> Iterator[None]:
    """The catalog's single-scan lock (``<catalog>.scan.lock``; the OS releases it when a scan is killed)."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(catalog.path) + ".scan.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.warning("another scan of %s is running; waiting for it to finish", catalog.path)
        try:
            lock.acquire(timeout=wait)
        except Timeout:
            raise ScanBusy(f"another scan of {catalog.path} is running (waited {wait:g} s); "
                           "try again when it finishes") from None
    except OSError as exc:
        raise CatalogError(f"cannot lock {catalog.path} for scanning ({exc.strerror or exc}): is its folder "
                           "read-only?") from exc
    try:
        yield
    finally:
        lock.release()


def _scan(catalog: Catalog, folders: Iterable[str | Path], *, plugins: Any, progress: bool, chunk: int,
          source: str, prune: bool) -> ScanReport:
    if plugins is None:
        from stylus_ext.plugins import get_plugins

        plugins = get_plugins()
    started = time.perf_counter()
    roots = [os.path.abspath(os.fspath(f)) for f in folders]
    report = ScanReport()
    known, renames = _known_files(catalog)
    seen: set[str] = set()
    warned: dict[str, str] = {}

    def unchanged(path: str, size: int, mtime: float) -> bool:
        old = known.get(path)
        if old is not None and old[0] == size and old[1] == mtime:
            seen.add(path)
            report.unchanged += 1
            return True
        return False

    def warn(path: str, reason: str) -> None:
        warned[display(os.path.abspath(path))] = reason

    bar = progress_bar(progress, "scan", "files")

    def on_progress(done: int, total: int | None) -> None:
        report.files = total or done
        advance(bar, done, total)

    from stylus_ext import sdk

    ctx = sdk.SourceContext(paths=tuple(roots), unchanged=unchanged, warn=warn, progress=on_progress)
    backend = plugins.create("source", source)
    try:
        _ingest(catalog, backend.cards(ctx), report, renames=renames, seen=seen, warn=warn, chunk=chunk)
    finally:
        if bar is not None:
            bar.close()
    _store_problems(catalog, roots, warned, seen)
    _remove_vanished(catalog, report, known=known, seen=seen, warned=warned, roots=roots, prune=prune)
    if report.changed:
        resolve_names(catalog)
    report.problems = [(p, r) for p, r in catalog.problems() if _under(p, roots)]
    report.seconds = time.perf_counter() - started
    return report


def _known_files(catalog: Catalog) -> tuple[dict[str, tuple[int, float]], dict[tuple[int, str], list[str]]]:
    """``(path → (size, mtime), (size, header_sha) → paths)`` of the installed files in the catalog
    (the second finds renamed files)."""
    known: dict[str, tuple[int, float]] = {}
    renames: dict[tuple[int, str], list[str]] = defaultdict(list)
    for path, size, mtime, header_sha in catalog.db.execute(
            "select path, size, mtime, header_sha from adapters where path is not null"):
        known[path] = (size, mtime)
        if header_sha:
            renames[(size, header_sha)].append(path)
    return known, renames


def _store_problems(catalog: Catalog, roots: list[str], warned: dict[str, str], seen: set[str]) -> None:
    """This scan's problems replace the old ones under ``roots`` (folders readable again, files gone)."""
    conn = catalog.db.conn
    stale = [p for p, _ in catalog.problems() if _under(p, roots) and p not in warned and p not in seen]
    for path in stale:
        conn.execute("delete from problems where path = ?", [path])
    for path, reason in warned.items():
        conn.execute("insert or replace into problems (path, reason) values (?, ?)", [path, reason])
    conn.commit()


def _ingest(catalog: Catalog, cards: Iterable[Any], report: ScanReport, *, renames: dict[tuple[int, str], list[str]],
            seen: set[str], warn: Any, chunk: int) -> None:
    """Merge the source's cards into the catalog, committing every ``chunk``; an interrupted scan
    keeps every finished card (a half-done one is rolled back)."""
    conn = catalog.db.conn
    conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoints, never corrupt
    pending, last_commit = 0, time.monotonic()
    try:
        for card in cards:
            if not card.path:
                continue
            seen.add(card.path)
            notes: list[str] = []
            try:
                with store.atomic(catalog):
                    _, status = store.upsert(catalog, card, notes, renames)
                    conn.execute("delete from problems where path = ?", [card.path])
                    if card.problems or notes:
                        conn.execute("insert or replace into problems (path, reason) values (?, ?)",
                                     [card.path, "; ".join([*card.problems, *notes])])
            except store.UNSTORABLE as exc:  # one file the catalog cannot take: named, the rest kept
                warn(card.path, f"not stored: {exc}")
                continue
            setattr(report, status, getattr(report, status) + 1)
            pending += 1
            if pending >= chunk or time.monotonic() - last_commit > COMMIT_EVERY_S:
                conn.commit()  # other writers (the WebUI, `stylus pin`) get their turn
                pending, last_commit = 0, time.monotonic()
    except BaseException:
        report.interrupted = True
        conn.commit()
        raise


def _remove_vanished(catalog: Catalog, report: ScanReport, *, known: dict[str, tuple[int, float]], seen: set[str],
                     warned: dict[str, str], roots: list[str], prune: bool) -> None:
    """Remove the entries of files that are gone, unless :func:`_hold_back` keeps them."""
    missing = [p for p in known if p not in seen and _under(p, roots)]
    protected = [p for p in missing if p in warned or _under(p, list(warned))]
    report.kept_unreadable = len(protected)
    doomed = [p for p in missing if p not in set(protected)]
    if not prune:
        doomed = _hold_back(doomed, roots, seen, sum(1 for p in known if _under(p, roots)), report)
    _remove(catalog, doomed, report)


def _hold_back(doomed: list[str], roots: list[str], seen: set[str], under: int, report: ScanReport) -> list[str]:
    """The removals a scan without ``prune`` makes: none under a root where nothing was found (an
    unmounted drive, a moved folder), none at all when they would be a mass removal."""
    empty = [r for r in roots if not any(_under(p, [r]) for p in seen)]
    keep = [p for p in doomed if _under(p, empty)]
    rest = [p for p in doomed if not _under(p, empty)]
    reason = "the folder is empty or unreachable" if keep else ""
    if len(rest) > MASS_REMOVAL_MIN and len(rest) > MASS_REMOVAL_SHARE * under:
        keep, rest = keep + rest, []
        reason = f"more than {MASS_REMOVAL_SHARE:.0%} of the entries would go at once"
    if keep:
        report.kept_missing, report.kept_reason = len(keep), reason
        log.warning("scan: %d entries whose files are gone were kept (%s); `stylus scan --prune` removes them",
                    len(keep), reason)
    return rest


def _remove(catalog: Catalog, paths: list[str], report: ScanReport) -> None:
    if not paths:
        return
    ids: list[int] = []
    for start in range(0, len(paths), 500):
        part = paths[start:start + 500]
        marks = ",".join("?" * len(part))
        ids += [r[0] for r in catalog.db.execute(f"select id from adapters where path in ({marks})", part)]
        catalog.db.execute(f"delete from problems where path in ({marks})", part)
    report.removed = store.forget(catalog, ids)  # pins, bans, weights, refinements are kept
    catalog.db.conn.commit()


def resolve_names(catalog: Catalog) -> int:
    """Set each installed adapter's ``<lora:NAME>``: its alias (``ss_output_name``) when that alias is
    valid and unique among installed files, else the file stem; flag stems that several files share
    (the WebUI loads only one of them). Returns how many entries changed."""
    rows = list(catalog.db.execute(
        "select id, path, name, alias, name_problem from adapters where path is not null order by path"))
    stems = {r[0]: os.path.splitext(os.path.basename(r[1]))[0] for r in rows}
    stem_count = Counter(stems.values())
    alias_count = Counter(r[3] for r in rows if r[3])
    by_stem: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        by_stem[stems[r[0]]].append(r[0])
    changed = 0
    for adapter_id, _path, name, alias, problem in rows:
        stem = stems[adapter_id]
        new_name, new_problem = stem, name_problem(stem)
        if alias and alias_count[alias] == 1 and stem_count.get(alias, 0) == 0 and not name_problem(alias):
            new_name, new_problem = alias, ""
        elif stem_count[stem] > 1 and by_stem[stem][-1] != adapter_id and not new_problem:
            winner = next(r[1] for r in rows if r[0] == by_stem[stem][-1])
            new_problem = f"another file has the same name ({winner}); <lora:{stem}> loads that one"
        if (new_name, new_problem) != (name, problem or ""):
            row = catalog.row(adapter_id)
            if row is None:
                continue
            card = Catalog.row_to_card({**row, "name": new_name, "name_problem": new_problem})
            catalog.db.execute("update adapters set name = ?, name_problem = ?, card_hash = ? where id = ?",
                               [new_name, new_problem, card_hash(card), adapter_id])
            changed += 1
    catalog.db.conn.commit()
    return changed
