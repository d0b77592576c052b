"""The shared HTTP client (stylus_ext.sdk.http) under hostile servers on 127.0.0.1: answer size caps,
reading stops at the deadline, long Retry-After, keys with line breaks, echoed keys, and the circuit
breaker for a misconfigured server."""

from __future__ import annotations

import base64
import socket
import threading
import time
import tracemalloc
from urllib.parse import quote

import pytest
from civitai_server import Fault
from helpers_backends import clear_llm_env, load_plugin, request
from helpers_civitai import fast_client, start_fake
from openai_server import OpenAIServer, Reply

from stylus_ext import sdk
from stylus_ext.compose import run_composer
from stylus_ext.sdk import http
from stylus_ext.sdk.civitai.client import CivitaiClient, CivitaiError, resolve_api_key
from stylus_ext.sdk.llm_http import OpenAIClient

KEY = "sk-proj-SECRET-a1b2c3d4e5f6g7h8i9j0"
MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
def server():
    with OpenAIServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean(monkeypatch, tmp_path):
    clear_llm_env(monkeypatch, tmp_path)
    load_plugin("openai_composer")._MEMORY._mem.clear()
    http.BREAKER.reset()
    yield
    http.BREAKER.reset()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- answer size and reading time --------------------------------------------------------------


