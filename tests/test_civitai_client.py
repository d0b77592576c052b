"""The Civitai client against a real HTTP server on 127.0.0.1: retries, backoff, pacing, secrets."""

from __future__ import annotations

import logging
import os
import socket

import pytest
from civitai_server import Fault
from helpers_civitai import SECRET, fast_client, start_fake

from stylus_ext.sdk.civitai.client import (
    CivitaiClient,
    CivitaiError,
    CivitaiNotFound,
    CivitaiOffline,
    redact,
    resolve_api_key,
    resolve_base_url,
)


@pytest.fixture
def fake():
    server = start_fake(6)
    yield server
    server.stop()


def test_429_without_retry_after_backs_off_exponentially(fake) -> None:
    fake.faults.append(Fault("models", 429, times=3))
    sleeps: list[float] = []
    client = fast_client(fake, sleeps, backoff_start=1.0, backoff_max=30.0)
    page = client.models_page({"limit": 2})
    assert len(page["items"]) == 2
    assert sleeps == [1.0, 2.0, 4.0]  # doubling from 1 s, no Retry-After given
    assert client.requests_sent == 4 and client.retries == 3


def test_backoff_is_capped_and_retry_after_is_honoured(fake) -> None:
    fake.faults.append(Fault("models", 503, times=1, retry_after="7"))
    fake.faults.append(Fault("models", 500, times=6))
    sleeps: list[float] = []
    client = fast_client(fake, sleeps, backoff_start=8.0, backoff_max=30.0, max_retries=8)
    client.models_page({"limit": 1})
    assert sleeps[0] == 7.0  # the server's Retry-After
    # doubling over the consecutive errors (urllib3's Retry history, the Retry-After one included), capped
    assert sleeps[1:] == [16.0, 30.0, 30.0, 30.0, 30.0, 30.0]
    fake.faults.append(Fault("models", 429, times=1, retry_after="86400"))
    sleeps.clear()
    fast_client(fake, sleeps, max_retry_after=5.0).models_page({"limit": 1})
    assert sleeps == [5.0]  # a day-long Retry-After is capped


def test_retries_are_bounded(fake) -> None:
    fake.faults.append(Fault("models", 500, times=100))
    client = fast_client(fake, max_retries=3)
    with pytest.raises(CivitaiError) as err:
        client.models_page({})
    assert err.value.status == 500
    assert len(fake.requests_to("models")) == 4


def test_404_and_other_4xx_are_not_retried(fake) -> None:
    client = fast_client(fake)
    with pytest.raises(CivitaiNotFound):
        client.version_by_hash("0" * 64)
    assert len(fake.requests_to("by-hash")) == 1
    fake.faults.append(Fault("models", 400))
    with pytest.raises(CivitaiError) as err:
        client.models_page({})
    assert err.value.status == 400 and not isinstance(err.value, CivitaiNotFound)


def test_min_interval_paces_requests(fake) -> None:
    sleeps: list[float] = []
    client = fast_client(fake, sleeps, min_interval=0.75)
    client.models_page({"limit": 1})
    client.models_page({"limit": 1})
    client.models_page({"limit": 1})
    assert len(sleeps) == 2 and all(0.5 < s <= 0.75 for s in sleeps)


def test_offline_gives_a_clear_message() -> None:
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = CivitaiClient(f"http://127.0.0.1:{port}/api/v1", SECRET, min_interval=0, backoff_start=0.001,
                           sleep=lambda s: None)
    with pytest.raises(CivitaiOffline) as err:
        client.models_page({"token": SECRET})
    message = str(err.value)
    assert "not reachable" in message and "Nothing was lost" in message
    assert SECRET not in message and "\n" not in message
    assert client.requests_sent == 3  # bounded: 1 + 2 connection retries


def test_garbage_answers_are_errors_not_crashes(fake) -> None:
    client = fast_client(fake)
    with pytest.raises(CivitaiError, match="non-JSON"):
        client.get_json(f"{fake.origin}/files/{next(iter(fake.blobs))}")
    fake.faults.append(Fault("models", b'{"items": 5}'))
    with pytest.raises(CivitaiError, match="no 'items' list"):
        client.models_page({})
    fake.faults.append(Fault("models", b'{"items": [{"id": 1'))
    with pytest.raises(CivitaiError, match="non-JSON"):
        client.models_page({})
    fake.faults.append(Fault("models", "close"))
    assert client.models_page({"limit": 1})["items"]  # a dropped connection is retried


def test_api_key_is_sent_but_never_logged_or_in_errors(fake, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    fake.faults.append(Fault("models", 429, times=2))
    fake.faults.append(Fault("version", 403, times=100))
    client = fast_client(fake, api_key=SECRET, max_retries=2)
    client.models_page({"limit": 1})
    auth = [r["headers"].get("Authorization") for r in fake.requests_to("models")]
    assert auth == [f"Bearer {SECRET}"] * 3
    with pytest.raises(CivitaiError) as err:
        client.get_json(f"model-versions/1?token={SECRET}")
    assert err.value.status == 403
    assert SECRET not in str(err.value) and "token=***" in str(err.value)
    assert SECRET not in repr(client)
    assert SECRET not in caplog.text
    assert any("HTTP 429" in r.getMessage() for r in caplog.records)


def test_api_key_from_env_and_owner_only_key_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STYLUS_SECRETS_DIR", str(tmp_path))
    monkeypatch.delenv("STYLUS_CIVITAI_API_KEY", raising=False)
    assert resolve_api_key() is None
    key_file = tmp_path / "STYLUS_CIVITAI_API_KEY"
    key_file.write_text(SECRET + "\n")
    os.chmod(key_file, 0o644)
    assert resolve_api_key() is None  # readable by others: refused
    os.chmod(key_file, 0o600)
    assert resolve_api_key() == SECRET
    monkeypatch.setenv("STYLUS_CIVITAI_API_KEY", "from-env")
    assert resolve_api_key() == "from-env"
    assert resolve_api_key("explicit") == "explicit"


def test_base_url_resolution(monkeypatch) -> None:
    monkeypatch.delenv("STYLUS_CIVITAI_BASE_URL", raising=False)
    assert resolve_base_url() == "https://civitai.com/api/v1"
    monkeypatch.setenv("STYLUS_CIVITAI_BASE_URL", "http://127.0.0.1:9/api/v1/")
    assert resolve_base_url() == "http://127.0.0.1:9/api/v1"
    assert resolve_base_url("http://x/api/v1") == "http://x/api/v1"


def test_redact() -> None:
    text = f"GET https://h/a?x=1&token={SECRET}&y=2 Authorization: Bearer {SECRET}"
    out = redact(text)
    assert SECRET not in out and "x=1" in out and "y=2" in out
    assert redact(f"prefix {SECRET} suffix", (SECRET,)) == "prefix *** suffix"
