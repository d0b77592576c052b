"""The filter table saved beside the catalog: reused while nothing changed, never stale."""

from __future__ import annotations

import sqlite3

from stylus_ext import bm25, filters_file, sdk
from stylus_ext.catalog.db import Catalog
from stylus_ext.retrieve import Retriever

CARDS = [sdk.AdapterCard(source="t", name=f"castle{i}", title=f"Castle {i}", tags=("castle",),
                         base_model="SD 1.5") for i in range(4)]


def make(tmp_path):
    catalog = Catalog(tmp_path / "c.db")
    ids = [catalog.insert_card(c) for c in CARDS]
    return catalog, ids


def test_saved_table_is_reused_and_a_write_from_elsewhere_is_seen(tmp_path):
    catalog, ids = make(tmp_path)
    Retriever(catalog).search("castle", 10)
    saved = filters_file.path_for(catalog.path)
    assert saved.is_file()
    loaded = filters_file.load(saved, catalog.generation())
    assert loaded is not None and sorted(loaded[0].ids.tolist()) == sorted(ids)
    # another process bans one adapter with plain SQL: the counter moves, the saved table is stale
    other = sqlite3.connect(catalog.path)
    other.execute("update adapters set banned = 1 where id = ?", [ids[0]])
    other.commit()
    other.close()
    assert filters_file.load(saved, catalog.generation()) is None
    fresh = Catalog(catalog.path)
    found = {c.adapter.id for c in Retriever(fresh).search("castle", 10)}
    assert ids[0] not in found and set(ids[1:]) <= found


def test_a_pin_moves_the_counter_but_not_the_text_counter(tmp_path):
    catalog, ids = make(tmp_path)
    gen, text = catalog.generation(), bm25.fingerprint(catalog.db.conn)
    catalog.set_controls(ids[1], pinned=True)
    assert catalog.generation() != gen and bm25.fingerprint(catalog.db.conn) == text
    catalog.update_fields(ids[1], alias="keep")
    assert bm25.fingerprint(catalog.db.conn) != text


def test_a_damaged_or_foreign_file_is_read_again(tmp_path):
    catalog, ids = make(tmp_path)
    saved = filters_file.path_for(catalog.path)
    saved.write_bytes(b"not an npz")
    assert filters_file.load(saved, catalog.generation()) is None
    assert {c.adapter.id for c in Retriever(catalog).search("castle", 10)} == set(ids)
    assert filters_file.load(saved, catalog.generation()) is not None  # saved again
