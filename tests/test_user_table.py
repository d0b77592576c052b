"""A real user's 190-LoRA folder (mostly anime characters, Pony + SD1.5, no Civitai cards): the
composer must pick the named character's adapter and never hand a character to a prompt that
does not name one."""

from __future__ import annotations

import json

import pytest

from stylus_ext.catalog.db import Catalog
from stylus_ext.catalog.scan import scan_folders
from stylus_ext.indexing import index_catalog
from stylus_ext.pipeline import Stylus, StylusSettings
from stylus_ext.sample.user_table import character_prompts, evaluate, folder_from_table


@pytest.fixture(scope="module")
def user_folder(shared_data, tmp_path_factory, plugins, encoder):
    items = json.loads((shared_data / "sd_tools_user_lora_table.json").read_text(encoding="utf-8"))["items"]
    folder = folder_from_table(items, tmp_path_factory.mktemp("user") / "Lora")
    catalog = Catalog(tmp_path_factory.mktemp("user-catalog") / "catalog.db")
    report = scan_folders(catalog, [str(folder)], plugins=plugins)
    index_catalog(catalog, plugins, encoder=encoder)
    return items, catalog, report


def test_the_folder_scans_cleanly_with_the_users_names_and_weights(user_folder):
    items, catalog, report = user_folder
    stems = {i["lora_name"] for i in items}
    assert report.added == len(stems) and not report.problems
    rows = {r["name"]: r for r in catalog.rows()}
    assert set(rows) == stems  # every <lora:NAME> the user types resolves
    ais = rows["Ais_Wallenstein"]
    assert ais["preferred_weight"] == 0.7 and ais["base_model"] in ("SDXL", "Pony")


def test_named_characters_are_chosen_and_unnamed_prompts_get_none(user_folder, plugins, encoder):
    items, catalog, _ = user_folder
    character_stems = {i["lora_name"] for i in items if i.get("character_trigger_tags")}
    pipelines: dict[str, Stylus] = {}
    retriever = None

    def compose(prompt: str, base: str) -> list[str]:
        nonlocal retriever
        if base not in pipelines:
            pipelines[base] = Stylus(catalog, plugins, StylusSettings(base_model=base), retriever=retriever)
            retriever = pipelines[base].retriever
        selection = pipelines[base].select(prompt)
        return [c.adapter.name for _, chosen in selection.concepts for c in chosen]

    scores = evaluate(compose, character_prompts(items), character_stems)
    assert scores["prompts"] > 100
    assert scores["hit"] >= 0.85, scores
    assert scores["wrong"] <= 0.05, scores
    assert scores["unnamed"] == 0.0, scores
