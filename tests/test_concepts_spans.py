"""The fitted run score that re-cuts a sentence's concepts (stylus_ext.sdk.concept_spans)."""

from __future__ import annotations

import itertools
import re

import pytest

from stylus_ext.sdk import concept_spans
from stylus_ext.sdk.concepts import parse_prompt
from stylus_ext.sdk.english import AUX, CONJUNCTIONS, PREPOSITIONS

CLASSES = {"num", "color", "size", "adj", "ing", "ed", "ly", "hyph", "adjend", "medium", "time", "place",
           "generic", "cap", "y", "plural", "noun", "person", "light", "aux", "det", "BOS", "EOS",
           "rare"}  # (a word outside the general word-class table; its clusters and frequency buckets are numbers)


def texts(prompt: str) -> list[str]:
    return [c.text for c in parse_prompt(prompt).topical]


def test_shipped_weights_load_and_name_word_classes_only():
    """No content word of the reference set is a feature: only classes, closed-class words, clusters and counts."""
    assert concept_spans.WEIGHTS and 0.0 < concept_spans.THRESHOLD < 1.0
    closed = PREPOSITIONS | CONJUNCTIONS | AUX
    for name in concept_spans.WEIGHTS:
        for value in re.findall(r"=([^|]+)", name):
            assert value in CLASSES or value in closed or value.isdigit() or value.split(":")[0] in (
                "exact", "trim", "inside", "crosses", "covers0", "covers1", "covers2"), name


def test_without_weights_the_chunker_concepts_stand(monkeypatch):
    monkeypatch.setattr(concept_spans, "WEIGHTS", {})
    assert concept_spans.select(["a", "man"], [(1, 2, "subject")]) is None
    assert texts("a man playing guitar on stage") == ["man", "guitar", "stage"]


def test_the_shipped_score_drops_a_generic_person_but_not_a_specific_one():
    assert "man" not in texts("a man playing guitar on stage")
    assert "skiers" in texts("a group of skiers in front of a ski lodge")


def test_runs_never_overlap_and_keep_whole_noun_phrases():
    for prompt in ("a red panda wearing a silk kimono in an autumn forest",
                   "a gothic cathedral at night", "A white bus turning on a street under a bridge."):
        parsed = parse_prompt(prompt)
        spans = sorted(c.span for c in parsed.topical)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), (prompt, spans)
    assert {"red panda", "silk kimono", "autumn forest"} <= set(texts(
        "a red panda wearing a silk kimono in an autumn forest"))
    assert "gothic cathedral" in texts("a gothic cathedral at night")


def test_a_style_or_a_name_the_chunker_found_is_never_dropped():
    assert "comic book" in texts("a cat reading a comic book")
    assert "oil painting" in texts("an old man with a beard smoking a pipe, oil painting")
    assert {"statue of liberty", "arc de triomphe"} <= set(texts("the Statue of Liberty next to the Arc de Triomphe"))
    assert "arc de triomphe" in texts("a man walking past the Arc de Triomphe")


def test_a_noun_phrase_of_two_words_the_score_left_out_whole_stays():
    """The score may re-cut a noun phrase, not lose all of it: a LoRA can only attach to a concept."""
    assert "store front" in texts("a store front at night")
    assert "space shuttle endeavor" in texts("the space shuttle endeavor")
    # a capitalised name before a verb stays whole too, as the run score keeps names
    assert "space shuttle endeavor" in texts("the Space Shuttle Endeavor flying over the Earth")
    assert "man" not in texts("a man playing guitar on stage")  # one generic word may still go


def test_the_programme_joins_runs_when_the_score_says_so(monkeypatch):
    """With a weight that favours runs covering two chunker concepts, "building with a clock" is one."""
    monkeypatch.setattr(concept_spans, "WEIGHTS", {"bias": -5.0, "rel=covers2": 10.0})
    monkeypatch.setattr(concept_spans, "THRESHOLD", 0.5)
    assert texts("a building with a clock") == ["building with a clock"]
    monkeypatch.setattr(concept_spans, "WEIGHTS", {"bias": -5.0, "rel=exact:subject": 10.0})
    assert texts("a building with a clock") == ["building", "clock"]


def test_particles_end_a_run():
    parsed = {c.text: c.kind for c in parse_prompt("a bald man looking down at his phone").topical}
    assert parsed.get("looking down") == "action" and "phone" in parsed


@pytest.mark.parametrize("n", [50, 400])
def test_candidates_per_word_are_bounded(monkeypatch, n):
    """Linear work: at most MAX_WORDS runs end at each word, and long sentences are capped."""
    monkeypatch.setattr(concept_spans, "RECORDER", [])
    parse_prompt(" ".join(["red cat sitting on the old mat"] * (n // 7)))
    seen = sum(len(s) for s in concept_spans.RECORDER)
    assert 0 < seen <= concept_spans.MAX_WORDS * n


def test_a_trimmed_modifier_never_stands_alone_before_its_noun(monkeypatch):
    """"red lego block" is "red lego block" or "lego block", never "red" + "lego block" (any weights)."""
    monkeypatch.setattr(concept_spans, "WEIGHTS", {"bias": -5.0, "rel=covers0": 10.0, "rel=exact:subject": 10.0})
    monkeypatch.setattr(concept_spans, "THRESHOLD", 0.5)
    words = ["a", "red", "lego", "block", "holding", "a", "cup"]
    chosen = concept_spans.select(words, [(2, 4, "subject"), (6, 7, "subject")])
    assert (1, 2) not in chosen and (2, 4) in chosen
    assert (4, 5) in chosen  # a verb before a noun phrase may stand alone ("holding")
    assert "red" not in texts("a red lego block")


def test_a_concept_headed_by_an_unknown_word_is_kept(monkeypatch):
    """A name or coined word outside the general word table ("hatsune miku") is not dropped by the score."""
    assert "hatsune miku" in texts("hatsune miku singing on a stage")
    monkeypatch.setattr(concept_spans, "WEIGHTS", {"bias": -30.0})  # every run scores ~0
    rules = [(1, 2, "subject"), (4, 5, "setting")]
    assert concept_spans.select(["a", "zqxmiku", "on", "a", "stage"], rules) == [(1, 2)]
