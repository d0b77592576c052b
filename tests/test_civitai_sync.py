"""``stylus sync civitai`` against a real HTTP server: pages, faults, crash + resume, updates, secrets."""

from __future__ import annotations

import json
import logging

import pytest
from civitai_server import Fault
from helpers_civitai import SECRET, files_contain, make_source, start_fake

from stylus_ext.catalog.db import Catalog
from stylus_ext.civitai.sync import STATE_KEY, load_state, sync_civitai
from stylus_ext.cli import main
from stylus_ext.sdk.civitai.pages import CivitaiFilters, next_cursor

N_MODELS = 23  # page size 5 → 5 pages (5, 5, 5, 5, 3)


@pytest.fixture
def fake():
    server = start_fake(N_MODELS)
    yield server
    server.stop()


@pytest.fixture
def catalog(tmp_path):
    cat = Catalog(tmp_path / "catalog.db")
    yield cat
    cat.close()


def _version_ids(catalog: Catalog) -> list[int]:
    return [r["civitai_version_id"] for r in catalog.rows()]


def test_full_sync_pages_cards_and_prompts(plugins, fake, catalog) -> None:
    source = make_source(plugins, fake)
    report = sync_civitai(catalog, source)
    assert report.error == "" and report.complete
    assert report.pages == 5 and report.models == N_MODELS and report.added == N_MODELS
    assert report.requests == 5  # one request per page, nothing else
    ids = _version_ids(catalog)
    assert len(ids) == len(set(ids)) == N_MODELS
    row = next(catalog.rows("civitai_version_id = ?", [51003]))
    assert row["source"] == "civitai" and row["path"] is None
    prompts = json.loads(row["example_prompts"])
    assert any("lighthouse" in p for p in prompts)
    assert not any("explicit" in p for p in prompts)  # NSFW example images dropped with nsfw off
    requests = fake.requests_to("models")
    assert requests[0]["query"]["types"] == ["LORA", "LoCon", "DoRA"]
    assert requests[0]["query"]["nsfw"] == ["false"]
    assert [r["query"].get("cursor", [None])[0] for r in requests] == [None, "c5", "c10", "c15", "c20"]
    assert load_state(catalog)["complete"] is True and load_state(catalog)["cursor"] is None


def test_500_and_429_mid_sync_are_retried(plugins, fake, catalog) -> None:
    fake.faults.append(Fault("models", 500, when=lambda q: q.get("cursor") == ["c10"]))
    fake.faults.append(Fault("models", 429, times=2, when=lambda q: q.get("cursor") == ["c15"]))
    report = sync_civitai(catalog, make_source(plugins, fake))
    assert report.complete and report.added == N_MODELS
    assert report.requests == 5 + 3 and report.retries == 3
    assert catalog.count() == N_MODELS


def test_crash_after_page_2_then_resume_loses_and_duplicates_nothing(plugins, fake, catalog) -> None:
    def crash(page, report):
        if page.number == 2:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        sync_civitai(catalog, make_source(plugins, fake), on_page=crash)
    assert catalog.count() == 10  # pages 1-2 committed
    state = load_state(catalog)
    assert state["cursor"] == "c10" and state["page"] == 3
    before = len(fake.requests_to("models"))

    report = sync_civitai(catalog, make_source(plugins, fake))
    assert report.resumed_from_page == 3 and report.complete
    assert report.pages == 3 and report.added == N_MODELS - 10 and report.unchanged == 0
    resumed = fake.requests_to("models")[before:]
    assert resumed[0]["query"]["cursor"] == ["c10"]  # pages 1-2 were not fetched again
    ids = _version_ids(catalog)
    assert len(ids) == len(set(ids)) == N_MODELS


