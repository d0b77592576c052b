"""The built-in ``offline`` refiner: description, category and weight from the card alone."""

from __future__ import annotations

import ast
import json
from collections import Counter
from pathlib import Path

import pytest

from stylus_ext import sdk
from stylus_ext.sample import ADAPTERS
from stylus_ext.sdk.cards.fields import clean_trigger_words
from stylus_ext.sdk.cards.local import read_lora_card

ROOT = Path(__file__).resolve().parents[1]
USER_TABLE = ROOT.parent / "shared" / "data" / "sd_tools_user_lora_table.json"  # ../shared beside the checkout


@pytest.fixture(scope="module")
def refiner(plugins):
    return plugins.create("refiner", "offline")


def card(**fields) -> sdk.AdapterCard:
    return sdk.AdapterCard(**{"source": "test", "name": "x", **fields})


def test_plugin_imports_only_the_sdk() -> None:
    tree = ast.parse((ROOT / "plugins" / "offline_refiner.py").read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert {m for m in imported if m and m.startswith("stylus_ext")} == {"stylus_ext"}
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "stylus_ext"
             for a in n.names}
    assert names == {"sdk"}


def test_sample_folder_categories_and_weights(refiner, sample_folder: Path) -> None:
    expected = {a[0]: a for a in ADAPTERS}
    wrong, weights = [], []
    for path in sorted(sample_folder.rglob("*.safetensors")):
        if path.stem not in expected:
            continue
        c = read_lora_card(str(path))
        result = refiner.refine(c)
        assert result.category in sdk.CATEGORIES
        if result.category != expected[path.stem][3]:
            wrong.append((path.stem, expected[path.stem][3], result.category))
        want = expected[path.stem][8].get("w")
        if want is not None:
            weights.append(abs(result.weight - want) <= 0.06)
    assert len(wrong) <= 3, wrong
    assert sum(weights) >= 0.9 * len(weights)


def test_user_table_characters_are_characters(refiner, tmp_path: Path) -> None:
    """The real user's 190 LoRAs (nearly all characters) as the scanner reads their folder: headers
    with training tags and sidecars, no cards."""
    if not USER_TABLE.exists():
        pytest.skip("shared data table not present")
    from stylus_ext.sample.user_table import folder_from_table

    items = json.loads(USER_TABLE.read_text(encoding="utf-8"))["items"]
    folder = folder_from_table(items, tmp_path / "Lora")
    counts = Counter(refiner.refine(read_lora_card(str(p))).category for p in folder.glob("*.safetensors"))
    assert sum(counts.values()) == len(items)
    assert counts["character"] >= 0.85 * len(items), counts


@pytest.mark.parametrize(("fields", "category"), [
    ({"title": "Add More Details - Detail Tweaker", "tags": ("style", "detail")}, "utility"),
    ({"title": "LCM LoRA SD1.5", "description": "Generate in 4 steps."}, "utility"),
    ({"title": "Hyper-SD 8 step"}, "utility"),
    ({"title": "Sailor Moon (Usagi Tsukino)", "tags": ("anime", "character")}, "character"),
    # a title that names a style outranks an author's "character" tag; a character drawn in a style does not
    ({"title": "Zorvane Artist Style (v1)", "tags": ("anime", "character", "art style")}, "style"),
    ({"title": "Mellow Kentaro style V3.0 LORA (Mellow_V3.0)", "tags": ("anime", "character")}, "style"),
    ({"title": "Shiro LoRA | No Game No Life (2.0 Anime Style)", "tags": ("anime", "character")}, "character"),
    ({"title": "Holo + Outfits & Style | Spice & Wolf", "tags": ("anime", "character")}, "character"),
    ({"title": "Mitsuri Kanroji Anime style LoRA", "tags": ("anime", "character")}, "character"),
    ({"title": "Some Actress", "tags": ("celebrity", "woman")}, "celebrity"),
    ({"title": "Gothic Lolita Dress", "tags": ("clothing",)}, "clothing"),
    ({"title": "Moebius Comic Style"}, "style"),
    ({"title": "Watercolor", "description": "Soft watercolor painting with paper texture."}, "style"),
    ({"title": "Futuristic Cityscape Background"}, "background"),
    ({"title": "Old Lighthouse", "description": "Stone lighthouses on rocky shores."}, "building"),
    ({"title": "Vintage Motorcycle"}, "vehicle"),
    ({"title": "Shiba Inu", "description": "A cute dog breed from Japan, a loyal pet."}, "animal"),
    ({"title": "Hands on Hips Pose"}, "pose"),
    ({"title": "Glowing Runes", "description": "Adds magic glowing runes effect."}, "concept"),
    ({"title": "zzqx", "description": ""}, "concept"),
])
def test_category_rules(refiner, fields, category) -> None:
    assert refiner.refine(card(**fields)).category == category


