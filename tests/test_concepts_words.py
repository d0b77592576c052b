"""The general word classes the concept run score reads (stylus_ext.sdk.word_classes)."""

from __future__ import annotations

from stylus_ext.sdk import concept_spans, word_classes
from stylus_ext.sdk.concepts import parse_prompt


def test_the_table_ships_and_ranks_common_words_first():
    common, rare = word_classes.lookup("the"), word_classes.lookup("cathedral")
    assert common[0] == "0" and rare[0] not in ("0", "rare") and int(rare[0]) > 5
    assert word_classes.lookup("Cathedrals") == word_classes.lookup("cathedral")  # case and plural fold
    assert word_classes.lookup("qzxvbnm") == ("rare", "rare")


def test_clusters_group_words_by_meaning():
    colours = {word_classes.lookup(w)[1] for w in ("red", "blue", "green", "yellow")}
    assert len(colours) == 1
    assert word_classes.lookup("red")[1] != word_classes.lookup("kitchen")[1]


def test_without_the_table_every_word_is_rare_and_the_splitter_still_answers(monkeypatch, tmp_path):
    word_classes._table.cache_clear()
    monkeypatch.setattr(word_classes, "PATH", tmp_path / "missing.txt")
    try:
        assert word_classes.lookup("dog") == ("rare", "rare")
        assert "autumn forest" in [c.text for c in parse_prompt("a red panda in an autumn forest").topical]
    finally:
        word_classes._table.cache_clear()


def test_run_features_name_the_head_cluster_and_its_neighbours():
    words = ["a", "dog", "on", "a", "red", "couch"]
    sent = concept_spans.Sentence.of(words, [(1, 2, "subject"), (4, 6, "subject")])
    feats = concept_spans.features(sent, 4, 6, "exact:subject")
    head = word_classes.lookup("couch")
    assert f"hc={head[1]}" in feats and f"hf={head[0]}" in feats
    assert f"fc={word_classes.lookup('red')[1]}" in feats and f"lc={word_classes.lookup('dog')[1]}" in feats
    assert "rc=EOS" in feats
