"""The vector index: exact and Annoy, recall, atomic versioned replacement, encoder checks."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from stylus_ext import index as vindex
from stylus_ext.catalog.db import Catalog


def _data(n=3000, dim=32, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((30, dim))
    data = centers[rng.integers(0, 30, n)] + 1.0 * rng.standard_normal((n, dim))
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    return np.arange(100, 100 + n), data.astype(np.float32), rng


def test_exact_search_is_exact(tmp_path):
    ids, data, rng = _data()
    cat = Catalog(tmp_path / "c.db")
    idx = vindex.build_index(cat, ids, data, "enc:a", kind="exact")
    assert idx.kind == "exact" and idx.count == len(ids)
    q = rng.standard_normal(data.shape[1])
    got, sims = idx.query(q, 10)
    brute = data @ (q / np.linalg.norm(q))
    assert list(got) == list(ids[np.argsort(-brute)[:10]])
    assert np.allclose(sims, np.sort(brute)[::-1][:10], atol=1e-5)
    assert np.all(np.diff(sims) <= 1e-7)
    # restricted search only returns allowed ids
    allowed = set(ids[::7].tolist())
    got, _ = idx.query(q, 20, allowed=allowed)
    assert set(got.tolist()) <= allowed and len(got) == 20


def test_annoy_recall_at_150(tmp_path):
    pytest.importorskip("annoy")
    ids, data, rng = _data()
    cat = Catalog(tmp_path / "c.db")
    exact = vindex.build_index(cat, ids, data, "enc:a", kind="exact")
    queries = data[rng.integers(0, len(ids), 20)] + 0.05 * rng.standard_normal((20, data.shape[1]))
    truth = [set(exact.query(q, 150)[0].tolist()) for q in queries]
    exact.close()
    ann = vindex.build_index(cat, ids, data, "enc:a", kind="annoy", n_trees=20)
    assert ann.kind == "annoy"
    recall = np.mean([len(t & set(ann.query(q, 150)[0].tolist())) / 150 for q, t in zip(queries, truth)])
    assert recall >= 0.99
    # similarities are exact re-scores, best first
    got, sims = ann.query(queries[0], 5)
    assert np.allclose(sims, data[got - 100] @ (queries[0] / np.linalg.norm(queries[0])), atol=1e-5)
    assert np.all(np.diff(sims) <= 1e-7)


def test_rebuild_keeps_open_reader_valid_and_cleans_up(tmp_path):
    ids, data, _ = _data(500)
    cat = Catalog(tmp_path / "c.db")
    vindex.build_index(cat, ids, data, "enc:a")
    reader = vindex.load_index(cat)
    q = data[3]
    before = reader.query(q, 5)[0].tolist()
    new_data = np.roll(data, 1, axis=0)  # different vectors for the same ids
    newer = vindex.build_index(cat, ids, new_data, "enc:a")
    assert newer.version == reader.version + 1
    assert reader.query(q, 5)[0].tolist() == before  # the old reader still answers from its version
    assert vindex.load_index(cat).query(q, 1)[0][0] == ids[4]
    names = sorted(p.name for p in tmp_path.iterdir() if ".vectors." in p.name or ".ids." in p.name)
    assert names == [f"c.db.ids.{newer.version}.npy", f"c.db.vectors.{newer.version}.npy"]
    assert not list(tmp_path.glob("*.tmp"))
    reader.close()


def test_interrupted_build_leaves_previous_index(tmp_path, monkeypatch):
    ids, data, _ = _data(200)
    cat = Catalog(tmp_path / "c.db")
    first = vindex.build_index(cat, ids, data, "enc:a")
    first.close()

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(vindex.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        vindex.build_index(cat, ids, data[::-1], "enc:a")
    monkeypatch.undo()
    idx = vindex.load_index(cat)
    assert idx.version == first.version and idx.query(data[0], 1)[0][0] == ids[0]
    assert not list(tmp_path.glob("*.tmp"))


def test_encoder_mismatch_is_refused(tmp_path):
    ids, data, _ = _data(100)
    cat = Catalog(tmp_path / "c.db")
    vindex.build_index(cat, ids, data, "transformers:sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(vindex.IndexMismatchError, match="re-index"):
        vindex.load_index(cat, encoder="openai:text-embedding-3-small")
    idx = vindex.load_index(cat, encoder="transformers:sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(vindex.IndexMismatchError):
        idx.query(np.ones(7), 3)  # wrong dimension


def test_fallback_to_exact_when_annoy_missing(tmp_path, monkeypatch):
    ids, data, _ = _data(300)
    real_import = builtins.__import__

    def no_annoy(name, *args, **kwargs):
        if name == "annoy":
            raise ImportError("no annoy here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_annoy)
    cat = Catalog(tmp_path / "c.db")
    idx = vindex.build_index(cat, ids, data, "enc:a", kind="annoy")
    assert idx.kind == "exact"
    assert idx.query(data[10], 1)[0][0] == ids[10]


def test_annoy_index_loads_exact_without_annoy(tmp_path, monkeypatch):
    pytest.importorskip("annoy")
    ids, data, _ = _data(300)
    cat = Catalog(tmp_path / "c.db")
    vindex.build_index(cat, ids, data, "enc:a", kind="annoy", n_trees=5).close()
    monkeypatch.setattr(vindex, "_annoy", lambda: None)
    idx = vindex.load_index(cat)
    assert idx.kind == "exact" and idx.query(data[5], 1)[0][0] == ids[5]


def test_missing_or_damaged_files_mean_no_index(tmp_path):
    ids, data, _ = _data(50)
    cat = Catalog(tmp_path / "c.db")
    assert vindex.load_index(cat) is None
    idx = vindex.build_index(cat, ids, data, "enc:a")
    for p in idx.paths:
        p.write_bytes(b"garbage")
    idx.close()
    assert vindex.load_index(cat) is None


def test_vectors_for(tmp_path):
    ids, data, _ = _data(50)
    cat = Catalog(tmp_path / "c.db")
    idx = vindex.build_index(cat, ids, data, "enc:a")
    got = idx.vectors_for([ids[3], 99999, ids[0]])
    assert np.allclose(got[0], data[3]) and not got[1].any() and np.allclose(got[2], data[0])


def test_embed_resumes_after_interrupt(tmp_path, encoder, monkeypatch):
    from helpers_search import CARDS

    from stylus_ext import embed

    class Flaky:
        """The real encoder, interrupted (Ctrl-C) on its second call."""

        def __init__(self):
            self.calls, self.texts = 0, 0
            self.identity = encoder.identity

        def encode(self, texts):
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt
            self.texts += len(texts)
            return encoder.encode(texts)

    monkeypatch.setattr(embed, "CHUNK", 4)
    cat = Catalog(tmp_path / "c.db")
    for c in list(CARDS.values())[:10]:
        cat.insert_card(c)
    texts = {t for a in cat.adapters() for t in (embed.search_text(a), *embed.example_texts(a))}
    assert len(texts) > 10  # the cards' example prompts are embedded too
    flaky = Flaky()
    with pytest.raises(KeyboardInterrupt):
        embed.embed_catalog(cat, flaky)
    assert cat.db["embeddings"].count == 4  # the first chunk was committed
    again = Flaky()
    again.calls = 5  # no more interruptions
    report = embed.embed_catalog(cat, again)
    assert report.embedded == len(texts) - 4 and report.cached == 4 and again.texts == len(texts) - 4
    assert embed.embed_catalog(cat, again).embedded == 0


def test_index_catalog_is_incremental(tmp_path, plugins, encoder):
    from helpers_search import CARDS

    from stylus_ext import embed
    from stylus_ext.indexing import index_catalog
    from stylus_ext.retrieve import Retriever

    cat = Catalog(tmp_path / "c.db")
    ids = [cat.insert_card(c) for c in list(CARDS.values())[:6]]
    texts = {t for a in cat.adapters() for t in (embed.search_text(a), *embed.example_texts(a))}
    first = index_catalog(cat, plugins, encoder=encoder)
    assert first.rebuilt and first.embedded == len(texts) > 6 and first.adapters == 6
    same = index_catalog(cat, plugins, encoder=encoder)
    assert not same.rebuilt and same.embedded == 0 and same.index_version == first.index_version
    card = cat.adapter(cat.row(ids[2])).card
    cat.update_card(ids[2], type(card)(**{**card.__dict__, "title": "Submarine under the ocean"}))
    changed = index_catalog(cat, plugins, encoder=encoder)
    assert changed.rebuilt and changed.embedded == 1 and changed.index_version == first.index_version + 1
    top = Retriever(cat, encoder=encoder).search("a submarine deep in the sea", 1)[0]
    assert top.adapter.id == ids[2]


def test_index_holds_example_prompt_vectors(tmp_path, plugins, encoder, caplog):
    """Each adapter's example prompts get vectors of their own; a prompt's best cosine to them is
    what the retriever's ``ex_dense`` feature reads, and a new example prompt re-embeds one text."""
    from helpers_search import CARDS

    from stylus_ext import ranking
    from stylus_ext.index import _files, load_index
    from stylus_ext.indexing import index_catalog
    from stylus_ext.retrieve import Retriever

    cat = Catalog(tmp_path / "c.db")
    cards = list(CARDS.values())[:7]
    ids = [cat.insert_card(c) for c in cards[:6]]
    bare = cat.insert_card(type(cards[6])(**{**cards[6].__dict__, "example_prompts": ()}))
    index_catalog(cat, plugins, encoder=encoder)
    index = load_index(cat)
    assert index.has_examples
    prompt = "a lighthouse on a cliff above a stormy sea, dramatic clouds"
    card = cat.adapter(cat.row(ids[3])).card
    cat.update_card(ids[3], type(card)(**{**card.__dict__, "example_prompts": (*card.example_prompts, prompt)}))
    again = index_catalog(cat, plugins, encoder=encoder)
    # the new example prompt (and the card's search text when the refiner rewrote its description)
    assert again.rebuilt and 1 <= again.embedded <= 2 and again.adapters == 7
    index = load_index(cat)
    q = encoder.encode([prompt])[0]
    sims = index.example_similarity(q, [*ids, bare, 10_000])
    assert sims[3] == pytest.approx(1.0, abs=1e-5)
    assert np.all(sims[[0, 1, 2, 4, 5]] < 0.9) and sims[6] == 0.0 and sims[7] == 0.0
    retriever = Retriever(cat, encoder=encoder)
    pool = retriever.pool(prompt)
    column = ranking.FEATURES.index("caption:ex_dense")
    assert pool.ids[np.argmax(pool.features[:, column])] == ids[3]
    # damaged example files: a warning, the feature reads 0, the search still answers
    index.close()
    _files(cat.path, again.index_version)["exrows"].write_bytes(b"garbage")
    with caplog.at_level("WARNING", logger="stylus"):
        damaged = load_index(cat)
    assert not damaged.has_examples and "example-prompt vectors" in caplog.text
    assert not np.any(damaged.example_similarity(q, ids))
    assert Retriever(cat, encoder=encoder).search(prompt, 3)


