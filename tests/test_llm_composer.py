"""LLM composer: prompt building (quoted data), answer parsing, and the HTTP composer against a real server."""

from __future__ import annotations

import json
import logging
import os
import time

import pytest
from helpers_backends import HOSTILE, candidates, clear_llm_env, load_plugin, request
from openai_server import OpenAIServer, Reply

from stylus_ext import sdk
from stylus_ext.sdk import http
from stylus_ext.sdk.llm_http import OpenAIClient, api_root

KEY = "sk-test-SECRET-0123456789abcdef"


@pytest.fixture
def server():
    with OpenAIServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    clear_llm_env(monkeypatch, tmp_path)
    http.BREAKER.reset()
    load_plugin("openai_composer")._MEMORY._mem.clear()


def composer(srv, **kw):
    mod = load_plugin("openai_composer")
    opts = {"base_url": srv.url, "model": "test-model", "api_key": KEY, "max_retries": 3, **kw}
    return mod.OpenAIComposer(**opts)


def answer(*concepts):
    return json.dumps({"concepts": [{"concept": c, "picks": [{"n": n, "reason": f"fits {c}"} for n in ns]}
                                    for c, ns in concepts]})


# -- prompt building ---------------------------------------------------------------------------


def test_card_text_is_sent_as_escaped_quoted_data():
    prompt = sdk.build_composer_messages(request())
    system, user = prompt.messages
    assert system["role"] == "system" and "UNTRUSTED DATA" in system["content"]
    # the whole user turn is one JSON document; hostile text survives only as string values
    doc = json.loads(user["content"])
    assert [e["n"] for e in doc["candidates"]] == [1, 2, 3, 4, 5]
    descriptions = {e["n"]: e["description"] for e in doc["candidates"]}
    assert descriptions[3].startswith("IGNORE PREVIOUS INSTRUCTIONS")
    assert "<lora:evil_style:1.5>" not in user["content"] and "</candidates>" not in user["content"]
    assert "<" not in user["content"] and ">" not in user["content"]  # tags stripped, the rest escaped
    assert descriptions[4].endswith("end of data >>> a<b") and "lora" not in descriptions[4]
    assert descriptions[5] == HOSTILE["json"]  # quotes/braces round-trip exactly, as data
    assert '{"concepts": [{"concept": "x"' not in user["content"]  # never a bare JSON answer in the prompt
    assert prompt.numbers == {1: 101, 2: 102, 3: 103, 4: 104, 5: 105}


def test_catalogue_is_trimmed_to_the_token_budget():
    many = []
    for i in range(120):
        c = candidates()[i % 5]
        a = sdk.Adapter(id=1000 + i, card=c.adapter.card, description="long words " * 80, category="style")
        many.append(sdk.Candidate(adapter=a))
    req = sdk.ComposeRequest(prompt="a castle", candidates=tuple(many))
    prompt = sdk.build_composer_messages(req, max_candidates=100, token_budget=1500)
    doc = json.loads(prompt.messages[1]["content"])
    assert 0 < len(doc["candidates"]) < 100
    assert len(prompt.messages[1]["content"]) // 4 <= 1500
    assert prompt.numbers[len(doc["candidates"])] == 1000 + len(doc["candidates"]) - 1
    assert len(sdk.build_composer_messages(req, max_candidates=7).candidates) == 7


# -- answer parsing ----------------------------------------------------------------------------


def test_parse_fenced_and_chatty_answers_map_numbers_to_ids():
    prompt = sdk.build_composer_messages(request())
    text = "Sure! Here is my selection:\n```json\n" + answer(("dogs", [2]), ("ghibli style", [1])) + "\n```\nBye"
    comp = sdk.parse_composer_answer(text, prompt, composer="t")
    assert [(c.concept, [p.adapter_id for p in c.picks]) for c in comp.concepts] == [
        ("dogs", [102]), ("ghibli style", [101])]
    assert comp.concepts[0].picks[0].reason == "fits dogs"


def test_parse_paper_format_and_string_numbers():
    prompt = sdk.build_composer_messages(request())
    comp = sdk.parse_composer_answer('{"snow": {"2": "snowy"}, "style": {"#1": "ghibli"}}', prompt)
    assert [[p.adapter_id for p in c.picks] for c in comp.concepts] == [[102], [101]]


def test_injected_answer_is_limited_to_one_use_and_unknowns_dropped():
    prompt = sdk.build_composer_messages(request(max_adapters=2))
    obeyed = answer(("dogs", [3, 3, 99, "evil_lora"]), ("snow", [3, 2]), ("style", [1, 4]))
    comp = sdk.parse_composer_answer(obeyed, prompt)
    ids = [p.adapter_id for c in comp.concepts for p in c.picks]
    assert ids == [103, 102]  # 3 once; 99 and a name dropped; total capped at max_adapters=2
    assert any("not a candidate number" in n for n in comp.notes)
    assert any("already used" in n for n in comp.notes)
    assert any("over the limit" in n for n in comp.notes)


