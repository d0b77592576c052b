"""When a prompt names a character: file names, coined triggers, aliases — and when it does not."""

from __future__ import annotations

import pytest

from stylus_ext.sdk.characters import character_evidence, distinctive, named_outright, prompt_words, title_words


def named(prompt: str, title: str, name: str, triggers=(), **kw) -> str:
    return character_evidence(title, name, triggers, prompt_words(prompt), **kw)[0]


@pytest.mark.parametrize(("prompt", "title", "name", "triggers"), [
    ("1girl, ai hayasaka, smile", "ai-hayasaka-ponyxl-lora-nochekaiser", "ai-hayasaka-ponyxl-lora-nochekaiser", ()),
    ("score_9, 1girl, aachloe, outdoors", "chloe_von_einzbern_ponyxl_v1", "chloe_von_einzbern_ponyxl_v1",
     ("aachloe",)),  # a coined trigger, first in the list, names her
    ("1girl, latifafleuranza, smile", "AmagiBrilliantPark_LatifaFleuranzaXL", "AmagiBrilliantPark_LatifaFleuranzaXL",
     ("LatifaFleuranza",)),  # camelCase trigger typed as one lower-case word
    ("1girl, Latifa Fleuranza", "AmagiBrilliantPark_LatifaFleuranzaXL", "AmagiBrilliantPark_LatifaFleuranzaXL", ()),
    ("thorn princess with daggers", "Yor_Forger", "Yor_Forger", ("Yor Forger", "yor briar", "Thorn Princess")),
    ("hatsune miku singing", "Hatsune Miku | Vocaloid", "hatsune_miku_v3", ("twintails", "aqua hair")),
])
def test_the_prompt_names_the_character(prompt, title, name, triggers):
    assert named(prompt, title, name, triggers)


@pytest.mark.parametrize(("prompt", "title", "name", "triggers"), [
    ("a shadow on the wall", "shadow-alpha-ponyxl-lora-nochekaiser", "shadow-alpha-ponyxl-lora-nochekaiser", ()),
    ("a girl with twintails and aqua hair", "Hatsune Miku | Vocaloid", "hatsune_miku_v3", ("twintails", "aqua hair")),
    ("1girl, holding sword, smile", "Yor_Forger", "Yor_Forger", ("Yor Forger", "holding sword")),
    ("a pony in a field", "Emilia pony xl", "emilia_pony_xl_v2", ()),
])
def test_looks_and_lone_common_words_name_nobody(prompt, title, name, triggers):
    assert not named(prompt, title, name, triggers)


def test_lenient_accepts_a_single_name_word_for_other_composers_picks():
    assert not named("miku at a castle", "Hatsune Miku (Vocaloid)", "hatsune_miku_vocaloid")
    assert named("miku at a castle", "Hatsune Miku (Vocaloid)", "hatsune_miku_vocaloid", lenient=True)


class _Counts:
    """A request's word counts (what the pipeline fills from the catalogue's lexical index)."""

    def __init__(self, counts: dict[str, int], size: int) -> None:
        self.adapters_with = lambda word: counts.get(word, 0)
        self.catalog_size = size


def test_a_coined_trigger_in_any_place_names_the_character():
    """An outfit trigger after the first ("libhllw") names her once the catalogue says the word is coined."""
    args = ("1girl, libhllw, pumpkin, night", "Libeccio (Kantai Collection) Outfits", "libeccio_kc",
            ("libdflt", "libikini", "libhllw"))
    assert not named(*args)
    coined = distinctive(_Counts({"libhllw": 1, "libdflt": 1}, 11_800))
    assert named(*args, coined=coined) == "trigger 'libhllw'"
    # a later trigger that only describes looks still names nobody
    assert not named("1girl, blue skirt", "Aqua", "aqua_konosuba", ("aqua konosuba", "blue skirt"), coined=coined)


def test_coined_means_rare_here_and_no_english_word_or_tag():
    coined = distinctive(_Counts({"hq1992": 1, "fuxuan": 4, "sks": 17, "chibi": 215, "armor": 2, "tensura": 15,
                                  "1girl": 1}, 11_800))
    assert coined("hq1992") and coined("fuxuan")
    assert not coined("sks") and not coined("chibi") and not coined("tensura")  # more than 0.1% of 11,800
    assert not coined("armor")  # an English word, however rare here
    assert not coined("1girl")  # a common prompt tag
    assert not coined("absent")  # held by no adapter: nothing to name
    # a small folder: at least 3 adapters may share a coined word
    assert distinctive(_Counts({"sks": 3}, 50))("sks") and not distinctive(_Counts({"sks": 4}, 50))("sks")
    assert distinctive(object()) is None  # a request that cannot count words
    assert not distinctive(_Counts({"hq1992": None}, 50))("hq1992")  # a counter that cannot say


