"""Civitai under hostile conditions: a server that hands out a new cursor for the same items forever,
ids beyond SQLite's integers in a page, and downloads that cannot be named, have nothing to resume,
or end short without a SHA256 to check."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from civitai_server import Fault
from helpers_civitai import fast_client, make_source, start_fake

from stylus_ext.catalog.db import Catalog
from stylus_ext.civitai.download import download_adapter
from stylus_ext.civitai.filenames import safe_filename
from stylus_ext.civitai.sync import load_state, sync_civitai
from stylus_ext.sdk.civitai.pages import STALE_PAGES


@pytest.fixture
def fake():
    server = start_fake(12, blob_size=4096)
    yield server
    server.stop()


@pytest.fixture
def catalog(tmp_path):
    cat = Catalog(tmp_path / "catalog.db")
    yield cat
    cat.close()


def test_new_cursor_every_page_with_the_same_items_ends(plugins, fake, catalog) -> None:
    pages = {"n": 0}

    def same_items_forever(h, query) -> None:
        pages["n"] += 1
        items = [fake._absolute(i) for i in fake.models[:5]]
        fake._json(h, {"items": items, "metadata": {"nextCursor": f"fresh{pages['n']}"}})

    fake._models = same_items_forever
    report = sync_civitai(catalog, make_source(plugins, fake))
    assert report.error == "" and report.complete and report.added == 5
    assert pages["n"] == 1 + STALE_PAGES  # the first page, then STALE_PAGES that brought nothing new
    assert load_state(catalog)["cursor"] is None


def test_ids_beyond_64_bits_in_a_page_do_not_stop_the_sync(plugins, fake, catalog) -> None:
    fake.models[1]["modelVersions"][0]["id"] = 10**20  # this version cannot be stored: skipped
    fake.models[2]["id"] = 10**30  # this model id cannot be stored: the card keeps the rest
    fake.models[2]["modelVersions"][0]["modelId"] = 10**30
    report = sync_civitai(catalog, make_source(plugins, fake))
    assert report.error == "" and report.complete and report.added == 11
    row = next(catalog.rows("civitai_version_id = ?", [fake.models[2]["modelVersions"][0]["id"]]))
    assert row["civitai_model_id"] is None
    again = sync_civitai(catalog, make_source(plugins, fake))  # and the next run is not stuck either
    assert again.error == "" and again.complete and again.unchanged == 11


def _vid(fake, i: int) -> int:
    return fake.models[i]["modelVersions"][0]["id"]


def _row_id(catalog, version_id: int) -> int:
    return next(catalog.rows("civitai_version_id = ?", [version_id]))["id"]


def test_a_name_too_long_for_the_file_system_still_installs(plugins, fake, catalog, tmp_path) -> None:
    sync_civitai(catalog, make_source(plugins, fake))
    vid = _vid(fake, 0)
    long_name = "\U0001f600" * 100 + ".safetensors"  # 400 bytes of UTF-8: over 255 per name
    real_send = fake._send

    def send(h, status, body, *, headers=None, content_type="application/json"):
        if headers and "Content-Disposition" in headers:  # RFC 5987: a UTF-8 name in a header
            headers = {**headers, "Content-Disposition": f"attachment; filename*=UTF-8''{quote(long_name)}"}
        real_send(h, status, body, headers=headers, content_type=content_type)

    fake._send = send
    assert len(safe_filename(long_name).encode()) <= 255
    result = download_adapter(catalog, _row_id(catalog, vid), tmp_path / "Lora", client=fast_client(fake))
    assert result.status == "downloaded", result.reason
    assert len(result.path.rsplit("/", 1)[1].encode()) <= 255


def test_416_with_no_part_file_fails_with_a_reason(plugins, fake, catalog, tmp_path) -> None:
    sync_civitai(catalog, make_source(plugins, fake))
    vid = _vid(fake, 1)
    fake.faults.append(Fault("file", 416))
    result = download_adapter(catalog, _row_id(catalog, vid), tmp_path / "Lora", client=fast_client(fake))
    assert result.status == "failed" and "416" in result.reason and "nothing was downloaded" in result.reason
    assert not any((tmp_path / "Lora").glob("*.safetensors"))


def test_short_transfer_without_sha256_is_not_installed(plugins, fake, catalog, tmp_path) -> None:
    for version in (m["modelVersions"][0] for m in fake.models):
        version["files"][0]["hashes"] = {}  # cards without SHA256
    sync_civitai(catalog, make_source(plugins, fake))
    vid = _vid(fake, 2)
    blob = fake.blobs[vid]
    fake.blobs[vid] = blob[: len(blob) // 2]  # the server sends half and says that is all
    result = download_adapter(catalog, _row_id(catalog, vid), tmp_path / "Lora", client=fast_client(fake))
    assert result.status == "failed" and "not installed" in result.reason
    assert not any((tmp_path / "Lora").glob("*.safetensors"))
    assert catalog.row(_row_id(catalog, vid))["path"] is None
    fake.blobs[vid] = blob  # the whole file: the next try resumes and installs it
    result = download_adapter(catalog, _row_id(catalog, vid), tmp_path / "Lora", client=fast_client(fake))
    assert result.status == "downloaded", result.reason
