"""When a prompt names a character: file names, coined triggers, aliases — and when it does not."""

from __future__ import annotations

import pytest

from stylus_ext.sdk.characters import character_evidence, prompt_words


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
