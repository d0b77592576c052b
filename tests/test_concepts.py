"""Prompt → concepts: kinds, WebUI syntax, existing tags, determinism and speed."""

from __future__ import annotations

import pytest

from stylus_ext.sdk.concepts import head_noun, parse_prompt, singular


def kinds(prompt: str) -> dict[str, str]:
    return {c.text: c.kind for c in parse_prompt(prompt).concepts}


def test_natural_sentence_splits_subjects_settings_and_style():
    k = kinds("two dogs playing in the snow, studio ghibli style")
    assert k["studio ghibli"] == "style"
    assert k["snow"] == "setting"
    assert any("dog" in t and kind == "subject" for t, kind in k.items())


@pytest.mark.parametrize(("prompt", "style"), [
    ("portrait of a woman in the style of Alphonse Mucha", "alphonse mucha"),
    ("a cat that looks like a cloud", "cloud"),
    ("a watercolor painting of a fox", "watercolor painting"),
    ("a knight, pixel art", "pixel art"),
    ("sunflowers, painting by Vincent van Gogh", "vincent van gogh"),
    ("a robot, vaporwave aesthetic", "vaporwave"),
])
def test_style_phrases(prompt, style):
    assert kinds(prompt).get(style) == "style"


def test_quality_tags_kept_apart_and_do_not_pull_adapters():
    parsed = parse_prompt("masterpiece, best quality, ultra detailed, 8k, 1girl, red dress")
    q = [c.text for c in parsed.concepts if c.kind == "quality"]
    assert {"masterpiece", "best quality", "ultra detailed", "8k"} <= set(q)
    assert [c.text for c in parsed.topical] == ["1girl", "red dress"]


def test_weight_syntax_removed_and_weights_recorded():
    parsed = parse_prompt("(red hair:1.3), ((smile)), [blue eyes], (freckles)")
    by = {c.text: c for c in parsed.concepts}
    assert set(by) == {"red hair", "smile", "blue eyes", "freckles"}
    assert by["red hair"].weight == pytest.approx(1.3)
    assert by["smile"].weight == pytest.approx(1.21)
    assert by["blue eyes"].weight < 1
    # spans point back into the original prompt
    for c in parsed.concepts:
        s, e = c.span
        assert c.text.split()[0] in parsed.prompt[s:e].lower()


def test_alternation_editing_break_and_and():
    k = kinds("[cat|dog] BREAK [castle:ruins:0.5] AND a forest background")
    assert {"cat", "dog", "castle", "ruins"} <= set(k)
    assert k["forest background"] == "setting"
    assert not any(ch.isdigit() for t in k for ch in t)


def test_existing_network_tags_are_kept_and_excluded():
    prompt = "a castle <lora:ghibli_bg_v2:0.7>, <lyco:Pixel-Art:1> night sky <hypernet:foo:0.5>"
    parsed = parse_prompt(prompt)
    assert [t.name for t in parsed.tags] == ["ghibli_bg_v2", "Pixel-Art", "foo"]
    assert parsed.tags[0].weight == pytest.approx(0.7)
    assert parsed.tags[0].text == "<lora:ghibli_bg_v2:0.7>"
    assert parsed.excluded_names == ("foo", "ghibli_bg_v2", "pixel-art")
    texts = [c.text for c in parsed.concepts]
    assert not any("lora" in t or "ghibli" in t for t in texts)
    assert "castle" in texts


def test_escaped_brackets_and_underscores():
    k = kinds(r"hatsune_miku, artist \(style\), 1girl")
    assert "hatsune miku" in k


def test_empty_and_garbage_input_never_crash():
    for p in ["", "   ", ",,,", "(((", ")]>", "<lora:>", "<lora::>", "[a|", "\x00\x01", "a" * 5000]:
        parse_prompt(p)
    assert parse_prompt("").concepts == ()


def test_deterministic():
    """(Its speed is a benchmark figure: benchmarks/bench_concepts.py.)"""
    prompt = ("masterpiece, best quality, (a knight:1.2) riding a horse through a misty forest at dawn, "
              "[oil painting|watercolor], in the style of John Singer Sargent <lora:foo:0.5>")
    first = parse_prompt(prompt)
    for _ in range(20):
        assert parse_prompt(prompt) == first


def test_word_helpers():
    assert singular("puppies") == "puppy" and singular("women") == "woman" and singular("glass") == "glass"
    assert head_noun("a big red bus driving") == "bus"