def test_weight_precedence(refiner) -> None:
    examples = ("masterpiece, a cat, <lora:catLora:0.6>", "a cat, <lora:catLora:0.7>", "<lora:catLora:1.0>, cat")
    base = {"name": "cat_lora_v2", "alias": "catLora", "example_prompts": examples}
    assert refiner.refine(card(**base)).weight == 0.7  # median of the examples naming this adapter
    assert refiner.refine(card(**base, description="Recommended weight: 0.55")).weight == 0.55
    assert refiner.refine(card(**base, description="strength 0.4-0.6 works best")).weight == 0.5
    assert refiner.refine(card(**base, description="weight 0.5", preferred_weight=0.9)).weight == 0.9
    # "preferred weight" 0 means "default" in the WebUI's card editor.
    assert refiner.refine(card(**base, preferred_weight=0.0)).weight == 0.7
    assert refiner.refine(card(name="plain")).weight == 0.8
    # Tags of other adapters in a shared prompt are ignored; a renamed file is still matched when close.
    shared = ("a cat <lora:otherThing:0.3> <lora:detail_slider:1.4>", "a cat <lora:cat_lora_v1:0.9>")
    assert refiner.refine(card(name="cat_lora_v2", example_prompts=shared)).weight == 0.9
    assert refiner.refine(card(name="big", preferred_weight=7.0)).weight == 1.5
    assert refiner.refine(card(name="tiny", preferred_weight=0.01)).weight == 0.1


def test_description_is_informative_and_clean(refiner) -> None:
    c = card(
        name="ghibli_bg", title="Ghibli Background", tags=("style", "lora", "anime"),
        description="<p>Painted anime backgrounds with lush hills and big clouds.</p>"
                    "<p>Support me on https://patreon.com/someone !</p><p>Use sampler DPM++ 2M, 25 steps.</p>",
        trigger_words=("ghibli style",),
        training_tags=("masterpiece", "scenery", "cloud", "a very long caption sentence that is not a tag at "
                       "all and goes on", "grass"),
        example_prompts=("masterpiece, best quality, (ghibli style:1.2), a village by the sea, BREAK summer, "
                         "<lora:ghibli_bg:0.8>",),
    )
    text = refiner.refine(c).description
    assert "lush hills" in text and "ghibli style" in text
    assert "village by the sea" in text and "summer" in text
    assert "scenery" in text and "grass" in text
    for junk in ("<lora", "patreon", "masterpiece", "best quality", "sampler", "1.2", "caption sentence", "BREAK"):
        assert junk not in text, junk
    assert text == refiner.refine(c).description  # deterministic


def test_description_length_and_fallback(plugins) -> None:
    short = plugins.create("refiner", "offline", max_chars=150)
    long_card = card(title="Long", description="Words about the thing. " * 100,
                     example_prompts=tuple(f"subject number {i}, scene {i}" for i in range(20)))
    assert len(short.refine(long_card).description) <= 150
    empty = short.refine(card(name="mystery_thing", title="Mystery Thing"))
    assert "Mystery Thing" in empty.description


def test_hostile_card_values_do_not_crash(refiner) -> None:
    weird = card(title="(" * 500, description="<" * 10000 + "weight: 9e999", tags=("",) * 3,
                 trigger_words=("\\(" * 50,), example_prompts=("<lora:x:abc>", "<lora::>", ":" * 100),
                 training_tags=("",))
    result = refiner.refine(weird)
    assert result.category in sdk.CATEGORIES
    assert 0.1 <= result.weight <= 1.5


# -- the character / real-person call without tags (synthetic cards, written for these tests) --------------


RED_PANDA = {"name": "fluffy_red_panda", "title": "Fluffy Red Panda", "activation_text": "redpanda"}


@pytest.mark.parametrize("fields", [
    RED_PANDA,  # a card with no tags and no text: the trigger is the title's words run together
    {"name": "fluffyRedPanda_v1", "trigger_words": ("redpanda",)},  # only a file name and a trigger
    {"name": "fluffyRedPanda_v1", "trigger_words": ("redpanda",),  # a header with training tags
     "training_tags": ("redpanda", "no humans", "animal focus", "tree", "branch", "outdoors")},
    {**RED_PANDA, "description": "A fluffy red panda with a ringed tail, sitting in bamboo."},
])
def test_an_animal_with_a_coined_trigger_is_not_a_character(refiner, fields) -> None:
    assert refiner.refine(card(**fields)).category == "animal"


def test_a_named_character_with_consistent_examples_is_a_character(refiner) -> None:
    c = card(name="mira_kessel_v2", title="Mira Kessel (Skyward Chronicle)", trigger_words=("mira kessel",),
             description="Mira from the airship saga. She comes with her pilot jacket and goggles.",
             example_prompts=(
                 "masterpiece, 1girl, solo, mira kessel, silver hair, green eyes, pilot jacket, airship deck",
                 "1girl, mira kessel, silver hair, green eyes, smile, sitting on a crate, sunset",
                 "mira kessel, 1girl, solo, silver hair, green eyes, goggles on head, cockpit, night"))
    assert refiner.refine(c).category == "character"
    # The same adapter as a local file: its name, trigger and training tags only.
    header = card(name="mira_kessel_v2", trigger_words=("mira kessel",),
                  training_tags=("mira kessel", "1girl", "solo", "silver hair", "green eyes", "pilot jacket"))
    assert refiner.refine(header).category == "character"


