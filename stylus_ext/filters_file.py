"""The retriever's filter table, saved beside the catalog (``<catalog>.filters.npz``).

Reading the filter columns of 100K adapters from SQLite took 0.4–0.6 s of a cold ``stylus compose``
(the rows are long: SQLite walks each card's text to reach them). The table is small (a few bytes
per adapter), so it is saved after it is read and reused while the catalog's change counter
(:func:`~stylus_ext.catalog.db.generation_key`, bumped by triggers on every write) is unchanged.
A missing, stale, damaged or unwritable file only means the rows are read again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from stylus_ext.catalog.readable import READABLE_SQL
from stylus_ext.id_rows import FilterTable, IdRows, Versions
from stylus_ext.npz_map import open_npz, save_npz

log = logging.getLogger("stylus")
FORMAT = 1


def path_for(catalog_path: str | Path) -> Path:
    return Path(str(catalog_path) + ".filters.npz")


def read_rows(conn: Any) -> tuple[FilterTable, Versions]:
    """The filter table and model versions from the catalog's rows (one pass over the table)."""
    rows = conn.execute(
        "select id, base_model, path is not null, banned, pinned, coalesce(name_problem, ''), "
        f"{READABLE_SQL}, civitai_model_id from adapters").fetchall()
    return FilterTable(rows), Versions([(r[0], r[7], r[2]) for r in rows])


def load(path: Path, generation: str) -> tuple[FilterTable, Versions] | None:
    """The saved tables when they were saved at ``generation``, else None."""
    try:
        data = open_npz(path, mmap=False)  # small: read whole, no file kept open
        meta = json.loads(bytes(data["meta"]).decode())
        if meta.get("format") != FORMAT or meta.get("generation") != generation:
            return None
        arrays = {k: data[k] for k in ("ids", "pinned", "combo", "models", "installed")}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError) as exc:
        log.debug("filter table %s unreadable (%s); reading the rows", path, exc)
        return None
    n = len(arrays["ids"])
    if any(len(a) != n for a in arrays.values()) or (n and int(arrays["combo"].max()) >= len(meta["combos"])):
        return None
    table = FilterTable([])
    table.ids, table.pinned, table.combo = arrays["ids"], arrays["pinned"].astype(bool), arrays["combo"]
    table.combos = [dict(zip(FilterTable.FIELDS, c, strict=True)) for c in meta["combos"]]
    table.rows = IdRows(table.ids)
    versions = Versions([])
    versions.rows, versions.models = IdRows(table.ids), arrays["models"]
    versions.installed = arrays["installed"].astype(bool)
    return table, versions


def save(path: Path, generation: str, table: FilterTable, versions: Versions) -> None:
    """Write atomically (temp file + rename); an unwritable place is skipped quietly."""
    meta = {"format": FORMAT, "generation": generation,
            "combos": [[c[f] for f in FilterTable.FIELDS] for c in table.combos]}
    try:
        save_npz(path, {"ids": table.ids, "pinned": table.pinned, "combo": table.combo, "models": versions.models,
                        "installed": versions.installed,
                        "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)})
    except OSError as exc:
        log.debug("could not save the filter table %s (%s)", path, exc)