def test_a_franchise_shared_by_several_characters_names_none_of_them():
    from stylus_ext.sdk.characters import series_matches

    def matched(prompt: str, title: str, name: str, triggers=()):
        return (character_evidence(title, name, triggers, prompt_words(prompt))[1], title, name, triggers)

    cast = [("Korrin Starfall Saga | Character LoRA", "korrin_v1", ()),
            ("StarfallSaga_Thessaly", "thessaly_ss", ()),
            ("Ysolde Starfall Saga", "ysolde", ()),
            ("Lirael Vance | Starfall Saga", "lirael_vance", ("lirael vance",)),
            ("Miravel (Starfall Saga)", "miravel_v2", ("miravel (starfall saga)",))]
    prompt = "1girl, starfall saga, standing in a field"
    named_by_series = [matched(prompt, *c) for c in cast]
    assert sum(bool(m[0]) for m in named_by_series) >= 3  # the name rule alone says the prompt names them
    assert series_matches(named_by_series) == {frozenset({"starfall", "saga"})}
    # one character's name is nobody's qualifier, however many adapters of it
    mikus = [("Hatsune Miku (Magical Mirai)", "miku_mm", ()), ("Hatsune Miku", "hatsune_miku_nochekaiser", ()),
             ("Hatsune Miku Zorvath", "miku_zorvath", ()), ("Hatsune Miku Quellin", "miku_quellin", ()),
             ("Hatsune Miku Brask", "miku_brask", ())]
    assert series_matches([matched("hatsune miku singing", *c) for c in mikus]) == set()
    # two characters sharing the words are not yet a series
    assert series_matches(named_by_series[:2] + named_by_series[3:]) == set()


def test_a_name_with_its_series_names_the_character_as_its_booru_tag_does():
    from stylus_ext.sdk.characters import named_with_series

    words = prompt_words("sirius, azur lane, 1girl")
    assert named_with_series("sirius", ["sirius_(azur_lane)", "maid"], words)
    assert named_with_series("sirius", [r"sirius \(azur lane\)"], words)
    assert not named_with_series("sirius", ["sirius_(azur_lane)"], prompt_words("sirius, a bright star"))
    assert not named_with_series("azur lane", ["sirius_(azur_lane)"], words)  # the series is not her name
    assert not named_with_series("sirius", ["sirius", "azur lane"], words)  # no qualifier, no booru tag


def test_a_series_named_after_its_hero_still_names_the_hero():
    from stylus_ext.sdk.characters import series_matches

    def entry(prompt: str, title: str, name: str, triggers=()):
        return (character_evidence(title, name, triggers, prompt_words(prompt))[1], title, name, triggers)

    cast = [("Kestrel Dawnrider", "kestrel_v1", ("kestrel",)),
            ("Kestrel - Zoravin", "zoravin_v3", ()),
            ("Kestrel Sablethorn", "sablethorn", ()),
            ("Arlovance | Kestrel", "arlovance", ("arlovance",)),
            ("Miravel (Kestrel)", "miravel_k", ("miravel",))]
    prompt = "kestrel, 1boy, running"
    assert series_matches([entry(prompt, *c) for c in cast]) == set()  # his one naming trigger is "kestrel"
    # a card that also has a fuller naming trigger ("kestrel" beside "dawnrider") leaves the word the series
    fuller = [entry(prompt, "Kestrel Dawnrider", "kestrel_v1", ("kestrel", "dawnrider")),
              *(entry(prompt, *c) for c in cast[1:])]
    assert fuller[0][0] == {"kestrel"} and series_matches(fuller) == {frozenset({"kestrel"})}


