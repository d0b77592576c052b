"""A real OpenAI-compatible HTTP server for tests: ``http.server`` in a thread on 127.0.0.1, port 0.

It implements ``POST /v1/chat/completions`` and ``POST /v1/embeddings``. Each endpoint answers from
a script (a queue of :class:`Reply`), then from a default. Every request is recorded (path, headers,
decoded JSON body) so tests can assert what was sent. Slow replies sleep at most a few seconds,
the server thread is a daemon and ``stop()`` (or leaving the ``with`` block) shuts it down.

    with OpenAIServer() as srv:
        srv.script("chat", Reply.error(429, retry_after="1"), Reply.chat('{"concepts": []}'))
        client = OpenAIClient(srv.url)
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_SLEEP_S = 5.0


@dataclass
class Reply:
    """One scripted answer: status, headers, raw body and an optional delay before answering."""

    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    #: fault modes: ``filler`` spaces after the body (streamed, never held), ``drip`` seconds
    #: between single bytes, ``length=False``: no Content-Length (the body ends when the server closes)
    filler: int = 0
    drip: float = 0.0
    length: bool = True

    @classmethod
    def json(cls, obj: Any, status: int = 200, **kw: Any) -> Reply:
        return cls(status=status, body=json.dumps(obj).encode(), headers={"Content-Type": "application/json"}, **kw)

    @classmethod
    def chat(cls, text: str, **kw: Any) -> Reply:
        return cls.json({"id": "chatcmpl-test", "object": "chat.completion", "model": "test",
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": text}}]}, **kw)

    @classmethod
    def error(cls, code: int, message: str = "scripted error", retry_after: str | None = None) -> Reply:
        headers = {"Content-Type": "application/json"}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        return cls(status=code, body=json.dumps({"error": {"message": message}}).encode(), headers=headers)

    @classmethod
    def huge(cls, size: int, *, length: bool = True) -> Reply:
        """A valid chat answer followed by ``size`` bytes of spaces (still valid JSON when read whole)."""
        return cls.chat('{"concepts": []}', filler=size, length=length)

    @classmethod
    def malformed(cls, body: bytes = b'{"choices": [{"message": {"content": "tru') -> Reply:
        return cls(status=200, body=body, headers={"Content-Type": "application/json"})


def fake_embedding(text: str, dim: int = 16) -> list[float]:
    """A deterministic, unnormalised vector for ``text`` (so tests can check normalisation/order)."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [(digest[i % len(digest)] - 128) / 16.0 + (1.0 if i == 0 else 0.0) for i in range(dim)]


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes
    at: float


class OpenAIServer:
    """The server; ``url`` is ``http://127.0.0.1:<port>/v1``."""

    def __init__(self, *, embedding_dim: int = 16, chat_default: str = '{"concepts": []}') -> None:
        self.requests: list[Recorded] = []
        self.scripts: dict[str, deque[Reply]] = {"chat": deque(), "embeddings": deque()}
        self.embedding_dim = embedding_dim
        self.chat_default = chat_default
        self.reject_json_mode = False  # answer 400 to requests with response_format
        self.filler_sent = 0  # filler bytes written before the client stopped reading
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls on keep-alive

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(Reply.json({"object": "list", "data": [{"id": "test-model"}]}))
                else:
                    self._send(Reply.error(404, "not found"))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    body = None
                rec = Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body, raw, time.monotonic())
                with server._lock:
                    server.requests.append(rec)
                self._send(server._reply(rec))

            def _send(self, reply: Reply) -> None:
                if reply.delay:
                    time.sleep(min(reply.delay, MAX_SLEEP_S))
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    if reply.length:
                        self.send_header("Content-Length", str(len(reply.body) + reply.filler))
                    else:
                        self.send_header("Connection", "close")
                        self.close_connection = True
                    self.end_headers()
                    if reply.drip:
                        self._drip(reply)
                    else:
                        self.wfile.write(reply.body)
                        self._fill(reply.filler)
                except OSError:
                    pass  # the client gave up (timeout, answer too large): fine

            def _fill(self, size: int) -> None:
                block = b" " * (1 << 20)
                while size > 0:
                    n = min(size, len(block))
                    self.wfile.write(block[:n])
                    size -= n
                    server.filler_sent += n

            def _drip(self, reply: Reply) -> None:
                end = time.monotonic() + MAX_SLEEP_S
                for i in range(len(reply.body)):
                    if time.monotonic() > end:
                        return
                    self.wfile.write(reply.body[i:i + 1])
                    self.wfile.flush()
                    time.sleep(reply.drip)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    # -- scripting -------------------------------------------------------------------------

    def script(self, endpoint: str, *replies: Reply) -> None:
        with self._lock:
            self.scripts[endpoint].extend(replies)

    def of(self, endpoint: str) -> list[Recorded]:
        suffix = "/chat/completions" if endpoint == "chat" else "/embeddings"
        return [r for r in self.requests if r.path.endswith(suffix)]

    def _reply(self, rec: Recorded) -> Reply:
        if rec.path.endswith("/chat/completions"):
            endpoint = "chat"
        elif rec.path.endswith("/embeddings"):
            endpoint = "embeddings"
        else:
            return Reply.error(404, "not found")
        if not isinstance(rec.body, dict):
            return Reply.error(400, "body is not a JSON object")
        with self._lock:
            queue = self.scripts[endpoint]
            reply = queue.popleft() if queue else None
        if reply is not None:
            return reply
        if endpoint == "chat":
            if self.reject_json_mode and "response_format" in rec.body:
                return Reply.error(400, "response_format is not supported")
            return Reply.chat(self.chat_default)
        texts = rec.body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list):
            return Reply.error(400, "input must be a string or a list")
        dim = int(rec.body.get("dimensions") or self.embedding_dim)
        data = [{"object": "embedding", "index": i, "embedding": fake_embedding(str(t), dim)}
                for i, t in enumerate(texts)]
        data.reverse()  # servers may answer out of order: clients must honour "index"
        return Reply.json({"object": "list", "data": data, "model": rec.body.get("model")})

    # -- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def norm(vec: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vec))
