"""Sidecars and derived card fields: names, base model precedence, triggers, text cleaning."""

from __future__ import annotations

import json

import pytest
from helpers_catalog import civitai_version, kohya_metadata, write_json, write_lora

from stylus_ext.catalog.db import Catalog
from stylus_ext.catalog.scan import scan_folders
from stylus_ext.sdk import basemodels
from stylus_ext.sdk.cards import fields, local, sidecars
from stylus_ext.sdk.cards.local import read_lora_card


@pytest.mark.parametrize(
    ("raw", "family"),
    [
        ("SD 1.5", "SD1"), ("SD 1.4", "SD1"), ("SD 1.5 LCM", "SD1"), ("SD1", "SD1"), ("sd_v1", "SD1"),
        ("stable-diffusion-v1/lora", "SD1"), ("SD 2.1 768", "SD2"), ("SD2", "SD2"), ("sd_v2", "SD2"),
        ("SDXL 1.0", "SDXL"), ("SDXL Turbo", "SDXL"), ("sdxl_base_v1-0", "SDXL"), ("SDXL", "SDXL"),
        ("stable-diffusion-xl-v1-base/lora", "SDXL"), ("Pony", "Pony"), ("Illustrious", "Illustrious"),
        ("NoobAI", "NoobAI"), ("Flux.1 D", "Flux"), ("Flux.1 S", "Flux"), ("flux1", "Flux"),
        ("flux-1-dev/lora", "Flux"), ("SD 3", "SD3"), ("SD 3.5 Large", "SD3"), ("sd3", "SD3"),
        ("stable-diffusion-v3-medium/lora", "SD3"), ("Other", None), ("Unknown", None), ("", None),
        ("Hunyuan Video", "Hunyuan Video"), ("LTXV", "LTXV"), ("SVD XT", "SVD"), ("Stable Cascade", "Stable Cascade"),
        ("Playground v2", None), (42, None), (None, None),
    ],
)
def test_family_from_raw(raw, family):
    assert basemodels.family_from_raw(raw) == family


def test_base_model_precedence():
    header = {"modelspec.architecture": "flux-1-dev/lora", "ss_base_model_version": "sd_v1"}
    civitai = {"baseModel": "Pony"}
    assert local.base_model({"sd version": "SDXL"}, civitai, header)[0] == "SDXL"
    assert local.base_model({"sd version": "Unknown"}, civitai, header)[0] == "Pony"
    assert local.base_model({}, {}, header)[0] == "Flux"
    assert local.base_model({}, {}, {"ss_base_model_version": "sd_v1"})[0] == "SD1"
    assert local.base_model({}, {"baseModel": "Other"}, {}) == ("unknown", "Other")
    # a header-only SDXL trained on Pony is Pony
    pony = {"ss_base_model_version": "sdxl_base_v1-0", "ss_sd_model_name": "ponyDiffusionV6XL.safetensors"}
    assert local.base_model({}, {}, pony)[0] == "Pony"


def test_trigger_words_are_split_deduplicated_and_long_prompts_trimmed():
    prompt = ("masterpiece, best quality, 1girl, (wtrclr:1.2), watercolor painting, soft pastel palette, "
              "paper texture, forest, fox, <lora:watercolor_v1:0.7>, sitting, looking at viewer, smile")
    words = fields.clean_trigger_words(["wtrclr, Watercolor Painting", "wtrclr", prompt, 7, None])
    assert words[:2] == ("wtrclr", "Watercolor Painting")
    lowered = [w.lower() for w in words]
    assert len(lowered) == len(set(lowered))
    assert "masterpiece" not in lowered and "best quality" not in lowered
    assert not any("<" in w or ":" in w for w in words)
    assert "soft pastel palette" in lowered
    assert len([w for w in words if w not in ("wtrclr", "Watercolor Painting")]) <= 6
    assert all(len(w) <= 80 for w in words)


