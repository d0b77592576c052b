"""``stylus match``: local files → Civitai cards by hash (bulk + single), misses remembered, one entry."""

from __future__ import annotations

import json

import pytest
from civitai_server import make_blob
from helpers_civitai import fast_client, make_source, start_fake
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from stylus_ext.catalog.db import Catalog
from stylus_ext.catalog.scan import scan_folders
from stylus_ext.civitai.match import is_known_missing, match_files
from stylus_ext.civitai.sync import sync_civitai
from stylus_ext.cli import main


@pytest.fixture
def fake():
    server = start_fake(8)
    yield server
    server.stop()


def _folder(tmp_path, fake, known=(1, 2, 3), unknown=2, edited=()):
    """A LoRA folder: files whose bytes Civitai knows (by model index), unknown files, and files whose
    metadata was edited (other SHA256, same AutoV3)."""
    folder = tmp_path / "Lora"
    folder.mkdir()
    for i in known:
        (folder / f"mine_{i}.safetensors").write_bytes(fake.blobs[51000 + i])
    for i in edited:
        tensors = st_load(fake.blobs[51000 + i])
        (folder / f"edited_{i}.safetensors").write_bytes(st_save(tensors, metadata={"ss_output_name": "renamed"}))
    for j in range(unknown):
        (folder / f"homemade_{j}.safetensors").write_bytes(make_blob(900 + j))
    return folder


def _catalog(tmp_path, plugins, folder):
    catalog = Catalog(tmp_path / "catalog.db")
    scan_folders(catalog, [str(folder)], plugins=plugins)
    return catalog


def test_bulk_match_autov3_fallback_and_remembered_misses(plugins, fake, tmp_path) -> None:
    folder = _folder(tmp_path, fake, known=(1, 2, 3), unknown=2, edited=(5,))
    catalog = _catalog(tmp_path, plugins, folder)
    assert catalog.count() == 6
    names = {r["path"]: r["name"] for r in catalog.rows()}
    client = fast_client(fake)
    report = match_files(catalog, client)
    assert report.error == "" and report.candidates == 6
    assert report.matched == 4 and report.missing == 2
    # 1 bulk POST for all 6 SHA256, then one AutoV3 GET for each of the 3 misses (1 edited + 2 unknown)
    assert len(fake.requests_to("by-hash-bulk")) == 1 and len(fake.requests_to("by-hash")) == 3
    assert report.requests == 4
    assert len(json.loads(fake.requests_to("by-hash-bulk")[0]["body"])) == 6
    row = next(catalog.rows("path like ?", ["%mine_2.safetensors"]))
    assert row["civitai_version_id"] == 51002 and row["civitai_model_id"] == 1002
    assert row["name"] == names[row["path"]]  # still the name <lora:...> needs (local facts kept)
    assert "wcstyle2" in json.loads(row["trigger_words"])
    edited = next(catalog.rows("path like ?", ["%edited_5.safetensors"]))
    assert edited["civitai_version_id"] == 51005
    assert catalog.count() == 6
    homemade = next(catalog.rows("path like ?", ["%homemade_0.safetensors"]))
    assert is_known_missing(catalog, homemade["sha256"])

    again = match_files(catalog, client)  # misses are remembered: no request at all
    assert again.candidates == 2 and again.known_missing == 2 and again.requests == 0
    retry = match_files(catalog, client, retry_missing=True)
    assert retry.missing == 2 and retry.requests == 3


def test_single_lookup_when_bulk_is_unavailable(plugins, fake, tmp_path) -> None:
    fake.bulk_enabled = False
    catalog = _catalog(tmp_path, plugins, _folder(tmp_path, fake, known=(1, 4), unknown=1))
    report = match_files(catalog, fast_client(fake), autov3_fallback=False)
    assert report.matched == 2 and report.missing == 1
    singles = [r["path"].rsplit("/", 1)[-1] for r in fake.requests_to("by-hash")]
    assert len(singles) == 3 and all(len(h) == 64 for h in singles)


