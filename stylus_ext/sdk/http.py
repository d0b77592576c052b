"""One retrying HTTP client for every backend that talks to a server (OpenAI-compatible APIs, Civitai).

Built on ``requests`` and urllib3's :class:`~urllib3.util.retry.Retry` (which statuses and errors
are retried, the per-kind counters, ``Retry-After`` parsing). What :class:`HTTPClient` adds:

- an overall ``deadline`` (a :func:`time.monotonic` value): attempts get at most the time left, a
  wait that would pass it is not started, and the body stops being read when it passes (also
  between the bytes of a server that drips its answer);
- ``Retry-After`` is honoured but capped (``max_retry_after``), and backoff doubles up to ``backoff_max``;
- answers larger than ``max_response_bytes`` are refused while they stream in (never held whole);
- secrets are scrubbed from every error text, also base64 or partial echoes of them; request
  header values never appear in an error text; keys with whitespace or control characters are
  refused (:func:`check_secret`) before anything is sent;
- an optional :class:`Breaker`: after an endpoint could not be reached or timed out (the time
  budget ran out, or a Retry-After longer than it) it is skipped for a while instead of costing
  every generation its connection attempts.

Subclasses map failures to their own exception classes through ``errors`` (kind → class).
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests
import urllib3.exceptions as u3
from urllib3.util.retry import Retry

from stylus_ext.sdk.redact import InvalidSecret, Scrubber, Secret, check_secret, remember_secret

log = logging.getLogger("stylus.http")

MiB = 1024 * 1024
ERROR_BODY_BYTES = 4096
_CHUNK = 64 * 1024


class HTTPError(RuntimeError):
    """A request failed (one-line message, secrets removed); ``status`` when the server answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------------------------
# Circuit breaker
# --------------------------------------------------------------------------------------------


class Breaker:
    """Skips a failing endpoint for ``cooldown_s`` (doubling while it keeps failing, up to
    ``max_cooldown_s``); one request is let through after the cooldown, a success closes it."""

    def __init__(self, cooldown_s: float = 30.0, max_cooldown_s: float = 600.0) -> None:
        self.cooldown_s, self.max_cooldown_s = cooldown_s, max_cooldown_s
        self._open: dict[str, tuple[float, float, str]] = {}  # key → (until, cooldown, reason)
        self._lock = threading.Lock()

    def blocked(self, key: str) -> str | None:
        """Why ``key`` is skipped now (a stable text, so a "tell once" shows it once), else None."""
        with self._lock:
            state = self._open.get(key)
        if state is None or time.monotonic() >= state[0]:
            return None
        return f"skipped: it failed less than {state[1]:g} s ago ({state[2]})"

    def failed(self, key: str, reason: str) -> float:
        """Record a failure; returns the cooldown now in force (0 when the breaker is off)."""
        if self.cooldown_s <= 0:
            return 0.0
        with self._lock:
            previous = self._open.get(key)
            cooldown = self.cooldown_s if previous is None else min(self.max_cooldown_s, previous[1] * 2)
            self._open[key] = (time.monotonic() + cooldown, cooldown, reason)
        return cooldown

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._open.pop(key, None)

    def reset(self) -> None:
        with self._lock:
            self._open.clear()


#: Shared by the clients of every OpenAI-compatible backend (re-created per run in the WebUI).
BREAKER = Breaker()


# --------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------


def _reason(exc: BaseException) -> BaseException:
    """The urllib3 error inside a ``requests`` exception (what :class:`Retry` classifies)."""
    inner: Any = exc.args[0] if isinstance(exc, requests.RequestException) and exc.args else exc
    if isinstance(inner, u3.MaxRetryError) and inner.reason is not None:
        inner = inner.reason
    if isinstance(inner, u3.HTTPError):
        return inner
    if isinstance(inner, socket.timeout):
        return u3.ReadTimeoutError(None, "", "read timed out")  # type: ignore[arg-type]
    return u3.ProtocolError("connection error") if isinstance(inner, OSError) else u3.HTTPError("other")


