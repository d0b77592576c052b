"""The BM25 postings index: scores, persistence, incremental updates equal to a rebuild."""

from __future__ import annotations

import numpy as np
import pytest

from stylus_ext import bm25


def test_bm25_scores_rank_rare_terms_and_survive_a_corrupt_file(tmp_path):
    rows = [{"id": 1, "title": "girl portrait", "description": "kimono kimono"},
            {"id": 2, "title": "girl portrait", "description": "dress"},
            {"id": 3, "title": "mecha", "example_prompts": '["1girl, beam saber, mecha"]'}]
    index = bm25.LexicalIndex.build(rows, "fp")
    scores = index.scores("all", bm25.tokens("a girl in a kimono"))
    assert scores[0] > scores[1] > 0 == scores[2]  # the rare term decides; "girl" alone counts less
    assert index.scores("examples", ["saber"])[2] > 0 and index.scores("title", ["saber"])[2] == 0
    assert bm25.tokens("Dogs, long_hair and puppies!") == ["dog", "long", "hair", "puppy"]
    path = tmp_path / "x.bm25.npz"
    index.save(path)
    loaded = bm25.LexicalIndex.load(path)
    assert loaded is not None and np.allclose(loaded.scores("all", ["kimono"]), index.scores("all", ["kimono"]))
    path.write_bytes(b"garbage")
    assert bm25.LexicalIndex.load(path) is None  # unreadable: rebuilt, never a crash


def test_incremental_update_equals_a_full_rebuild():
    rows = [{"id": i, "title": f"thing {i}", "description": "kimono dress" if i % 3 else "robot"} for i in range(1, 50)]
    keys = np.arange(1, 50, dtype=np.int64)
    old = bm25.LexicalIndex.build(rows, "a", keys)
    rows2 = [dict(r, description="mecha robot") if r["id"] == 1 else r for r in rows if r["id"] != 5]
    rows2.append({"id": 60, "title": "new robot", "description": "mecha"})
    keys2 = np.array([999 if r["id"] == 1 else r["id"] for r in rows2], dtype=np.int64)  # 1 changed, 60 new
    by_id = {r["id"]: r for r in rows2}
    fetched: list[int] = []

    def fetch(ids):
        fetched.extend(ids)
        return [by_id[i] for i in ids]

    inc = old.updated(np.array([r["id"] for r in rows2]), keys2, fetch, "b")
    ref = bm25.LexicalIndex.build(rows2, "b", keys2)
    assert sorted(fetched) == [1, 60]  # only the changed and new cards are read again
    for field in ("all", "title", "description"):
        for term in ("robot", "mecha", "kimono", "thing", "new"):
            assert np.allclose(inc.scores(field, [term]), ref.scores(field, [term])), (field, term)


def test_term_spans_and_rows_survive_a_save(tmp_path):
    rows = [{"id": i * 7, "title": f"thing {i}", "tags": '["robot", "red"]' if i % 2 else '["kimono"]'}
            for i in range(1, 30)]
    index = bm25.LexicalIndex.build(rows, "fp")
    path = tmp_path / "x.bm25.npz"
    index.save(path)
    loaded = bm25.LexicalIndex.load(path)
    assert loaded is not None
    for name, built in index.fields.items():
        spans = loaded.fields[name].offsets
        assert dict(spans.items()) == dict(built.offsets.items()) and len(spans) == len(built.terms)
    tags = loaded.fields["tags"].offsets
    assert "robot" in tags and "mecha" not in tags and tags.get("mecha") is None
    start, end = tags["robot"]
    assert end - start == 15 == loaded.doc_freq("robot", "tags")  # the 15 odd cards
    wanted = np.array([7, 14, 8, 203, -1])
    assert loaded.rows_for(wanted).tolist() == [loaded.row_of.get(int(i), -1) for i in wanted] == [0, 1, -1, 28, -1]


def test_npz_members_mapped_or_read_equal_np_load(tmp_path):
    from stylus_ext.npz_map import open_npz

    arrays = {"a.rows": np.arange(1000, dtype=np.int32), "b": np.ones((3, 4), np.float32), "empty": np.zeros(0),
              "f": np.asfortranarray(np.arange(12.0).reshape(3, 4)), "meta": np.frombuffer(b'{"x": 1}', np.uint8)}
    path = tmp_path / "x.npz"
    np.savez(path, **arrays)
    for mmap in (True, False):
        got = open_npz(path, mmap=mmap)
        assert set(got) == set(arrays)
        for name, want in arrays.items():
            assert got[name].dtype == want.dtype and np.array_equal(got[name], want), (mmap, name)
    path.write_bytes(path.read_bytes()[:-200])  # cut short: an error, never a wrong array
    with pytest.raises(ValueError):
        open_npz(path)
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError):
        open_npz(path)