def test_a_style_with_a_coined_trigger_is_a_style(refiner) -> None:
    c = card(name="inkwashAI", title="Inkwash Dreams Style", trigger_words=("inkwashai",),
             description="Soft ink wash painting with bleeding edges and paper grain.",
             example_prompts=("inkwashai, a mountain temple in fog", "inkwashai, a koi pond, lotus flowers",
                              "inkwashai, an old fisherman on a boat, rain"))
    assert refiner.refine(c).category == "style"
    assert refiner.refine(card(name="inkwashAI", trigger_words=("inkwashai",))).category != "character"


def test_a_real_person_is_a_celebrity(refiner) -> None:
    c = card(name="jane_halvorsen", title="Jane Halvorsen", trigger_words=("jane halvorsen",),
             description="Likeness of the actress Jane Halvorsen, trained on film stills of her.",
             example_prompts=("RAW photo of jane halvorsen, portrait, soft light, film grain",
                              "photo of jane halvorsen smiling, city street, dslr, 85mm",
                              "jane halvorsen, realistic, red carpet, evening gown, photograph"))
    assert refiner.refine(c).category == "celebrity"


def test_person_model_file_is_fitted_and_a_broken_one_falls_back(tmp_path: Path, refiner) -> None:
    import sys

    helper = sys.modules["stylus_plugin_helper_offline_refiner_person"]
    shipped = helper.load_model()
    assert shipped is not helper.DEFAULT_MODEL and "fit" in shipped["about"]
    rules = helper.NameRules(jargon=set(), lexicon=set())
    names = set(helper.features(card(name="x"), found=lambda _c, _t: frozenset(), rules=rules))
    for kind in ("person", "person_header", "person_bare"):
        model = shipped[kind]
        named = set(model.get("features", ())) if model.get("kind") == "trees" else set(model) - {"bias"}
        # text_words: the word model's score, where it has one; the header and bare models were kept
        # from an earlier fit (``fit_refiner.py --kinds person``), so they may know fewer features
        assert named - {"text_words"} == names if kind == "person" else named - {"text_words"} <= names
        assert ("text_words" in named) == ("words_" + kind in shipped)
    broken = tmp_path / "model.json"
    broken.write_text("{not json", encoding="utf-8")
    assert helper.load_model(broken) is helper.DEFAULT_MODEL
    assert refiner.version != "1"  # cached refinements of the old rules are computed again


def test_names_come_from_the_encoder_vocabulary() -> None:
    assert [sdk.name_kind(w) for w in ("Megan", "natalie", "david", "smith", "fox", "castle", "zzqx")] == [
        "given", "given", "given", "surname", "", "", ""]


def test_a_first_and_last_name_is_a_person_even_when_the_last_is_an_animal(refiner) -> None:
    # "fox" is animal evidence and the trigger is coined ("megfo"); the given name says it is a person
    c = card(name="megfo_v2", title="Megan Fox (v2.0)", trigger_words=("megfo",), description="trigger word : megfo",
             example_prompts=("(close up:1.2), (megfo), in a swimsuit, 8k uhd, dslr, soft lighting, film grain",
                              "megfo, portrait, evening dress, red carpet, photograph"))
    assert refiner.refine(c).category in ("character", "celebrity")  # was "animal" before the name groups
    fox = card(name="arctic_fox", title="Arctic Fox (v1.0)", trigger_words=("arcticfox",),
               description="A fluffy arctic fox in the snow.",
               example_prompts=("arcticfox, snow, forest, winter", "arcticfox sleeping, curled up, snow"))
    assert refiner.refine(fox).category == "animal"


def test_a_trigger_written_as_a_name_in_the_description_is_name_evidence(refiner) -> None:
    import sys

    helper = sys.modules["stylus_plugin_helper_offline_refiner_person"]
    rules = helper.NameRules(jargon=set(), lexicon=set())

    def feats(description: str, trigger: str) -> dict[str, float]:
        return helper.features(card(name="kgy_v1", trigger_words=(trigger,), description=description),
                               found=lambda _c, _t: frozenset(), rules=rules)

    assert feats("A LoRA of Kaguya Shinomiya, weight 0.8.", "kaguya shinomiya")["desc_names_trigger"] == 1.0
    assert feats("use kaguya shinomiya at weight 0.8", "kaguya shinomiya")["desc_names_trigger"] == 0.0
    assert feats("Shown in a silk dress and socks.", "silk socks")["desc_names_trigger"] == 0.0  # common words
    # a danbooru qualifier survives the card parser, so the trigger's "(series)" is seen whole
    escaped = card(name="casca_v1", trigger_words=clean_trigger_words([r"casca \(berserk\)"]))
    got = helper.features(escaped, found=lambda _c, _t: frozenset(), rules=rules)
    assert escaped.trigger_words == ("casca (berserk)",) and got["trig_paren"] == 1.0 and got["trig_words"] == 0.25
