"""Model-backend figures against the local scripted OpenAI-compatible server (no real model).

Prints: catalogue size for 150 candidates (characters, estimated tokens, candidates kept under the
default budget), prompt build + answer parse time, HTTP composer overhead per prompt (cold / cached),
requests per compose with and without review, retry timing for 429 + Retry-After and 5xx backoff,
embeddings throughput, vision refiner throughput with concurrency; hostile servers: peak memory
and time for a huge answer (read whole as before vs sdk.http's capped read), and the cost per
generation of a misconfigured server (5 connection attempts with backoff vs the circuit breaker).

    .venv/bin/python benchmarks/llm_backends.py [--answer-mb 256]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers_backends import load_plugin  # noqa: E402
from openai_server import OpenAIServer, Reply  # noqa: E402

from stylus_ext import sdk  # noqa: E402
from stylus_ext.sdk import http  # noqa: E402
from stylus_ext.sdk.llm_http import OpenAIClient  # noqa: E402


def candidates(n: int) -> tuple[sdk.Candidate, ...]:
    out = []
    for i in range(n):
        card = sdk.AdapterCard(source="bench", name=f"adapter_{i}", title=f"Adapter number {i} style",
                               tags=("style", "anime", "character", "portrait", "detailed"),
                               description="A detailed adapter that changes the look of images. " * 8)
        a = sdk.Adapter(id=i + 1, card=card, description=card.description, category="style")
        out.append(sdk.Candidate(adapter=a, score=1 - i / n))
    return tuple(out)


def ms(values: list[float]) -> str:
    return f"p50 {statistics.median(values) * 1000:.2f} ms, max {max(values) * 1000:.2f} ms"


def main() -> None:
    req = sdk.ComposeRequest(prompt="two dogs playing in the snow, studio ghibli style", candidates=candidates(150))
    for max_c, budget in ((150, 20000), (60, 6000)):
        t = []
        for _ in range(20):
            t0 = time.perf_counter()
            prompt = sdk.build_composer_messages(req, max_candidates=max_c, token_budget=budget)
            t.append(time.perf_counter() - t0)
        content = prompt.messages[1]["content"]
        print(f"catalogue max_candidates={max_c} budget={budget}: {len(prompt.candidates)} shown, "
              f"{len(content)} chars ≈ {len(content) // 4} tokens; build {ms(t)}")
    answer = json.dumps({"concepts": [{"concept": c, "picks": [{"n": n, "reason": "fits"}]}
                                      for c, n in (("dogs", 3), ("snow", 7), ("ghibli", 1))]})
    t = []
    for _ in range(200):
        t0 = time.perf_counter()
        sdk.parse_composer_answer("```json\n" + answer + "\n```", prompt)
        t.append(time.perf_counter() - t0)
    print(f"parse answer: {ms(t)}")

    with OpenAIServer() as srv:
        srv.chat_default = answer
        comp = load_plugin("openai_composer").OpenAIComposer(base_url=srv.url, model="bench")
        cold, warm = [], []
        for i in range(20):
            r = sdk.ComposeRequest(prompt=f"prompt {i}", candidates=req.candidates)
            t0 = time.perf_counter()
            comp.compose(r)
            cold.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            comp.compose(r)
            warm.append(time.perf_counter() - t0)
        print(f"HTTP composer (local server, 60 candidates): cold {ms(cold)}; cached {ms(warm)}; "
              f"{len(srv.of('chat'))} requests for 40 composes")
        n0 = len(srv.of("chat"))
        load_plugin("openai_composer").OpenAIComposer(base_url=srv.url, model="bench", review=True).compose(req)
        print(f"requests per compose with review: {len(srv.of('chat')) - n0}")

        srv.script("chat", Reply.error(429, retry_after="1"), Reply.chat("ok"))
        client = OpenAIClient(srv.url)
        t0 = time.perf_counter()
        client.chat([{"role": "user", "content": "x"}], "m")
        print(f"429 with Retry-After: 1 → answered after {time.perf_counter() - t0:.2f} s, {client.attempts} attempts")
        srv.script("chat", Reply.error(500), Reply.error(502), Reply.error(503), Reply.chat("ok"))
        client = OpenAIClient(srv.url)
        t0 = time.perf_counter()
        client.chat([{"role": "user", "content": "x"}], "m")
        print(f"500/502/503 then ok (default backoff 0.5·2^(n-1) s): {time.perf_counter() - t0:.2f} s, "
              f"{client.attempts} attempts")
        srv.script("chat", Reply.error(429, retry_after="60"))
        t0 = time.perf_counter()
        try:
            OpenAIClient(srv.url).chat([{"role": "user", "content": "x"}], "m", deadline=time.monotonic() + 5)
        except sdk.LLMTimeout:
            pass
        print(f"429 with Retry-After: 60 and a 5 s budget → gave up after {time.perf_counter() - t0:.3f} s")

        enc = load_plugin("openai_embeddings").OpenAIEmbeddings(base_url=srv.url, model="bench", batch_size=64)
        texts = [f"adapter text {i}" for i in range(2000)]
        t0 = time.perf_counter()
        enc.encode(texts)
        dt = time.perf_counter() - t0
        print(f"embeddings: 2000 texts in {enc.requests_sent} requests, {dt:.2f} s ({2000 / dt:.0f} texts/s)")

        srv.chat_default = json.dumps({"category": "style", "description": "d", "weight": 0.8})
        cards = [c.adapter.card for c in candidates(24)]
        for conc in (1, 4, 8):
            for _ in cards:
                srv.script("chat", Reply.chat(srv.chat_default, delay=0.1))
            ref = load_plugin("vision_refiner").VisionRefiner(base_url=srv.url, concurrency=conc)
            t0 = time.perf_counter()
            list(ref.refine_many(cards))
            print(f"vision refiner, 24 cards, server latency 100 ms, concurrency {conc}: "
                  f"{time.perf_counter() - t0:.2f} s")


def peak(fn) -> tuple[float, float, str]:  # type: ignore[no-untyped-def]
    """(peak traced MiB, seconds, outcome) of ``fn()``."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        fn()
        outcome = "read"
    except Exception as exc:  # a benchmark reports whatever happened
        outcome = f"refused ({str(exc).split(': ', 1)[-1][:60]})"
    seconds = time.perf_counter() - t0
    top = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return top, seconds, outcome