def test_file_and_synced_card_are_one_entry(plugins, fake, tmp_path) -> None:
    catalog = Catalog(tmp_path / "catalog.db")
    sync_civitai(catalog, make_source(plugins, fake))  # 8 remote cards
    assert catalog.count() == 8
    scan_folders(catalog, [str(_folder(tmp_path, fake, known=(2, 6), unknown=1))], plugins=plugins)
    assert catalog.count() == 11
    report = match_files(catalog, fast_client(fake))
    # both known files join their synced cards by hash locally: no lookup needed for them
    assert report.joined_locally == 2 and report.matched == 0 and report.missing == 1
    assert catalog.count() == 9
    rows = list(catalog.rows("civitai_version_id = ?", [51006]))
    assert len(rows) == 1 and rows[0]["path"].endswith("mine_6.safetensors")


def test_match_then_sync_keeps_one_entry(plugins, fake, tmp_path) -> None:
    catalog = _catalog(tmp_path, plugins, _folder(tmp_path, fake, known=(3,), unknown=0))
    assert match_files(catalog, fast_client(fake)).matched == 1
    sync_civitai(catalog, make_source(plugins, fake))
    assert catalog.count() == 8
    rows = list(catalog.rows("civitai_version_id = ?", [51003]))
    assert len(rows) == 1 and rows[0]["path"].endswith("mine_3.safetensors")


def test_write_info_sidecar_is_opt_in_and_rescan_keeps_the_match(plugins, fake, tmp_path) -> None:
    folder = _folder(tmp_path, fake, known=(1, 2), unknown=0)
    catalog = _catalog(tmp_path, plugins, folder)
    assert match_files(catalog, fast_client(fake), ids=[r["id"] for r in catalog.rows()][:1]).matched == 1
    assert not list(folder.glob("*.civitai.info"))  # not written unless asked
    report = match_files(catalog, fast_client(fake), write_info_files=True)
    assert report.candidates == 1 and report.info_written == 1
    written = list(folder.glob("*.civitai.info"))
    assert len(written) == 1
    info = json.loads(written[0].read_text())
    assert info["id"] in (51001, 51002) and info["modelId"] == info["id"] - 50_000
    # a fresh catalog reads the sidecar: that file is matched without any request
    fresh = Catalog(tmp_path / "fresh.db")
    scan_folders(fresh, [str(folder)], plugins=plugins)
    stem = written[0].name.removesuffix(".civitai.info")
    assert next(fresh.rows("path like ?", [f"%{stem}.safetensors"]))["civitai_version_id"] == info["id"]
    before = len(fake.log)
    assert match_files(fresh, fast_client(fake)).candidates == 1  # only the other one is asked about
    assert len(fake.log) == before + 1


def test_offline_match_keeps_what_it_has(plugins, fake, tmp_path) -> None:
    catalog = _catalog(tmp_path, plugins, _folder(tmp_path, fake, known=(1,), unknown=1))
    client = fast_client(fake)
    fake.stop()
    report = match_files(catalog, client)
    assert "not reachable" in report.error and report.matched == 0 and report.missing == 0
    assert all(r["sha256"] for r in catalog.rows())  # hashes are cached for the next run
    assert not any(is_known_missing(catalog, r["sha256"]) for r in catalog.rows())  # offline ≠ "not on Civitai"


def test_cli_match(plugins, fake, tmp_path, monkeypatch, capsys) -> None:
    folder = _folder(tmp_path, fake, known=(1,), unknown=1)
    db = tmp_path / "cli.db"
    catalog = Catalog(db)
    scan_folders(catalog, [str(folder)], plugins=plugins)
    catalog.close()
    monkeypatch.setenv("STYLUS_CIVITAI_MIN_INTERVAL", "0")
    assert main(["--catalog", str(db), "match", "--api-base", fake.base_url, "--write-info"]) == 0
    out = capsys.readouterr().out
    assert "1 matched" in out and "1 not on Civitai" in out and "1 .civitai.info written" in out
    assert (folder / "mine_1.civitai.info").exists()