def test_a_full_name_with_a_given_name_is_named_outright():
    """Two or more name words, one a given name of the encoder's vocabulary, are a person's full name
    even when every word is English ("walter grey"); one given name alone, or English words without
    one, are not ("a portrait of natalie" names no celebrity; "black cat" is a cat)."""
    assert named_outright("walter grey", {"walter", "grey"})
    assert named_outright("abigail williams", {"abigail", "william"})  # words as matched: singular
    assert not named_outright("walter", {"walter"})
    assert not named_outright("black cat", {"black", "cat"})
    assert not named_outright("walter grey coat", {"walter", "grey"})  # more than the name


def test_a_title_ends_its_name_at_full_width_brackets_and_a_spaced_slash():
    """"Kvelin Tidefall（Harbor Saga）" and "Kvelin Tidefall / Harbor Saga" name Kvelin Tidefall, not
    the saga ("Fate/Grand Order" keeps its slash); a prompt typing the whole name gets the whole name
    as evidence, not the one-word trigger ("kvelin") that is part of it, so the name asks for her."""
    for title in ("Kvelin Tidefall（Harbor Saga） (v3)", "Kvelin Tidefall / Harbor Saga (v1.0)"):
        assert title_words(title) == {"kvelin", "tidefall"}
    assert title_words("Fate/Grand Order Abigail") == {"fate", "grand", "order", "abigail"}
    title = "Kvelin Tidefall（Harbor Saga） (v3)"
    words = prompt_words("kvelin tidefall")
    evidence, matched = character_evidence(title, "kvelin_v3", ("Kvelin",), words)
    assert matched == {"kvelin", "tidefall"} and evidence.startswith("name")
    assert named_outright("kvelin tidefall", matched)
    assert character_evidence(title, "kvelin_v3", ("Kvelin",), prompt_words("kvelin, 1girl"))[1] == {"kvelin"}


def test_a_bilingual_or_camel_case_title_is_named_by_its_latin_name_typed_whole():
    """Titles write a name twice ("墨心 MoXin") or in camelCase ("MimiChan", "RuGu"); a prompt types
    it lower-cased and in one piece. Either names the character outright; a common English word as
    the Latin half ("花 Flower") is still no name a prompt types outright, nor is half a camel word."""
    for title, typed in (("墨心 MoXin (墨心 MoXin 1.0)", "moxin"), ("MimiChan V2.1 (v1.0)", "mimichan"),
                         ("如故 RuGu (复古海报poster)", "rugu"), ("xhsGirl 小红书网红A (v1.0)", "xhsgirl")):
        evidence, matched = character_evidence(title, "", (), prompt_words(typed))
        assert evidence.startswith("name") and matched == {typed}, title
        assert named_outright(typed, matched), title
    assert not character_evidence("MimiChan V2.1 (v1.0)", "", (), prompt_words("a portrait of mimi"))[1]
    assert not named_outright("flower", character_evidence("花 Flower (v1)", "", (), prompt_words("flower"))[1])


def test_tagged_as_reads_a_characters_name_in_a_lora_tags_name():
    """A tag draws the character when its name holds a name word English lacks or the whole name run
    together; plain words ("white_dress" for "Walter White", "add_detail") name nobody."""
    from stylus_ext.sdk.characters import tagged_as

    miku = "Hatsune Miku (Magical Mirai 2015) (1.0)"
    assert tagged_as(miku, "mm2015", ["add_detail", "my_miku_v3"]) == "my_miku_v3"
    assert tagged_as(miku, "mm2015", ["hatsunemiku1-000006"]) == "hatsunemiku1-000006"
    assert tagged_as(miku, "mm2015", ["add_detail", "black_dress"]) == ""
    assert tagged_as("Walter White (Bryan Cranston)", "walterwhite", ["white_dress"]) == ""


def test_a_look_is_no_name_though_a_characters_card_is_titled_with_it():
    """A card tagged "character" and titled "Colored serafuku", trigger "serafuku": the tag
    "serafuku" describes an outfit every second prompt types; it names nobody outright. The title
    typed whole ("colored serafuku") still asks for the card."""
    words = prompt_words("1girl, serafuku, sailor collar, pleated skirt")
    evidence, matched = character_evidence("Colored serafuku (v.1.0)", "serafuku", ("serafuku",), words)
    assert not evidence and not named_outright("serafuku", {"serafuku"})
    evidence, matched = character_evidence("Colored serafuku (v.1.0)", "serafuku", ("serafuku",),
                                           prompt_words("colored serafuku, 1girl"))
    assert named_outright("colored serafuku", matched)