def test_crash_mid_page_rolls_back_that_page_and_resume_refetches_it(plugins, fake, catalog, monkeypatch) -> None:
    from stylus_ext.catalog import store

    real = store.upsert
    calls = {"n": 0}

    def flaky(cat, card):
        calls["n"] += 1
        if calls["n"] == 13:  # third card of page 3
            raise KeyboardInterrupt
        return real(cat, card)

    monkeypatch.setattr(store, "upsert", flaky)
    with pytest.raises(KeyboardInterrupt):
        sync_civitai(catalog, make_source(plugins, fake))
    assert catalog.count() == 10 and load_state(catalog)["cursor"] == "c10"
    monkeypatch.setattr(store, "upsert", real)
    report = sync_civitai(catalog, make_source(plugins, fake))
    assert report.added == N_MODELS - 10 and catalog.count() == N_MODELS


def test_offline_mid_sync_stops_cleanly_and_resumes(plugins, fake, catalog) -> None:
    fake.faults.append(Fault("models", "close", times=100, when=lambda q: q.get("cursor") == ["c15"]))
    report = sync_civitai(catalog, make_source(plugins, fake))
    assert "not reachable" in report.error and not report.complete
    assert catalog.count() == 15 and load_state(catalog)["cursor"] == "c15"
    fake.faults.clear()
    report = sync_civitai(catalog, make_source(plugins, fake))
    assert report.resumed_from_page == 4 and report.added == N_MODELS - 15
    assert catalog.count() == N_MODELS


def test_changed_models_update_their_entries(plugins, fake, catalog) -> None:
    sync_civitai(catalog, make_source(plugins, fake))
    first = next(catalog.rows("civitai_version_id = ?", [51004]))
    fake.models[4]["description"] = "<p>Now an <i>oil painting</i> style.</p>"
    fake.models[4]["modelVersions"][0]["trainedWords"] = ["oilstyle"]
    report = sync_civitai(catalog, make_source(plugins, fake))  # last run completed: starts over
    assert report.resumed_from_page is None
    assert report.updated == 1 and report.unchanged == N_MODELS - 1 and report.added == 0
    assert report.changed_ids == [first["id"]]
    row = next(catalog.rows("civitai_version_id = ?", [51004]))
    assert row["id"] == first["id"] and "oil painting" in row["description"]
    assert json.loads(row["trigger_words"]) == ["oilstyle"]
    assert catalog.count() == N_MODELS


def test_client_side_filters(plugins, fake, catalog) -> None:
    fake.models[7]["nsfw"] = True
    source = make_source(plugins, fake, min_downloads=500, tags="watercolor", base_models="SDXL 1.0")
    report = sync_civitai(catalog, source)
    rows = list(catalog.rows())
    # downloads = 100*i ≥ 500 → i ≥ 5; "watercolor" tag → odd i; SDXL 1.0 → odd i; i=7 is NSFW
    expected = {50_000 + 1000 + i for i in range(5, N_MODELS) if i % 2 and i != 7}
    assert {r["civitai_version_id"] for r in rows} == expected
    assert report.dropped["nsfw"] == 1 and report.dropped["downloads"] == 5
    assert fake.requests_to("models")[0]["query"]["baseModels"] == ["SDXL 1.0"]
    assert fake.requests_to("models")[0]["query"]["tag"] == ["watercolor"]


def test_limit_stops_at_page_boundary_and_next_run_continues(plugins, fake, catalog) -> None:
    r1 = sync_civitai(catalog, make_source(plugins, fake, limit=7))
    assert r1.models == 7 and not r1.complete and catalog.count() == 7
    assert [r["query"]["limit"] for r in fake.requests_to("models")] == [["5"], ["2"]]
    r2 = sync_civitai(catalog, make_source(plugins, fake, limit=7))
    assert r2.resumed_from_page == 3 and catalog.count() == 14


def test_changed_filters_start_over(plugins, fake, catalog) -> None:
    def crash(page, report):
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        sync_civitai(catalog, make_source(plugins, fake), on_page=crash)
    report = sync_civitai(catalog, make_source(plugins, fake, min_downloads=1))
    assert report.resumed_from_page is None and report.complete
    assert CivitaiFilters().fingerprint() != CivitaiFilters(min_downloads=1).fingerprint()
    assert CivitaiFilters(limit=5).fingerprint() == CivitaiFilters().fingerprint()


