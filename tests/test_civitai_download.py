"""On-demand downloads from a real HTTP server: redirect + Content-Disposition, Range resume, hash
check, size/base-model limits, time budget, listeners, CLI."""

from __future__ import annotations

import hashlib
import json
import logging
import time

import pytest
from helpers_civitai import SECRET, fast_client, files_contain, make_source, start_fake

from stylus_ext.catalog.db import Catalog
from stylus_ext.catalog.scan import scan_folders
from stylus_ext.civitai.download import (
    DownloadSettings,
    add_install_listener,
    download_adapter,
    remove_install_listener,
)
from stylus_ext.civitai.ensure import ensure_downloaded
from stylus_ext.civitai.filenames import filename_from_disposition, safe_filename
from stylus_ext.civitai.sync import sync_civitai
from stylus_ext.cli import main


@pytest.fixture
def fake():
    server = start_fake(6, blob_size=4096)  # ~64 KB files
    yield server
    server.stop()


@pytest.fixture
def catalog(plugins, fake, tmp_path):
    cat = Catalog(tmp_path / "catalog.db")
    sync_civitai(cat, make_source(plugins, fake))
    yield cat
    cat.close()


def _id(catalog: Catalog, version_id: int) -> int:
    return next(catalog.rows("civitai_version_id = ?", [version_id]))["id"]


def test_download_redirect_disposition_verify_sidecar_and_catalog(fake, catalog, tmp_path) -> None:
    lora = tmp_path / "Lora"
    seen = []
    adapter_id = _id(catalog, 51002)
    result = download_adapter(catalog, adapter_id, lora, client=fast_client(fake), on_installed=seen.append)
    assert result.status == "downloaded", result.reason
    target = lora / "style_51002.safetensors"  # the Content-Disposition name
    assert result.path == str(target) and seen == [target]
    assert target.read_bytes() == fake.blobs[51002]
    assert [r["route"] for r in fake.log[-3:]] == ["download", "file", "version"]  # 302 → file, then sidecar JSON
    info = json.loads((lora / "style_51002.civitai.info").read_text())
    assert info["id"] == 51002 and info["files"][0]["hashes"]["SHA256"]
    row = catalog.row(adapter_id)
    assert row["path"] == str(target) and row["size"] == len(fake.blobs[51002]) and row["name"] == "style_51002"
    assert catalog.count() == 6 and not list(lora.glob("*.part"))
    again = download_adapter(catalog, adapter_id, lora, client=fast_client(fake))
    assert again.status == "installed"  # never a second download


def test_rescan_after_download_keeps_one_entry(plugins, fake, catalog, tmp_path) -> None:
    lora = tmp_path / "Lora"
    download_adapter(catalog, _id(catalog, 51001), lora, client=fast_client(fake))
    scan_folders(catalog, [str(lora)], plugins=plugins)
    rows = list(catalog.rows("civitai_version_id = ?", [51001]))
    assert len(rows) == 1 and rows[0]["path"].endswith("style_51001.safetensors") and catalog.count() == 6


def test_corrupted_download_is_deleted_and_reported(fake, catalog, tmp_path) -> None:
    fake.corrupt.add(51003)
    lora = tmp_path / "Lora"
    result = download_adapter(catalog, _id(catalog, 51003), lora, client=fast_client(fake))
    assert result.status == "failed" and "SHA256 mismatch" in result.reason
    assert list(lora.iterdir()) == []  # neither the file nor its part is left
    assert catalog.row(_id(catalog, 51003))["path"] is None


def test_dropped_connection_resumes_with_range(fake, catalog, tmp_path) -> None:
    size = len(fake.blobs[51004])
    fake.drop_after[51004] = size // 3
    result = download_adapter(catalog, _id(catalog, 51004), tmp_path / "Lora", client=fast_client(fake),
                              chunk_size=1024)
    assert result.status == "downloaded", result.reason
    files = fake.requests_to("file")
    assert len(files) == 2 and "Range" not in files[0]["headers"]
    resumed_at = int(files[1]["headers"]["Range"].removeprefix("bytes=").rstrip("-"))
    assert size // 3 - 1024 < resumed_at <= size // 3  # at most the chunk in flight is fetched again
    assert hashlib.sha256((tmp_path / "Lora" / "style_51004.safetensors").read_bytes()).hexdigest() == \
        catalog.row(_id(catalog, 51004))["sha256"]