def test_example_similarity_is_the_best_example_cosine(tmp_path):
    """Against brute force on random vectors: the best cosine over each id's own example rows (0 for
    ids without examples or outside the index, and for an index built without any)."""
    ids, data, rng = _data()
    counts = rng.integers(0, 5, len(ids))
    examples = [rng.standard_normal((k, data.shape[1])).astype(np.float32) for k in counts]
    cat = Catalog(tmp_path / "c.db")
    idx = vindex.build_index(cat, ids, data, "enc:a", kind="exact", examples=examples)
    q = rng.standard_normal(data.shape[1])
    qn = q / np.linalg.norm(q)
    asked = [*rng.permutation(ids)[:50].tolist(), 1]  # shuffled ids, and one not in the index
    got = idx.example_similarity(q, asked)
    row = {int(a): i for i, a in enumerate(ids)}
    for adapter_id, value in zip(asked, got, strict=True):
        block = examples[row[adapter_id]] if adapter_id in row else np.zeros((0, data.shape[1]))
        want = float(np.max(block @ qn / np.linalg.norm(block, axis=1))) if len(block) else 0.0
        assert value == pytest.approx(want, abs=1e-5)
    assert idx.count == len(ids) and idx.query(q, 5)[0].tolist() == ids[np.argsort(-(data @ qn))[:5]].tolist()
    plain = vindex.build_index(cat, ids, data, "enc:a", kind="exact")
    assert not plain.has_examples and not np.any(plain.example_similarity(q, ids))
    with pytest.raises(ValueError, match="example vectors for"):
        vindex.build_index(cat, ids, data, "enc:a", examples=examples[:-1])


