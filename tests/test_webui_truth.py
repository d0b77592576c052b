"""Issue "truthful in every real WebUI": no tag for a file the WebUI cannot load, the user's own words
back byte for byte on paste-back, one catalog per WebUI, a replaced catalog used at once, no race
while indexing, messages a WebUI user can act on, the composer that ran recorded."""

from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from test_webui_generation import CASTLE, ui  # noqa: F401 - fixture
from webui_stub import WebUI, parse_generation_parameters, webui  # noqa: F401 - fixture

from stylus_ext.catalog.db import Catalog
from stylus_ext.catalog.readable import FATAL_PREFIXES, check_file, fatal_problem
from stylus_ext.sdk.cards.local import read_lora_card
from stylus_ext.webui import controls, guard, runtime, tab

pytestmark = pytest.mark.a1111
TESTS = Path(__file__).parent


# -- 1. broken files -------------------------------------------------------------------------------


@pytest.fixture
def broken_catalog(tmp_path: Path, sample_folder: Path, plugins: Any, encoder: Any) -> Path:
    """The sample LoRAs plus a random-bytes ``pirate_ship.safetensors``, scanned and indexed."""
    from stylus_ext.catalog.scan import scan_folders
    from stylus_ext.indexing import index_catalog

    folder = tmp_path / "Lora"
    shutil.copytree(sample_folder, folder)
    (folder / "pirate_ship.safetensors").write_bytes(os.urandom(4096))
    path = tmp_path / "catalog.db"
    catalog = Catalog(path)
    report = scan_folders(catalog, [str(folder)], plugins=plugins)
    assert any("pirate_ship" in p for p, _ in report.problems), "the scan flags it"
    index_catalog(catalog, plugins, encoder=encoder)
    catalog.close()
    return path


def test_every_header_problem_is_recognised_as_fatal(tmp_path: Path) -> None:
    cases = {"short": b"abc", "huge": (2**62).to_bytes(8, "little") + b"{}", "trunc": (500).to_bytes(8, "little"),
             "utf8": (4).to_bytes(8, "little") + b"\xff\xfe{}", "json": (4).to_bytes(8, "little") + b"{x:1",
             "list": (2).to_bytes(8, "little") + b"[]"}
    for name, data in cases.items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(data)
        card = read_lora_card(str(path))
        assert fatal_problem(card.problems), (name, card.problems)
        assert check_file(path).startswith(FATAL_PREFIXES), name
    sidecar_only = ("x.json is not valid JSON (bad); ignored",)
    assert fatal_problem(sidecar_only) == ""


def test_broken_file_is_never_a_candidate_nor_tagged(broken_catalog: Path, plugins: Any, encoder: Any) -> None:
    from stylus_ext.retrieve import Retriever

    catalog = Catalog(broken_catalog, create=False)
    retriever = Retriever(catalog, encoder=encoder, plugins=plugins)
    for installed_only in (True, False):
        found = [c.adapter.name for c in retriever.search("a pirate ship at sea", installed_only=installed_only)]
        assert "pirate_ship" not in found, found
    pirate = next(r for r in tab.adapter_rows(catalog) if r[1] == "pirate_ship")
    assert pirate[tab.TABLE_HEADERS.index("installed")] is False
    assert pirate[tab.TABLE_HEADERS.index("problem")].startswith("header length")
    catalog.close()


def test_installed_count_leaves_out_files_that_cannot_load(broken_catalog: Path) -> None:
    """The tab's and ``/stylus/v1/catalog``'s "N installed" agree with the rows' ``installed`` column
    (seen in A1111 v1.10.1: "13 installed" while the random-bytes file's row said installed: false)."""
    catalog = Catalog(broken_catalog, create=False)
    rows = tab.adapter_rows(catalog, "", 1000)
    catalog.close()
    on_disk = sum(1 for r in rows if r[tab.TABLE_HEADERS.index("problem")] or r[tab.TABLE_HEADERS.index("installed")])
    loadable = sum(1 for r in rows if r[tab.TABLE_HEADERS.index("installed")])
    assert loadable < on_disk, "the fixture has a broken installed file"
    assert runtime.catalog_state(broken_catalog).installed == loadable


