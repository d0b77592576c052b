"""sdk.prompt: the one prompt grammar (tags, weights, separators, wildcards, quality words, sanitiser)."""

from __future__ import annotations

import pytest

from stylus_ext.sdk import prompt as grammar
from stylus_ext.sdk.concepts import parse_prompt


def test_network_tags_of_every_kind():
    text = "a <lora:ghibli_bg:0.7>, <lyco:Pixel-Art:1:0.5> x <lycoris:ghibliBG:0.6> <hypernet:foo> <embedding:bar:1>"
    tags = grammar.network_tags(text)
    assert [(t.kind, t.name, t.weight) for t in tags] == [
        ("lora", "ghibli_bg", 0.7), ("lyco", "Pixel-Art", 1.0), ("lycoris", "ghibliBG", 0.6),
        ("hypernet", "foo", None), ("embedding", "bar", 1.0)]
    assert tags[1].args == ("1", "0.5") and tags[1].is_lora and not tags[3].is_lora
    assert text[slice(*tags[2].span)] == "<lycoris:ghibliBG:0.6>"
    assert grammar.network_tags("<lora:> <lora::1> <lora:x:nan>")[0].weight is None  # no name: no tag; nan: no weight


def test_lycoris_tag_is_never_a_concept():
    parsed = parse_prompt("a castle <lycoris:ghibliBG:0.6>, night sky")
    assert [t.name for t in parsed.tags] == ["ghibliBG"] and parsed.excluded_names == ("ghiblibg",)
    texts = [c.text for c in parsed.concepts]
    assert texts == ["castle", "night sky"]


@pytest.mark.parametrize("prompt", [
    "<lora:a:1> <lyco:b:0.5>", "<lycoris:ghibliBG:0.6>", "(:1.2)", "((( :1.3 )))", "[:0.5]", "(1.2)", "BREAK AND",
    "__animals__", "{|}", "\\(\\)", "(castle:1.5", ":1.5)", "[a|", "<", ">", "<<<>>>",
])
def test_a_prompt_of_only_syntax_gives_no_concepts(prompt):
    assert [c.text for c in parse_prompt(prompt).topical if c.text not in ("a", "castle")] == []


def test_blank_syntax_keeps_length_and_reads_weights():
    text = "(red hair:1.3), ((smile)), [blue eyes], [cat|dog], [castle:ruins:0.5], \\(literal\\), __wild__ BREAK x"
    blanked = grammar.blank_syntax(text)
    assert len(blanked.text) == len(text) == len(blanked.weights)
    assert not any(ch in blanked.text for ch in "()[]:|\\_") and "BREAK" not in blanked.text
    assert blanked.weights[text.index("red")] == pytest.approx(1.3)
    assert blanked.weights[text.index("smile")] == pytest.approx(1.21)
    assert blanked.weights[text.index("blue")] == pytest.approx(1 / 1.1)
    assert blanked.weights[text.index("cat")] == pytest.approx(1.0)
    assert [s.text for s in grammar.segments(text)] == [
        "red hair", "smile", "blue eyes", "cat", "dog", "castle", "ruins", "literal", "x"]


def test_nested_and_negative_weights():
    blanked = grammar.blank_syntax("((a:1.5) b) (c:-1) (d:0)")
    assert blanked.weights[2] == pytest.approx(1.65) and blanked.weights[9] == pytest.approx(1.1)
    assert blanked.weights[14] == pytest.approx(-1) and blanked.weights[21] == pytest.approx(0)


def test_a_weight_left_by_an_unbalanced_bracket_is_syntax_but_a_ratio_is_not():
    assert grammar.strip_syntax("(castle:1.5, tree") == "castle, tree"
    assert grammar.strip_syntax("ratio 16:9 poster") == "ratio 16:9 poster"


def test_retriever_helpers():
    prompt = "masterpiece, best quality, (hatsune_miku:1.2), a girl on the beach <lora:x:1> BREAK score_9, 8k uhd"
    stripped = "masterpiece, best quality, hatsune_miku, a girl on the beach, score_9, 8k uhd"
    assert grammar.strip_syntax(prompt) == stripped
    assert grammar.split_segments(prompt) == ["hatsune_miku", "a girl on the beach"]
    assert grammar.clean_prompt(prompt) == "hatsune_miku, a girl on the beach"
    assert grammar.query_terms(prompt) == ["hatsune_miku", "hatsune", "miku", "girl", "beach"]
    assert grammar.tokens("Hatsune_Miku, (pixel-art)") == ["hatsune_miku", "pixel", "art"]
    assert grammar.is_tag_style("1girl, long hair, beach, sunset")
    assert grammar.is_tag_style("score_9, score_8_up, pony")
    assert not grammar.is_tag_style("a cat sitting on a red couch")


