"""``refine_catalog``: cached per card hash and refiner version, errors recorded, chunked and resumable."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

import pytest

from stylus_ext import refine, sdk
from stylus_ext.catalog.db import Catalog


class Counting(sdk.Refiner):
    """Upper-cases the title; fails on names containing 'bad'; interrupts on names containing 'stop'."""

    name = "counting"
    version = "1"
    calls: ClassVar[list[str]] = []

    def refine(self, card: sdk.AdapterCard) -> sdk.Refinement:
        type(self).calls.append(card.name)
        if "bad" in card.name:
            raise RuntimeError("cannot read\nthis card")
        if "stop" in card.name:
            raise KeyboardInterrupt
        if "odd" in card.name:
            return "not a refinement"  # type: ignore[return-value]
        return sdk.Refinement(description=card.title.upper(), category="style", weight=0.6)


class CountingV2(Counting):
    version = "2"


@pytest.fixture
def catalog(tmp_path: Path):
    cat = Catalog(tmp_path / "catalog.db")
    for i in range(7):
        cat.insert_card(sdk.AdapterCard(source="test", name=f"a{i}", title=f"adapter {i}", path=f"/l/a{i}.safetensors",
                                        description=f"card text {i}", preferred_weight=0.9))
    Counting.calls = []
    yield cat
    cat.close()


def _rows(cat: Catalog, key: str = "counting@1") -> dict[int, dict]:
    return {r["adapter_id"]: r for r in cat.db["refinements"].rows_where("refiner = ?", [key])}


def test_refines_once_then_caches(catalog: Catalog) -> None:
    report = refine.refine_catalog(catalog, Counting())
    assert (report.total, report.refined, report.cached, report.failed) == (7, 7, 0, 0)
    assert catalog.get_meta("refiner") == "counting@1"
    adapters = catalog.adapters()
    assert [a.description for a in adapters] == [f"ADAPTER {i}" for i in range(7)]
    assert {a.category for a in adapters} == {"style"} and {a.weight for a in adapters} == {0.6}

    again = refine.refine_catalog(catalog, Counting())
    assert (again.refined, again.cached) == (0, 7)
    assert len(Counting.calls) == 7


def test_changed_card_or_new_version_is_refined_again(catalog: Catalog) -> None:
    refine.refine_catalog(catalog, Counting())
    first = catalog.adapters()[2]
    catalog.update_card(first.id, dataclasses.replace(first.card, title="renamed"))
    report = refine.refine_catalog(catalog, Counting())
    assert (report.refined, report.cached) == (1, 6)
    assert catalog.get(first.id).description == "RENAMED"

    Counting.calls = []
    v2 = refine.refine_catalog(catalog, CountingV2())
    assert v2.refined == 7 and catalog.get_meta("refiner") == "counting@2"
    assert catalog.db["refinements"].count == 14  # both versions kept, keyed by name@version
    assert {r["refiner"] for r in catalog.db["refinements"].rows} == {"counting@1", "counting@2"}


def test_failures_are_recorded_and_keep_the_fallback(catalog: Catalog) -> None:
    bad = catalog.adapters()[3]
    catalog.update_card(bad.id, dataclasses.replace(bad.card, name="bad_one"))
    odd = catalog.adapters()[4]
    catalog.update_card(odd.id, dataclasses.replace(odd.card, name="odd_one"))
    report = refine.refine_catalog(catalog, Counting())
    assert (report.refined, report.failed) == (5, 2)
    errors = dict(report.errors)
    assert errors[bad.id] == "RuntimeError: cannot read this card"  # one line
    assert "not a Refinement" in errors[odd.id]
    rows = _rows(catalog)
    assert rows[bad.id]["error"] and rows[bad.id]["description"] is None
    fallback = catalog.get(bad.id)
    assert fallback.description == "card text 3" and fallback.weight == 0.9 and fallback.category == "concept"
    # Failures are retried on the next run; successes stay cached.
    Counting.calls = []
    again = refine.refine_catalog(catalog, Counting())
    assert sorted(Counting.calls) == ["bad_one", "odd_one"] and again.failed == 2 and again.cached == 5
    assert refine.refine_catalog(catalog, Counting(), retry_errors=False).failed == 0


def test_interrupt_keeps_finished_work_and_resumes(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(refine, "CHUNK", 2)
    stop = catalog.adapters()[5]
    catalog.update_card(stop.id, dataclasses.replace(stop.card, name="stop_here"))
    with pytest.raises(KeyboardInterrupt):
        refine.refine_catalog(catalog, Counting())
    assert len(_rows(catalog)) == 5  # everything before the interrupted card, committed

    reopened = Catalog(catalog.path)  # a new connection sees the committed rows
    assert reopened.db["refinements"].count == 5
    reopened.close()

    catalog.update_card(stop.id, dataclasses.replace(stop.card, name="fine_now"))
    Counting.calls = []
    report = refine.refine_catalog(catalog, Counting())
    assert Counting.calls == ["fine_now", "a6"]
    assert (report.refined, report.cached) == (2, 5)


def test_real_offline_refiner_on_the_sample_folder(tmp_path: Path, sample_folder: Path, plugins) -> None:
    from stylus_ext.catalog.scan import scan_folders

    cat = Catalog(tmp_path / "c.db")
    scan_folders(cat, [str(sample_folder)], plugins=plugins)
    report = refine.refine_catalog(cat, plugins.create("refiner", "offline"))
    assert report.failed == 0 and report.refined == cat.count() >= 60
    by_name = {a.card.path and Path(a.card.path).stem: a for a in cat.adapters()}
    assert by_name["medieval_castle"].category == "building"
    assert by_name["add_detail_tweaker"].category == "utility"
    assert by_name["hatsune_miku_v3"].category == "character"
    assert "<lora" not in by_name["watercolor_style_v2"].description
    cat.close()


def test_unattended_reindex_keeps_the_users_refiner_and_never_runs_a_paid_one(tmp_path, plugins):
    from stylus_ext.catalog.db import Catalog
    from stylus_ext.indexing import default_refiner

    catalog = Catalog(tmp_path / "c.db")
    assert default_refiner(catalog, plugins) == "offline"
    catalog.set_meta("refiner", "vision@1")  # refined on purpose with the paid VLM refiner
    assert default_refiner(catalog, plugins) is None
    catalog.set_meta("refiner", "gone@3")  # a plugin that is no longer installed
    assert default_refiner(catalog, plugins) == "offline"


def test_offline_refiner_files_an_untagged_animal_as_an_animal_and_recomputes_old_rules(tmp_path, plugins):
    cat = Catalog(tmp_path / "c.db")
    panda = cat.insert_card(sdk.AdapterCard(source="test", name="fluffy_red_panda", title="Fluffy Red Panda",
                                            path="/l/fluffy_red_panda.safetensors", activation_text="redpanda"))
    rin = cat.insert_card(sdk.AdapterCard(
        source="test", name="Rin_Asakura_pony", path="/l/Rin_Asakura_pony.safetensors",
        trigger_words=("asakura rin",), training_tags=("asakura rin", "1girl", "solo", "black hair", "blue eyes")))
    offline = plugins.create("refiner", "offline")
    key = refine.refiner_key(offline)
    # A result cached by the old rules (offline@1) is not reused: the version is part of the key.
    cat.db["refinements"].insert({"adapter_id": panda, "refiner": "offline@1", "card_hash": cat.row(panda)["card_hash"],
                                  "description": "old", "category": "character", "weight": 0.8, "error": None})
    assert key != "offline@1"
    report = refine.refine_catalog(cat, offline)
    assert report.refined == 2 and report.failed == 0
    assert cat.get(panda).category == "animal"
    assert cat.get(rin).category == "character"
    cat.close()