def test_a_danbooru_qualifier_stays_whole_and_weights_and_stray_brackets_go():
    words = fields.clean_trigger_words([r"casca \(berserk\), (masterpiece:1.2), ((best quality)), x)",
                                        "riniya_(tower of fantasy), [y]", "(a) (b)"])
    assert words == ("casca (berserk)", "masterpiece", "best quality", "x", "riniya_(tower of fantasy)", "y",
                     "(a) (b)")
    assert fields.clean_trigger_words(["(", "()", "((casca \\(berserk\\):1.2)"]) == ("casca (berserk)",)


def test_html_description_becomes_plain_text():
    text = fields.html_to_text('<p>Soft <b>watercolor</b> &amp; ink.</p><script>alert(1)</script>'
                               '<ul><li>weight 0.7</li><li>use "wtrclr"</li></ul>')
    assert text == 'Soft watercolor & ink.\nweight 0.7\nuse "wtrclr"'
    assert fields.html_to_text(None) == "" and fields.html_to_text(["x"]) == ""


def test_training_tags_rank_counts_and_drop_sentences():
    freq = {"5_a": {"red hair": 10, "smile": 3, "a woman standing in a field of flowers at sunset": 50},
            "5_b": {"red hair": 5, "blue eyes": 7, "bad": "x"}}
    tags = fields.training_tags({"ss_tag_frequency": json.dumps(freq)})
    assert tags == ("red hair", "blue eyes", "smile")
    assert fields.training_tags({"ss_tag_frequency": "{not json"}) == ()
    assert fields.training_tags({"ss_tag_frequency": "[1, 2]"}) == ()


@pytest.mark.parametrize(
    ("name", "ok"),
    [("style_v1", True), ("a:b", False), ("x=y", False), ("a>b", False), (" lead", False), ("trail ", False),
     ("with space", True), ("", False), ("a<b", False), ("   ", False), ("tab\tname", False), ("a\nb", False),
     ("ünïcode name", True)],
)
def test_name_problem(name, ok):
    assert (fields.name_problem(name) == "") is ok


def test_local_card_from_all_sidecars(tmp_path):
    lora = write_lora(tmp_path / "wc.safetensors", kohya_metadata("wc_alias"))
    write_json(tmp_path / "wc.json", {"activation text": "wtrclr, ink wash", "preferred weight": 0.65,
                                      "negative text": "photo", "sd version": "SD1",
                                      "description": "My <b>favourite</b>", "notes": "use low cfg"})
    write_json(tmp_path / "wc.civitai.info", civitai_version(501, 77, base="SDXL 1.0"))
    (tmp_path / "wc.txt").write_text("Free text description", encoding="utf-8")
    (tmp_path / "wc.preview.png").write_bytes(b"\x89PNG")
    card = read_lora_card(str(lora))
    assert card.base_model == "SD1"  # user .json beats Civitai's baseModel
    assert card.title == "Watercolor Style"
    assert card.trigger_words[:2] == ("wtrclr", "ink wash")
    assert "watercolor painting" in card.trigger_words
    assert card.preferred_weight == 0.65
    assert card.negative_text == "photo"
    assert card.civitai_version_id == 501 and card.civitai_model_id == 77
    assert card.download_url.endswith("/501")
    assert card.example_prompts == ("a watercolor painting of a fox, <lora:watercolor_v1:0.7>",)
    assert not any("ugly" in p for p in card.example_prompts)  # never negative prompts
    assert card.preview_path == str(tmp_path / "wc.preview.png")
    assert "My favourite" in card.description and "Free text description" in card.description
    assert "<b>" not in card.description and "Version notes & fixes" in card.description
    assert card.sha256 is None and card.autov3 is None  # never trusted from sidecars
    assert card.alias == "wc_alias" and card.name == "wc"
    assert card.problems == ()


