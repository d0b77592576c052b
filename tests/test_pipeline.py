"""The Stylus facade end to end on the scanned + indexed sample catalog (real MiniLM, real index)."""

from __future__ import annotations

import json
import re

import pytest

from stylus_ext.catalog.db import Catalog
from stylus_ext.pipeline import Stylus, StylusSettings


@pytest.fixture
def stylus(sample_catalog, plugins):
    catalog = Catalog(sample_catalog)
    yield Stylus(catalog, plugins, StylusSettings())
    catalog.close()


def names(plan):
    return {a["name"] for c in plan["concepts"] for a in c["adapters"]}


def test_plan_shape_and_choices(stylus):
    plan = stylus.plan("a corgi wearing a knit sweater, watercolor", seeds=[7, 8, 9, 10], negative_prompt="blurry")
    assert set(plan) >= {"prompt", "concepts", "images"}
    assert {"corgi_dog", "knit_sweater", "watercolorStyle"} <= names(plan)
    for c in plan["concepts"]:
        for a in c["adapters"]:
            assert {"id", "name", "weight", "reason", "installed"} <= set(a)
            assert 0.1 <= a["weight"] <= 1.5 and a["installed"] is True
    assert [im["seed"] for im in plan["images"]] == [7, 8, 9, 10]
    for im in plan["images"]:
        assert im["adapters"], "the all-empty mask is excluded"
        for a in im["adapters"]:
            assert f"<lora:{a['name']}:{a['weight']:g}>" in im["prompt"]
        assert im["negative_prompt"].startswith("blurry")


def test_requests_count_words_over_the_catalogue(stylus):
    """Composers learn how distinctive a word is here: adapters whose card text holds it."""
    request = stylus.request("a fox", stylus.retrieve("a fox"))
    assert request.catalog_size == stylus.catalog.count()
    columns = "name, alias, title, tags, trigger_words, activation_text, description, example_prompts, training_tags"
    rows = stylus.catalog.db.execute(f"select {columns} from adapters").fetchall()

    def holding(word):
        return sum(1 for row in rows if re.search(rf"\b{word}\b", " ".join(map(str, row)), re.I))

    for word in ("fox", "watercolor", "lighthouse", "castle"):
        assert request.adapters_with(word) == request.adapters_with(word.title()) == holding(word) > 0, word
    assert request.adapters_with("zxqvroomly") == 0


def test_unrelated_prompt_gets_nothing(stylus):
    plan = stylus.plan("a bowl of soup on a wooden table", seeds=[1, 2])
    assert names(plan) == set()
    assert all(im["prompt"] == "a bowl of soup on a wooden table" for im in plan["images"])


def test_deterministic_and_each_image_reproducible_alone(stylus, sample_catalog, plugins):
    prompt = "hatsune miku in a cyberpunk city"
    full = stylus.plan(prompt, seeds=[11, 12, 13, 14])
    other = Stylus(Catalog(sample_catalog), plugins, StylusSettings())
    assert json.dumps(other.plan(prompt, seeds=[11, 12, 13, 14]), sort_keys=True) == json.dumps(full, sort_keys=True)
    alone = other.plan(prompt, seeds=[13])
    assert alone["images"][0] == full["images"][2]


def test_select_is_cached_and_images_reuse_it(stylus):
    a = stylus.select("a red fox in an enchanted forest")
    assert stylus.select("a red fox in an enchanted forest") is a
    plans = stylus.images(a, [1, 2, 3])
    assert len(plans) == 3 and all(p.seed in (1, 2, 3) for p in plans)


def test_pasted_back_prompt_is_reproduced_unchanged(stylus, sample_catalog, plugins):
    plan = stylus.plan("a red fox in an enchanted forest", seeds=[5, 6], negative_prompt="blurry")
    for image in plan["images"]:
        assert image["adapters"]
        again = stylus.plan(image["prompt"], seeds=[image["seed"]], negative_prompt=image["negative_prompt"])
        assert again["images"][0]["prompt"] == image["prompt"]
        assert again["images"][0]["negative_prompt"] == image["negative_prompt"]
        assert again["notes"] and "taken as composed" in again["notes"][0]
    # composing around existing tags: never duplicated, never selected again
    around = Stylus(Catalog(sample_catalog), plugins, StylusSettings(compose_tagged=True))
    pasted = "a red fox in an enchanted forest <lora:red_fox:0.5>"
    out = around.plan(pasted, seeds=[1, 2, 3])
    assert "red_fox" not in names(out)
    assert all(im["prompt"].count("<lora:red_fox:") == 1 for im in out["images"])
    # a tag that names no catalogue adapter does not stop composition
    other = stylus.plan("a red fox in an enchanted forest <lora:somebody_elses:0.7>", seeds=[1])
    assert "red_fox" in names(other)


def test_base_model_installed_only_and_strategies(sample_catalog, plugins):
    catalog = Catalog(sample_catalog)
    sd1 = Stylus(catalog, plugins, StylusSettings(base_model="SD1")).plan("a corgi, pixel art", seeds=[1])
    assert "corgi_dog" not in names(sd1) and "pixel_art_xl" not in names(sd1)  # both SDXL
    none = Stylus(catalog, plugins, StylusSettings(mask="none")).plan("a corgi, watercolor", seeds=[1, 2])
    assert all(im["adapters"] == [] for im in none["images"]) and names(none)
    every = Stylus(catalog, plugins, StylusSettings(mask="all")).plan("a corgi, watercolor", seeds=[1, 2])
    assert all(len(im["adapters"]) == len(names(every)) for im in every["images"])
    catalog.close()


def test_composer_failure_falls_back_with_warning(sample_catalog, plugins):
    catalog = Catalog(sample_catalog)
    s = Stylus(catalog, plugins, StylusSettings(composer="no-such-composer"))
    plan = s.plan("a corgi wearing a knit sweater", seeds=[1])
    assert plan["composer"] == "offline" and "corgi_dog" in names(plan)
    assert any("no-such-composer" in w for w in plan["warnings"])
    catalog.close()


def test_composing_before_indexing_says_to_run_index(tmp_path, sample_folder, plugins):
    from stylus_ext.catalog.db import Catalog
    from stylus_ext.catalog.scan import scan_folders
    from stylus_ext.pipeline import Stylus

    catalog = Catalog(tmp_path / "c.db")
    scan_folders(catalog, [str(sample_folder)], plugins=plugins)
    selection = Stylus(catalog, plugins).select("a corgi in a castle")
    assert any("stylus index" in w for w in selection.warnings)
