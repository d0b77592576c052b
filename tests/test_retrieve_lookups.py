"""The retriever's vectorised lookups (id → row, one version per model) and its adapter-record cache."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from helpers_search import build_catalog

from stylus_ext.catalog.db import Catalog
from stylus_ext.id_rows import FilterTable, IdRows, Versions
from stylus_ext.retrieve import Retriever


def _one_each_by_walk(order: list[int], model_of: dict[int, tuple[int | None, bool]]) -> list[int]:
    """The plain walk over the ranked list: a later version replaces a held one only when it is
    installed and the held one is not."""
    best: dict[int, int] = {}
    for i in order:
        model, installed = model_of.get(i, (None, False))
        if model is None:
            continue
        held = best.get(model)
        if held is None or (installed and not model_of[held][1]):
            best[model] = i
    return [i for i in order if model_of.get(i, (None, False))[0] is None or best[model_of[i][0]] == i]


def test_id_rows_agree_with_a_dict_lookup() -> None:
    rng = np.random.default_rng(3)
    ids = rng.choice(10_000, 500, replace=False).astype(np.int64)
    ids[10] = ids[20]  # a duplicate id: the last row wins, as in a dict built row by row
    table = {int(a): r for r, a in enumerate(ids)}
    wanted = np.concatenate([ids[:50], np.array([10_001, -5, 2**62])])
    assert IdRows(ids)(wanted).tolist() == [table.get(int(a), -1) for a in wanted]
    assert IdRows(np.zeros(0, np.int64))(wanted).tolist() == [-1] * len(wanted)


def test_one_version_per_model_matches_the_walk() -> None:
    rng = np.random.default_rng(5)
    for _ in range(50):
        n = int(rng.integers(1, 60))
        ids = rng.choice(1000, n, replace=False)
        rows = [(int(i), None if rng.random() < 0.3 else int(rng.integers(0, 8)), bool(rng.random() < 0.4))
                for i in ids]
        model_of = {r[0]: (r[1], r[2]) for r in rows}
        ranked = rng.permutation(np.concatenate([ids, [5000, 5001]]))  # two ids the catalogue lacks
        got = Versions(rows).one_each(ranked.astype(np.int64)).tolist()
        assert got == _one_each_by_walk(ranked.tolist(), model_of)


def test_filter_table_decides_as_the_row_filter() -> None:
    rng = np.random.default_rng(11)
    families = ["SD1", "SDXL", "Pony", "Illustrious", "Flux", "Flux.2 D", "unknown", None, "Qwen"]
    rows = [(i, families[int(rng.integers(len(families)))], bool(rng.random() < 0.5), bool(rng.random() < 0.1),
             bool(rng.random() < 0.05), "has ':'" if rng.random() < 0.1 else "", bool(rng.random() < 0.9))
            for i in rng.permutation(3000).tolist()]
    table = FilterTable(rows)
    for target in (None, "Pony", "SD1", "Flux.2 D", "mystery"):
        for installed_only in (False, True):
            def test(r, t=target, inst=installed_only):
                return Retriever._passes(r, t, inst)
            want = [test({"base_model": r[1] or "unknown", "installed": r[2], "banned": r[3], "name_problem": r[5],
                          "readable": r[6]}) for r in rows]
            assert table.passing(test).tolist() == want, (target, installed_only)
    assert table.rows(np.array([rows[5][0], 99_999])).tolist() == [5, -1]


@pytest.fixture(scope="module")
def master(tmp_path_factory, plugins, encoder):
    folder = tmp_path_factory.mktemp("lookups")
    catalog, ids = build_catalog(folder / "catalog.db", plugins, encoder)
    catalog.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    catalog.close()
    return folder, ids


@pytest.fixture
def cat(master, tmp_path):
    folder, ids = master
    shutil.copytree(folder, tmp_path / "copy")
    catalog = Catalog(tmp_path / "copy" / "catalog.db")
    yield catalog, ids
    catalog.close()


def test_cached_adapter_records_follow_catalog_changes(cat, encoder) -> None:
    catalog, ids = cat
    r = Retriever(catalog, encoder=encoder)
    prompt = "an owl perched on a branch"
    first = {c.adapter.id: c.adapter for c in r.search(prompt, 30)}
    owl = ids["installed_owl"]
    assert owl in first and first[owl].weight_override is None
    again = {c.adapter.id: c.adapter for c in r.search(prompt, 30)}
    assert again[owl] is first[owl]  # the record is reused while the catalog is unchanged
    catalog.set_controls(owl, weight_override=0.35)
    changed = {c.adapter.id: c.adapter for c in r.search(prompt, 30)}
    assert changed[owl].weight_override == 0.35


def test_vectors_for_matches_the_index(cat, encoder) -> None:
    catalog, ids = cat
    r = Retriever(catalog, encoder=encoder)
    wanted = [*ids.values(), 987_654]  # the last id is not indexed: a zero row
    assert np.array_equal(r.vectors_for(wanted), r.index.vectors_for(wanted))
    assert not r.vectors_for([987_654]).any()