def test_a_weight_left_by_an_unbalanced_bracket_is_not_a_concept():
    from stylus_ext.sdk.concepts import parse_prompt

    assert [c.text for c in parse_prompt("(castle:1.5, tree").concepts] == ["castle", "tree"]
    assert [c.text for c in parse_prompt("ratio 16:9 poster").concepts] == ["ratio 16:9 poster"]  # one tag


@pytest.mark.parametrize(("prompt", "expected"), [
    ("1girl, looking at viewer, rule of third composition, hand on hip",
     ["1girl", "looking at viewer", "rule of third composition", "hand on hip"]),
    ("a red panda wearing a silk kimono in an autumn forest, ink wash painting",
     ["red panda", "silk kimono", "autumn forest", "ink wash painting"]),
    ("a gothic cathedral at night", ["gothic cathedral", "night"]),
    ("two large dogs playing in the snow", ["dogs", "snow"]),
    ("a group of skiers in front of a ski lodge", ["skiers", "ski lodge"]),
    ("the Statue of Liberty next to the Arc de Triomphe", ["statue of liberty", "arc de triomphe"]),
    ("a black bear walking down a gravel road", ["black bear", "gravel road"]),
    ("a car parked on a grassy lawn", ["car", "grassy lawn"]),
    ("a bus sits outside a brick building", ["bus", "brick building"]),
    ("a dining table in a cozy living room", ["dining table", "cozy living room"]),
])
def test_multi_word_concepts_stay_whole(prompt, expected):
    """(A verb without an object may be an ``action`` concept too: the fitted score decides.)"""
    assert [c.text for c in parse_prompt(prompt).topical if c.kind != "action"] == expected


def test_tag_kinds_and_weights():
    by = {c.text: c for c in parse_prompt("(ink wash painting:1.2), red panda, (masterpiece:1.3), night sky").concepts}
    assert by["ink wash painting"].kind == "style" and by["ink wash painting"].weight == pytest.approx(1.2)
    assert by["red panda"].kind == "subject" and by["masterpiece"].kind == "quality"
    assert by["night sky"].weight == 1.0


def test_verb_with_particle_is_an_action():
    k = kinds("a bald man looking down at his phone")
    assert k.get("looking down") == "action" and "bald man" in k and "phone" in k


def test_fitted_phrase_score_ships_and_uses_word_classes_only():
    """The weights load, and every feature names word classes or function words, never a content word."""
    import math
    import re

    from stylus_ext.sdk import concept_score
    from stylus_ext.sdk.english import PREPOSITIONS

    assert concept_score.WEIGHTS and math.isfinite(concept_score.THRESHOLD)
    classes = {"num", "color", "size", "adj", "ing", "ed", "ly", "hyph", "adjend", "medium", "time", "place",
               "generic", "cap", "y", "plural", "noun", "none", "other", "det", "and", "or", "True", "False"}
    for name in concept_score.WEIGHTS:
        for value in re.findall(r"=([^|]+)", name.removeprefix("keep:")):
            assert value in classes or value in PREPOSITIONS or value.isdigit(), name


def test_without_fitted_weights_phrases_stay_whole(monkeypatch):
    from stylus_ext.sdk import concept_score, concept_spans

    monkeypatch.setattr(concept_score, "WEIGHTS", {})
    monkeypatch.setattr(concept_spans, "WEIGHTS", {})
    texts = [c.text for c in parse_prompt("a large white boat on the water, a dog sleeping").topical]
    assert texts == ["white boat", "water", "dog", "sleeping"]  # size word dropped; a final -ing verb kept


@pytest.mark.parametrize(("prompt", "expected"), [
    # a noun joined by "and" to one the run score keeps is kept too
    ("a warrior wombat holding a sword and shield in a fighting stance",
     ["warrior wombat", "sword", "shield", "fighting stance"]),
    ("a man and a woman walking on a beach", ["man", "woman", "beach"]),
    # "&" between words is "and"; inside a name it is part of the name
    ("a hat & a scarf on a chair", ["hat", "scarf", "chair"]),
    ("M&M candies in a glass jar", ["m&m candies", "glass jar"]),
    # a past participle before a colour ends the noun phrase ("painted yellow"), a name stays whole
    ("a photo of the Space Shuttle Endeavor painted yellow", ["space shuttle endeavor", "yellow"]),
    # a possessive stays inside its noun phrase
    ("a shiny astronaut's helmet on a table", ["shiny astronaut's helmet", "table"]),
])
def test_no_noun_of_the_prompt_is_lost(prompt, expected):
    assert [c.text for c in parse_prompt(prompt).topical if c.kind != "action"] == expected