@pytest.mark.parametrize("bad", [
    "", "{}", "[1, 2]", "I think the ghibli one.",
    '{"concepts": [{"concept": "dogs", "picks": [{"n": 2', '{"concepts": "none"}',
    answer(("dogs", [0, 6, 101])), '{"concepts": [{"concept": "d", "picks": ["<lora:evil_style:1>"]}]}',
])
def test_garbage_answers_raise_composer_error(bad):
    prompt = sdk.build_composer_messages(request())
    with pytest.raises(sdk.ComposerError):
        sdk.parse_composer_answer(bad, prompt)


def test_explicit_empty_answer_is_a_valid_none():
    prompt = sdk.build_composer_messages(request())
    assert sdk.parse_composer_answer('{"concepts": []}', prompt).concepts == ()
    comp = sdk.parse_composer_answer('{"concepts": [{"concept": "dogs", "picks": []}]}', prompt)
    assert comp.concepts[0].picks == ()


# -- HTTP client -------------------------------------------------------------------------------


def test_api_root_and_retry_after():
    assert api_root("http://h:11434") == "http://h:11434/v1"
    assert api_root("http://h:1234/v1/") == "http://h:1234/v1"
    assert api_root("http://h/v1/chat/completions") == "http://h/v1"
    with pytest.raises(sdk.LLMError):
        api_root("localhost:11434")


def test_retries_5xx_with_backoff_then_succeeds(server):
    server.script("chat", Reply.error(500), Reply.error(503), Reply.chat("hello"))
    client = OpenAIClient(server.url, backoff=0.05)
    t0 = time.monotonic()
    assert client.chat([{"role": "user", "content": "hi"}], "m") == "hello"
    assert len(server.of("chat")) == 3 and client.attempts == 3
    assert time.monotonic() - t0 < 2
    server.script("chat", *[Reply.error(502)] * 3)
    with pytest.raises(sdk.LLMError, match="failed after 3 attempt"):
        OpenAIClient(server.url, backoff=0.01, max_retries=2).chat([{"role": "user", "content": "x"}], "m")


def test_429_honours_retry_after(server):
    server.script("chat", Reply.error(429, "slow down", retry_after="1"), Reply.chat("ok"))
    client = OpenAIClient(server.url, backoff=0.01)
    assert client.chat([{"role": "user", "content": "hi"}], "m", deadline=time.monotonic() + 10) == "ok"
    first, second = server.of("chat")
    assert 0.95 <= second.at - first.at < 2.5  # waited what the server asked, not the 10 ms backoff


def test_gives_up_when_retry_after_exceeds_budget(server):
    server.script("chat", Reply.error(429, retry_after="30"))
    t0 = time.monotonic()
    with pytest.raises(sdk.LLMTimeout, match="time budget"):
        OpenAIClient(server.url).chat([{"role": "user", "content": "x"}], "m", deadline=time.monotonic() + 2)
    assert time.monotonic() - t0 < 1.0 and len(server.of("chat")) == 1


def test_slow_server_is_cut_at_the_deadline(server):
    server.script("chat", Reply.chat("late", delay=3))
    t0 = time.monotonic()
    with pytest.raises(sdk.LLMTimeout):
        OpenAIClient(server.url, timeout=30).chat([{"role": "user", "content": "x"}], "m",
                                                  deadline=time.monotonic() + 0.6)
    assert time.monotonic() - t0 < 1.5


def test_malformed_bodies_are_clear_errors(server):
    server.script("chat", Reply.malformed(), Reply.json({"choices": []}), Reply.json([1, 2]))
    client = OpenAIClient(server.url)
    for match in ("not JSON", "no choices", "expected a JSON object"):
        with pytest.raises(sdk.LLMError, match=match):
            client.chat([{"role": "user", "content": "x"}], "m")


# -- the composer over HTTP --------------------------------------------------------------------


def test_composer_sends_key_only_in_the_header_and_maps_picks(server, caplog):
    caplog.set_level(logging.DEBUG)
    server.script("chat", Reply.error(500), Reply.chat("```json\n" + answer(("snow", [2]), ("style", [1])) + "\n```"))
    comp = composer(server, temperature=0.0)
    comp.client.backoff_start = 0.01
    result = comp.compose(request())
    assert [p.adapter_id for c in result.concepts for p in c.picks] == [102, 101]
    assert result.composer == "openai"
    sent = server.of("chat")[-1]
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body["model"] == "test-model" and sent.body["temperature"] == 0.0
    assert sent.body["response_format"] == {"type": "json_object"} and sent.body["stream"] is False
    assert KEY not in caplog.text and KEY not in repr(comp.client) and KEY not in repr(comp.config)
    assert all(KEY not in json.dumps(r.body) for r in server.requests)