@pytest.mark.parametrize("length", [True, False])
def test_a_1gb_answer_is_refused_while_it_streams(server, length):
    server.script("chat", Reply.huge(1 << 30, length=length))
    client = OpenAIClient(server.url, max_response_bytes=1 << 20, breaker=None)
    tracemalloc.start()
    try:
        with pytest.raises(sdk.LLMError, match="over the 1 MiB limit"):
            client.chat(MSG, "m", deadline=time.monotonic() + 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20  # never the whole answer in memory
    assert server.filler_sent < 256 << 20  # and the client hung up instead of reading on
    assert client.attempts == 1  # an answer too large is not asked again


def test_a_dripping_answer_stops_at_the_deadline(server):
    server.script("chat", Reply.chat('{"concepts": []}', drip=0.02))  # ~100 bytes: ~2 s in total
    client = OpenAIClient(server.url, timeout=30, breaker=None)
    t0 = time.monotonic()
    with pytest.raises(sdk.LLMTimeout, match="time budget"):
        client.chat(MSG, "m", deadline=time.monotonic() + 0.4)
    assert time.monotonic() - t0 < 1.2


def test_an_abandoned_composer_thread_stops_reading_at_its_budget(server, plugins):
    server.script("chat", Reply.chat('{"concepts": []}' + " " * 600, drip=0.02))  # ~14 s to read in full
    earlier = {t for t in threading.enumerate() if t.name == "stylus-composer"}  # other tests' threads
    result = run_composer(request(time_budget_s=0.5), "openai", plugins=plugins,  # as the pipeline asks
                          options={"base_url": server.url, "model": "m"})
    assert result.fell_back and result.composer == "offline"
    end = time.monotonic() + 5.0
    while any(t.name == "stylus-composer" and t.is_alive() and t not in earlier for t in threading.enumerate()):
        assert time.monotonic() < end, "the composer thread kept reading after its budget"
        time.sleep(0.02)


def test_civitai_page_over_the_cap_is_refused(tmp_path):
    fake = start_fake(3)
    try:
        fake.faults.append(Fault("models", "huge", size=64 << 20))
        client = fast_client(fake, max_response_bytes=1 << 20)
        with pytest.raises(CivitaiError, match="over the 1 MiB limit"):
            client.models_page({"limit": 1})
        fake.faults.append(Fault("models", "huge", size=64 << 20, length=True))
        with pytest.raises(CivitaiError, match=r"64\.0 MiB, over the 1 MiB limit"):
            client.models_page({"limit": 1})
        assert client.models_page({"limit": 1})["items"]  # the next page is fine
    finally:
        fake.stop()


# -- Retry-After and deadlines ---------------------------------------------------------------------


def test_encoder_query_never_waits_for_a_long_retry_after(server):
    server.script("embeddings", Reply.error(429, "slow down", retry_after="3600"))
    enc = load_plugin("openai_embeddings").OpenAIEmbeddings(base_url=server.url, model="e")  # defaults
    t0 = time.monotonic()
    with pytest.raises(sdk.LLMTimeout, match="exceed the time budget"):
        enc.encode(["a castle"])
    assert time.monotonic() - t0 < 1.0 and len(server.of("embeddings")) == 1


def test_retry_after_is_capped_for_the_llm_client(server):
    server.script("chat", Reply.error(503, retry_after="3600"), Reply.chat("ok"))
    waits: list[float] = []
    client = OpenAIClient(server.url, max_retry_after=0.05, sleep=waits.append, breaker=None)
    assert client.chat(MSG, "m") == "ok" and waits == [0.05]


# -- keys --------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [f"{KEY}\nline2", f"{KEY} second", f"{KEY}\x00", f"{KEY}\tx"])
def test_keys_with_whitespace_or_control_characters_are_refused(server, plugins, bad):
    with pytest.raises(http.InvalidSecret, match="single line") as info:
        OpenAIClient(server.url, bad)
    assert KEY[:12] not in str(info.value) and "line2" not in str(info.value)
    result = run_composer(request(), "openai", plugins=plugins, options={"base_url": server.url, "api_key": bad})
    text = " ".join(result.warnings)
    assert result.fell_back and "API key" in text and KEY[8:20] not in text and "line2" not in text
    assert not server.requests  # nothing was sent
    with pytest.raises(CivitaiError, match="single line"):
        resolve_api_key(bad)


def test_a_key_file_with_two_lines_is_refused_through_the_environment(server, plugins, monkeypatch):
    monkeypatch.setenv("STYLUS_LLM_BASE_URL", server.url)
    monkeypatch.setenv("STYLUS_LLM_API_KEY", "OPSECRET-abcdefgh\nline2")
    result = run_composer(request(), "openai", plugins=plugins)
    text = " ".join(result.warnings)
    assert "line break" in text and "abcdefgh" not in text and "Bearer" not in text
    assert CivitaiClient("http://127.0.0.1:9/api/v1", "  padded-key \n").has_api_key  # edges are trimmed


def test_echoed_keys_are_scrubbed_in_every_form(server):
    b64 = base64.b64encode(KEY.encode()).decode()
    basic = base64.b64encode(f"user:{KEY}".encode()).decode()
    bearer = base64.b64encode(f"Bearer {KEY}".encode()).decode()
    echo = (f"key {KEY[5:-5]} is invalid; got {b64} / {basic} / {bearer} / {quote(KEY, safe='')} / "
            f"...{KEY[-10:]} / {KEY[:9]}...")
    server.script("chat", Reply.error(401, echo))
    with pytest.raises(sdk.LLMStatusError) as info:
        OpenAIClient(server.url, KEY, breaker=None).chat(MSG, "m")
    text = str(info.value)
    assert "401" in text and "is invalid" in text
    for leaked in (KEY, KEY[5:-5], b64[4:-4], basic[8:-4], bearer[12:-4], KEY[-10:], KEY[:9], "SECRET"):
        assert leaked not in text, leaked
    scrub = http.Scrubber([KEY])
    assert scrub("nothing to hide here") == "nothing to hide here"


def test_a_retried_echo_is_not_logged_either(server, caplog):
    caplog.set_level("DEBUG")
    server.script("chat", Reply.error(503, f"overloaded, key {KEY[3:-3]}"), Reply.chat("ok"))
    assert OpenAIClient(server.url, KEY, backoff=0.01, breaker=None).chat(MSG, "m") == "ok"
    assert "overloaded" in caplog.text and KEY[3:-3] not in caplog.text and KEY[10:16] not in caplog.text


def test_errors_never_contain_header_values(server, monkeypatch):
    client = OpenAIClient(server.url, KEY, breaker=None)

    def boom(*a, **k):
        import requests

        raise requests.exceptions.InvalidHeader(f"Invalid header value: 'Bearer {KEY}'")

    monkeypatch.setattr(client.session, "request", boom)
    with pytest.raises(sdk.LLMError) as info:
        client.chat(MSG, "m")
    assert "InvalidHeader" in str(info.value) and "Bearer" not in str(info.value) and KEY[4:12] not in str(info.value)


# -- circuit breaker -------------------------------------------------------------------------------


def test_a_misconfigured_server_is_skipped_after_one_failure():
    url = f"http://127.0.0.1:{free_port()}/v1"
    client = OpenAIClient(url, KEY, backoff=0.01)
    with pytest.raises(sdk.LLMError, match="cannot connect") as first:
        client.chat(MSG, "m")
    assert client.attempts == 2  # one quick retry, not five with backoff
    assert "not asked again for 30 s" in str(first.value)
    again = OpenAIClient(url, KEY)  # the WebUI re-creates the composer per run: the breaker is shared
    with pytest.raises(sdk.LLMError, match="skipped: it failed less than 30 s ago") as second:
        again.chat(MSG, "m")
    assert again.attempts == 0 and KEY not in str(second.value)


def test_the_pipeline_says_once_that_the_server_is_skipped(plugins, caplog):
    url = f"http://127.0.0.1:{free_port()}/v1"
    warnings = []
    for _ in range(3):
        result = run_composer(request(), "openai", plugins=plugins, options={"base_url": url, "model": "m"})
        assert result.fell_back
        warnings.append(" ".join(result.warnings))
    assert "cannot connect" in warnings[0] and "skipped" in warnings[1] and warnings[1] == warnings[2]
    told = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(told) == 1  # the same line is not repeated for every generation


def test_the_breaker_lets_one_request_through_after_the_cooldown(server):
    breaker = http.Breaker(cooldown_s=0.2)
    server.script("chat", Reply.chat("late", delay=1.0))
    client = OpenAIClient(server.url, breaker=breaker)
    with pytest.raises(sdk.LLMTimeout):
        client.chat(MSG, "m", deadline=time.monotonic() + 0.3)
    with pytest.raises(sdk.LLMError, match="skipped"):
        client.chat(MSG, "m")
    time.sleep(0.25)
    assert client.chat(MSG, "m") == '{"concepts": []}'  # half-open: tried again, and it answered
    assert breaker.blocked("POST " + client.root + "/chat/completions") is None
