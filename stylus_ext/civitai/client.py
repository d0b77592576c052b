"""A small, polite Civitai REST client on ``requests``.

- Base URL: explicit > env ``STYLUS_CIVITAI_BASE_URL`` > ``https://civitai.com/api/v1``.
- API key (optional): explicit > env ``STYLUS_CIVITAI_API_KEY`` > owner-only key file
  ``<secrets dir>/STYLUS_CIVITAI_API_KEY`` (see :func:`stylus_ext.sdk.read_secret`). Sent only as
  ``Authorization: Bearer`` and only to the API's own host (``requests`` also drops it when a redirect
  leaves the host); never logged, never stored, and scrubbed from every error text (as are ``token=``
  query values, also in urllib3's debug log).
- At least ``min_interval`` seconds (default 0.75) between request starts, shared by all threads.
- 429/403/5xx and dropped connections are retried with exponential backoff (1 s → 30 s), honouring
  ``Retry-After`` when the server sends one; retries are bounded. A network that stays down ends in
  :class:`CivitaiOffline` with a one-line message — callers keep what they already committed.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from stylus_ext import __version__, sdk

log = logging.getLogger("stylus.civitai")

DEFAULT_BASE_URL = "https://civitai.com/api/v1"
BASE_URL_ENV = "STYLUS_CIVITAI_BASE_URL"
API_KEY_ENV = "STYLUS_CIVITAI_API_KEY"
RETRY_STATUS = frozenset({403, 408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524})

_TOKEN_RE = re.compile(r"((?:token|api_key|apikey|key)=)[^&\s#'\"]+", re.IGNORECASE)
_BEARER_RE = re.compile(r"(Bearer\s+)\S+", re.IGNORECASE)


class CivitaiError(RuntimeError):
    """Civitai answered with an error or garbage (message is one line, secrets removed)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class CivitaiNotFound(CivitaiError):
    """404: the hash / id is not on Civitai."""


class CivitaiOffline(CivitaiError):
    """The server could not be reached (no network, DNS, refused, timeouts)."""