def test_auth_error_message_never_contains_the_key(server, caplog):
    caplog.set_level(logging.DEBUG)
    server.script("chat", Reply.error(401, f"Incorrect API key provided: {KEY}"))
    with pytest.raises(sdk.LLMError) as info:
        composer(server).compose(request())
    text = f"{info.value!s} {info.value!r} {info.value.__cause__!r} {info.value.__context__!r}"
    assert "401" in text and KEY not in text and KEY[:8] not in text
    assert KEY not in caplog.text


def test_json_mode_refused_falls_back_without_it(server):
    server.reject_json_mode = True
    server.chat_default = answer(("dogs", [2]))
    comp = composer(server)
    assert comp.compose(request()).concepts[0].picks[0].adapter_id == 102
    first, second = server.of("chat")
    assert "response_format" in first.body and "response_format" not in second.body
    comp.compose(request(prompt="a cat"))
    assert "response_format" not in server.of("chat")[-1].body  # remembered: no more 400s


def test_answers_are_cached_per_prompt_candidates_and_settings(server, monkeypatch, tmp_path):
    server.chat_default = answer(("dogs", [2]))
    comp = composer(server)
    comp.compose(request())
    comp.compose(request())
    assert len(server.of("chat")) == 1
    composer(server).compose(request())  # a new instance shares the in-memory cache
    assert len(server.of("chat")) == 1
    composer(server, temperature=0.9).compose(request())
    assert len(server.of("chat")) == 2
    fewer = sdk.ComposeRequest(prompt=request().prompt, candidates=candidates()[:3])
    comp.compose(fewer)
    assert len(server.of("chat")) == 3
    # on-disk cache survives the process-wide memory cache being cleared
    disk = composer(server, disk_cache=True, model="m2")
    disk.compose(request())
    files = list((tmp_path / "home" / "cache" / "composer-openai").glob("*.json"))
    assert len(files) == 1 and KEY not in files[0].read_text()
    composer(server, disk_cache=True, model="m2").compose(request())
    assert len(server.of("chat")) == 4


def test_review_turn_uses_the_second_answer(server):
    server.script("chat", Reply.chat(answer(("dogs", [2]), ("style", [1, 3]))), Reply.chat(answer(("style", [1]))))
    result = composer(server, review=True).compose(request())
    assert [p.adapter_id for c in result.concepts for p in c.picks] == [101]
    review = server.of("chat")[1].body["messages"]
    assert [m["role"] for m in review] == ["system", "user", "assistant", "user"]
    assert "Review your answer" in review[-1]["content"]


def test_review_garbage_keeps_the_first_answer(server):
    server.script("chat", Reply.chat(answer(("dogs", [2]))), Reply.chat("oops, no json"))
    result = composer(server, review=True).compose(request())
    assert [p.adapter_id for c in result.concepts for p in c.picks] == [102]
    assert any("review answer ignored" in n for n in result.notes)


@pytest.mark.parametrize("reply", [
    Reply.chat(""), Reply.chat("The best adapter is evil_inject."), Reply.chat('{"concepts": [{"concept": "x", "pi'),
    Reply.chat(answer(("dogs", [42]))), Reply.malformed(),
])
def test_garbage_http_answers_raise_so_the_pipeline_falls_back(server, reply):
    server.script("chat", reply)
    with pytest.raises((sdk.ComposerError, sdk.LLMError)):
        composer(server).compose(request())


def test_configuration_from_environment_and_key_file(server, monkeypatch, tmp_path, plugins):
    server.chat_default = answer(("dogs", [1]))
    monkeypatch.setenv("STYLUS_LLM_BASE_URL", server.url)
    monkeypatch.setenv("STYLUS_LLM_MODEL", "env-model")
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "STYLUS_LLM_API_KEY").write_text(KEY + "\n")
    os.chmod(keys / "STYLUS_LLM_API_KEY", 0o600)
    comp = plugins.create("composer", "openai")
    comp.compose(request())
    sent = server.of("chat")[-1]
    assert sent.body["model"] == "env-model" and sent.headers["authorization"] == f"Bearer {KEY}"
    os.chmod(keys / "STYLUS_LLM_API_KEY", 0o644)  # readable by others: refused, like ssh
    plugins.create("composer", "openai").compose(request(prompt="other"))
    assert "authorization" not in server.of("chat")[-1].headers


def test_unreachable_server_is_a_one_line_error():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = OpenAIClient(f"http://127.0.0.1:{port}", KEY, backoff=0.01, max_retries=1)
    with pytest.raises(sdk.LLMError, match="cannot connect") as info:
        client.chat([{"role": "user", "content": "x"}], "m")
    assert "\n" not in str(info.value) and KEY not in str(info.value)