def test_example_texts_are_read_once_per_changed_card(tmp_path, plugins, encoder, monkeypatch):
    """An unchanged catalogue's example prompts are not read through the grammar again on the next
    index run (their hashes are cached in the catalog); a changed card's are, and only its."""
    from helpers_search import CARDS

    from stylus_ext import embed
    from stylus_ext.indexing import index_catalog

    cat = Catalog(tmp_path / "c.db")
    ids = [cat.insert_card(c) for c in list(CARDS.values())[:6]]
    index_catalog(cat, plugins, encoder=encoder)
    read: list[str] = []
    real = embed.example_texts
    monkeypatch.setattr(embed, "example_texts", lambda a: read.append(a.name) or real(a))
    assert not index_catalog(cat, plugins, encoder=encoder).rebuilt and read == []
    card = cat.adapter(cat.row(ids[1])).card
    cat.update_card(ids[1], type(card)(**{**card.__dict__, "example_prompts": ("a red fox in the snow",)}))
    assert index_catalog(cat, plugins, encoder=encoder).rebuilt and read == [card.name]
    rows = cat.db.execute("select count(*) from example_texts").fetchone()[0]
    assert rows == sum(1 for a in cat.adapters() if a.card.example_prompts)  # the old prompts' row pruned
    # a vector pruned from the cache (another encoder took its place) makes the card read again
    cat.db.execute("delete from embeddings where text_hash = ?", [embed.text_hash("a red fox in the snow")])
    cat.db.conn.commit()
    read.clear()
    assert index_catalog(cat, plugins, encoder=encoder).embedded == 1 and read == [card.name]