def test_an_angle_tag_of_function_words_is_a_concept_and_bare_function_words_are_not():
    assert [c.text for c in parse_prompt("1girl, from below, smile").topical] == ["1girl", "from below", "smile"]
    assert [c.text for c in parse_prompt("1boy, from behind, castle").topical] == ["1boy", "from behind", "castle"]
    assert [c.text for c in parse_prompt("1girl, from side, rain").topical] == ["1girl", "from side", "rain"]
    assert [c.text for c in parse_prompt("cat, and, of the, the dog").topical] == ["cat", "dog"]


@pytest.mark.parametrize(("prompt", "styles"), [
    ("portrait of a samurai, (by greg rutkowski:0.8), art by wlop", ["greg rutkowski", "wlop"]),
    ("a painting by Claude Monet of a garden", ["claude monet"]),
    ("a house by the lake", []),
    ("by the sea, 1girl", []),
    ("a samurai, by greg rutkowski and alphonse mucha", ["greg rutkowski", "alphonse mucha"]),
    ("1girl, by wlop & artgerm", ["wlop", "artgerm"]),
    ("by the river and the lake", []),
    ("masterpiece, artist:wlop, 1girl", ["wlop"]),  # NoobAI / Illustrious artist tags
])
def test_an_artist_credit_is_a_style_with_or_without_capitals(prompt, styles):
    assert [c.text for c in parse_prompt(prompt).topical if c.kind == "style" and c.text != "painting"] == styles


def test_a_name_is_never_trimmed_off_a_phrase():
    """The fitted trim keeps a phrase's last words ("white boat" → "boat"); a name before them, a
    person's name of the encoder's vocabulary or a word it lacks, is the point of the phrase."""
    def topical(prompt: str) -> list[str]:
        return [c.text for c in parse_prompt(prompt).topical]

    assert "abigail williams" in topical("abigail williams fate grand order")  # was only "grand order"
    assert topical("kvelin tidefall character 1731") == ["kvelin tidefall character 1731"]  # was "character 1731"
    assert any(t.startswith("harley quinn") for t in topical("harley quinn batman the animated series character"))
    assert topical("a white boat on a lake") == ["boat", "lake"]  # no name: the trim as fitted
    # more content words than one concept may hold (4): whole when it is a name phrase, not "outfits"
    assert topical("kvelin tidefall harbor moon 4 outfits") == ["kvelin tidefall harbor moon 4 outfits"]
    assert topical("kvelin princess connect re dive") == ["kvelin princess connect re dive"]  # was "dive"


def test_a_pictures_look_before_its_frame_is_a_style_concept():
    """"a photo of X" frames X; the words before the frame say how the picture looks — a style, kept
    ("a watercolor portrait of a cat", "a black and white photo of", a coined "pastelka"), unless
    they only say its size, framing or quality ("a close-up portrait", "a high resolution photo") or
    what kind of picture it is ("a family photo", "a self portrait")."""
    def concepts(prompt):
        return [(c.text, c.kind) for c in parse_prompt(prompt).topical]

    assert concepts("a watercolor portrait of a cat") == [("watercolor", "style"), ("cat", "subject")]
    assert concepts("A black and white photo of a ship")[0] == ("black and white", "style")
    assert ("pastelka", "style") in concepts("a pastelka portrait of an old fisherman")
    for framed in ("a close-up portrait of a fox", "a photo of a fox", "a high resolution photo of a fox",
                   "a family photo of a fox", "a self portrait of a fox"):
        assert [t for t, _ in concepts(framed)] == ["fox"], framed
    # the same frames as tags of a tag list: "portrait of emma watson" is a picture of her
    assert concepts("portrait of kvelin tidefall, photorealistic")[0] == ("kvelin tidefall", "subject")
    assert concepts("watercolor portrait of a fox, forest")[:2] == [("watercolor", "style"), ("fox", "subject")]
    assert concepts("rule of thirds composition, 1girl")[0][0] == "rule of thirds composition"


def test_a_style_leading_a_noun_phrase_is_its_own_concept():
    """"watercolor fox", "pixel art corgi", "a cyberpunk city": the style of the whole picture and what
    it draws, so a style adapter can fit the first and a subject adapter the second. A material or a
    kind of thing stays whole ("a charcoal grill", "a gothic cathedral", "cinematic lighting"), and so
    does a style named with its own medium or look ("anime style", "pixel art", "anime screencap")."""
    def concepts(prompt):
        return [(c.text, c.kind) for c in parse_prompt(prompt).topical]

    assert concepts("watercolor fox in a forest") == [("watercolor", "style"), ("fox", "subject"),
                                                      ("forest", "setting")]
    assert concepts("pixel art corgi") == [("pixel art", "style"), ("corgi", "subject")]
    assert concepts("a cyberpunk city at night")[:2] == [("cyberpunk", "style"), ("city", "subject")]
    for whole in ("a charcoal grill", "a gothic cathedral", "cinematic lighting", "anime style", "pixel art",
                  "1girl, anime screencap"):
        assert [t for t, _ in concepts(whole)][-1] == whole.split(", ")[-1].removeprefix("a ").removesuffix(
            " style"), whole