def test_file_broken_after_the_scan_gets_no_tag_and_one_message(sample_catalog: Path, plugins: Any) -> None:
    data = {"stylus_catalog_path": str(sample_catalog), "stylus_composer_offline_keep": "0"}
    rt = runtime.Runtime(opts=lambda: data, plugins=lambda: plugins)
    options = controls.RunOptions(mask="all", base_model="any")
    first = rt.plan_images([CASTLE], [""], [1], options).plans[0]
    assert first.adapters, "the castle prompt must pick adapters, or this proves nothing"
    victim = rt.catalog().get(first.adapters[0].id)
    path = Path(victim.card.path)  # a file of the session's sample folder: restored afterwards
    original, st = path.read_bytes(), path.stat()
    try:
        path.write_bytes(b"\x00" * 64)  # replaced by garbage while the WebUI runs
        result = rt.plan_images([CASTLE], [""], [1], options)
        assert victim.name not in {a.name for a in result.plans[0].adapters}
        assert f"<lora:{victim.name}:" not in result.plans[0].prompt
        assert any(victim.name in w and "left out" in w for w in result.warnings), result.warnings
        again = rt.plan_images([CASTLE], [""], [2], options)
        assert not any(victim.name in w for w in again.warnings), "told once"
    finally:
        path.write_bytes(original)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        rt.close()


def test_adapter_not_on_disk_never_gets_a_tag(sample_catalog: Path, plugins: Any) -> None:
    assert "allow_downloads" not in [c.name for c in controls.CONTROLS], "the control that downloaded nothing"
    rt = runtime.Runtime(opts=lambda: {"stylus_catalog_path": str(sample_catalog)}, plugins=lambda: plugins)
    assert rt.pipeline_settings(controls.RunOptions()).installed_only
    catalog = rt.catalog()
    from stylus_ext import sdk

    aid = catalog.insert_card(sdk.AdapterCard(source="civitai", name="remote_castle", title="Castle (Civitai card)"))
    catalog.db.conn.commit()
    assert rt.guard.problem(catalog.get(aid)) == guard.NOT_ON_DISK
    assert rt.guard.problem(catalog.adapters("path is not null")[0]) == ""
    rt.close()


# -- 2. paste-back ----------------------------------------------------------------------------------


def _composition_prompts() -> list[str]:
    """Every prompt written in the composition tests (pipeline, offline composer, contract, rewrite)."""
    found: list[str] = []
    for name in ("test_pipeline.py", "test_offline_composer.py", "test_compose_contract.py", "test_rewrite.py"):
        text = (TESTS / name).read_text(encoding="utf-8")
        for m in re.finditer(r'"((?:a|an|portrait|hatsune|miniature)\b[^"]{4,160})"', text):
            if m.group(1) not in found and m.group(1) == m.group(1).strip():
                found.append(m.group(1))
    return found


def test_paste_back_gives_the_users_prompt_byte_for_byte(ui: WebUI) -> None:  # noqa: F811
    prompts = [*_composition_prompts(), "an origami steam locomotive inside a gothic cathedral, claymation, pixel art",
               CASTLE + ", watercolor painting", "a cat,  watercolor ,pixel art"]  # (the WebUI trims line ends)
    assert len(prompts) >= 15
    runner = ui.runner()
    changed = 0
    for family in ("SD1", "SDXL"):
        ui.set_family(family)
        for prompt in prompts:
            processed = ui.generate(runner, runner.ui_args("Stylus", mask="all"), prompt=prompt, seed=3,
                                    negative_prompt="blurry", batch_size=2)
            for im in processed.images:
                params, _ = ui.paste(runner, im.infotext)
                assert params["Prompt"] == prompt, (im.prompt, params["Prompt"])
                assert params.get("Negative prompt", "") == "blurry"
                changed += im.prompt != prompt
    assert changed >= 10, "most prompts must get adapters, or the paste-back proves little"


# -- 4/11.7. infotext ------------------------------------------------------------------------------


def test_infotext_records_the_composer_that_ran(ui: WebUI) -> None:  # noqa: F811
    runner = ui.runner()
    processed = ui.generate(runner, runner.ui_args("Stylus"), prompt=CASTLE, seed=1)
    settings = parse_generation_parameters(processed.images[0].infotext)["Stylus settings"]
    assert "composer=offline" in settings and "composer=default" not in settings


# -- 5/6. one catalog per WebUI, replaced catalogs ---------------------------------------------------


