"""The offline refiner's person model: boosted trees walked in plain Python, card-structure features,
and the calls they drive (a pose is not a character; a character named like a utility still is)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from stylus_ext import sdk


@pytest.fixture(scope="module")
def refiner(plugins):
    return plugins.create("refiner", "offline")


@pytest.fixture(scope="module")
def helper(refiner):
    return sys.modules["stylus_plugin_helper_offline_refiner_person"]


def card(**fields) -> sdk.AdapterCard:
    return sdk.AdapterCard(**{"source": "test", "name": "x", **fields})


def features(refiner, c: sdk.AdapterCard) -> dict[str, float]:
    return sys.modules[type(refiner).__module__].person_features(c)


TREES = {"kind": "trees", "features": ["a", "b"], "baseline": -0.5, "trees": [
    [[0, 0.5, 1, 2, 0.0], [-1, 0.0, 0, 0, -1.0], [1, 0.25, 3, 4, 0.0], [-1, 0.0, 0, 0, 0.5], [-1, 0.0, 0, 0, 2.0]],
    [[-1, 0.0, 0, 0, 0.25]],
]}


@pytest.mark.parametrize(("feats", "z"), [
    ({"a": 0.2, "b": 1.0}, -0.5 - 1.0 + 0.25),  # a <= 0.5: left leaf
    ({"a": 0.5}, -0.5 - 1.0 + 0.25),  # at the threshold a row goes left
    ({"a": 0.9, "b": 0.1}, -0.5 + 0.5 + 0.25),
    ({"a": 0.9, "b": 0.3}, -0.5 + 2.0 + 0.25),
    ({"a": 0.9}, -0.5 + 0.5 + 0.25),  # a missing feature counts as 0
])
def test_trees_are_walked_like_scikit_learn(helper, feats, z) -> None:
    assert helper.probability(TREES, feats) == pytest.approx(1 / (1 + math.exp(-z)))


def test_logistic_weights_still_work(helper) -> None:
    assert helper.probability({"bias": 1.0, "a": 2.0}, {"a": 0.5}) == pytest.approx(1 / (1 + math.exp(-2.0)))


def test_a_trees_model_without_nodes_falls_back(helper, tmp_path: Path) -> None:
    model = {"person": {"kind": "trees", "features": ["a"]}, "celebrity": {"bias": 0.0}, "threshold": {"person": 0.5}}
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model), encoding="utf-8")
    assert helper.load_model(path) is helper.DEFAULT_MODEL
    model["person"]["trees"] = TREES["trees"]
    model["person"]["features"] = TREES["features"]
    model["person"]["baseline"] = 0.0
    path.write_text(json.dumps(model), encoding="utf-8")
    assert helper.load_model(path)["person"]["kind"] == "trees"


def test_a_trigger_made_of_the_title_names_is_evidence_but_common_words_are_not(refiner) -> None:
    named = features(refiner, card(name="mira_kessel", title="Mira Kessel (Skyward Chronicle)",
                                   trigger_words=("mirakessel",)))
    panda = features(refiner, card(name="fluffy_red_panda", title="Fluffy Red Panda", trigger_words=("redpanda",)))
    assert named["trig_joined_title"] == 1.0 and named["trig_coined"] == 0.0
    assert panda["trig_joined_title"] == 0.0 and panda["trig_coined"] == 1.0


def test_example_prompts_that_repeat_one_look_are_counted(refiner) -> None:
    same = ("masterpiece, 1girl, mira, silver hair, green eyes, pilot jacket, {}")
    look = features(refiner, card(title="Mira", trigger_words=("mira",),
                                  example_prompts=tuple(same.format(s) for s in ("deck", "sunset", "cockpit"))))
    varied = features(refiner, card(title="Ink Dreams", trigger_words=("inkdreams",), example_prompts=(
        "inkdreams, a temple in fog", "inkdreams, a koi pond, lotus", "inkdreams, an old fisherman, rain")))
    assert look["prompts_recurring"] >= 3 / 8 and look["prompts_recurring_body"] >= 2 / 4
    assert varied["prompts_recurring"] == 0.0 and varied["prompts_recurring_body"] == 0.0


def test_an_untagged_pose_with_one_girl_in_every_prompt_is_a_pose(refiner) -> None:
    c = card(name="kneeling_pose_v1", title="Kneeling Pose", trigger_words=("kneeling",),
             description="A pose LoRA: kneeling on the floor, seen from the front, hands on thighs.",
             example_prompts=("1girl, kneeling, red hair, classroom", "1girl, kneeling, blonde hair, beach",
                              "1girl, kneeling, black hair, park, from above"))
    assert refiner.refine(c).category == "pose"


def test_a_character_card_named_like_a_utility_is_a_character(refiner) -> None:
    c = card(name="turbo_skyward", title="Turbo | Skyward Chronicle", trigger_words=("turbo skyward",),
             description="Turbo from Skyward Chronicle. She wears her pilot jacket and goggles.",
             example_prompts=(
                 "1girl, solo, turbo skyward, silver hair, green eyes, pilot jacket, airship deck",
                 "1girl, turbo skyward, silver hair, green eyes, smile, sitting on a crate, sunset",
                 "turbo skyward, 1girl, solo, silver hair, green eyes, goggles on head, cockpit"))
    assert refiner.refine(c).category == "character"
    assert refiner.refine(card(title="Turbo 4 step")).category == "utility"  # no text: the keyword decides


@pytest.mark.parametrize(("tags", "category"), [
    (("style", "game character", "video game"), "style"),  # Civitai's own category tag decides
    (("poses", "waifu"), "pose"),
    (("clothing", "actress"), "clothing"),
    (("game character", "video game"), "character"),  # without one, the free tag still counts
    (("character", "style"), "character"),
])
def test_civitai_category_tag_outranks_free_person_tags(refiner, tags, category) -> None:
    assert refiner.refine(card(name="dusk_armor", title="Dusk Armor Set", tags=tags)).category == category


def test_the_word_model_reads_each_general_word_once(helper) -> None:
    c = card(name="mira_pilotOutfit", title="Mira (Skyward)", trigger_words=("mira",),
             description="<p>She wears her pilot outfit. Her outfit is blue. https://example.com/x</p>",
             example_prompts=("1girl, mira, on a deck",), training_tags=("silver hair",))
    words = helper.card_words(c)
    assert {"mira", "pilot", "outfit", "skyward", "she", "her", "p:girl", "p:mira", "p:deck", "p:silver"} <= words
    assert not {"girl", "deck", "p:pilot"} & words  # the card's words and its prompts' are told apart
    assert not {"is", "on", "a", "https", "example", "com", "p"} & words  # short words, links, markup
    model = {"bias": -1.0, "weights": {"outfit": 2.0, "her": 0.5, "style": -3.0}}
    assert helper.word_probability(model, words) == pytest.approx(1 / (1 + math.exp(-1.5)))  # outfit once
    assert helper.word_probability({}, words) == pytest.approx(0.5)


def test_the_shipped_word_model_knows_how_people_write_about_characters(helper) -> None:
    from stylus_ext.sdk import word_classes

    shipped = helper.load_model()
    words = shipped["words_person"]["weights"]
    table = word_classes._table()
    # general English only (the text model's vocabulary): it cannot memorise the dump's names
    bare = [w.removeprefix("p:") for w in words]  # p: marks a word of the example prompts
    assert bare and all(w in table and table[w][0] < 20000 for w in bare)
    about_her = card(title="Mira", description="She is a character from the game. Her outfit and her hair "
                                               "come out right; the character sheet helps.")
    about_ink = card(title="Ink Dreams", description="A style of ink painting for scenery and landscapes, "
                                                     "with a drawing texture.")
    model = shipped["words_person"]
    assert (helper.word_probability(model, helper.card_words(about_her))
            > 0.5 > helper.word_probability(model, helper.card_words(about_ink)))


def test_a_word_model_without_weights_falls_back(helper, tmp_path: Path) -> None:
    model = {"person": {"bias": 0.0}, "celebrity": {"bias": 0.0}, "threshold": {"person": 0.5},
             "words_person": {"bias": 0.0, "weights": ["her", "outfit"]}}
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model), encoding="utf-8")
    assert helper.load_model(path) is helper.DEFAULT_MODEL
    model["words_person"]["weights"] = {"her": 1.0}
    path.write_text(json.dumps(model), encoding="utf-8")
    assert helper.load_model(path)["words_person"]["weights"] == {"her": 1.0}


@pytest.mark.parametrize(("title", "tags", "category"), [
    ("Glyphsmith Flat Icons", ("icon", "tool", "design tool", "flat icon"), "concept"),  # a prompt-driven "tool"
    ("Glyphsmith Detail Tweaker", ("detail", "tool"), "utility"),  # a tool that tweaks the image
    ("Grain Offset", ("tool", "noise offset"), "utility"),
    ("Stormlight | Skyward Chronicle", ("character", "game character", "lightning"), "character"),
    ("SDXL Lightning 8 steps", (), "utility"),
])
def test_a_civitai_tool_is_a_utility_only_with_a_utility_keyword(refiner, title, tags, category) -> None:
    """Civitai's "tool" category holds detail sliders and design generators alike, and a "lightning"
    tag is weather as often as a speed LoRA: only utility words make a utility, which only a pin picks."""
    assert refiner.refine(card(title=title, tags=tags)).category == category


def test_the_composer_reads_utility_words_whole(plugins) -> None:
    """"Twin Turbo", "Lightning (Claire Farron)" and "Hyperdimension Neptunia" name characters; only a
    whole utility word or a speed phrase makes an adapter a utility to the offline composer."""
    plugins.create("composer", "offline")
    words = sys.modules["stylus_plugin_helper_offline_composer_words"]
    for title in ("Twin Turbo | Racing Saga", "Stormlight (Lightning Knight)", "Heart of Hyperdimension",
                  "hairdetailer"):
        assert not words.is_utility(title, "x", "character")
    for title in ("SDXL Lightning 8-step", "Hyper-SD 4 steps", "Detail Tweaker", "LCM LoRA", "Sky Slider",
                  "Add Details", "add_detail"):
        assert words.is_utility(title, "x", "style")


@pytest.mark.parametrize("title", ["Realism", "Mira Kessel", "Skyward Glow"])
def test_a_format_word_in_the_title_is_no_name(refiner, title) -> None:
    """ "LoRA" is one word, not the name-like "lo" + "ra": a title "X LoRA" is read as "X" (before, any
    "Realism LoRA" looked like a person's name and was filed as a character)."""
    module = sys.modules[type(refiner).__module__]
    for suffix in (" LoRA", " LyCORIS", " LoCon"):
        assert features(refiner, card(title=title + suffix)) == features(refiner, card(title=title))
    assert module.categorize(card(name="realism_lora", title="Realism LoRA")) not in ("character", "celebrity")