def test_next_cursor_shapes() -> None:
    assert next_cursor({"nextCursor": "abc"}) == "abc"
    assert next_cursor({"nextPage": "https://civitai.com/api/v1/models?limit=100&cursor=12%7C34"}) == "12|34"
    assert next_cursor({"nextCursor": None}) is None and next_cursor("garbage") is None


def test_repeated_cursor_does_not_loop(plugins, fake, catalog) -> None:
    page = json.dumps({"items": [], "metadata": {"nextCursor": "c5"}}).encode()
    fake.faults.append(Fault("models", page, times=5, when=lambda q: q.get("cursor") == ["c5"]))
    report = sync_civitai(catalog, make_source(plugins, fake))
    assert report.pages == 2 and catalog.count() == 5


def test_api_key_never_reaches_logs_catalog_or_errors(plugins, fake, tmp_path, caplog, monkeypatch) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("STYLUS_CIVITAI_API_KEY", SECRET)
    fake.faults.append(Fault("models", 429, when=lambda q: q.get("cursor") == ["c5"]))
    fake.faults.append(Fault("models", 401, when=lambda q: q.get("cursor") == ["c10"]))
    cat = Catalog(tmp_path / "secret" / "catalog.db")
    source = make_source(plugins, fake)
    assert source.client.has_api_key
    report = sync_civitai(cat, source)
    assert report.error.startswith("HTTP 401") and cat.count() == 10
    assert all(r["headers"].get("Authorization") == f"Bearer {SECRET}" for r in fake.requests_to("models"))
    cat.close()
    assert SECRET not in caplog.text and SECRET not in report.error
    assert files_contain(tmp_path / "secret", SECRET) == []


def test_cli_sync_and_plugin_env_base_url(fake, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("STYLUS_CIVITAI_BASE_URL", fake.base_url)
    monkeypatch.setenv("STYLUS_CIVITAI_MIN_INTERVAL", "0")
    monkeypatch.setenv("STYLUS_CIVITAI_PAGE_SIZE", "10")
    db = tmp_path / "cli.db"
    assert main(["--catalog", str(db), "sync", "civitai", "--limit", "10"]) == 0
    out = capsys.readouterr().out
    assert "10 added" in out and "next run continues" in out
    assert main(["--catalog", str(db), "sync", "civitai", "--api-base", fake.base_url, "--delay", "0"]) == 0
    out = capsys.readouterr().out
    assert "resumed at page 2" in out and f"{N_MODELS - 10} added" in out
    cat = Catalog(db)
    assert cat.count() == N_MODELS and json.loads(cat.get_meta(STATE_KEY))["complete"]
    cat.close()


def test_cli_sync_offline_message(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("STYLUS_CIVITAI_BACKOFF_START", "0.001")
    code = main(["--catalog", str(tmp_path / "c.db"), "sync", "civitai", "--api-base", "http://127.0.0.1:9/api/v1",
                 "--delay", "0"])
    err = capsys.readouterr().err
    assert code == 1 and "not reachable" in err


def test_source_plugin_cards_and_stop(plugins, fake) -> None:
    from stylus_ext import sdk

    assert "civitai" in plugins.names("source")
    assert plugins.backend_class("source", "civitai").kind == "cards"
    source = make_source(plugins, fake)
    seen: list[tuple[int, int | None]] = []
    cards = list(source.cards(sdk.SourceContext(progress=lambda done, total: seen.append((done, total)))))
    assert len(cards) == N_MODELS and all(c.source == "civitai" for c in cards)
    assert [d for d, _ in seen] == [5, 10, 15, 20, 23]
    stopping = sdk.SourceContext(should_stop=lambda: len(fake.requests_to("models")) > 6)
    assert len(list(make_source(plugins, fake).cards(stopping))) == 5
    source.close()
