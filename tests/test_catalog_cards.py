"""Civitai card import, identity joins (file ↔ card, both orders) and lazy hashing."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct

from helpers_catalog import civitai_model, civitai_version, kohya_metadata, touch, write_json, write_lora

from stylus_ext.catalog.cards import import_cards
from stylus_ext.catalog.db import Catalog
from stylus_ext.catalog.hashing import ensure_hashes
from stylus_ext.catalog.scan import scan_folders
from stylus_ext.catalog.store import upsert_card
from stylus_ext.sdk.cards.civitai_json import cards_from_civitai_json


def _expected_hashes(path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return hashlib.sha256(data).hexdigest(), hashlib.sha256(data[8 + n:]).hexdigest()[:12]


def test_model_item_gives_one_card_per_version():
    item = civitai_model(10, [civitai_version(101, 10, file_name="wc_v1.safetensors", sha256="AB" * 32,
                                              autov3="0123456789AB"),
                              civitai_version(102, 10, base="SDXL 1.0", file_name="wc_xl.safetensors")])
    cards = cards_from_civitai_json(item)
    assert [c.civitai_version_id for c in cards] == [101, 102]
    first, second = cards
    assert first.civitai_model_id == 10 and first.name == "wc_v1" and first.path is None
    assert first.base_model == "SD1" and second.base_model == "SDXL"
    assert first.sha256 == "ab" * 32 and first.autov3 == "0123456789ab"
    assert first.download_url == "https://civitai.com/api/download/models/101"
    assert first.tags == ("style", "watercolor")
    assert "Soft watercolor look." in first.description and "<p>" not in first.description
    assert first.trigger_words == ("wtrclr", "watercolor painting")
    assert first.example_prompts == ("a watercolor painting of a fox, <lora:watercolor_v1:0.7>",)
    assert first.image_urls[0].endswith("/101/1.jpeg")
    assert first.title.startswith("Watercolor Style")


def test_pages_versions_and_junk():
    page = {"items": [civitai_model(1, [civitai_version(11, 1)]),
                      civitai_model(2, [civitai_version(21, 2)], kind="Checkpoint")],
            "metadata": {"nextCursor": "abc"}}
    assert [c.civitai_version_id for c in cards_from_civitai_json(page)] == [11]
    version = civitai_version(31, 3, nsfw=True)
    (card,) = cards_from_civitai_json(version)
    assert card.civitai_version_id == 31 and card.civitai_model_id == 3 and card.nsfw
    (wrapped,) = cards_from_civitai_json({"model_name": "x", "civitai": civitai_version(41, 4)})  # LoRA Manager
    assert wrapped.civitai_version_id == 41
    for junk in ({}, [], None, 5, "x", {"items": "nope"}, {"modelVersions": [1, "a"]}, {"id": "x", "files": 3}):
        assert cards_from_civitai_json(junk) == []
    wrong_types = {"id": 5, "modelId": "7", "baseModel": 3, "trainedWords": "abc", "files": {"a": 1},
                   "images": [None, {"meta": "x"}], "model": {"name": ["x"]}}
    (odd,) = cards_from_civitai_json(wrong_types)
    assert odd.civitai_model_id == 7 and odd.base_model == "unknown" and odd.trigger_words == ()


def test_import_cards_files_and_folders_with_bad_files(tmp_path, plugins):
    cards_dir = tmp_path / "cards"
    write_json(cards_dir / "a.json", civitai_model(1, [civitai_version(11, 1), civitai_version(12, 1)]))
    write_json(cards_dir / "sub" / "b.civitai.info", civitai_version(21, 2))
    (cards_dir / "lines.jsonl").write_text(
        "\n".join(json.dumps(civitai_version(i, 3)) for i in (31, 32)) + "\n", encoding="utf-8")
    (cards_dir / "broken.json").write_text('{"items": [', encoding="utf-8")
    write_json(cards_dir / "other.json", {"hello": "world"})
    catalog = Catalog(tmp_path / "c.db")
    report = import_cards(catalog, [cards_dir], plugins=plugins)
    assert (report.cards, report.added) == (5, 5)
    problems = dict(report.problems)
    assert "not valid JSON" in problems[str(cards_dir / "broken.json")]
    assert "no Civitai" in problems[str(cards_dir / "other.json")]
    assert all(not a.installed for a in catalog.adapters())
    again = import_cards(catalog, [cards_dir / "a.json"], plugins=plugins)
    assert (again.added, again.unchanged) == (0, 2)
    assert catalog.count() == 5


def _file_and_card(tmp_path):
    lora = tmp_path / "lora"
    write_lora(lora / "my_wc.safetensors", kohya_metadata("my_wc"), seed=3)
    write_json(lora / "my_wc.civitai.info", civitai_version(555, 50, words=[]))
    card = cards_from_civitai_json(civitai_model(50, [civitai_version(555, 50, file_name="wc.safetensors")]))[0]
    return lora, card


def test_file_then_card_is_one_entry(tmp_path, plugins):
    lora, card = _file_and_card(tmp_path)
    catalog = Catalog(tmp_path / "c.db")
    scan_folders(catalog, [lora], plugins=plugins)
    (local,) = catalog.adapters()
    catalog.set_controls(local.id, pinned=True)
    adapter_id, status = upsert_card(catalog, card)
    assert (adapter_id, status) == (local.id, "updated")
    (merged,) = catalog.adapters()
    assert merged.card.path == str(lora / "my_wc.safetensors") and merged.name == "my_wc"
    assert merged.card.trigger_words == ("wtrclr", "watercolor painting")  # filled from the card
    assert merged.card.tags == ("style", "watercolor") and merged.pinned
    assert upsert_card(catalog, card) == (local.id, "unchanged")


def test_card_then_file_is_one_entry(tmp_path, plugins):
    lora, card = _file_and_card(tmp_path)
    catalog = Catalog(tmp_path / "c.db")
    remote_id, status = upsert_card(catalog, card)
    assert status == "added"
    catalog.set_controls(remote_id, pinned=True, weight_override=0.3)
    report = scan_folders(catalog, [lora], plugins=plugins)
    assert report.updated == 1 and report.added == 0
    (merged,) = catalog.adapters()
    assert merged.id == remote_id and merged.installed and merged.pinned and merged.weight_override == 0.3
    assert merged.name == "my_wc" and merged.card.download_url.endswith("/555")
    # rescanning the unchanged file keeps the merged entry
    assert scan_folders(catalog, [lora], plugins=plugins).unchanged == 1
    assert catalog.count() == 1


def test_sidecar_added_later_absorbs_an_imported_card(tmp_path, plugins):
    lora, card = _file_and_card(tmp_path)
    (lora / "my_wc.civitai.info").unlink()
    catalog = Catalog(tmp_path / "c.db")
    scan_folders(catalog, [lora], plugins=plugins)
    remote_id, _ = upsert_card(catalog, card)
    catalog.set_controls(remote_id, banned=True)
    assert catalog.count() == 2  # nothing links them yet
    write_json(lora / "my_wc.civitai.info", civitai_version(555, 50))
    touch(lora / "my_wc.civitai.info")
    scan_folders(catalog, [lora], plugins=plugins)
    (merged,) = catalog.adapters()
    assert merged.installed and merged.banned and merged.card.civitai_version_id == 555


def test_hashes_are_lazy_cached_invalidated_and_join_cards(tmp_path, plugins):
    lora = tmp_path / "lora"
    path = write_lora(lora / "plain.safetensors", kohya_metadata(), seed=9)
    sha, v3 = _expected_hashes(path)
    catalog = Catalog(tmp_path / "c.db")
    scan_folders(catalog, [lora], plugins=plugins)
    card = cards_from_civitai_json(civitai_version(900, 90, sha256=sha, autov3=v3))[0]
    remote_id, _ = upsert_card(catalog, card)
    catalog.set_controls(remote_id, pinned=True)
    assert catalog.count() == 2 and next(catalog.rows("path is not null"))["sha256"] is None

    report = ensure_hashes(catalog)
    assert (report.hashed, report.joined) == (1, 1)
    (entry,) = catalog.adapters()
    assert entry.card.sha256 == sha and entry.card.autov3 == v3
    assert entry.card.civitai_version_id == 900 and entry.installed and entry.pinned
    assert ensure_hashes(catalog).cached == 1  # cached: nothing hashed again

    write_lora(path, kohya_metadata(), seed=10)  # same size, new content
    touch(path)
    assert ensure_hashes(catalog).problems  # changed since the scan: refuse to hash stale rows
    scan_folders(catalog, [lora], plugins=plugins)
    row = next(catalog.rows("path is not null"))
    assert row["sha256"] is None and row["civitai_version_id"] == 900  # hash invalidated, link kept
    ensure_hashes(catalog)
    assert next(catalog.rows("path is not null"))["sha256"] == _expected_hashes(path)[0] != sha


def test_card_arriving_after_hashing_joins_by_autov3(tmp_path, plugins):
    lora = tmp_path / "lora"
    path = write_lora(lora / "x.safetensors", kohya_metadata(), seed=4)
    _, v3 = _expected_hashes(path)
    catalog = Catalog(tmp_path / "c.db")
    scan_folders(catalog, [lora], plugins=plugins)
    ensure_hashes(catalog)
    card = cards_from_civitai_json(civitai_version(4040, 40, autov3=v3))[0]
    adapter_id, status = upsert_card(catalog, card)
    assert status == "updated" and catalog.count() == 1
    assert catalog.get(adapter_id).card.civitai_version_id == 4040


def test_cli_import_cards(tmp_path, capsys):
    from stylus_ext.cli import main

    write_json(tmp_path / "m.json", civitai_model(1, [civitai_version(11, 1)]))
    assert main(["--catalog", str(tmp_path / "c.db"), "import-cards", str(tmp_path / "m.json")]) == 0
    assert "1 added" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text("nope", encoding="utf-8")
    assert main(["--catalog", str(tmp_path / "c.db"), "import-cards", str(tmp_path / "bad.json")]) == 1


def test_test_seeding_uses_the_production_write_path(tmp_path):
    from helpers_catalog import seed

    catalog = Catalog(tmp_path / "c.db")
    card = cards_from_civitai_json(civitai_model(1, [civitai_version(11, 1, sha256="ab" * 32)]))[0]
    (first,) = seed(catalog, [card])
    assert catalog.row(first)["added"] is not None  # the timestamp only the store's insert sets
    again = catalog.insert_card(dataclasses.replace(card, title="Newer title"))  # merged, not duplicated
    assert again == first and catalog.count() == 1 and catalog.row(first)["title"] == "Newer title"


def test_broken_files_get_sha256_only_and_are_not_rehashed(tmp_path, plugins):
    from helpers_catalog import write_raw

    lora = tmp_path / "lora"
    write_raw(lora / "bad.safetensors", 2**63, b"{}")
    (lora / "old.ckpt").write_bytes(b"pickle-ish bytes")
    catalog = Catalog(tmp_path / "c.db")
    scan_folders(catalog, [lora], plugins=plugins)
    assert ensure_hashes(catalog).hashed == 2
    rows = {r["name"]: r for r in catalog.rows()}
    assert rows["old"]["sha256"] == hashlib.sha256(b"pickle-ish bytes").hexdigest() and rows["old"]["autov3"] is None
    assert rows["bad"]["autov3"] is None
    again = ensure_hashes(catalog)
    assert (again.hashed, again.cached) == (0, 2)


def test_sidecar_edit_keeps_cached_hashes(tmp_path, plugins):
    lora = tmp_path / "lora"
    path = write_lora(lora / "s.safetensors", kohya_metadata(), seed=12)
    catalog = Catalog(tmp_path / "c.db")
    scan_folders(catalog, [lora], plugins=plugins)
    ensure_hashes(catalog)
    write_json(lora / "s.json", {"activation text": "new words"})
    touch(lora / "s.json", 30)
    assert scan_folders(catalog, [lora], plugins=plugins).updated == 1
    (entry,) = catalog.adapters()
    assert entry.card.trigger_words == ("new words",)
    assert entry.card.sha256 == _expected_hashes(path)[0]
    assert ensure_hashes(catalog).cached == 1
