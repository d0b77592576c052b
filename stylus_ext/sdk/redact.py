"""Secrets in HTTP clients: keys checked before use, hidden in ``repr``, scrubbed from every text.

:class:`Scrubber` removes a secret from error texts and log records in every form a server or a
library may echo it: exact, URL-quoted, base64-encoded at any alignment (``Basic`` auth, JSON
echoes), and partial echoes (any run of six or more of its characters — "key sk-abc…xyz is invalid").
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Iterable
from urllib.parse import quote


class InvalidSecret(ValueError):
    """An API key that cannot be sent as one header token (whitespace or control characters)."""


def check_secret(value: str | None, what: str = "API key") -> str:
    """``value`` without edge whitespace; :class:`InvalidSecret` when whitespace or a control
    character is left inside it (a two-line key file, a pasted line break). Never shows the value."""
    text = (value or "").strip()
    bad = next((c for c in text if c.isspace() or ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        kind = "a line break" if bad in "\r\n" else "whitespace" if bad.isspace() else "a control character"
        raise InvalidSecret(f"the {what} contains {kind}; it must be a single line with no spaces "
                            f"(check its environment variable or key file). Nothing was sent.")
    return text


class Secret:
    """A checked key that never shows itself in ``repr``/``str``/logs; ``.value`` reveals it."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = check_secret(value)

    @property
    def value(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


_TOKEN_RE = re.compile(r"((?:token|api_key|apikey|key)=)[^&\s#'\"]+", re.IGNORECASE)
_AUTH_RE = re.compile(r"((?:Bearer|Basic)\s+)\S+", re.IGNORECASE)
_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")


class Scrubber:
    """Removes secrets from text: exact, URL-quoted, base64-encoded (any alignment) and partial
    echoes (any run of ``window`` or more characters of a secret), ``Bearer …`` and ``token=…``."""

    def __init__(self, secrets: Iterable[str | None] = (), window: int = 6) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._windows: set[str] = set()
        self._width = window
        for s in self.secrets:
            k = min(window, len(s))
            self._width = min(self._width, k)
        for s in self.secrets:
            self._windows.update(s[i:i + self._width] for i in range(len(s) - self._width + 1))

    def _hides(self, text: str) -> bool:
        w = self._width
        return any(text[i:i + w] in self._windows for i in range(len(text) - w + 1))

    def _b64(self, match: re.Match[str]) -> str:
        run = match.group(0).replace("-", "+").replace("_", "/").rstrip("=")
        for shift in range(4):
            part = run[shift:]
            part = part[: len(part) - len(part) % 4]
            try:
                raw = base64.b64decode(part, validate=True)
            except (binascii.Error, ValueError):
                continue
            if self._hides(raw.decode("latin-1")):
                return "***"
        return match.group(0)

    def _partial(self, text: str) -> str:
        w, hidden = self._width, bytearray(len(text))
        for i in range(len(text) - w + 1):
            if text[i:i + w] in self._windows:
                hidden[i:i + w] = b"\x01" * w
        if not any(hidden):
            return text
        out, i = [], 0
        while i < len(text):
            if hidden[i]:
                while i < len(text) and hidden[i]:
                    i += 1
                out.append("***")
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    def __call__(self, text: object) -> str:
        out = str(text)
        for s in self.secrets:
            out = out.replace(s, "***").replace(quote(s, safe=""), "***")
        out = _AUTH_RE.sub(r"\1***", _TOKEN_RE.sub(r"\1***", out))
        if self._windows:
            out = self._partial(_B64_RUN.sub(self._b64, out))
        return out


_known_secrets: set[str] = set()


class _LogScrubber(logging.Filter):
    """Scrubs known keys and ``token=`` values from library log records (urllib3 logs full URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        clean = Scrubber(tuple(_known_secrets))(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_log_scrubber = _LogScrubber()


def remember_secret(secret: str | None) -> None:
    """Scrub ``secret`` from urllib3/requests log records from now on (their debug logs show URLs)."""
    if secret:
        _known_secrets.add(secret)
    for name in ("urllib3.connectionpool", "urllib3.util.retry", "requests"):
        logger = logging.getLogger(name)
        if _log_scrubber not in logger.filters:
            logger.addFilter(_log_scrubber)


__all__ = ["InvalidSecret", "Scrubber", "Secret", "check_secret", "remember_secret"]