def _describe(exc: BaseException, timeout: Any) -> tuple[str, str]:
    """(one-line reason, failure kind: ``offline``/``timeout``/``error``) — never an exception's full
    text, which can carry header values or URLs with tokens."""
    inner = _reason(exc)
    read_s = timeout[1] if isinstance(timeout, tuple) else timeout
    connect_s = timeout[0] if isinstance(timeout, tuple) else timeout
    if isinstance(inner, getattr(u3, "NameResolutionError", ())):
        return "cannot connect (host name not found)", "offline"
    if isinstance(inner, u3.NewConnectionError):  # (a ConnectTimeoutError subclass in urllib3 2)
        errno = re.search(r"\[Errno -?\d+\][^'\")]*", str(inner))
        return f"cannot connect ({errno.group(0).strip() if errno else 'refused'})", "offline"
    if isinstance(inner, u3.ConnectTimeoutError):
        return f"cannot connect within {connect_s:.1f} s", "offline"
    if isinstance(inner, u3.ReadTimeoutError):
        return f"no answer within {read_s:.1f} s", "timeout"
    if isinstance(inner, u3.ProtocolError):
        return "the connection was dropped", "offline"
    return type(exc).__name__, "error"


class HTTPClient:
    """Requests with pacing, retries inside a deadline, capped answers and scrubbed errors.

    ``errors`` maps a failure kind (``error``, ``status``, ``not_found``, ``timeout``, ``offline``,
    ``too_large``) to the :class:`HTTPError` subclass raised (called as ``cls(message, status)``).
    """

    errors: ClassVar[Mapping[str, type[HTTPError]]] = {"error": HTTPError}
    retry_statuses: ClassVar[frozenset[int]] = frozenset({408, 425, 429, 500, 502, 503, 504})

    def __init__(
        self,
        *,
        secrets: Iterable[str | None] = (),
        timeout: float | tuple[float, float] = (10.0, 60.0),
        max_retries: int = 4,
        connect_retries: int = 2,
        backoff_start: float = 0.5,
        backoff_max: float = 30.0,
        max_retry_after: float = 60.0,
        max_response_bytes: int = 16 * MiB,
        min_interval: float = 0.0,
        breaker: Breaker | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.secrets = tuple(s for s in secrets if s)
        for s in self.secrets:
            remember_secret(s)
        self.scrub = Scrubber(self.secrets)
        self.timeout = timeout
        self.max_retries, self.connect_retries = int(max_retries), int(connect_retries)
        self.backoff_start, self.backoff_max = float(backoff_start), float(backoff_max)
        self.max_retry_after = float(max_retry_after)
        self.max_response_bytes = int(max_response_bytes)
        self.min_interval = float(min_interval)
        self.breaker = breaker
        self.session = session or requests.Session()
        self._sleep = sleep
        self._pace_lock = threading.Lock()
        self._last = 0.0
        #: Requests sent (retries included) and retries alone — for reports and tests.
        self.requests_sent = 0
        self.retries = 0

    def close(self) -> None:
        self.session.close()

    # -- hooks for subclasses ----------------------------------------------------------------

    def policy(self) -> Retry:
        """The urllib3 retry policy of one call (counters per kind, statuses, Retry-After)."""
        return Retry(total=None, connect=self.connect_retries, read=self.max_retries, status=self.max_retries,
                     other=0, redirect=0, status_forcelist=self.retry_statuses, allowed_methods=None,
                     backoff_factor=self.backoff_start, raise_on_status=False, respect_retry_after_header=True)

    def message(self, kind: str, url: str, detail: str, status: int | None) -> str:
        """The one-line text of a failure (``url`` already scrubbed)."""
        return f"{url}: {detail}"

    # -- plumbing ----------------------------------------------------------------------------

    def _error(self, kind: str, url: str, detail: str, status: int | None = None) -> HTTPError:
        cls = self.errors.get(kind) or self.errors["error"]
        text = " ".join(self.scrub(self.message(kind, self.scrub(url), detail, status)).split())
        return cls(text, status)

    def _pace(self) -> None:
        with self._pace_lock:
            wait = self._last + self.min_interval - time.monotonic()
            if wait > 0:
                self._sleep(wait)
            self._last = time.monotonic()

    def _attempt_timeout(self, deadline: float | None) -> float | tuple[float, float] | None:
        if deadline is None:
            return self.timeout
        remaining = deadline - time.monotonic()
        if remaining <= 0.05:
            return None
        if isinstance(self.timeout, tuple):
            return (min(self.timeout[0], remaining), min(self.timeout[1], remaining))
        return min(float(self.timeout), remaining)

    def _wait(self, retry: Retry, raw: Any = None) -> float:
        """Seconds to wait before the next attempt: the server's capped Retry-After, else backoff."""
        if raw is not None:
            try:
                after = retry.get_retry_after(raw)
            except (u3.InvalidHeader, ValueError, OverflowError):
                after = None
            if after is not None:
                return max(0.0, min(float(after), self.max_retry_after))
        errors = len(retry.history)
        return min(self.backoff_max, self.backoff_start * 2 ** max(0, errors - 1))

    def read_body(self, resp: requests.Response, deadline: float | None, limit: int | None = None) -> bytes:
        """The decoded body, refusing more than ``limit`` bytes and stopping at ``deadline``."""
        limit = self.max_response_bytes if limit is None else limit
        length = resp.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit:
            raise self._error("too_large", resp.url, f"the answer is {int(length) / MiB:.1f} MiB, over the "
                              f"{limit / MiB:g} MiB limit", resp.status_code)
        buf = bytearray()
        for chunk in self._chunks(resp, deadline):
            buf += chunk
            if len(buf) > limit:
                raise self._error("too_large", resp.url, f"the answer is over the {limit / MiB:g} MiB limit",
                                  resp.status_code)
            if deadline is not None and time.monotonic() > deadline:
                raise self._error("timeout", resp.url, f"time budget exhausted while reading the answer "
                                  f"({len(buf)} bytes so far)")
        return bytes(buf)

    def _chunks(self, resp: requests.Response, deadline: float | None) -> Iterator[bytes]:
        """The body as it arrives: each read returns what one ``recv()`` gave (not a full buffer,
        which a server dripping bytes would never fill) and waits at most the time left."""
        raw = resp.raw
        read_s = self.timeout[1] if isinstance(self.timeout, tuple) else float(self.timeout)
        if hasattr(raw, "read1"):  # urllib3 2

            def read() -> bytes:
                return raw.read1(_CHUNK, decode_content=True)
        elif resp.headers.get("Content-Encoding", "identity") == "identity" and \
                hasattr(getattr(raw, "_fp", None), "read1"):

            def read() -> bytes:  # urllib3 1.26: http.client's read1 (no decoding needed)
                return raw._fp.read1(_CHUNK)
        else:

            def read() -> bytes:
                return raw.read(1024, decode_content=True)
        while True:
            sock = getattr(getattr(raw, "connection", None), "sock", None)
            if deadline is not None and sock is not None:
                sock.settimeout(max(0.01, min(read_s, deadline - time.monotonic())))
            data = read()
            if not data:
                return
            yield data

    def _error_detail(self, resp: requests.Response, deadline: float | None) -> str:
        try:
            body = self.read_body(resp, deadline, ERROR_BODY_BYTES).decode("utf-8", "replace")
        except (HTTPError, requests.RequestException, u3.HTTPError, OSError):
            body = ""
        try:
            data = json.loads(body)
        except ValueError:
            return " ".join(body.split())[:200]
        err = data.get("error", data) if isinstance(data, dict) else data
        if isinstance(err, dict):
            err = err.get("message") or err.get("detail") or ""
        return " ".join(str(err).split())[:200]

    # -- the request ---------------------------------------------------------------------------

    def send(self, method: str, url: str, *, params: Any = None, json_body: Any = None, data: Any = None,
             headers: Mapping[str, str] | None = None, stream: bool = False, ok_statuses: Iterable[int] = (200,),
             deadline: float | None = None) -> requests.Response:
        """Send with retries; returns a response whose status is in ``ok_statuses``.

        Without ``stream`` the body is read here (capped, deadline-bound) and ``resp.content`` /
        ``resp.json()`` work; with ``stream`` the caller reads and closes it.
        """
        ok = frozenset(ok_statuses)
        key = f"{method.upper()} {url.split('?', maxsplit=1)[0]}"
        skipped = self.breaker.blocked(key) if self.breaker else None
        if skipped:
            raise self._error("offline", url, skipped)
        retry, last, attempts = self.policy(), "no attempt made", 0
        while True:
            timeout = self._attempt_timeout(deadline)
            if timeout is None:
                raise self._give_up(key, "timeout", url, f"time budget exhausted after {attempts} attempt(s) ({last})")
            self._pace()
            self.requests_sent += 1
            attempts += 1
            raw = None
            try:
                resp = self.session.request(method, url, params=params, json=json_body, data=data,
                                            headers=dict(headers or {}), stream=True, timeout=timeout)
                if resp.status_code in ok:
                    if not stream:
                        try:
                            resp._content, resp._content_consumed = self.read_body(resp, deadline), True
                        finally:
                            resp.close()  # also mid-answer: stops the transfer
                    if self.breaker:
                        self.breaker.succeeded(key)
                    return resp
            except (requests.RequestException, u3.HTTPError, OSError) as exc:
                last, kind = _describe(exc, timeout)
                try:
                    retry = retry.increment(method, self.scrub(url), error=_reason(exc))
                except (u3.HTTPError, OSError):
                    raise self._give_up(key, kind, url, last if attempts == 1 else
                                        f"failed after {attempts} attempt(s): {last}") from None
            else:
                retry, last, raw = self._status(retry, method, url, resp, deadline=deadline, key=key, attempts=attempts)
            wait = self._wait(retry, raw)
            if deadline is not None and time.monotonic() + wait >= deadline:
                raise self._give_up(key, "timeout", url, f"{last}; retrying after {wait:.1f} s would exceed "
                                    "the time budget")
            self.retries += 1
            log.info("%s: %s; retrying in %.1f s", self.scrub(url), last, wait)
            self._sleep(wait)

    def _status(self, retry: Retry, method: str, url: str, resp: requests.Response, *, deadline: float | None,
                key: str, attempts: int) -> tuple[Retry, str, Any]:
        """A non-OK answer: the next retry state, or the error raised when it is not retried."""
        status = resp.status_code
        detail = self.scrub(self._error_detail(resp, deadline))  # also logged below, before any retry
        resp.close()
        last = f"HTTP {status}{': ' + detail if detail else ''}"
        if not retry.is_retry(method, status, "Retry-After" in resp.headers):
            raise self._error("not_found" if status == 404 else "status", url, last, status)
        try:
            return retry.increment(method, self.scrub(url), response=resp.raw), last, resp.raw
        except u3.HTTPError:
            raise self._give_up(key, "status", url, f"failed after {attempts} attempt(s): {last}",
                                status) from None

    def _give_up(self, key: str, kind: str, url: str, detail: str, status: int | None = None) -> HTTPError:
        """The error for a failed call; an unreachable or timed-out endpoint also opens the breaker."""
        if self.breaker and kind in ("offline", "timeout"):
            cooldown = self.breaker.failed(key, detail[:120])
            if cooldown:
                detail += f"; not asked again for {cooldown:g} s"
        return self._error(kind, url, detail, status)

    def json(self, method: str, url: str, **kw: Any) -> Any:
        """:meth:`send` and decode JSON (an error of kind ``error`` when the answer is not JSON)."""
        resp = self.send(method, url, **kw)
        try:
            return resp.json()
        except ValueError:
            raise self._error("error", url, f"the answer is not JSON (HTTP {resp.status_code}, "
                              f"{len(resp.content)} bytes)", resp.status_code) from None


def origin(url: str) -> tuple[str, str | None, int | None]:
    """(scheme, host, port) of ``url`` — a key goes only to its own API's origin."""
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


__all__ = [
    "BREAKER", "Breaker", "HTTPClient", "HTTPError", "InvalidSecret", "Scrubber", "Secret", "check_secret",
    "origin", "remember_secret",
]
