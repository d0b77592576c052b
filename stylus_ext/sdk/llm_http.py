"""The client for OpenAI-compatible HTTP servers (OpenAI, Ollama, LM Studio, llama.cpp, vLLM...).

Used by the HTTP composer, the vision refiner and the embeddings encoder (``sdk.OpenAIClient``,
``sdk.server_client``).
It is :class:`stylus_ext.sdk.http.HTTPClient` (retries with urllib3's ``Retry`` inside a deadline,
capped ``Retry-After``, capped answers read only until the deadline, secrets scrubbed from every
error text) plus the OpenAI endpoints, and a circuit breaker: an endpoint that could not be reached
or timed out is skipped (for 30 s, doubling while it keeps failing) rather than costing every
generation its connection attempts (batch jobs such as the vision refiner switch it off). The
API key goes only into the ``Authorization`` header and is checked first (no whitespace or control
characters). Every failure is an :class:`LLMError` with a one-line message
(:class:`LLMStatusError` carries the HTTP status).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar
from urllib.parse import urlparse

import requests

from stylus_ext.sdk.http import BREAKER, Breaker, HTTPClient, HTTPError, MiB, Secret

log = logging.getLogger("stylus")


class LLMError(HTTPError):
    """A request to a model server failed (one-line message, never contains the API key)."""


class LLMStatusError(LLMError):
    """The server answered with an HTTP error status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message, status)


class LLMTimeout(LLMError):
    """The time budget ran out before the server gave a usable answer."""


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


class OpenAIClient(HTTPClient):
    """POST JSON to an OpenAI-compatible API with retries inside a deadline.

    ``deadline`` arguments are :func:`time.monotonic` values; ``None`` means only ``timeout``
    (per attempt) and ``max_retries`` bound the call. A refused connection is retried once.
    """

    errors: ClassVar[dict[str, type[HTTPError]]] = {
        "error": LLMError, "status": LLMStatusError, "not_found": LLMStatusError, "timeout": LLMTimeout,
        "offline": LLMError, "too_large": LLMError}

    def __init__(
        self,
        base_url: str,
        api_key: str | Secret | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 20.0,
        max_retry_after: float = 30.0,
        max_response_bytes: int = 32 * MiB,
        breaker: Breaker | None = BREAKER,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.root = api_root(base_url)
        self._key = api_key if isinstance(api_key, Secret) else Secret(api_key)
        super().__init__(secrets=(self._key.value,), timeout=float(timeout), max_retries=max_retries,
                         connect_retries=min(1, int(max_retries)), backoff_start=backoff, backoff_max=max_backoff,
                         max_retry_after=max_retry_after, max_response_bytes=max_response_bytes,
                         breaker=breaker, session=session, sleep=sleep)
        self.json_mode_supported: bool | None = None

    def __repr__(self) -> str:
        return f"OpenAIClient({self.root!r}, api_key={self._key!r})"

    @property
    def attempts(self) -> int:
        """Total HTTP attempts made (for reports and tests)."""
        return self.requests_sent

    @property
    def _session(self) -> requests.Session:
        return self.session

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
        data = self.json("POST", url, json_body=payload, headers=self._headers(), deadline=deadline)
        if not isinstance(data, dict):
            raise LLMError(f"{url}: expected a JSON object, got {type(data).__name__}")
        return data

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



def server_client(config: dict[str, Any]) -> OpenAIClient:
    """The client for a backend declared with ``sdk.server_options``. The API key moves into the
    client (as a ``Secret``); ``config["api_key"]`` keeps only ``"***"`` or ``""``."""
    key = Secret(config.get("api_key"))
    config["api_key"] = "***" if key else ""
    return OpenAIClient(config["base_url"], key, timeout=config["timeout"], max_retries=config["max_retries"])