def resolve_base_url(base_url: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    return (base_url or environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


def resolve_api_key(api_key: str | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    """Explicit > env > owner-only key file; ``None`` when there is none (public endpoints work)."""
    environ = os.environ if environ is None else environ
    key = api_key or environ.get(API_KEY_ENV) or sdk.read_secret(API_KEY_ENV, environ)
    return key.strip() if key and key.strip() else None


def redact(text: object, secrets: tuple[str | None, ...] = ()) -> str:
    """``text`` with ``token=...`` values, bearer tokens and the given secrets replaced by ``***``."""
    out = str(text)
    for secret in secrets:
        if secret:
            out = out.replace(secret, "***")
    out = _TOKEN_RE.sub(r"\1***", out)
    return _BEARER_RE.sub(r"\1***", out)


_known_secrets: set[str] = set()


class _RedactFilter(logging.Filter):
    """Scrubs ``token=`` values and known keys from library log records (urllib3 logs full URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        clean = redact(message, tuple(_known_secrets))
        if clean != message:
            record.msg, record.args = clean, None
        return True


_redact_filter = _RedactFilter()


def _install_log_filter() -> None:
    for name in ("urllib3.connectionpool", "requests"):
        logger = logging.getLogger(name)
        if _redact_filter not in logger.filters:
            logger.addFilter(_redact_filter)


def _retry_after(value: str | None, cap: float) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if math.isnan(seconds):
        return None
    return max(0.0, min(seconds, cap))


class CivitaiClient:
    """GET/POST JSON and streaming downloads with rate limiting, backoff and redacted errors.

    ``sleep`` is injectable (tests pass a recorder); ``min_interval``, ``backoff_start`` and
    ``backoff_max`` are the politeness knobs (tests set them near zero).
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        min_interval: float = 0.75,
        backoff_start: float = 1.0,
        backoff_max: float = 30.0,
        max_retries: int = 6,
        connect_retries: int = 2,
        timeout: tuple[float, float] = (10.0, 60.0),
        max_retry_after: float = 300.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = resolve_base_url(base_url, environ)
        self._api_key = resolve_api_key(api_key, environ)
        if self._api_key:
            _known_secrets.add(self._api_key)
        _install_log_filter()
        self.min_interval = min_interval
        self.backoff_start = backoff_start
        self.backoff_max = backoff_max
        self.max_retries = max_retries
        self.connect_retries = connect_retries
        self.timeout = timeout
        self.max_retry_after = max_retry_after
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", f"stylus-ext/{__version__}")
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last = 0.0
        #: Requests sent (including retries) and retries alone — for reports and tests.
        self.requests_sent = 0
        self.retries = 0

    @classmethod
    def from_env(cls, base_url: str | None = None, *, min_interval: float | None = None,
                 environ: Mapping[str, str] | None = None, **kw: Any) -> CivitaiClient:
        """A client whose politeness knobs also come from ``STYLUS_CIVITAI_MIN_INTERVAL`` and
        ``STYLUS_CIVITAI_BACKOFF_START`` (the same variables the ``civitai`` source reads)."""
        environ = os.environ if environ is None else environ

        def number(name: str, default: float) -> float:
            try:
                return max(0.0, float(environ.get(name, default)))
            except ValueError:
                return default

        if min_interval is None:
            min_interval = number("STYLUS_CIVITAI_MIN_INTERVAL", 0.75)
        kw.setdefault("backoff_start", number("STYLUS_CIVITAI_BACKOFF_START", 1.0))
        return cls(base_url, min_interval=max(0.0, min_interval), environ=environ, **kw)

    def __repr__(self) -> str:  # never show the key
        return f"CivitaiClient({self.base_url!r}, api_key={'set' if self._api_key else 'none'})"

    @property
    def has_api_key(self) -> bool:
        return self._api_key is not None

    def redact(self, text: object) -> str:
        return redact(text, (self._api_key,))

    def _same_host(self, url: str) -> bool:
        """The key goes only to the API's own host (a card's download URL could point anywhere)."""
        a, b = urlsplit(url), urlsplit(self.base_url)
        return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    # -- core ------------------------------------------------------------------------------

    def _pace(self) -> None:
        with self._lock:
            wait = self._last + self.min_interval - time.monotonic()
            if wait > 0:
                self._sleep(wait)
            self._last = time.monotonic()

    def request(self, method: str, path: str, *, params: Any = None, json_body: Any = None,
                headers: Mapping[str, str] | None = None, stream: bool = False,
                ok_statuses: tuple[int, ...] = (200,)) -> requests.Response:
        """Send one request with pacing, retries and backoff; returns a response in ``ok_statuses``.

        404 → :class:`CivitaiNotFound`; other 4xx → :class:`CivitaiError`; network down →
        :class:`CivitaiOffline`. The caller closes streamed responses.
        """
        url = self.url(path)
        hdrs = dict(headers or {})
        if self._api_key and self._same_host(url):
            hdrs["Authorization"] = f"Bearer {self._api_key}"
        delay = self.backoff_start
        attempt = conn_failures = 0
        while True:
            self._pace()
            self.requests_sent += 1
            try:
                resp = self.session.request(method, url, params=params, json=json_body, headers=hdrs,
                                            stream=stream, timeout=self.timeout, allow_redirects=True)
            except (requests.ConnectionError, requests.Timeout) as exc:
                conn_failures += 1
                if conn_failures > self.connect_retries:
                    raise CivitaiOffline(self._offline_message(url, exc)) from None
                log.info("civitai: %s; retrying in %.1f s", self.redact(type(exc).__name__), delay)
                self.retries += 1
                self._sleep(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            except requests.RequestException as exc:
                raise CivitaiError(f"request to {self.redact(url)} failed: {self.redact(exc)}") from None
            if resp.status_code in ok_statuses:
                return resp
            status = resp.status_code
            if status in RETRY_STATUS and attempt < self.max_retries:
                wait = _retry_after(resp.headers.get("Retry-After"), self.max_retry_after)
                resp.close()
                attempt += 1
                self.retries += 1
                if wait is None:  # no Retry-After: our own exponential backoff
                    wait, delay = delay, min(delay * 2, self.backoff_max)
                log.info("civitai: HTTP %d from %s; waiting %.1f s (retry %d/%d)", status,
                         self.redact(resp.url or url), wait, attempt, self.max_retries)
                self._sleep(wait)
                continue
            text = self._error_text(resp)
            resp.close()
            where = self.redact(url)
            if status == 404:
                raise CivitaiNotFound(f"not found on Civitai: {where}", status)
            if status in (401, 403):
                hint = "" if self._api_key else " (this may need a Civitai API key: set STYLUS_CIVITAI_API_KEY)"
                raise CivitaiError(f"HTTP {status} from {where}{hint}{text}", status)
            raise CivitaiError(f"HTTP {status} from {where}{text}", status)

    def _error_text(self, resp: requests.Response) -> str:
        try:
            chunk = next(resp.iter_content(300), b"")
            body = chunk.decode("utf-8", "replace") if isinstance(chunk, bytes) else str(chunk)
        except (requests.RequestException, OSError, RuntimeError, StopIteration):
            body = ""
        body = " ".join(body.split())[:200]
        return f": {self.redact(body)}" if body else ""

    def _offline_message(self, url: str, exc: Exception) -> str:
        kind = "timed out" if isinstance(exc, requests.Timeout) else "could not connect"
        return (f"Civitai is not reachable ({kind}: {self.redact(url)}); check the network or "
                f"--api-base / {BASE_URL_ENV}. Nothing was lost: rerun to continue.")

    # -- JSON helpers ----------------------------------------------------------------------

    def get_json(self, path: str, params: Any = None) -> Any:
        resp = self.request("GET", path, params=params)
        return self._json(resp)

    def post_json(self, path: str, body: Any) -> Any:
        resp = self.request("POST", path, json_body=body)
        return self._json(resp)

    def _json(self, resp: requests.Response) -> Any:
        try:
            return resp.json()
        except ValueError:
            raise CivitaiError(f"Civitai sent a non-JSON answer from {self.redact(resp.url)} "
                               f"(HTTP {resp.status_code}, {len(resp.content)} bytes)", resp.status_code) from None
        finally:
            resp.close()

    # -- endpoints -------------------------------------------------------------------------

    def models_page(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``GET /models`` with the given query parameters; checks the page's shape."""
        page = self.get_json("models", params=dict(params))
        if not isinstance(page, dict) or not isinstance(page.get("items"), list):
            raise CivitaiError(f"unexpected /models answer from {self.redact(self.base_url)}: no 'items' list")
        return page

    def version_by_hash(self, file_hash: str) -> dict[str, Any]:
        """``GET /model-versions/by-hash/{hash}``; :class:`CivitaiNotFound` when unknown."""
        data = self.get_json(f"model-versions/by-hash/{file_hash}")
        if not isinstance(data, dict):
            raise CivitaiError("unexpected by-hash answer: not an object")
        return data

    def versions_by_hashes(self, hashes: list[str]) -> list[dict[str, Any]]:
        """``POST /model-versions/by-hash`` with ≤100 SHA256; returns the versions found."""
        if len(hashes) > 100:
            raise ValueError("at most 100 hashes per bulk lookup")
        data = self.post_json("model-versions/by-hash", list(hashes))
        if isinstance(data, dict) and isinstance(data.get("items"), list):
            data = data["items"]
        if not isinstance(data, list):
            raise CivitaiError("unexpected bulk by-hash answer: not a list")
        return [v for v in data if isinstance(v, dict)]

    def model_version(self, version_id: int) -> dict[str, Any]:
        data = self.get_json(f"model-versions/{int(version_id)}")
        if not isinstance(data, dict):
            raise CivitaiError("unexpected model-version answer: not an object")
        return data