def test_a_compound_name_keeps_the_colour_that_names_it():
    """"a red panda" is no panda that is red: the span score trims colours ("a white cat" → "cat"),
    never off a thing's name (``COMPOUND_NOUNS``), whatever sentence it is in."""
    def texts(prompt):
        return [c.text for c in parse_prompt(prompt).topical]

    assert texts("a red panda in an autumn forest")[0] == "red panda"
    assert texts("a big red panda")[0] == "red panda"
    assert texts("a blue whale in the ocean")[0] == "blue whale"
    assert texts("a white cat on a sofa")[0] == "cat"


def test_a_negated_concept_pulls_no_adapter():
    """"no hat", "not pixel art", "no humans" say what the image must not show: kind "negated",
    outside ``topical``; a thing named with a negation ("a no parking sign") is still a thing."""
    parsed = parse_prompt("1girl, no hat, long hair, not pixel art, scenery, no humans")
    negated = [c.text for c in parsed.concepts if c.kind == "negated"]
    assert negated == ["no hat", "not pixel art", "no humans"]
    assert not {"no hat", "not pixel art", "no humans"} & {c.text for c in parsed.topical}
    assert "parking sign" in [c.text for c in parse_prompt("a no parking sign on a pole").topical]


def test_quoted_text_is_one_concept_and_written_text_pulls_no_adapter():
    """Words the image writes ("the word “PEACE”", "“Fly an airplane” written on the wall") are one
    concept of kind "text", outside ``topical``: they ask for lettering, not for an airplane. A quoted
    name stays whole, and a quote left open or around one word for emphasis leaves no quote mark."""
    parsed = parse_prompt('Flowers and the word "PEACE" are painted on the wall. '
                          'The words "Fly an airplane" are written on a brick wall.')
    assert [(c.text, c.kind) for c in parsed.concepts if c.kind == "text"] == [
        ("peace", "text"), ("fly an airplane", "text")]
    topical = [c.text for c in parsed.topical]
    assert "airplane" not in topical and "word" not in topical and "brick wall" in topical
    assert "rumbury wanderers" in [c.text for c in parse_prompt('a club called "The Rumbury Wanderers"').topical]
    assert [c.text for c in parse_prompt('a "vintage" car, long_hair').topical] == ["vintage car", "long hair"]


def test_a_verb_before_its_particle_ends_the_noun_phrase_whatever_its_agreement():
    """Captions are sloppy about agreement ("a boy on a skateboard go over a ramp"): a verb followed
    by its particle is a verb, so the skateboard stays a skateboard."""
    texts = [c.text for c in parse_prompt("a boy on a skateboard go over a ramp").topical]
    assert "skateboard" in texts and "skateboard go" not in texts
    assert "dog park" in [c.text for c in parse_prompt("a dog park in the city").topical]


def test_a_technique_in_ing_ends_a_tag_whole():
    """ "ray tracing" and "photon mapping" name a rendering technique: one concept each in a tag list,
    not "ray" and "photon"; in a sentence the same word is still a verb ("a child tracing letters")."""
    topical = [c.text for c in parse_prompt("1girl, ray tracing, photon mapping, subsurface scattering").topical]
    assert topical == ["1girl", "ray tracing", "photon mapping", "subsurface scattering"]
    assert [c.text for c in parse_prompt("a child tracing letters on a page").topical] == ["child", "letters", "page"]


def test_a_photographic_look_is_a_style():
    """Film stocks and lens looks say how the picture looks, as a medium does: style concepts."""
    k = kinds("1girl, bokeh, depth of field, shot on 35mm film, kodachrome, tilt-shift")
    assert [k[t] for t in ("bokeh", "depth of field", "35mm film", "kodachrome", "tilt-shift")] == ["style"] * 5
    assert k["1girl"] == "subject"
    k = kinds("portrait of an old man, shot with a Leica camera at dusk")
    assert k["leica camera"] == "style" and "dusk" in k
    assert "style" not in kinds("a photo shot on a beach").values()  # no camera: no look
