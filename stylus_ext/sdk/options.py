"""Backend options, declared once: they drive the CLI flags, the environment variables
(``STYLUS_<ENV_PREFIX>_<OPTION>``) and the WebUI settings alike."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stylus_ext.sdk.files import read_secret


@dataclass(frozen=True)
class Option:
    """One setting of a backend, declared once.

    ``secret`` options (API keys) are read only from the environment or from a key file with
    owner-only permissions — never from CLI history, WebUI settings, logs or the catalog.
    """

    name: str
    type: type
    default: Any
    help: str
    secret: bool = False
    choices: tuple[Any, ...] = ()

    def env_var(self, prefix: str) -> str:
        return f"STYLUS_{prefix}_{self.name}".upper().replace("-", "_")

    def parse(self, raw: Any) -> Any:
        """Convert a raw value (an env string, a CLI string, a settings value) to ``type``."""
        if raw is None or (isinstance(raw, self.type) and (self.type is bool) == isinstance(raw, bool)):
            value = raw
        elif self.type is bool:
            value = str(raw).strip().lower() in ("1", "true", "yes", "on")
        else:
            try:
                value = self.type(raw)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"option {self.name!r}: cannot read {raw!r} as {self.type.__name__}") from exc
        if self.choices and value not in self.choices:
            raise ValueError(f"option {self.name!r}: {value!r} is not one of {list(self.choices)}")
        return value


def resolve_options(
    options: Sequence[Option],
    env_prefix: str,
    given: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Resolve option values: explicit ``given`` (not None) > environment > key file (secrets only)
    > default. Unknown names in ``given`` and unreadable values raise ``ValueError``."""
    environ = os.environ if environ is None else environ
    given = given or {}
    values: dict[str, Any] = {}
    for opt in options:
        raw = given.get(opt.name)
        if raw is None and env_prefix:
            raw = environ.get(opt.env_var(env_prefix))
        if raw is None and opt.secret and env_prefix:
            raw = read_secret(opt.env_var(env_prefix), environ)
        values[opt.name] = opt.default if raw is None else opt.parse(raw)
    unknown = set(given) - {o.name for o in options}
    if unknown:
        raise ValueError(f"unknown option(s): {', '.join(sorted(unknown))}")
    return values


def server_options(env_prefix: str, model: str, *, timeout: float = 60.0) -> tuple[Option, ...]:
    """The options of a backend that talks to an OpenAI-compatible server (Ollama, LM Studio,
    llama.cpp, vLLM, OpenAI...): ``base_url``, ``model``, ``api_key`` (secret), ``timeout``, ``max_retries``."""
    return (
        Option("base_url", str, "https://api.openai.com/v1", "API root, e.g. http://127.0.0.1:11434/v1"),
        Option("model", str, model, "model name as the server knows it"),
        Option("api_key", str, "", f"API key (env STYLUS_{env_prefix}_API_KEY or key file only)", secret=True),
        Option("timeout", float, timeout, "seconds per HTTP attempt"),
        Option("max_retries", int, 4, "retries on 429/5xx/timeouts"),
    )


def split_list(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """A list option's value: ``"a, b"`` or ``["a", "b"]`` → ``("a", "b")`` (stripped, empty dropped, order kept)."""
    if value is None:
        return ()
    parts = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return tuple(dict.fromkeys(p.strip() for p in parts if p and p.strip()))
