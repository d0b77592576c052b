"""A small hand-written catalog of realistic adapter cards and prompts with known intended adapters.

The cards mimic real Civitai LoRA cards: short or unhelpful titles, tag lists, trigger words, author
prose, and example-image prompts in community tag style. The prompts come in the two kinds the
retriever must handle: tag-style community prompts and natural captions.
"""

from __future__ import annotations

from pathlib import Path

from stylus_ext import sdk
from stylus_ext.catalog.db import Catalog


def card(name: str, title: str, description: str, *, tags: tuple[str, ...] = (), triggers: tuple[str, ...] = (),
         examples: tuple[str, ...] = (), base: str = "SD1", model_id: int | None = None,
         path: str | None = None, name_problem: str = "") -> sdk.AdapterCard:
    return sdk.AdapterCard(
        source="civitai" if path is None else "local", name=name, title=title, description=description,
        tags=tags, trigger_words=triggers, example_prompts=examples, base_model=base, civitai_model_id=model_id,
        civitai_version_id=None if model_id is None else model_id * 10, path=path, name_problem=name_problem)


CARDS: dict[str, sdk.AdapterCard] = {
    "corgi": card("corgi_v2", "Corgi", "Welsh corgi dogs with short legs and fluffy butts. Works for pets.",
                  tags=("animal", "dog", "pet"), triggers=("corgi",),
                  examples=("corgi, sitting on grass, park, sunny day",), model_id=101),
    "cat": card("fluffcat", "Fluffy Cat", "Adorable fluffy kittens and house cats with big eyes.",
                tags=("animal", "cat", "kitten"), triggers=("fluffcat",),
                examples=("fluffcat, kitten, on a sofa, window light",), model_id=102),
    "ghibli": card("ghibli_style_offset", "Studio Ghibli Style",
                   "Soft painterly anime backgrounds and characters in the style of Hayao Miyazaki's films.",
                   tags=("style", "anime", "ghibli"), triggers=("ghibli style",),
                   examples=("ghibli style, countryside, clouds, girl with straw hat",), model_id=103),
    "snow": card("winter_landscape_xl", "Winter Wonderland",
                 "Snowy landscapes, frozen lakes and pine forests covered with snow.",
                 tags=("background", "landscape", "winter"), triggers=("winterland",),
                 examples=("winterland, snowy forest, frozen lake, dusk",), model_id=104),
    # Tag-prompt targets: the card prose is unhelpful; the example prompts carry the signal.
    "kasuga": card("ksg_ayumu-10", "Kasuga Ayumu | Azumanga",
                   "My first LoRA! Trained on 40 screenshots. Please leave a review :)",
                   tags=("character", "anime"), triggers=("ksgayumu",),
                   examples=("masterpiece, best quality, 1girl, kasuga_ayumu, brown hair, short hair, "
                             "school uniform, sailor collar, classroom",), model_id=105),
    "hanfu": card("tang_dynasty_v3", "唐风 Tang v3",
                  "Version 3. Better hands. Use weight 0.7. Thanks to my supporters!",
                  tags=("clothing",), triggers=("tangfu",),
                  examples=("best quality, 1girl, hanfu, tang style, hair ornament, chinese clothes, "
                            "long sleeves, flower hairpin",), model_id=106),
    "mecha": card("gundam_rx78", "RX-78-2 | Mobile Suit", "Classic white, blue and red giant robot from 1979.",
                  tags=("mecha", "robot", "vehicle"), triggers=("rx78",),
                  examples=("rx78, mecha, robot, no humans, beam saber, space colony",), model_id=107),
    "cyberpunk": card("cbpnk_city", "Neon Nights", "Rain-soaked futuristic city streets full of neon signs.",
                      tags=("background", "city", "cyberpunk"), triggers=("neonnights",),
                      examples=("neonnights, cyberpunk, city, night, neon lights, rain, reflections",),
                      model_id=108),
    "watercolor": card("wc_painting", "Watercolor",
                       "Loose watercolor paintings with paper texture and bleeding pigments.",
                       tags=("style", "painting"), triggers=("watercolor \\(medium\\)",),
                       examples=("watercolor (medium), flowers, still life, white background",), model_id=109),
    "armor": card("knight_armor", "Fantasy Armor", "Ornate medieval plate armor for knights and paladins.",
                  tags=("clothing", "armor", "fantasy"), triggers=("plate armor",),
                  examples=("1boy, knight, plate armor, cape, holding sword, castle",), model_id=110),
    "bike": card("sportbike", "Sport Motorcycle", "Sleek racing motorbikes, glossy paint, dynamic angles.",
                 tags=("vehicle", "motorcycle"), triggers=("sportbike",),
                 examples=("sportbike, motorcycle, road, motion blur",), model_id=111, base="SDXL"),
    "pony_outfit": card("maid_outfit_pony", "Maid Outfit (Pony)", "Classic black and white maid dress with apron.",
                        tags=("clothing", "maid"), triggers=("maid outfit",),
                        examples=("1girl, maid, apron, frills, maid headdress",),
                        model_id=112, base="Pony"),
    "xl_maid": card("maid_outfit_xl", "Maid Outfit XL", "Classic black and white maid dress with apron.",
                    tags=("clothing", "maid"), triggers=("maid outfit",),
                    examples=("1girl, maid, apron, frills, maid headdress",), model_id=113, base="SDXL"),
    "installed_owl": card("snowy_owl", "Snowy Owl", "White arctic owls with yellow eyes perched on branches.",
                          tags=("animal", "bird", "owl"), examples=("snowy owl, branch, winter",),
                          path="/loras/snowy_owl.safetensors"),
    "bad_name": card("owl:v2", "Great Horned Owl", "Owls with ear tufts, perched at night.",
                     tags=("animal", "bird", "owl"), path="/loras/owl:v2.safetensors",
                     name_problem="contains ':'"),
    "detail": card("add_detail", "Detail Tweaker", "Adds or removes fine detail. Slider: use -1 to 2.",
                   tags=("utility", "slider", "detail"), model_id=114),
}

