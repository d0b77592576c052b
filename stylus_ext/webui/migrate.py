"""From the one shared catalog of earlier versions to one catalog per WebUI, without losing work.

The first time a WebUI runs with its own catalog, the old shared ``<data dir>/catalog.db`` (if any) is
copied (SQLite backup: consistent even while another WebUI has it open) and then pruned to what is
installed HERE: entries of files outside this WebUI's LoRA folders go; files in them keep their pins,
bans, weights, refinements and embeddings; Civitai cards (no file) stay. The old file is left as it is.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path


def _under(path: str, roots: list[str]) -> bool:
    p = os.path.normcase(os.path.abspath(path))
    return any(p == r or p.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def adopt_shared_catalog(new: Path, shared: Path, folders: Iterable[str]) -> int:
    """Copy ``shared`` to ``new`` (when ``new`` does not exist yet) and drop entries of files outside
    ``folders``. Returns the number of entries kept (0 when nothing was adopted)."""
    if new.exists() or not shared.is_file() or os.path.abspath(new) == os.path.abspath(shared):
        return 0
    from stylus_ext.catalog.db import Catalog

    new.parent.mkdir(parents=True, exist_ok=True)
    part = new.with_name(new.name + ".adopting")
    src = sqlite3.connect(f"file:{shared}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(part)
        src.backup(dst)
        dst.close()
    finally:
        src.close()
    roots = [os.path.normcase(os.path.abspath(f)) for f in folders]
    catalog = Catalog(part)
    try:
        gone = [int(r["id"]) for r in catalog.rows("path is not null") if not _under(r["path"], roots)]
        catalog.delete(gone)
        catalog.set_meta("index", None)  # the vector index files stay with the shared catalog
        kept = catalog.count()
    finally:
        catalog.close()
    os.replace(part, new)
    return kept