def test_default_catalog_is_per_webui_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, plugins: Any) -> None:
    import sys
    import types

    paths = {}
    for root in ("a1111", "forge-neo"):
        module = types.ModuleType("modules.paths_internal")
        module.data_path = str(tmp_path / root)
        monkeypatch.setitem(sys.modules, "modules.paths_internal", module)
        paths[root] = runtime.Runtime(opts=dict, plugins=lambda: plugins).catalog_path()
    assert paths["a1111"] != paths["forge-neo"] and all(p.name == "catalog.db" for p in paths.values())
    assert "a1111" in str(paths["a1111"]) and "forge-neo" in str(paths["forge-neo"])
    custom = runtime.Runtime(opts=lambda: {"stylus_catalog_path": str(tmp_path / "mine.db")}, plugins=lambda: plugins)
    assert custom.catalog_path() == tmp_path / "mine.db"


def test_replaced_catalog_is_used_at_once(sample_catalog: Path, plugins: Any, tmp_path: Path) -> None:
    data = {"stylus_catalog_path": str(sample_catalog), "stylus_composer_offline_keep": "0"}
    rt = runtime.Runtime(opts=lambda: data, plugins=lambda: plugins)
    options = controls.RunOptions(mask="all", base_model="any")
    assert rt.plan_images([CASTLE], [""], [1], options).plans[0].adapters
    rebuilt = tmp_path / "rebuilt.db"
    shutil.copy(sample_catalog, rebuilt)
    fresh = Catalog(rebuilt)
    fresh.db.execute("update adapters set banned = 1")
    fresh.db.conn.commit()
    fresh.close()
    os.replace(rebuilt, sample_catalog)  # deleted and rebuilt while the WebUI runs
    assert rt.plan_images([CASTLE], [""], [1], options).plans[0].adapters == ()
    rt.close()


# -- 7. race while indexing ------------------------------------------------------------------------


