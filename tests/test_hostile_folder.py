"""The hostile LoRA folder (tests/helpers_catalog.hostile_folder): a scan never crashes or hangs,
keeps every good LoRA, and names what it skipped."""

from __future__ import annotations

import os
import threading

import pytest
from helpers_catalog import hostile_cards, hostile_folder

from stylus_ext.catalog.cards import import_cards
from stylus_ext.catalog.db import Catalog
from stylus_ext.catalog.scan import scan_folders
from stylus_ext.sdk.cards.fileio import display


def _within(seconds: float, fn, *args, **kwargs):
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it is not done in time."""
    box: dict[str, object] = {}

    def work() -> None:
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{getattr(fn, '__name__', fn)} hung for {seconds} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "lora"
    return root, hostile_folder(root)


def test_scan_of_the_hostile_folder_keeps_the_good_and_names_the_bad(tmp_path, corpus, plugins):
    root, cases = corpus
    catalog = Catalog(tmp_path / "c.db")
    report = _within(60, scan_folders, catalog, [root], plugins=plugins)
    paths = {r["path"] for r in catalog.rows("path is not null")}
    problems = dict(report.problems)
    for case, expect in cases.items():
        full = os.path.join(str(root), case)
        if expect == "kept":
            assert full in paths, case
        else:
            assert full not in paths and display(full) not in paths, case
        if expect == "skipped":  # the file, or the folder that holds it, is named
            assert any(display(full) == p or display(full).startswith(p + os.sep) for p in problems), case
    assert all(isinstance(p, str) and p.encode("utf-8") for p in paths)  # storable text only
    again = _within(60, scan_folders, catalog, [root], plugins=plugins)  # reruns work too
    assert again.added == again.removed == 0


def test_bad_sidecar_values_cost_the_value_not_the_lora(tmp_path, corpus, plugins):
    root, _ = corpus
    catalog = Catalog(tmp_path / "c.db")
    _within(60, scan_folders, catalog, [root], plugins=plugins)
    rows = {os.path.basename(r["path"]): r for r in catalog.rows("path is not null")}
    assert rows["sidecar_0.safetensors"]["activation_text"] == "ok"  # "modelId": "²" dropped alone
    assert rows["sidecar_0.safetensors"]["civitai_model_id"] is None
    assert rows["sidecar_1.safetensors"]["civitai_model_id"] is None  # 10**30
    assert rows["sidecar_6.safetensors"]["civitai_version_id"] is None  # 10**20
    assert rows["huge_tag_count.safetensors"]["training_tags"] == "[]"
    problems = dict(catalog.problems())
    assert "not valid JSON" in problems[str(root / "sidecar_4.safetensors")]


def test_names_the_webui_cannot_resolve_are_never_used(tmp_path, corpus, plugins):
    root, _ = corpus
    catalog = Catalog(tmp_path / "c.db")
    _within(60, scan_folders, catalog, [root], plugins=plugins)
    rows = {os.path.basename(r["path"]): r for r in catalog.rows("path is not null")}
    newline = rows["alias_newline.safetensors"]
    assert newline["name"] == "alias_newline" and "\n" not in newline["name"]
    lead = rows[" lead.safetensors"]
    assert lead["name"] != "lead"  # `<lora:lead>` resolves to nothing in the WebUI
    assert lead["name_problem"]


def test_fifo_and_broken_card_items_do_not_stop_import_cards(tmp_path, plugins):
    expected = hostile_cards(tmp_path / "cards")
    catalog = Catalog(tmp_path / "c.db")
    report = _within(60, import_cards, catalog, [tmp_path / "cards"], plugins=plugins)
    assert report.cards == sum(expected.values())
    assert catalog.count() == 4  # the three good models (one is in two files) and the one with a huge model id
    named = {os.path.basename(p) for p, _ in report.problems}
    assert {"deep.json", "superscript.json", "cards.jsonl", "huge_ids.json", "fifo.json"} <= named
    jsonl = next(r for p, r in report.problems if p.endswith("cards.jsonl"))
    assert "line 2" in jsonl
    assert {r["civitai_model_id"] for r in catalog.rows()} >= {9000, None}