def test_interrupted_download_resumes_in_a_later_call(fake, catalog, tmp_path) -> None:
    size = len(fake.blobs[51005])
    fake.drop_after[51005] = size // 2
    adapter_id = _id(catalog, 51005)
    first = download_adapter(catalog, adapter_id, tmp_path / "Lora", client=fast_client(fake), max_resumes=0,
                             chunk_size=1024)
    assert first.status == "failed" and "partial file kept" in first.reason
    parts = list((tmp_path / "Lora").glob(".stylus-*.part"))
    kept = parts[0].stat().st_size
    assert len(parts) == 1 and size // 2 - 1024 < kept <= size // 2
    second = download_adapter(catalog, adapter_id, tmp_path / "Lora", client=fast_client(fake))
    assert second.status == "downloaded"
    assert fake.requests_to("file")[-1]["headers"]["Range"] == f"bytes={kept}-"
    assert (tmp_path / "Lora" / "style_51005.safetensors").read_bytes() == fake.blobs[51005]


def test_hostile_disposition_name_stays_in_the_folder(fake, catalog, tmp_path) -> None:
    fake.filename[51001] = "../../evil: name=2>.safetensors"
    lora = tmp_path / "Lora"
    result = download_adapter(catalog, _id(catalog, 51001), lora, client=fast_client(fake))
    assert result.status == "downloaded"
    files = [p for p in lora.iterdir() if p.suffix == ".safetensors"]
    assert len(files) == 1 and files[0].parent == lora
    assert not any(ch in files[0].stem for ch in ":=>/")
    fake.filename[51002] = "archive.zip"  # not a LoRA file name: a safe name from the card
    result = download_adapter(catalog, _id(catalog, 51002), lora, client=fast_client(fake))
    assert result.path.endswith("_51002.safetensors")


def test_existing_different_file_is_never_overwritten(fake, catalog, tmp_path) -> None:
    lora = tmp_path / "Lora"
    lora.mkdir()
    (lora / "style_51001.safetensors").write_bytes(b"mine, not yours")
    result = download_adapter(catalog, _id(catalog, 51001), lora, client=fast_client(fake))
    assert result.path.endswith("style_51001_51001.safetensors")
    assert (lora / "style_51001.safetensors").read_bytes() == b"mine, not yours"


def test_size_cap_and_base_models(fake, catalog, tmp_path) -> None:
    client = fast_client(fake)
    capped = download_adapter(catalog, _id(catalog, 51001), tmp_path / "L", max_size_mb=0.01, client=client)
    assert capped.status == "skipped" and "limit" in capped.reason
    # 51001 is SDXL 1.0 (odd index), 51002 is SD 1.5
    assert download_adapter(catalog, _id(catalog, 51001), tmp_path / "L", allowed_base_models=["SD1"],
                            client=client).status == "skipped"
    assert download_adapter(catalog, _id(catalog, 51002), tmp_path / "L", allowed_base_models=["sd1"],
                            client=client).status == "downloaded"
    assert not fake.requests_to("file")[:-1]  # the skipped ones never fetched a byte


def test_size_cap_when_the_card_does_not_know_the_size(fake, catalog, tmp_path) -> None:
    adapter_id = _id(catalog, 51003)
    catalog.update_fields(adapter_id, file_size_kb=None)
    result = download_adapter(catalog, adapter_id, tmp_path / "L", max_size_mb=0.01, client=fast_client(fake))
    assert result.status == "skipped" and not list((tmp_path / "L").iterdir())


