"""The query map: the shipped file, malformed files, and the retriever searching through it."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
from helpers_search import build_catalog

from stylus_ext import query_map
from stylus_ext.ranking import FEATURES
from stylus_ext.retrieve import Retriever

MINILM = "transformers:sentence-transformers/all-MiniLM-L6-v2"


def test_shipped_map_is_for_minilm_and_near_the_identity():
    qmap = query_map.load(query_map.PATH)
    assert qmap.encoder == MINILM and qmap.matrix.shape == (384, 384)
    assert query_map.for_encoder(MINILM, 384) is not None
    # held near the identity by its fit: a vector keeps most of its direction
    rng = np.random.default_rng(0)
    v = rng.normal(size=(50, 384)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    assert float(np.mean(np.sum(qmap(v) * v, axis=1))) > 0.5
    # another encoder or dimension gets no map
    assert query_map.for_encoder("transformers:other/model", 384) is None
    assert query_map.for_encoder(MINILM, 768) is None


def test_mapping_normalises_and_keeps_zero_rows():
    qmap = query_map.QueryMap(np.diag([2.0, 1.0, 1.0]).astype(np.float32), "x", "")
    out = qmap(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32))
    assert np.allclose(out, [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert qmap(np.array([0.0, 3.0, 4.0])).shape == (3,)


@pytest.mark.parametrize("content", [b"not a zip", None, "nan", "rect"])
def test_malformed_file_means_no_map_and_a_warning(tmp_path, caplog, content):
    path = tmp_path / "map.npz"
    if content is None:
        np.savez(path, encoder=np.array(MINILM))  # no matrix
    elif content == "nan":
        query_map.save(path, np.full((4, 4), np.nan), MINILM, "")
    elif content == "rect":
        query_map.save(path, np.ones((4, 3)), MINILM, "")
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError):
        query_map.load(path)
    with caplog.at_level(logging.WARNING, logger="stylus"):
        assert query_map.for_encoder(MINILM, 4, path) is None
    assert "query map" in caplog.text


@pytest.fixture
def catalog(tmp_path_factory, plugins, encoder):
    folder = tmp_path_factory.mktemp("qmap")
    cat, ids = build_catalog(folder / "catalog.db", plugins, encoder)
    yield cat, ids
    cat.close()
    shutil.rmtree(folder, ignore_errors=True)


def test_retriever_searches_the_dense_side_through_the_map(catalog, encoder):
    cat, ids = catalog
    plain = Retriever(cat, encoder=encoder, use_query_map=False)
    assert plain.query_map is None
    mapped = Retriever(cat, encoder=encoder)
    assert mapped.query_map is not None  # the test catalogue is indexed with MiniLM
    prompt = "a corgi puppy sitting in a field of flowers"
    target = next(iter(ids.values()))
    # a map sending every prompt onto one card's vector: that card's mapped cosine is 1
    card = plain.vectors_for([target])[0]
    query = plain.encode([prompt])[0]
    mapped.query_map = query_map.QueryMap(np.outer(query, card).astype(np.float32), MINILM, "")
    pool = mapped.pool(prompt)
    names = list(FEATURES)
    at = int(np.flatnonzero(pool.ids == target)[0])
    style = "tags" if pool.features[0, names.index("tagstyle")] else "caption"
    assert pool.features[at, names.index(f"{style}:mapped")] == pytest.approx(1.0, abs=1e-4)
    assert pool.features[at, names.index(f"{style}:mapped_rank")] == pytest.approx(1.0)
    # the candidate's similarity stays the prompt's own cosine (what composers were fitted on)
    assert pool.sims[at] == pytest.approx(float(query @ card), abs=1e-4)
    raw = plain.pool(prompt)
    assert np.allclose(raw.features[:, names.index(f"{style}:mapped")],
                       raw.features[:, names.index(f"{style}:dense")])
