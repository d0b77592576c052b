"""A small client for OpenAI-compatible HTTP servers (OpenAI, Ollama, LM Studio, llama.cpp, vLLM...).

Used by the HTTP composer, the vision refiner and the embeddings encoder (re-exported through
:mod:`stylus_ext.sdk` as ``sdk.OpenAIClient``). What it guarantees:

- retries 429 / 5xx / connection errors / timeouts with exponential backoff, honouring
  ``Retry-After`` (seconds or an HTTP date), and never sleeps or waits past the caller's deadline;
- the API key goes only into the ``Authorization`` header: it is never logged, never part of an
  exception message (server error bodies are scrubbed of it) and never shown by ``repr``;
- every failure is a :class:`LLMError` with a one-line message (:class:`LLMStatusError` carries
  the HTTP status, so a caller can react to 400 "unsupported parameter").
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlparse

import requests

log = logging.getLogger("stylus")

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class LLMError(RuntimeError):
    """A request to a model server failed (one-line message, never contains the API key)."""


class LLMStatusError(LLMError):
    """The server answered with an HTTP error status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class LLMTimeout(LLMError):
    """The time budget ran out before the server gave a usable answer."""


class Secret:
    """A string that never shows itself in ``repr``/``str``/logs; ``.value`` reveals it."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = (value or "").strip()

    @property
    def value(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


def api_root(base_url: str) -> str:
    """Normalise a base URL: ``http://host:11434`` → ``http://host:11434/v1``; a URL with a path
    (``.../v1``, ``.../api/v1``, ``.../openai/v1``) is kept as given (minus a trailing slash)."""
    url = (base_url or "").strip().rstrip("/")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise LLMError(f"base URL {base_url!r} is not an http(s) URL (e.g. http://127.0.0.1:11434/v1)")
    if parsed.path in ("", "/"):
        url += "/v1"
    for suffix in ("/chat/completions", "/embeddings"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    return url


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a ``Retry-After`` header (delta seconds or HTTP date); None when absent/unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


class OpenAIClient:
    """POST JSON to an OpenAI-compatible API with retries inside a deadline.

    ``deadline`` arguments are :func:`time.monotonic` values; ``None`` means only ``timeout``
    (per attempt) and ``max_retries`` bound the call.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | Secret | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 20.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.root = api_root(base_url)
        self._key = api_key if isinstance(api_key, Secret) else Secret(api_key)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self._session = session or requests.Session()
        self._sleep = sleep
        self.json_mode_supported: bool | None = None
        self.attempts = 0  # total HTTP attempts made (for reports and tests)

    def __repr__(self) -> str:
        return f"OpenAIClient({self.root!r}, api_key={self._key!r})"

    def close(self) -> None:
        self._session.close()

    # -- plumbing --------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        key = self._key.value
        if key:
            text = text.replace(key, "***")
            if len(key) > 8:  # servers often echo a prefix/suffix of a wrong key
                text = text.replace(key[:8], "***").replace(key[-6:], "***")
        return text

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key.value}"
        return headers

    def post(self, path: str, payload: dict[str, Any], *, deadline: float | None = None) -> dict[str, Any]:
        """POST ``payload`` to ``<root>/<path>`` and return the decoded JSON object."""
        url = f"{self.root}/{path.lstrip('/')}"
        if not self._key and urlparse(self.root).hostname == "api.openai.com":  # the default base URL
            raise LLMError(f"{url}: OpenAI needs an API key (its *_API_KEY environment variable or key file, see "
                           "docs/backends.md), or set base_url to a local server (Ollama, LM Studio, ...)")
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        last = "no attempt made"
        for attempt in range(self.max_retries + 1):
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0.05:
                raise LLMTimeout(f"{url}: time budget exhausted after {attempt} attempt(s) ({last})")
            timeout = self.timeout if remaining is None else max(0.05, min(self.timeout, remaining))
            wait: float | None = None
            self.attempts += 1
            try:
                resp = self._session.post(url, data=body, headers=self._headers(), timeout=timeout)
            except requests.Timeout:
                last = f"no answer within {timeout:.1f} s"
            except requests.ConnectionError as exc:
                reason = re.search(r"\[Errno -?\d+\][^'\")]*", str(exc))
                last = self._scrub(f"cannot connect: {reason.group(0).strip() if reason else str(exc)[:120]}")
            except requests.RequestException as exc:
                last = self._scrub(f"{type(exc).__name__}: {str(exc)[:200]}")
            else:
                if resp.status_code < 300:
                    try:
                        data = resp.json()
                    except ValueError:
                        raise LLMError(f"{url}: the server's answer is not JSON: "
                                       f"{self._scrub(resp.text[:120])!r}") from None
                    if not isinstance(data, dict):
                        raise LLMError(f"{url}: expected a JSON object, got {type(data).__name__}")
                    return data
                detail = self._scrub(_error_detail(resp))
                last = f"HTTP {resp.status_code}{': ' + detail if detail else ''}"
                if resp.status_code not in RETRY_STATUSES:
                    raise LLMStatusError(f"{url}: {last}", resp.status_code)
                wait = retry_after_seconds(resp.headers.get("Retry-After"))
            if attempt == self.max_retries:
                break
            if wait is None:
                wait = min(self.max_backoff, self.backoff * 2 ** attempt) * (0.75 + 0.5 * random.random())
            if deadline is not None and time.monotonic() + wait >= deadline:
                raise LLMTimeout(f"{url}: {last}; retrying after {wait:.1f} s would exceed the time budget")
            log.info("%s: %s; retrying in %.1f s", url, last, wait)
            self._sleep(wait)
        raise LLMError(f"{url}: failed after {self.max_retries + 1} attempt(s): {last}")

    # -- endpoints -------------------------------------------------------------------------

    def chat(
        self,
        messages: Sequence[dict[str, Any]],
        model: str,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_mode: bool = False,
        deadline: float | None = None,
    ) -> str:
        """One chat completion (streaming off); returns the assistant's text.

        With ``json_mode`` it asks for ``response_format={"type": "json_object"}``; a server that
        rejects that with HTTP 400/422 is asked again without it (and not asked again later).
        """
        payload: dict[str, Any] = {"model": model, "messages": list(messages), "stream": False}
        if temperature is not None:
            payload["temperature"] = temperature
        if max_tokens:
            payload["max_tokens"] = max_tokens
        use_json = json_mode and self.json_mode_supported is not False
        if use_json:
            payload["response_format"] = {"type": "json_object"}
        try:
            data = self.post("chat/completions", payload, deadline=deadline)
        except LLMStatusError as exc:
            if not (use_json and exc.status in (400, 422)):
                raise
            log.info("server rejected JSON mode (%s); asking without it", exc.status)
            self.json_mode_supported = False
            payload.pop("response_format")
            data = self.post("chat/completions", payload, deadline=deadline)
        else:
            if use_json:
                self.json_mode_supported = True
        return chat_text(data)

    def embeddings(self, texts: Sequence[str], model: str, *, dimensions: int | None = None,
                   deadline: float | None = None) -> list[list[float]]:
        """Vectors for ``texts`` in input order (the answer's ``index`` fields are honoured)."""
        payload: dict[str, Any] = {"model": model, "input": list(texts), "encoding_format": "float"}
        if dimensions:
            payload["dimensions"] = int(dimensions)
        data = self.post("embeddings", payload, deadline=deadline)
        items = data.get("data")
        if not isinstance(items, list) or len(items) != len(texts):
            raise LLMError(f"embeddings answer has {len(items) if isinstance(items, list) else 'no'} "
                           f"vectors for {len(texts)} texts")
        out: list[list[float] | None] = [None] * len(texts)
        for pos, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("embedding"), list):
                raise LLMError("embeddings answer: an item has no 'embedding' list")
            index = item.get("index", pos)
            if not isinstance(index, int) or not 0 <= index < len(texts) or out[index] is not None:
                raise LLMError(f"embeddings answer: bad or repeated index {index!r}")
            vec = item["embedding"]
            if not vec or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vec):
                raise LLMError("embeddings answer: an embedding is empty or not numeric")
            out[index] = [float(x) for x in vec]
        return out  # type: ignore[return-value]


def chat_text(data: dict[str, Any]) -> str:
    """The assistant text of a chat completion answer (content string or list of text parts)."""
    try:
        message = data["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        raise LLMError("chat answer has no choices[0].message") from None
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):  # some servers answer with content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        raise LLMError("chat answer has no text content")
    return content


def _error_detail(resp: requests.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return " ".join(resp.text.split())[:160]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            err = err.get("message") or err.get("detail") or ""
        return " ".join(str(err).split())[:160]
    return ""