def test_adapters_added_during_a_search_cause_no_key_error(sample_catalog: Path, plugins: Any, encoder: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from stylus_ext.retrieve import Retriever

    catalog = Catalog(sample_catalog)
    retriever = Retriever(catalog, encoder=encoder, plugins=plugins)
    real_pool = Retriever.pool

    def pool_while_indexing(self: Retriever, *args: Any, **kwargs: Any) -> Any:
        out = real_pool(self, *args, **kwargs)
        other = Catalog(sample_catalog)  # the background refresh adds a (pinned) adapter meanwhile
        row = next(other.rows("path is not null"))
        other.db.execute("insert into adapters (source, name, pinned, banned) values (?, ?, 1, 0)",
                         [row["source"], "added_meanwhile"])
        other.db.conn.commit()
        other.close()
        return out

    monkeypatch.setattr(Retriever, "pool", pool_while_indexing)
    found = retriever.search("a castle on a hill")
    assert found and all(c.adapter.name for c in found)
    catalog.close()


# -- 8. messages -----------------------------------------------------------------------------------


def test_failed_index_build_is_said_not_building_forever(tmp_path: Path, plugins: Any) -> None:
    rt = runtime.Runtime(opts=lambda: {"stylus_catalog_path": str(tmp_path / "c.db")}, plugins=lambda: plugins)
    rt.refresh_error = lambda: "OSError: no encoder weights"
    warning = rt.plan_images(["a cat"], [""], [1], controls.RunOptions()).warnings[0]
    assert "could not be built" in warning and "no encoder weights" in warning and "background" not in warning


def test_refresh_failure_is_not_retried_on_every_generation(monkeypatch: pytest.MonkeyPatch, plugins: Any) -> None:
    from stylus_ext.webui import lora_source

    refresher = lora_source.Refresher(runtime.Runtime(opts=dict, plugins=lambda: plugins))
    runs: list[int] = []

    def failing_run(force: bool) -> None:
        runs.append(1)
        refresher.last_error, refresher._failed_at = "x", lora_source.time.monotonic()

    monkeypatch.setattr(refresher, "_run", failing_run)
    assert refresher.start("first")
    refresher.join()
    assert not refresher.start("every generation"), "a failed build waits before the next automatic try"
    assert refresher.start("the tab's button", force=True)
    refresher.join()
    assert len(runs) == 2


def test_unknown_composer_is_said(ui: WebUI) -> None:  # noqa: F811
    runner = ui.runner()
    args = runner.api_args("stylus", ["paper", 4, 0.8, True, "not_installed"])
    processed = ui.generate(runner, args, prompt=CASTLE, seed=1)
    assert "composer 'not_installed' is not installed" in processed.comments


class _Flaky:
    calls = 0

    def compose(self, request: Any) -> Any:
        type(self).calls += 1
        raise ConnectionError("connection refused (misconfigured server)")


def test_failing_composer_is_skipped_for_a_while(sample_catalog: Path, plugins: Any) -> None:
    class Plugins:
        def __getattr__(self, name: str) -> Any:
            return getattr(plugins, name)

        def create(self, kind: str, name: str, **options: Any) -> Any:
            return _Flaky() if kind == "composer" and name == "flaky" else plugins.create(kind, name, **options)

    rt = runtime.Runtime(opts=lambda: {"stylus_catalog_path": str(sample_catalog)}, plugins=Plugins)
    first = rt.plan_images([CASTLE], [""], [1], controls.RunOptions(composer="flaky"))
    second = rt.plan_images(["a cat"], [""], [1], controls.RunOptions(composer="flaky"))
    assert _Flaky.calls == 1, "the second generation does not wait for the failing server again"
    assert any("skipped for the next 5 minutes" in w for w in first.warnings), first.warnings
    assert not any("skipped" in w for w in second.warnings), "said once"
    rt.close()


def test_webui_users_are_not_told_to_run_cli_commands() -> None:
    text = runtime.for_webui("the catalog has no vector index yet (run `stylus index`): composed on word evidence")
    assert "stylus index" not in text and "Refresh catalog" in text


def test_background_thread_uses_its_own_encoder_options(plugins: Any) -> None:
    """Two runtimes with different encoder settings, used from two threads, each get their own."""
    results: dict[int, Any] = {}

    def use(size: int) -> None:
        rt = runtime.Runtime(opts=lambda: {"stylus_encoder_transformers_batch_size": size}, plugins=lambda: plugins)
        results[size] = rt.encoder().config["batch_size"]

    threads = [threading.Thread(target=use, args=(n,)) for n in (3, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {3: 3, 5: 5}


def test_an_image_of_a_batch_regenerates_alone_with_its_adapters(ui: WebUI) -> None:  # noqa: F811
    runner = ui.runner()
    processed = ui.generate(runner, runner.ui_args("Stylus"), prompt=CASTLE, seed=100, batch_size=4)
    second = processed.images[1]
    params, values = ui.paste(runner, second.infotext)
    assert values["script_txt2img_stylus_mask_seed"] == 100 and int(params["Seed"]) == 101
    alone = ui.generate(runner, runner.ui_args("Stylus", mask_seed=100), prompt=params["Prompt"], seed=101)
    assert alone.images[0].active == second.active and alone.images[0].prompt == second.prompt
    _, first = ui.paste(runner, processed.images[0].infotext)
    assert first["script_txt2img_stylus_mask_seed"] == -1, "its own seed: nothing to restore"


def test_first_per_webui_catalog_adopts_this_webuis_entries_from_the_shared_one(
        tmp_path: Path, sample_folder: Path, plugins: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from stylus_ext import indexing
    from stylus_ext.catalog.scan import scan_folders
    from stylus_ext.paths import default_catalog_path
    from stylus_ext.webui import lora_source

    monkeypatch.setenv("STYLUS_HOME", str(tmp_path / "home"))
    here, other = tmp_path / "a1111" / "Lora", tmp_path / "neo" / "Lora"
    shutil.copytree(sample_folder, here)
    shutil.copytree(sample_folder, other)
    shared = default_catalog_path()
    shared.parent.mkdir(parents=True)
    old = Catalog(shared)
    scan_folders(old, [str(here), str(other)], plugins=plugins)
    mine = old.adapters("path like ?", [f"{here}%"])[0]
    old.set_controls(mine.id, pinned=True, banned=False, weight_override=0.5)
    total = old.count("path is not null")
    old.close()
    rt = runtime.Runtime(opts=lambda: {"stylus_lora_dirs": str(here)}, plugins=lambda: plugins)
    monkeypatch.setattr(indexing, "index_catalog", lambda *a, **k: "indexed")
    refresher = lora_source.Refresher(rt)
    assert refresher.start("first start", force=True)
    refresher.join(120)
    assert not refresher.last_error, refresher.last_error
    new = Catalog(rt.catalog_path())
    installed = [r["path"] for r in new.rows("path is not null")]
    assert installed and all(p.startswith(str(here)) for p in installed) and len(installed) == total // 2
    [kept] = new.adapters("path = ?", [mine.card.path])
    assert kept.pinned and kept.weight_override == 0.5, "the user's pins and weights survive the move"
    new.close()
    assert Catalog(shared, create=False).count("path is not null") == total, "the shared file is left alone"
