"""A small, polite Civitai REST client on :class:`stylus_ext.sdk.http.HTTPClient` (requests + urllib3's Retry).

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
- JSON answers are read up to ``max_response_bytes`` (64 MiB) and refused beyond; a key with
  whitespace or control characters inside is refused before anything is sent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import requests

from stylus_ext.sdk.files import read_secret
from stylus_ext.sdk.hooks import VERSION
from stylus_ext.sdk.http import HTTPClient, HTTPError, InvalidSecret, MiB, Scrubber, check_secret, origin

DEFAULT_BASE_URL = "https://civitai.com/api/v1"
BASE_URL_ENV = "STYLUS_CIVITAI_BASE_URL"
API_KEY_ENV = "STYLUS_CIVITAI_API_KEY"
RETRY_STATUS = frozenset({403, 408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524})


class CivitaiError(HTTPError):
    """Civitai answered with an error or garbage (message is one line, secrets removed)."""


class CivitaiNotFound(CivitaiError):
    """404: the hash / id is not on Civitai."""


class CivitaiOffline(CivitaiError):
    """The server could not be reached (no network, DNS, refused, timeouts)."""


def resolve_base_url(base_url: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    return (base_url or environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


def resolve_api_key(api_key: str | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    """Explicit > env > owner-only key file; ``None`` when there is none (public endpoints work).

    A key with whitespace or control characters inside is a :class:`CivitaiError` (never shown)."""
    environ = os.environ if environ is None else environ
    key = api_key or environ.get(API_KEY_ENV) or read_secret(API_KEY_ENV, environ)
    try:
        key = check_secret(key, f"Civitai API key ({API_KEY_ENV})")
    except InvalidSecret as exc:
        raise CivitaiError(str(exc)) from None
    return key or None


def redact(text: object, secrets: tuple[str | None, ...] = ()) -> str:
    """``text`` with ``token=...`` values, bearer tokens and the given secrets (also base64 or
    partial echoes of them) replaced by ``***``."""
    return Scrubber(secrets)(text)


class CivitaiClient(HTTPClient):
    """GET/POST JSON and streaming downloads with rate limiting, backoff and redacted errors
    (:class:`stylus_ext.sdk.http.HTTPClient` with Civitai's retry statuses and messages).

    ``sleep`` is injectable (tests pass a recorder); ``min_interval``, ``backoff_start`` and
    ``backoff_max`` are the politeness knobs (tests set them near zero).
    """

    errors: ClassVar[dict[str, type[HTTPError]]] = {
        "error": CivitaiError, "status": CivitaiError, "not_found": CivitaiNotFound, "timeout": CivitaiOffline,
        "offline": CivitaiOffline, "too_large": CivitaiError}
    retry_statuses = RETRY_STATUS

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
        max_response_bytes: int = 64 * MiB,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = resolve_base_url(base_url, environ)
        self._api_key = resolve_api_key(api_key, environ)
        super().__init__(secrets=(self._api_key,), timeout=timeout, max_retries=max_retries,
                         connect_retries=connect_retries, backoff_start=backoff_start, backoff_max=backoff_max,
                         max_retry_after=max_retry_after, max_response_bytes=max_response_bytes,
                         min_interval=min_interval, session=session, sleep=sleep)
        self.session.headers.setdefault("User-Agent", f"stylus-ext/{VERSION}")

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
        return self.scrub(text)

    def _same_host(self, url: str) -> bool:
        """The key goes only to the API's own host (a card's download URL could point anywhere)."""
        return origin(url) == origin(self.base_url)

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    def policy(self) -> Any:
        """Dropped connections and timeouts count against ``connect_retries``, statuses against ``max_retries``."""
        return super().policy().new(read=self.connect_retries)

    def message(self, kind: str, url: str, detail: str, status: int | None) -> str:
        if kind in ("offline", "timeout"):
            return (f"Civitai is not reachable ({detail}: {url}); check the network or --api-base / "
                    f"{BASE_URL_ENV}. Nothing was lost: rerun to continue.")
        if kind == "not_found":
            return f"not found on Civitai: {url}"
        hint = "" if self._api_key or status not in (401, 403) else \
            " (this may need a Civitai API key: set STYLUS_CIVITAI_API_KEY)"
        return f"{detail} from {url}{hint}"

    # -- core ------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, params: Any = None, json_body: Any = None,
                headers: Mapping[str, str] | None = None, stream: bool = False,
                ok_statuses: tuple[int, ...] = (200,), deadline: float | None = None) -> requests.Response:
        """Send one request with pacing, retries and backoff; returns a response in ``ok_statuses``.

        404 → :class:`CivitaiNotFound`; other 4xx → :class:`CivitaiError`; network down →
        :class:`CivitaiOffline`. Without ``stream`` the body is already read (capped at
        ``max_response_bytes``); the caller closes streamed responses.
        """
        url = self.url(path)
        hdrs = dict(headers or {})
        if self._api_key and self._same_host(url):
            hdrs["Authorization"] = f"Bearer {self._api_key}"
        return self.send(method, url, params=params, json_body=json_body, headers=hdrs, stream=stream,
                         ok_statuses=ok_statuses, deadline=deadline)

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
