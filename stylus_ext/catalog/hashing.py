"""Lazy, cached file hashes: SHA256 of the whole file and AutoV3 (SHA256 of the bytes after the
safetensors header; stored as the 12-hex short form the WebUI and Civitai show).

Hashes live in the adapters row. A scan that sees a file's size or stamp change replaces the row's
card without them, which invalidates the cache; a renamed file keeps them. Hashing never runs during
a scan. After hashing, a file is joined with an imported card that has the same hash.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from stylus_ext.catalog import store
from stylus_ext.catalog.db import Catalog
from stylus_ext.sdk.cards.fileio import open_regular
from stylus_ext.sdk.cards.header import read_header

BLOCK = 1024 * 1024


@dataclass
class HashReport:
    hashed: int = 0
    cached: int = 0
    joined: int = 0
    bytes: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.hashed} hashed ({self.bytes / 1e6:.1f} MB), {self.cached} cached, {self.joined} joined "
                f"with cards, {len(self.problems)} problems")


def file_hashes(path: str) -> tuple[str, str | None]:
    """``(sha256, autov3)`` of ``path`` in one read; AutoV3 only for readable safetensors files."""
    offset = None
    if path.lower().endswith(".safetensors"):
        header = read_header(path)
        offset = header.payload_offset if not header.problem else None
    whole = hashlib.sha256()
    payload = hashlib.sha256() if offset is not None else None
    position = 0
    with open_regular(path) as fh:
        while True:
            block = fh.read(BLOCK)
            if not block:
                break
            whole.update(block)
            if payload is not None and offset is not None:
                start = max(0, offset - position)
                if start < len(block):
                    payload.update(block[start:] if start else block)
            position += len(block)
    return whole.hexdigest(), payload.hexdigest()[:12] if payload is not None else None


def ensure_hashes(catalog: Catalog, ids: Iterable[int] | None = None, *, progress: bool = False) -> HashReport:
    """Hash installed adapters that have no cached hashes (all, or only ``ids``); join with cards."""
    from stylus_ext.catalog.scan import progress_bar

    report = HashReport()
    wanted = None if ids is None else {int(i) for i in ids}
    rows = [r for r in catalog.rows("path is not null") if wanted is None or r["id"] in wanted]
    todo = []
    for row in rows:
        path = row["path"]
        try:
            st = os.stat(path)
        except OSError as exc:
            report.problems.append((path, f"cannot hash: {exc.strerror or exc}"))
            continue
        if st.st_size != row["size"] or st.st_mtime > float(row["mtime"] or 0):
            report.problems.append((path, "changed since the last scan; run `stylus scan` first"))
        elif row["sha256"]:  # both hashes come from one pass; AutoV3 stays empty for broken headers
            report.cached += 1
        else:
            todo.append(row)
    bar = progress_bar(progress, "hash", "B")
    if bar is not None:
        bar.total = sum(int(r["size"] or 0) for r in todo)
    last_commit = time.monotonic()
    try:
        for row in todo:
            path = row["path"]
            try:
                sha, v3 = file_hashes(path)
            except OSError as exc:
                report.problems.append((path, f"cannot hash: {exc.strerror or exc}"))
                continue
            catalog.db.execute("update adapters set sha256 = ?, autov3 = ? where id = ?", [sha, v3, row["id"]])
            report.hashed += 1
            report.bytes += int(row["size"] or 0)
            if bar is not None:
                bar.update(int(row["size"] or 0))
            report.joined += _join_by_hash(catalog, int(row["id"]), sha, v3)
            store.restore_by_hash(catalog, int(row["id"]), sha)  # a removed file's pin/ban/weight, if any
            if time.monotonic() - last_commit > 1.0:  # an interrupted run keeps what it hashed
                catalog.db.conn.commit()
                last_commit = time.monotonic()
    finally:
        catalog.db.conn.commit()
        if bar is not None:
            bar.close()
    return report


def _join_by_hash(catalog: Catalog, adapter_id: int, sha: str, v3: str | None) -> int:
    """Merge a not-installed card with the same hash into the installed entry ``adapter_id``."""
    other = store._one(catalog, "path is null and sha256 = ?", [sha])
    if other is None and v3:
        other = store._one(catalog, "path is null and autov3 = ?", [v3])
    if other is None:
        return 0
    local_row = store._one(catalog, "id = ?", [adapter_id])
    if local_row is None:
        return 0
    local = Catalog.row_to_card(local_row)
    remote = Catalog.row_to_card(other)
    if local.civitai_version_id is not None and remote.civitai_version_id not in (None, local.civitai_version_id):
        return 0  # the sidecars name another version: trust them, keep both
    merged = store.fill(local, remote)
    store._absorb(catalog, adapter_id, other)
    store._update(catalog, adapter_id, merged)
    return 1