def test_ensure_downloaded_budget_and_settings(fake, catalog, tmp_path) -> None:
    ids = [_id(catalog, 51001), _id(catalog, 51002)]
    off = ensure_downloaded(catalog, ids, DownloadSettings(), client=fast_client(fake))
    assert off.ready == [] and [r for _, r in off.skipped] == ["not installed and downloads are off"] * 2
    settings = DownloadSettings(enabled=True, lora_dir=str(tmp_path / "Lora"), budget_s=10)
    calls = []
    add_install_listener(calls.append)
    try:
        got = ensure_downloaded(catalog, ids, settings, client=fast_client(fake))
    finally:
        remove_install_listener(calls.append)
    assert [i for i, _ in got.ready] == ids and got.skipped == [] and len(calls) == 2
    # installed now: ready at once, no request
    before = len(fake.log)
    assert len(ensure_downloaded(catalog, ids, settings).ready) == 2 and len(fake.log) == before


def test_ensure_downloaded_skips_what_is_not_ready_in_time(fake, catalog, tmp_path) -> None:
    settings = DownloadSettings(enabled=True, lora_dir=str(tmp_path / "Lora"), budget_s=0.2)
    ready_now = _id(catalog, 51001)
    download_adapter(catalog, ready_now, tmp_path / "Lora", client=fast_client(fake))
    fake.file_delay = 2.0
    t0 = time.monotonic()
    got = ensure_downloaded(catalog, [ready_now, _id(catalog, 51003)], settings, client=fast_client(fake))
    waited = time.monotonic() - t0
    assert 0.15 < waited < 1.5  # the generation waited for the budget (0.2 s), not for the file (2 s)
    assert [i for i, _ in got.ready] == [ready_now]
    assert got.skipped == [(_id(catalog, 51003), "not ready within 0.2 s; still downloading for the next image")]
    deadline = time.monotonic() + 15
    while catalog.row(_id(catalog, 51003))["path"] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert catalog.row(_id(catalog, 51003))["path"]  # finished in the background for the next image


def test_cli_download_and_key_never_stored(fake, catalog, tmp_path, monkeypatch, capsys, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("STYLUS_CIVITAI_API_KEY", SECRET)
    monkeypatch.setenv("STYLUS_CIVITAI_MIN_INTERVAL", "0")
    lora = tmp_path / "Lora"
    adapter_id = _id(catalog, 51002)
    code = main(["--catalog", str(catalog.path), "download", str(adapter_id), "v51004", "nothing-like-this",
                 "--lora-dir", str(lora), "--api-base", fake.base_url, "--json"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1  # one of three was not in the catalog
    assert [x["status"] for x in lines] == ["downloaded", "downloaded", "failed"]
    downloads = fake.requests_to("download")
    assert downloads and all(r["headers"].get("Authorization") == f"Bearer {SECRET}" for r in downloads)
    assert SECRET not in caplog.text
    catalog.db.conn.execute("PRAGMA wal_checkpoint(FULL)")
    assert files_contain(tmp_path, SECRET) == []


def test_filename_helpers() -> None:
    assert filename_from_disposition('attachment; filename="a b.safetensors"') == "a b.safetensors"
    assert filename_from_disposition("attachment; filename*=UTF-8''caf%C3%A9.safetensors") == "café.safetensors"
    assert filename_from_disposition(None) is None
    assert safe_filename("..\\..\\x.safetensors") == "x.safetensors"
    assert safe_filename("CON.safetensors") == "_CON.safetensors"
    assert safe_filename("a:b=c>d.SAFETENSORS") == "a_b_c_d.safetensors"
    assert safe_filename("...safetensors") is None and safe_filename("x.exe") is None
    assert safe_filename(" .hidden.safetensors ") == "hidden.safetensors"


def test_api_key_is_not_sent_to_other_hosts(fake, catalog, tmp_path) -> None:
    other = start_fake(6, blob_size=4096)  # another host:port serving the same files
    try:
        adapter_id = _id(catalog, 51002)
        catalog.update_fields(adapter_id, download_url=f"{other.origin}/api/download/models/51002")
        client = fast_client(fake, api_key=SECRET)
        result = download_adapter(catalog, adapter_id, tmp_path / "Lora", client=client)
        assert result.status == "downloaded", result
        assert other.requests_to("download") and other.requests_to("file")
        assert all("Authorization" not in r["headers"] for r in other.log)
        assert fake.requests_to("version")[-1]["headers"]["Authorization"] == f"Bearer {SECRET}"
    finally:
        other.stop()