def hostile(answer_mb: int) -> None:
    msg = [{"role": "user", "content": "x"}]
    with OpenAIServer() as srv:
        size = answer_mb << 20
        srv.script("chat", Reply.huge(size, length=False))
        client = OpenAIClient(srv.url, breaker=None)
        mib, sec, outcome = peak(lambda: client.chat(msg, "m", deadline=time.monotonic() + 60))
        print(f"{answer_mb} MB chat answer, sdk.http ({client.max_response_bytes >> 20} MiB cap): peak {mib:.1f} MiB, "
              f"{sec:.2f} s, {outcome}")
        srv.script("chat", Reply.huge(size, length=False))
        url = srv.url + "/chat/completions"
        mib, sec, outcome = peak(lambda: requests.post(url, json={"model": "m", "messages": msg}, timeout=120).json())
        print(f"{answer_mb} MB chat answer, read whole (requests .json(), the client before): peak {mib:.0f} MiB, "
              f"{sec:.2f} s, {outcome}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    before = OpenAIClient(url, breaker=None)
    before.connect_retries = 4  # the client before: every attempt of max_retries=4 for a refused port
    t0 = time.perf_counter()
    try:
        before.chat(msg, "m")
    except sdk.LLMError:
        pass
    print(f"misconfigured server (port closed), before: {time.perf_counter() - t0:.2f} s per generation, "
          f"{before.attempts} connection attempts")
    http.BREAKER.reset()
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        try:
            OpenAIClient(url).chat(msg, "m")
        except sdk.LLMError:
            pass
        times.append(time.perf_counter() - t0)
    print("misconfigured server, with the breaker: " + ", ".join(f"{t:.3f}" for t in times)
          + " s for 5 generations (first one fails, the rest skip it for 30 s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--answer-mb", type=int, default=256, help="size of the huge answer (1024 = the issue's 1 GB)")
    args = parser.parse_args()
    main()
    hostile(args.answer_mb)
