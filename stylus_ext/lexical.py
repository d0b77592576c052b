"""Lexical side of retrieval: the BM25 index's life cycle, and the prompt readers the retriever uses.

Scoring lives in :mod:`stylus_ext.bm25` (sparse postings in NumPy, one score vector per field). The
index is a file next to the catalog (``catalog.db.bm25.npz``), rebuilt when the catalog's cards
change; ``stylus index`` builds it ahead of the first query. Catalogs of earlier versions carry an
SQLite FTS5 table with triggers on ``adapters``: it is dropped (it only slowed every write).
"""

from __future__ import annotations

import sqlite3

from stylus_ext import bm25
from stylus_ext.catalog.db import Catalog
from stylus_ext.sdk import prompt

FTS_TABLE = "adapters_fts"

# The one prompt grammar (stylus_ext.sdk.prompt) reads the prompt; the retriever's two readers.
clean_prompt = prompt.clean_prompt
is_tag_style = prompt.is_tag_style


def ensure_index(catalog: Catalog) -> bm25.LexicalIndex:
    """Build (or load) the catalog's BM25 index now, and drop the FTS5 table of earlier versions."""
    drop_fts(catalog)
    return bm25.load_or_build(catalog)


def has_index(catalog: Catalog) -> bool:
    """True when an up-to-date BM25 index file exists for the catalog."""
    cached = bm25.LexicalIndex.load(bm25.index_path(catalog.path))
    return cached is not None and cached.fingerprint == bm25.fingerprint(catalog.db.conn)


def drop_fts(catalog: Catalog) -> None:
    """Remove the FTS5 table and its sync triggers left by earlier versions (read-only: leave them)."""
    names = [r[0] for r in catalog.db.execute(
        "select name from sqlite_master where type = 'trigger' and tbl_name = 'adapters' and name like 'adapters_a%'")]
    if not names and FTS_TABLE not in catalog.db.table_names():
        return
    try:
        with catalog.db.conn:
            for name in names:
                catalog.db.execute(f'drop trigger if exists "{name}"')
            for table in [t for t in catalog.db.table_names() if t == FTS_TABLE or t.startswith(FTS_TABLE + "_")]:
                catalog.db.execute(f'drop table if exists "{table}"')
    except sqlite3.OperationalError:
        pass


def normalise(score: float, n_terms: int) -> float:
    """Map a BM25 score to [0, 1): saturating, scaled by how many terms the query had."""
    scale = 1.5 * max(1, min(n_terms, 12)) ** 0.5
    return score / (score + scale) if score > 0 else 0.0