def test_lora_manager_metadata_json(tmp_path):
    lora = write_lora(tmp_path / "lm.safetensors", kohya_metadata(base=""))
    write_json(tmp_path / "lm.metadata.json", {"model_name": "LM Title", "base_model": "Illustrious",
                                              "usage_tips": json.dumps({"strength": 0.55}),
                                              "civitai": civitai_version(9, 8, base="Illustrious"),
                                              "tags": ["anime"]})
    card = read_lora_card(str(lora))
    assert card.base_model == "Illustrious"
    assert card.civitai_version_id == 9
    assert card.preferred_weight == 0.55
    assert "anime" in card.tags


def test_sidecars_with_wrong_types_broken_json_and_huge_size(tmp_path, monkeypatch):
    lora = write_lora(tmp_path / "w.safetensors", kohya_metadata())
    write_json(tmp_path / "w.json", {"activation text": 5, "preferred weight": "heavy", "sd version": ["SDXL"],
                                     "description": {"x": 1}})
    (tmp_path / "w.civitai.info").write_text('{"trainedWords": ["a", ', encoding="utf-8")
    (tmp_path / "w.metadata.json").write_text("[1, 2, 3]", encoding="utf-8")
    card = read_lora_card(str(lora))
    assert card.base_model == "SD1"  # from the header, the sidecar's list ignored
    assert card.trigger_words == () and card.preferred_weight is None
    assert any("w.civitai.info is not valid JSON" in p for p in card.problems)
    assert any("w.metadata.json holds a JSON list" in p for p in card.problems)

    monkeypatch.setattr(sidecars, "MAX_JSON_BYTES", 1024)
    write_json(tmp_path / "w.json", {"activation text": "x" * 5000})
    card = read_lora_card(str(lora))
    assert any("larger than 1 KB" in p for p in card.problems)
    assert card.activation_text == ""


def test_empty_civitai_info_means_no_match(tmp_path):
    lora = write_lora(tmp_path / "n.safetensors", kohya_metadata())
    write_json(tmp_path / "n.civitai.info", {})
    card = read_lora_card(str(lora))
    assert card.civitai_version_id is None and card.problems == () and card.title == "n"


def test_names_alias_when_unique_and_flags(tmp_path, plugins):
    lora = tmp_path / "lora"
    write_lora(lora / "file_a.safetensors", kohya_metadata("unique_alias"), seed=1)
    write_lora(lora / "file_b.safetensors", kohya_metadata("shared"), seed=2)
    write_lora(lora / "file_c.safetensors", kohya_metadata("shared"), seed=3)
    write_lora(lora / "file_d.safetensors", kohya_metadata("file_a"), seed=4)  # alias = another file's stem
    write_lora(lora / "bad:name.safetensors", kohya_metadata(), seed=5)
    write_lora(lora / "bad_alias.safetensors", kohya_metadata("x=y"), seed=6)
    write_lora(lora / "sub1" / "dup.safetensors", kohya_metadata(), seed=7)
    write_lora(lora / "sub2" / "dup.safetensors", kohya_metadata(), seed=8)
    catalog = Catalog(tmp_path / "c.db")
    scan_folders(catalog, [lora], plugins=plugins)
    by_path = {a.card.path: a for a in catalog.adapters()}
    name = {p.rsplit("/lora/", 1)[1]: (a.name, a.card.name_problem) for p, a in by_path.items()}
    assert name["file_a.safetensors"] == ("unique_alias", "")
    assert name["file_b.safetensors"] == ("file_b", "")
    assert name["file_c.safetensors"] == ("file_c", "")
    assert name["file_d.safetensors"] == ("file_d", "")
    assert name["bad:name.safetensors"][0] == "bad:name" and "':'" in name["bad:name.safetensors"][1]
    assert name["bad_alias.safetensors"] == ("bad_alias", "")
    assert name["sub1/dup.safetensors"][1].startswith("another file has the same name")
    assert name["sub2/dup.safetensors"] == ("dup", "")
    # the stored card hash follows the resolved name
    from stylus_ext.catalog.db import card_hash

    row = catalog.row(by_path[str(lora / "file_a.safetensors")].id)
    assert row["card_hash"] == card_hash(Catalog.row_to_card(row))
