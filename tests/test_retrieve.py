"""The hybrid retriever on a small catalog of realistic cards: fusion quality, filters, hostile prompts."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
from helpers_search import CAPTIONS, CARDS, TAG_PROMPTS, build_catalog

from stylus_ext import lexical
from stylus_ext.catalog.db import Catalog
from stylus_ext.ranking import Ranker
from stylus_ext.retrieve import Retriever


def _only(*features: str) -> Ranker:
    """A ranker that scores by the given features alone (an ablation of the fitted one)."""
    return Ranker.from_dict({"features": list(features), "coef": [1.0] * len(features), "intercept": 0.0})


@pytest.fixture(scope="module")
def master(tmp_path_factory, plugins, encoder):
    folder = tmp_path_factory.mktemp("retrieve")
    catalog, ids = build_catalog(folder / "catalog.db", plugins, encoder)
    catalog.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    catalog.close()
    return folder / "catalog.db", ids


@pytest.fixture
def cat(master, tmp_path):
    path, ids = master
    dest = tmp_path / "copy"
    shutil.copytree(path.parent, dest)
    catalog = Catalog(dest / path.name)
    yield catalog, ids
    catalog.close()


def _mrr(retriever, prompts, ids):
    total = 0.0
    for prompt, key in prompts:
        got = [c.adapter.id for c in retriever.search(prompt, 10)]
        total += 1 / (got.index(ids[key]) + 1) if ids[key] in got else 0.0
    return total / len(prompts)


def test_hybrid_beats_dense_and_lexical_alone(cat, encoder):
    catalog, ids = cat
    shared: dict = {}  # prompt vectors computed once for the three retrievers
    hybrid = Retriever(catalog, encoder=encoder, vector_cache=shared)
    dense = Retriever(catalog, encoder=encoder, vector_cache=shared, ranker=_only("dense"))
    words = Retriever(catalog, encoder=encoder, vector_cache=shared, ranker=_only("all_rel"))
    scores = {name: (_mrr(r, TAG_PROMPTS, ids), _mrr(r, CAPTIONS, ids))
              for name, r in (("hybrid", hybrid), ("dense", dense), ("lexical", words))}
    # The fitted fusion (real-card figures: benchmarks/bench_real_cards.py) is at least as good as the
    # better single signal on each kind of prompt here too, and never below either overall.
    for kind in (0, 1):
        assert scores["hybrid"][kind] >= max(scores["lexical"][kind], scores["dense"][kind]) - 0.05, scores
    overall = {k: sum(v) for k, v in scores.items()}
    assert overall["hybrid"] >= max(overall["dense"], overall["lexical"]), scores


def test_candidate_scores(cat, encoder):
    catalog, ids = cat
    r = Retriever(catalog, encoder=encoder)
    found = r.search("a kitten napping on a couch by the window", 5)
    assert found[0].adapter.id == ids["cat"]
    assert all(0 <= c.score <= 1 and 0 <= c.lexical < 1 for c in found)
    # without the re-ranker the order is the score's; the shipped re-ranker changes the order only
    linear = Retriever(catalog, encoder=encoder, ranker=dataclasses.replace(r.ranker, rerank=None))
    plain = linear.search("a kitten napping on a couch by the window", 5)
    assert [c.score for c in plain] == sorted((c.score for c in plain), reverse=True)
    assert r.ranker.rerank is not None
    scored, plain_scored = ({c.adapter.id: c.score for c in got} for got in (found, plain))
    common = scored.keys() & plain_scored.keys()
    assert ids["cat"] in common and all(scored[i] == plain_scored[i] for i in common)
    # similarity is the true cosine between the prompt and the stored adapter vector
    vec = r.encode(["a kitten napping on a couch by the window"])[0]
    stored = r.vectors_for([c.adapter.id for c in found])
    assert np.allclose([c.similarity for c in found], stored @ vec, atol=1e-5)
    assert found[0].lexical > 0  # "kitten" is on the card


def test_quality_tags_and_lora_syntax_do_not_matter(cat, encoder):
    catalog, _ = cat
    r = Retriever(catalog, encoder=encoder)
    plain = [c.adapter.id for c in r.search("1girl, hanfu, hair ornament, chinese clothes", 5)]
    noisy = [c.adapter.id for c in r.search(
        "masterpiece, best quality, highres, 8k, (1girl:1.2), <lora:foo:0.7>, [hanfu], (hair ornament), "
        "chinese clothes, absurdres", 5)]
    assert plain == noisy


def test_style_detection():
    assert lexical.is_tag_style("1girl, long hair, beach, sunset")
    assert lexical.is_tag_style("score_9, score_8_up, pony")
    assert not lexical.is_tag_style("a cat sitting on a red couch")
    # Pony's quality words before a sentence: a caption still
    assert not lexical.is_tag_style("score_9, score_8_up, source_anime, a watercolor painting of a fox in the snow")
    assert lexical.is_tag_style("score_9, score_8_up, 1girl, a watercolor painting of a fox in the snow")


def test_pony_quality_words_before_a_caption_do_not_change_its_search(cat, encoder):
    """"score_9, score_8_up, <caption>" is searched as that caption: the same candidates and scores
    (read as a tag list, it was scored by the tag prompts' weights)."""
    catalog, _ = cat
    r = Retriever(catalog, encoder=encoder)
    caption = "a watercolor painting of a corgi in a medieval castle courtyard"
    plain = [(c.adapter.id, round(c.score, 6)) for c in r.search(caption, 5)]
    pony = [(c.adapter.id, round(c.score, 6)) for c in r.search(f"score_9, score_8_up, score_7_up, {caption}", 5)]
    assert plain == pony
    assert not lexical.is_tag_style("a castle on a hill, at sunset, in the style of studio ghibli, very detailed")
    assert lexical.clean_prompt("masterpiece, best quality, <lora:x:1>, (red dress:1.3)") == "red dress"


@pytest.mark.parametrize("prompt", ['"AND OR NOT (*', "NEAR(a b)", "title:cat", "{tags}: x", "^cat*", "'; drop table",
                                    "", "   ", ",,,", '"""', "a" * 5000, "猫 ネコ", "\x00\x01"])
def test_hostile_prompts_never_raise(cat, encoder, prompt):
    catalog, _ = cat
    r = Retriever(catalog, encoder=encoder)
    result = r.search(prompt, 5)
    assert isinstance(result, list) and len(result) <= 5


def test_base_model_filter_is_hard_across_groups_soft_within(cat, encoder):
    catalog, ids = cat
    r = Retriever(catalog, encoder=encoder)
    for c in r.search("a sport motorcycle on a road", 40, base_model="SD1"):
        assert c.adapter.card.base_model in ("SD1", "unknown")
    assert ids["bike"] not in [c.adapter.id for c in r.search("a sport motorcycle on a road", 40, base_model="SD1")]
    # within the SDXL group: Pony and SDXL maid outfits (the same card but for the base model and a
    # word) both stay; the target's family ranks first — a nudge between near-equals, not an override
    for target, first in (("Pony", "pony_outfit"), ("SDXL", "xl_maid")):
        got = [c.adapter.id for c in r.search("1girl, maid, apron, frills", 5, base_model=target)]
        assert got[0] == ids[first] and {ids["pony_outfit"], ids["xl_maid"]} <= set(got)
    # unknown target passes everything
    assert ids["bike"] in [c.adapter.id for c in r.search("a sport motorcycle", 40, base_model="mystery")]


def test_installed_banned_unreferenceable_pinned(cat, encoder):
    catalog, ids = cat
    r = Retriever(catalog, encoder=encoder)
    owls = [c.adapter.id for c in r.search("an owl perched on a branch", 30)]
    assert ids["installed_owl"] in owls and ids["bad_name"] not in owls  # ':' in an installed name
    only = r.search("an owl perched on a branch", 30, installed_only=True)
    assert only and all(c.adapter.installed for c in only)
    catalog.set_controls(ids["installed_owl"], banned=True)
    catalog.set_controls(ids["detail"], pinned=True)
    got = [c.adapter.id for c in r.search("an owl perched on a branch", 3)]
    assert ids["installed_owl"] not in got
    assert ids["detail"] in got and len(got) == 4  # pinned is always offered, on top of k
    pinned = next(c for c in r.search("an owl perched on a branch", 3) if c.adapter.id == ids["detail"])
    assert pinned.adapter.pinned


def test_a_typed_coined_trigger_ranks_its_card_beside_the_other_tags_in_a_small_folder(cat, encoder):
    """The shipped trees learnt from a large catalogue's pools; on a folder this small the linear
    order stands (``Rerank.min_pool``), and there a card whose coined trigger is typed is never
    buried under the cards that only share "1girl" (the trees put them 3rd to 9th). Only the two
    maid-outfit adapters (one card for Pony and SDXL) may rank above it: "maid outfit", their
    trigger and title, is typed too."""
    catalog, ids = cat
    r = Retriever(catalog, encoder=encoder)
    typed_too = {ids["pony_outfit"], ids["xl_maid"]}
    for key, trigger in (("bike", "sportbike"), ("lineart", "lnrt"), ("pixel", "pxlchibi"),
                         ("cyberpunk", "neonnights"), ("mecha", "rx78")):
        got = [c.adapter.id for c in r.search(f"masterpiece, {trigger}, 1girl, maid outfit, smile", 10)]
        assert ids[key] in got and set(got[:got.index(ids[key])]) <= typed_too, (trigger, got[:4])


def test_lexical_index_follows_catalog_changes(cat, encoder):
    catalog, ids = cat
    r = Retriever(catalog, encoder=encoder)
    catalog.update_fields(ids["bike"], trigger_words='["zxqvroom"]')
    assert r.search("1girl, zxqvroom, road", 3)[0].adapter.id == ids["bike"]
    catalog.delete([ids["bike"]])
    assert ids["bike"] not in [c.adapter.id for c in r.search("1girl, zxqvroom, road", 30)]


def test_not_indexed_catalog_is_lexical_only(tmp_path):
    catalog = Catalog(tmp_path / "c.db")
    cid = catalog.insert_card(CARDS["mecha"])
    r = Retriever(catalog)
    got = r.search("mecha, beam saber", 5)
    assert [c.adapter.id for c in got] == [cid] and got[0].similarity == 0.0


def test_prompt_vector_cache(cat, encoder):
    catalog, _ = cat
    cache: dict = {}
    r = Retriever(catalog, encoder=encoder, vector_cache=cache)
    r.search("a giant robot", 3)
    assert "a giant robot" in cache
    cache["a giant robot"] = np.zeros_like(cache["a giant robot"])  # the cached vector is the one used
    assert all(c.similarity == 0.0 for c in r.search("a giant robot", 3))


def test_encoder_mismatch(cat, encoder):
    catalog, _ = cat
    from stylus_ext.index import IndexMismatchError

    class Other:
        identity = "other:model"

    with pytest.raises(IndexMismatchError):
        Retriever(catalog, encoder=Other())  # type: ignore[arg-type]


def test_old_fts_table_is_dropped_and_the_bm25_index_saved(tmp_path):
    catalog = Catalog(tmp_path / "c.db")
    catalog.insert_card(CARDS["corgi"])
    catalog.db["adapters"].enable_fts(["name", "title"], create_triggers=True)  # as earlier versions did
    Retriever(catalog).search("corgi", 3)
    lexical.ensure_index(catalog)
    assert "adapters_fts" not in catalog.db.table_names()
    assert not catalog.db.execute("select name from sqlite_master where type = 'trigger' "
                                  "and name not like 'adapters_generation%'").fetchall()  # ours stay
    assert lexical.has_index(catalog)
    catalog.insert_card(CARDS["mecha"])
    assert not lexical.has_index(catalog)  # a new card makes the saved index stale


def test_many_texts_through_a_small_prompt_cache(cat, encoder):
    """More texts in one call than the cache holds, and cache hits mixed with new texts."""
    catalog, _ = cat
    r = Retriever(catalog, encoder=encoder, cache_size=4)
    texts = [f"concept {i}" for i in range(10)]
    first = r.encode(texts)
    again = r.encode(["concept 9", "new one", "concept 0", "concept 9"])

    def same(a: np.ndarray, b: np.ndarray) -> bool:  # one text's vector (batches differ by ~1e-7)
        return bool(np.allclose(a, b, atol=1e-6))

    assert not same(first[0], first[9])
    assert first.shape == (10, first.shape[1]) and again.shape[0] == 4
    assert same(again[0], first[9]) and same(again[2], first[0]) and same(again[3], first[9])
    for _ in range(3):  # a long-running process composing many prompts
        for i in range(0, 10, 3):
            assert r.search(f"concept {i}, 1girl, long hair", 3) is not None