@pytest.mark.parametrize("tag", [
    "masterpiece", "best quality", "(masterpiece:1.2)", "score_9", "score_8_up", "source_anime", "rating_safe",
    "8k uhd", "extremely detailed cg unity 8k wallpaper", "highres", "absurdres", "year 2024", "high quality",
    "worst quality", "trending on artstation", "4k resolution", "perfect", "rating:general", "very awa",
    "very displeasing", "worst aesthetic", "sensitive", "general", "explicit", "safe",  # bare rating tags
])
def test_quality_tags(tag):
    assert grammar.is_quality(grammar.strip_syntax(tag))


@pytest.mark.parametrize("tag", [
    "depth of field", "bokeh", "film grain", "cinematic lighting", "realistic", "pixel art", "high heels",
    "low poly", "beautiful woman", "detailed background castle", "1girl", "", "of", "rating system", "ratings board",
    "a safe", "safe room", "general store", "a general on a horse",
])
def test_not_quality(tag):
    assert not grammar.is_quality(tag)


def test_quality_words_are_safe_to_drop_from_searches():
    assert not {"high", "low", "beautiful", "art", "heels", "poly", "focus"} & grammar.QUALITY_WORDS
    assert grammar.query_terms("high heels, low poly, depth of field") == ["high", "heels", "low", "poly", "depth",
                                                                           "field"]


def test_common_tags():
    assert grammar.is_common_tag("1girl") and grammar.is_common_tag("looking_at_viewer")
    assert grammar.is_common_tag("2boys") and not grammar.is_common_tag("red panda")


def test_sanitize_untrusted_text():
    raw = "glassfig, <lora:evil:5>, BREAK\nmasterpiece AND (worst quality:-9), __wildcard__ {a|b}"
    clean = grammar.sanitize(raw)
    assert clean.text == "glassfig, masterpiece, (worst quality)"  # BREAK/AND become a comma: still apart
    assert not grammar.TAG_RE.search(clean.text) and "\n" not in clean.text
    assert len(clean.dropped) >= 6 and any("<lora:evil:5>" in d for d in clean.dropped)
    assert grammar.sanitize("neg <lora:neg_evil:3>").text == "neg"
    assert grammar.sanitize("ok, (fine:1.2)").text == "ok, (fine:1.2)" and grammar.sanitize("ok").dropped == ()


def test_sanitized_pieces_cannot_join_into_a_tag():
    joined = grammar.sanitize("<lora:").text + grammar.sanitize("evil:1>").text
    assert "<" not in joined and not grammar.TAG_RE.search(joined)


def test_sanitize_caps_length_and_removes_control_characters():
    big = grammar.sanitize("word, " * 20_000)
    assert len(big.text) <= 300 and big.text.endswith("word") and big.dropped
    assert grammar.sanitize("a\x00b\ud800c\td").text == "abc, d"
    assert grammar.sanitize(None).text == ""


def test_input_is_capped():
    long = "cat, " * 10_000 + "<lora:late:1>"
    assert grammar.network_tags(long) == []  # past MAX_PROMPT_CHARS: not read
    assert len(grammar.blank_syntax(long).text) == grammar.MAX_PROMPT_CHARS


def test_a_comfyui_embedding_reference_is_a_file_not_a_concept():
    parsed = parse_prompt("embedding:EasyNegative, (embedding:style-empire:1.2), a castle, embedding:foo:1.2.3 tree")
    assert [c.text for c in parsed.topical] == ["castle", "tree"]
    assert grammar.strip_syntax("embedding:bad_hands_5 castle") == "castle"
    # only the reference: the words "embedding" and "word embedding: a diagram" stay prose
    assert [c.text for c in parse_prompt("word embedding: a diagram").topical] == ["word", "diagram"]
    assert "embedding" in grammar.strip_syntax("an embedding of words")
