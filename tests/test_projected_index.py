"""The projected index (NumPy PCA first pass, exact re-score): recall, exact similarities, filters,
the automatic choice, damaged files."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_vectors import clustered, recall

from stylus_ext import index as vindex
from stylus_ext import projected
from stylus_ext.catalog.db import Catalog

pytestmark = pytest.mark.a1111  # the WebUI's NumPy 1.26 and 2.3 run it at 50K adapters and more


def _data(n=6000):
    """Clustered unit rows; queries off the clusters' directions (as prompts are off the cards')."""
    return clustered(n, 64, clusters=40, spread=0.6, query_spread=1.0)


def test_projected_recall_exact_similarities_and_files(tmp_path):
    ids, data, queries = _data()
    cat = Catalog(tmp_path / "c.db")
    idx = vindex.build_index(cat, ids, data, "enc:a", kind="projected")
    meta = vindex.read_meta(cat)
    assert idx.kind == "projected" and meta["kind"] == "projected"
    assert meta["projected_width"] < data.shape[1] and meta["projected_pool"] >= 150
    assert {p.name.split(".")[2] for p in idx.paths} >= {"proj", "basis"}
    truth = vindex.VectorIndex(ids, data, encoder="enc:a")
    assert recall(idx, truth, queries) >= 0.99
    got, sims = idx.query(queries[0], 20)
    q = queries[0] / np.linalg.norm(queries[0])
    assert np.allclose(sims, data[got - 10] @ q, atol=1e-5)  # exact re-scores, best first
    assert np.all(np.diff(sims) <= 1e-7)
    idx.close()
    again = vindex.load_index(cat)  # a later process: the projection memory-mapped
    assert again.kind == "projected" and list(again.query(queries[0], 20)[0]) == list(got)


def test_a_narrow_projection_alone_misses_neighbours_the_re_score_recovers(tmp_path):
    """The first pass is approximate (the test would pass trivially if it were exact)."""
    _, data, queries = _data()
    projection = projected.calibrate(data)
    assert projection is not None
    q = queries[0] / np.linalg.norm(queries[0])
    exact_top = set(np.argsort(-(data @ q))[:150].tolist())
    approx_top = set(np.argsort(-(projection.rows @ (q @ projection.basis)))[:150].tolist())
    assert len(exact_top & approx_top) < 150  # the projection alone gets the order wrong
    assert exact_top <= set(projection.candidates(q, 150, None).tolist())


@pytest.mark.parametrize("share", [0.5, 0.01])
def test_projected_filters_return_only_allowed_rows(tmp_path, share):
    ids, data, queries = _data()
    cat = Catalog(tmp_path / "c.db")
    idx = vindex.build_index(cat, ids, data, "enc:a", kind="projected")
    truth = vindex.VectorIndex(ids, data, encoder="enc:a")
    mask = np.random.default_rng(1).random(len(ids)) < share
    allowed = set(ids[mask].tolist())
    for q in queries[:5]:
        got, _ = idx.query(q, 150, allowed=mask)
        assert set(got.tolist()) <= allowed and len(got) == min(150, len(allowed))
    assert recall(idx, truth, queries, allowed=mask) >= 0.99
    assert len(idx.query(queries[0], 10, allowed=np.zeros(len(ids), dtype=bool))[0]) == 0


def test_automatic_choice_keeps_the_projection_only_when_measured_faster(tmp_path, monkeypatch):
    ids, data, _ = _data()
    cat = Catalog(tmp_path / "c.db")
    monkeypatch.setattr(vindex, "APPROX_MIN", 5000)
    monkeypatch.setattr(vindex, "_faiss", lambda: None)  # as without the faiss extra
    monkeypatch.setattr(vindex, "PROJECTED_MIN_SPEEDUP", 0.0)
    assert vindex.build_index(cat, ids, data, "enc:a").kind == "projected"
    assert vindex.read_meta(cat)["projected_speedup"] > 0
    assert vindex.build_index(cat, ids[:4000], data[:4000], "enc:a").kind == "exact"  # below the threshold
    assert not any(".proj." in p.name for p in tmp_path.iterdir())  # the old version's files are gone
    monkeypatch.setattr(vindex, "PROJECTED_MIN_SPEEDUP", 1e9)  # not measurably faster: exact, no files
    idx = vindex.build_index(cat, ids, data, "enc:a")
    assert idx.kind == "exact" and vindex.read_meta(cat)["projected_speedup"] > 0
    assert not any(".proj." in p.name or ".basis." in p.name for p in tmp_path.iterdir())
    assert vindex.build_index(cat, ids, data, "enc:a", kind="projected").kind == "projected"  # forced


def test_damaged_projection_files_fall_back_to_exact_search(tmp_path, caplog):
    ids, data, queries = _data()
    cat = Catalog(tmp_path / "c.db")
    built = vindex.build_index(cat, ids, data, "enc:a", kind="projected")
    want = built.query(queries[0], 50)[0]
    built.close()
    basis = next(tmp_path.glob("c.db.basis.*.npy"))
    basis.write_bytes(b"not an array")
    idx = vindex.load_index(cat)
    assert idx is not None and idx.kind == "exact" and "projected index files" in caplog.text
    exact = vindex.VectorIndex(ids, data, encoder="enc:a").query(queries[0], 50)[0]
    assert list(idx.query(queries[0], 50)[0]) == list(exact)
    assert len(set(want.tolist()) & set(exact.tolist())) >= 49


def test_an_incremental_rebuild_keeps_the_basis_and_a_larger_change_recalibrates(tmp_path, monkeypatch):
    ids, data, queries = _data()
    cat = Catalog(tmp_path / "c.db")
    monkeypatch.setattr(projected, "MAX_POOL_SHARE", 0.2)  # small test catalogues need a larger share
    vindex.build_index(cat, ids[:5500], data[:5500], "enc:a", kind="projected").close()
    first = vindex.read_meta(cat)
    calls = []
    real = projected.calibrate
    monkeypatch.setattr(projected, "calibrate", lambda m, *a, **k: calls.append(len(m)) or real(m, *a, **k))
    monkeypatch.setattr(vindex, "APPROX_MIN", 5000)
    grown = vindex.build_index(cat, ids[:5800], data[:5800], "enc:a")  # +5%: re-projected, not recalibrated
    meta = vindex.read_meta(cat)
    assert calls == [] and grown.kind == "projected" and meta["version"] == first["version"] + 1
    assert meta["projected_calibrated_count"] == 5500 and meta["projected_pool"] == first["projected_pool"]
    truth = vindex.VectorIndex(ids[:5800], data[:5800], encoder="enc:a")
    assert recall(grown, truth, queries) >= 0.99  # the new rows are found too
    new_row = 5700  # a row the basis never saw, as its own query
    assert grown.query(data[new_row], 1)[0][0] == ids[new_row]
    grown.close()
    vindex.build_index(cat, ids, data, "enc:a", kind="projected").close()  # 5,500 → 6,000: +9%, still reused
    assert calls == []
    monkeypatch.setattr(vindex, "REUSE_SHARE", 0.05)
    vindex.build_index(cat, ids[:5000], data[:5000], "enc:a", kind="projected").close()
    assert calls == [5000] and vindex.read_meta(cat)["projected_calibrated_count"] == 5000