# A crowd of look-alike character cards (the usual case on Civitai): the same prose and the same
# generic tags; only a rare name tag in the example prompts tells them apart.
for _i, (_key, _tag, _title) in enumerate([
    ("kurisu", "makise_kurisu", "Makise Kurisu"), ("rem", "rem_(re:zero)", "Rem"),
    ("asuna", "yuuki_asuna", "Asuna"), ("megumin", "megumin", "Megumin"),
    ("nezuko", "kamado_nezuko", "Nezuko"), ("ai", "hoshino_ai", "Hoshino Ai"),
]):
    CARDS[_key] = card(f"{_key}_char_v1", f"{_title} - character LoRA",
                       "Anime girl character LoRA. Good with most anime checkpoints. Weight 0.6-0.8.",
                       tags=("character", "anime", "girl"),
                       examples=(f"masterpiece, best quality, 1girl, {_tag}, long hair, school uniform, smile, "
                                 "looking at viewer, upper body",), model_id=200 + _i)

# Long author prose (common on Civitai): the text the encoder sees is cut at 256 tokens, so the
# tags that matter, in the example prompts, only reach the lexical side.
_RAMBLE = ("Hello everyone! This is my new model, trained for a long time on my own dataset with many "
           "settings. Thanks to all supporters on Patreon and Ko-fi, you make this possible. Changelog: v1 "
           "first release; v2 retrained with more epochs; v3 fixed the colours; v4 better faces; v5 smaller "
           "file. Recommended settings: DPM++ 2M Karras, 25 steps, CFG 7, hires fix 1.5x with a denoise of "
           "0.4. Please post your images in the gallery and leave a review, it helps a lot! ") * 4
CARDS["lineart"] = card("lnrt_v5", "my lora v5", _RAMBLE, tags=("style",), triggers=("lnrt",),
                        examples=("lnrt, monochrome, greyscale, lineart, sketch, flowers",), model_id=301)
CARDS["pixel"] = card("pxl_chibi", "PX v2", _RAMBLE, tags=("style",), triggers=("pxlchibi",),
                      examples=("pxlchibi, pixel art, chibi, 1boy, sword, dungeon",), model_id=302)

#: (prompt, key of the intended card). Tag prompts: lexical wins; captions: dense wins.
TAG_PROMPTS = [
    ("masterpiece, best quality, 1girl, kasuga_ayumu, school uniform, classroom", "kasuga"),
    ("best quality, 1girl, hanfu, hair ornament, chinese clothes", "hanfu"),
    ("masterpiece, 1girl, ksgayumu, sailor collar, smile", "kasuga"),
    ("absurdres, mecha, no humans, beam saber, space colony", "mecha"),
    ("8k, 1girl, tangfu, flower hairpin, long sleeves", "hanfu"),
    ("masterpiece, best quality, 1girl, makise_kurisu, long hair, smile, looking at viewer", "kurisu"),
    ("best quality, 1girl, kamado_nezuko, long hair, school uniform, upper body", "nezuko"),
    ("1girl, hoshino_ai, long hair, smile, looking at viewer, school uniform", "ai"),
    ("masterpiece, 1girl, yuuki_asuna, long hair, upper body, smile", "asuna"),
    ("1girl, lnrt, monochrome, greyscale, flowers", "lineart"),
    # The crowd's generic tags pull the sentence vector to the look-alikes; the rare tag decides.
    ("1girl, kasuga_ayumu, long hair, school uniform, smile, looking at viewer, upper body", "kasuga"),
    ("1girl, tangfu, long hair, school uniform, smile, looking at viewer, upper body", "hanfu"),
    ("1girl, fluffcat, long hair, school uniform, smile, looking at viewer, upper body", "cat"),
    ("masterpiece, 1boy, pxlchibi, sword, dungeon", "pixel"),
]
CAPTIONS = [
    ("a small puppy running across a meadow", "corgi"),
    ("a kitten napping on a couch by the window", "cat"),
    ("a giant robot standing in a ruined city", "mecha"),
    ("a lonely cabin in a frozen forest at dusk", "snow"),
    ("a wet street at night in a futuristic metropolis", "cyberpunk"),
    ("a young woman in traditional ancient Chinese dress", "hanfu"),
]


def build_catalog(path: Path, plugins, encoder, cards: dict[str, sdk.AdapterCard] | None = None
                  ) -> tuple[Catalog, dict[str, int]]:
    """A real catalog file with ``cards``, refined (offline) and indexed; returns it and key → id."""
    from stylus_ext.indexing import index_catalog

    catalog = Catalog(path)
    ids = {key: catalog.insert_card(c) for key, c in (cards or CARDS).items()}
    index_catalog(catalog, plugins, refiner="offline", encoder=encoder)
    return catalog, ids
