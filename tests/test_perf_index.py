"""The optional faiss IVF index: recall@150 against exact, filters, automatic choice, fallback."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_vectors import clustered, recall

from stylus_ext import index as vindex
from stylus_ext import ivf, vector_search
from stylus_ext.catalog.db import Catalog

faiss = pytest.importorskip("faiss")


def _data(n=6000):
    return clustered(n)


def test_faiss_recall_similarities_and_files(tmp_path):
    ids, data, queries = _data()
    cat = Catalog(tmp_path / "c.db")
    exact = vindex.build_index(cat, ids, data, "enc:a", kind="exact")
    truth = vindex.VectorIndex(exact.ids.copy(), np.array(exact.vectors), encoder="enc:a")
    exact.close()
    ivf = vindex.build_index(cat, ids, data, "enc:a", kind="faiss")
    assert ivf.kind == "faiss" and vindex.read_meta(cat)["kind"] == "faiss"
    assert any(p.name.startswith("c.db.faiss.") for p in ivf.paths)
    assert recall(ivf, truth, queries) >= 0.99
    got, sims = ivf.query(queries[0], 20)
    q = queries[0] / np.linalg.norm(queries[0])
    assert np.allclose(sims, data[got - 10] @ q, atol=1e-5)  # exact re-scores, best first
    assert np.all(np.diff(sims) <= 1e-7)
    ivf.close()
    again = vindex.load_index(cat)  # a later process: memory-mapped faiss file
    assert again.kind == "faiss" and recall(again, truth, queries[:5]) >= 0.99


@pytest.mark.parametrize("share", [0.5, 0.01])
def test_faiss_filters_return_only_allowed_rows(tmp_path, share):
    ids, data, queries = _data()
    cat = Catalog(tmp_path / "c.db")
    ivf = vindex.build_index(cat, ids, data, "enc:a", kind="faiss")
    truth = vindex.VectorIndex(ids, data, encoder="enc:a")
    mask = np.random.default_rng(1).random(len(ids)) < share
    allowed = set(ids[mask].tolist())
    for q in queries[:5]:
        got, _ = ivf.query(q, 150, allowed=mask)
        assert set(got.tolist()) <= allowed and len(got) == min(150, len(allowed))
    assert recall(ivf, truth, queries, allowed=mask) >= 0.99
    got, _ = ivf.query(queries[0], 10, allowed=np.zeros(len(ids), dtype=bool))
    assert len(got) == 0


def test_automatic_kind_uses_faiss_from_the_threshold_when_measured_faster(tmp_path, monkeypatch):
    ids, data, _ = _data(3000)
    cat = Catalog(tmp_path / "c.db")
    monkeypatch.setattr(vindex, "APPROX_MIN", 2500)
    monkeypatch.setattr(vindex, "FAISS_MIN_SPEEDUP", 0.0)
    monkeypatch.setattr(vindex, "PROJECTED_MIN_SPEEDUP", 1e9)  # the projected index is never kept here
    assert vindex.build_index(cat, ids, data, "enc:a").kind == "faiss"
    assert vindex.read_meta(cat)["faiss_speedup"] > 0 and vindex.read_meta(cat)["nprobe"] >= 1
    assert vindex.build_index(cat, ids[:2000], data[:2000], "enc:a").kind == "exact"  # below the threshold
    assert vindex.build_index(cat, ids, data, "enc:a", kind="exact").kind == "exact"
    monkeypatch.setattr(vindex, "FAISS_MIN_SPEEDUP", 1e9)  # not measurably faster: exact wins, no faiss file
    idx = vindex.build_index(cat, ids, data, "enc:a")
    assert idx.kind == "exact" and not any(".faiss." in p.name or ".proj." in p.name for p in tmp_path.iterdir())
    assert vindex.build_index(cat, ids, data, "enc:a", kind="faiss").kind == "faiss"  # forced: built anyway
    with pytest.raises(ValueError, match="unknown index kind"):
        vindex.build_index(cat, ids, data, "enc:a", kind="hnsw")


def test_faiss_index_is_searched_exactly_without_faiss(tmp_path, monkeypatch):
    ids, data, queries = _data(3000)
    cat = Catalog(tmp_path / "c.db")
    vindex.build_index(cat, ids, data, "enc:a", kind="faiss").close()
    monkeypatch.setattr(ivf, "faiss_module", lambda: None)
    idx = vindex.load_index(cat)
    assert idx.kind == "exact"
    got, _ = idx.query(queries[0], 10)
    assert list(got) == list(ids[np.argsort(-(data @ (queries[0] / np.linalg.norm(queries[0]))))[:10]])
    # without faiss a forced faiss build is exact too, with one warning
    assert vindex.build_index(cat, ids, data, "enc:a", kind="faiss").kind == "exact"


def test_first_query_is_exact_and_faiss_loads_only_when_needed(tmp_path, monkeypatch):
    """A one-shot answer never imports faiss; the second query uses it (same results here)."""
    ids, data, queries = _data(3000)
    cat = Catalog(tmp_path / "c.db")
    vindex.build_index(cat, ids, data, "enc:a", kind="faiss").close()
    loads = []
    real = vector_search._load_faiss
    monkeypatch.setattr(vector_search, "_load_faiss", lambda path: loads.append(path) or real(path))
    idx = vindex.load_index(cat)
    first, _ = idx.query(queries[0], 10)
    assert loads == []
    assert list(first) == list(ids[np.argsort(-(data @ (queries[0] / np.linalg.norm(queries[0]))))[:10]])
    second, _ = idx.query(queries[0], 10)
    assert len(loads) == 1 and idx.kind == "faiss" and list(second) == list(first)
