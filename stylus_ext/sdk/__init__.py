"""The public SDK: the one module a Stylus plugin imports.

A plugin is a module (or an installed package exposing the ``stylus_ext`` entry point, or a ``*.py``
file in the user plugins folder) with functions marked ``@hookimpl`` that register backends::

    from stylus_ext import sdk

    class ShoutComposer(sdk.Composer):
        name = "shout"
        options = (sdk.Option("volume", int, 3, "How loud."),)

        def compose(self, request: sdk.ComposeRequest) -> sdk.Composition:
            ...

    @sdk.hookimpl
    def register_composers(register):
        register(ShoutComposer)

Records are plain frozen dataclasses (no pydantic: the WebUI ships v1, Forge v2). Backends are small
classes with ONE method to implement; options are declared once and drive the CLI flags, the
environment variables (``STYLUS_<ENV_PREFIX>_<OPTION>``) and the WebUI settings alike.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pluggy

PROJECT = "stylus_ext"
hookimpl = pluggy.HookimplMarker(PROJECT)

#: Adapter topics. The paper's ten plus ``character`` split from ``celebrity``, ``object`` and
#: ``utility`` (sliders, detail tweakers, LCM/Turbo: only used when pinned).
CATEGORIES: tuple[str, ...] = (
    "concept", "style", "pose", "action", "character", "celebrity", "clothing", "background",
    "building", "vehicle", "animal", "object", "utility",
)

#: Base-model families, and the architecture group each belongs to. Adapters only work within one
#: architecture group; within a group the family is a ranking preference.
BASE_MODEL_GROUPS: dict[str, str] = {
    "SD1": "SD1", "SD2": "SD2", "SDXL": "SDXL", "Pony": "SDXL", "Illustrious": "SDXL",
    "NoobAI": "SDXL", "Flux": "Flux", "SD3": "SD3", "unknown": "unknown",
}


def base_model_group(family: str | None) -> str:
    """Architecture group of a base-model family (``"unknown"`` for anything unrecognised)."""
    return BASE_MODEL_GROUPS.get(family or "unknown", "unknown")


def compatible(adapter_family: str | None, target_family: str | None) -> bool:
    """True when an adapter of ``adapter_family`` can run on a ``target_family`` checkpoint.

    Unknown on either side passes: a wrong "no" loses a good adapter, a wrong "yes" is pruned later.
    """
    a, t = base_model_group(adapter_family), base_model_group(target_family)
    return "unknown" in (a, t) or a == t


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


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


def resolve_options(
    options: Sequence[Option],
    env_prefix: str,
    given: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Resolve option values: explicit ``given`` (not None) > environment > key file > default.

    Secret options ignore ``given`` values that come from persisted settings only when the caller
    passes them; callers must never persist secrets (see :func:`read_secret`).
    """
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


def secrets_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Folder of owner-only key files (``STYLUS_SECRETS_DIR``, default ``~/.config/stylus/keys``)."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("STYLUS_SECRETS_DIR") or Path.home() / ".config" / "stylus" / "keys")


def read_secret(env_var: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A secret from the key file ``<secrets_dir>/<ENV_VAR>``, only when owner-only (0600/0400).

    A key file readable by group or others is refused (and ignored), as ssh does.
    """
    path = secrets_dir(environ) / env_var
    try:
        st = path.stat()
    except OSError:
        return None
    if os.name != "nt" and st.st_mode & 0o077:
        import logging

        logging.getLogger("stylus").warning(
            "ignoring key file %s: it must be readable by its owner only (chmod 600)", path
        )
        return None
    text = path.read_text(encoding="utf-8").strip()
    return text or None


class Backend:
    """Base of every backend: a ``name``, declared ``options`` and an env prefix.

    The host instantiates ``cls(**values)`` with explicit option values; anything not given comes
    from ``STYLUS_<env_prefix>_<NAME>`` or the declared default. Read values from ``self.config``.
    Import heavy libraries lazily inside methods, not at module level.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()
    env_prefix: ClassVar[str] = ""

    def __init__(self, **values: Any) -> None:
        self.config: dict[str, Any] = resolve_options(self.options, self.env_prefix, values)

    def close(self) -> None:
        """Release resources (models, sessions). Called when the host unloads the backend."""


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdapterCard:
    """What a catalog source knows about one adapter version (installed file and/or remote card).

    ``name`` is what ``<lora:NAME>`` must say (file stem, or the alias when unique); ``name_problem``
    explains why it cannot be referenced (``:``, ``=``, ``>`` or edge spaces), else "".
    """

    source: str
    name: str
    title: str = ""
    path: str | None = None
    size: int | None = None
    mtime: float | None = None
    header_sha: str | None = None
    alias: str | None = None
    name_problem: str = ""
    kind: str = "LORA"
    base_model: str = "unknown"
    base_model_raw: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    trigger_words: tuple[str, ...] = ()
    activation_text: str = ""
    negative_text: str = ""
    preferred_weight: float | None = None
    example_prompts: tuple[str, ...] = ()
    image_urls: tuple[str, ...] = ()
    preview_path: str | None = None
    training_tags: tuple[str, ...] = ()
    nsfw: bool = False
    civitai_model_id: int | None = None
    civitai_version_id: int | None = None
    download_url: str | None = None
    sha256: str | None = None
    autov3: str | None = None
    file_size_kb: float | None = None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Adapter:
    """A catalog entry: a card plus its catalog id, refinement and the user's controls."""

    id: int
    card: AdapterCard
    description: str = ""
    category: str = "concept"
    weight: float = 0.8
    pinned: bool = False
    banned: bool = False
    weight_override: float | None = None

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def title(self) -> str:
        return self.card.title or self.card.name

    @property
    def installed(self) -> bool:
        return self.card.path is not None

    @property
    def effective_weight(self) -> float:
        """User override > refined/card weight (the refiner already falls back to 0.8)."""
        return self.weight_override if self.weight_override is not None else self.weight


@dataclass(frozen=True)
class Refinement:
    """A refiner's answer for one adapter: what it does, its topic, and a recommended weight."""

    description: str
    category: str = "concept"
    weight: float = 0.8


@dataclass(frozen=True)
class Candidate:
    """An adapter offered to a composer, with the retriever's scores."""

    adapter: Adapter
    score: float = 0.0
    similarity: float = 0.0
    lexical: float = 0.0


@dataclass(frozen=True)
class ComposeRequest:
    """Everything a composer sees for one prompt.

    ``encode`` embeds texts with the catalog's active encoder (L2-normalised rows), so a composer
    can score concepts against ``candidate_vectors`` (row i belongs to ``candidates[i]``).
    """

    prompt: str
    candidates: tuple[Candidate, ...]
    candidate_vectors: Any = None
    encode: Callable[[Sequence[str]], Any] | None = None
    max_adapters: int = 4
    allow_nsfw: bool = False
    allow_characters: bool = True
    base_model: str | None = None
    exclude_names: tuple[str, ...] = ()
    time_budget_s: float = 20.0


@dataclass(frozen=True)
class Pick:
    """One selected adapter (catalog id) with a one-line reason."""

    adapter_id: int
    reason: str = ""


@dataclass(frozen=True)
class ConceptPicks:
    """A concept of the prompt and the adapters chosen for it (0–3)."""

    concept: str
    picks: tuple[Pick, ...] = ()


@dataclass(frozen=True)
class Composition:
    """A composer's answer. An empty ``concepts`` tuple is a valid, confident "no adapters"."""

    concepts: tuple[ConceptPicks, ...] = ()
    composer: str = ""
    notes: tuple[str, ...] = ()


@dataclass
class SourceContext:
    """Passed to catalog sources: what to read and how to report.

    ``unchanged(path, size, mtime)`` tells a source it may skip a file the catalog already has
    (and marks it as still present); ``warn(path, reason)`` records a one-line problem;
    ``progress(done, total)`` drives the progress bar; ``should_stop()`` is checked between items.
    """

    paths: tuple[str, ...] = ()
    unchanged: Callable[[str, int, float], bool] = lambda path, size, mtime: False
    warn: Callable[[str, str], None] = lambda path, reason: None
    progress: Callable[[int, int | None], None] = lambda done, total: None
    should_stop: Callable[[], bool] = lambda: False
    options: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Backend base classes: one method each
# --------------------------------------------------------------------------------------------


class CatalogSource(Backend):
    """Yields adapter cards. ``kind`` is ``"files"`` (scans folders) or ``"cards"`` (imports)."""

    kind: ClassVar[str] = "files"

    def cards(self, ctx: SourceContext) -> Iterator[AdapterCard]:
        raise NotImplementedError


class Refiner(Backend):
    """Card → description, category, weight. Bump ``version`` when its output changes."""

    version: ClassVar[str] = "1"

    def refine(self, card: AdapterCard) -> Refinement:
        raise NotImplementedError


class Encoder(Backend):
    """Texts → L2-normalised float32 vectors (``len(texts) × dimension`` array-like)."""

    dimension: ClassVar[int] = 0

    def encode(self, texts: Sequence[str]) -> Any:
        raise NotImplementedError

    @property
    def identity(self) -> str:
        """Recorded with the index; vectors of different identities are never mixed."""
        model = self.config.get("model", "")
        return f"{self.name}:{model}" if model else self.name


class Composer(Backend):
    """Prompt + candidates → concepts with picked adapters (catalog ids) and reasons."""

    def compose(self, request: ComposeRequest) -> Composition:
        raise NotImplementedError


__all__ = [
    "BASE_MODEL_GROUPS", "CATEGORIES", "PROJECT", "Adapter", "AdapterCard", "Backend",
    "Candidate", "CatalogSource", "ComposeRequest", "Composer", "Composition", "ConceptPicks",
    "Encoder", "Option", "Pick", "Refinement", "Refiner", "SourceContext", "base_model_group",
    "compatible", "hookimpl", "read_secret", "resolve_options", "secrets_dir", "server_options",
]


# --------------------------------------------------------------------------------------------
# Model-backend helpers (added for the LLM/VLM/embedding backends; additive, stable API)
#
# ``OpenAIClient`` talks to any OpenAI-compatible server (retries, Retry-After, deadlines, the API
# key kept out of logs/exceptions/reprs via ``Secret``). ``build_composer_messages`` /
# ``parse_composer_answer`` / ``compose_with`` give every LLM composer the same prompt-injection
# rules: card text is sent as escaped, quoted JSON data and answers may only name candidate
# numbers, mapped back to catalog ids here. ``ComposerError`` makes the pipeline fall back to the
# offline composer. ``data_dir()`` is the per-user folder for caches.
# --------------------------------------------------------------------------------------------

from stylus_ext.llm_compose import (  # noqa: E402
    AnswerCache,
    ComposerError,
    ComposerPrompt,
    answer_cache_key,
    build_composer_messages,
    clean_text,
    compose_with,
    extract_json_object,
    parse_composer_answer,
    quote_json,
    review_messages,
)
from stylus_ext.llm_http import LLMError, LLMStatusError, LLMTimeout, OpenAIClient, Secret  # noqa: E402
from stylus_ext.paths import data_dir  # noqa: E402


def server_client(config: dict[str, Any]) -> OpenAIClient:
    """The client for a backend declared with :func:`server_options`. The API key moves into the
    client (as a :class:`Secret`); ``config["api_key"]`` keeps only ``"***"`` or ``""``."""
    key = Secret(config.get("api_key"))
    config["api_key"] = "***" if key else ""
    return OpenAIClient(config["base_url"], key, timeout=config["timeout"], max_retries=config["max_retries"])


__all__ += [
    "AnswerCache",
    "ComposerError",
    "ComposerPrompt",
    "LLMError",
    "LLMStatusError",
    "LLMTimeout",
    "OpenAIClient",
    "Secret",
    "answer_cache_key",
    "build_composer_messages",
    "clean_text",
    "compose_with",
    "data_dir",
    "extract_json_object",
    "parse_composer_answer",
    "quote_json",
    "review_messages",
    "server_client",
]


# --------------------------------------------------------------------------------------------
# Prompt parsing (added by the composition work): composers split prompts into concepts with the
# same deterministic chunker the built-in ``offline`` composer uses. ``parse_prompt(prompt)`` returns
# a ``ParsedPrompt`` (``.concepts``: ``Concept(text, kind, span, weight, head)``; ``.tags``: the
# ``<lora:...>`` tags already in the prompt; ``.excluded_names``); ``content_words`` / ``head_noun`` /
# ``singular`` are the word helpers it matches with; ``CONCEPT_ADJECTIVES`` the colour/size/mood words.
# Imported at the bottom: ``concepts`` needs no SDK.
# --------------------------------------------------------------------------------------------

# ``character_evidence(title, name, triggers, prompt_words)`` → ``(evidence, words)``: does the prompt
# name this character? (one rule for every composer; ``words_of`` splits names like "ai-hayasaka_v2").
from stylus_ext.characters import character_evidence, prompt_words, words_of  # noqa: E402
from stylus_ext.concepts import ADJECTIVES as CONCEPT_ADJECTIVES  # noqa: E402
from stylus_ext.concepts import (  # noqa: E402
    Concept,
    NetworkTag,
    ParsedPrompt,
    content_words,
    head_noun,
    parse_prompt,
    singular,
    split_concepts,
)

__all__ += [
    "CONCEPT_ADJECTIVES",
    "Concept",
    "NetworkTag",
    "ParsedPrompt",
    "character_evidence",
    "content_words",
    "head_noun",
    "parse_prompt",
    "prompt_words",
    "singular",
    "split_concepts",
    "words_of",
]

# --------------------------------------------------------------------------------------------
# Civitai helpers for the built-in ``civitai`` catalog source (plugins/civitai_api.py), imported
# lazily on first attribute access (``requests``/``tqdm`` stay out of ``import sdk``):
# ``CivitaiClient(base_url=None, api_key=None, *, min_interval=0.75, backoff_start=1.0, ...)`` — the
# polite REST client (env STYLUS_CIVITAI_BASE_URL / STYLUS_CIVITAI_API_KEY, key never logged);
# ``CivitaiError`` (``CivitaiOffline``, ``CivitaiNotFound`` are subclasses); ``CivitaiSyncFilters`` —
# the sync filters; ``civitai_pages(client, filters, cursor=None, start_page=1)`` — iterator of
# pages of cards; ``civitai_split_list("a, b")`` → ``("a", "b")``.
# Other lazy exports can be added to ``_LAZY_EXPORTS`` (name → "module:attribute").
# --------------------------------------------------------------------------------------------

_LAZY_EXPORTS: dict[str, str] = {
    "CivitaiClient": "stylus_ext.civitai.client:CivitaiClient",
    "CivitaiError": "stylus_ext.civitai.client:CivitaiError",
    "CivitaiOffline": "stylus_ext.civitai.client:CivitaiOffline",
    "CivitaiNotFound": "stylus_ext.civitai.client:CivitaiNotFound",
    "CivitaiSyncFilters": "stylus_ext.civitai.sync:SyncFilters",
    "civitai_pages": "stylus_ext.civitai.sync:iter_pages",
    "civitai_split_list": "stylus_ext.civitai.sync:split_list",
}


def __getattr__(name: str) -> Any:
    target = _LAZY_EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module_name, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value


__all__ += list(_LAZY_EXPORTS)

# --------------------------------------------------------------------------------------------
# Catalog helpers for plugin authors (added by the catalog work; lazy, via ``_LAZY_EXPORTS``):
# ``walk_lora_files(paths, warn=..., follow_symlinks=True)`` → list of ``LoraFile(path, size, stamp,
# siblings)`` (fast ``os.scandir`` walk; symlink loops and unreadable folders go to ``warn``);
# ``read_lora_card(path, *, size=None, mtime=None, siblings=None, source="local")`` → AdapterCard of an
# installed file (safetensors header without torch + sidecars; problems in ``card.problems``, never
# raises); ``cards_from_civitai_json(obj, *, source="civitai-json")`` → AdapterCards from Civitai JSON
# (/models item or page, model-version JSON); ``load_json_file(path)`` → ``(values, problem)`` (JSON or
# JSONL, size-capped); ``iter_card_files(paths, warn=None)`` → card files under files/folders;
# ``base_model_family(raw)`` → family for a raw base-model name ("SDXL 1.0" → "SDXL") or None.
# --------------------------------------------------------------------------------------------

_CATALOG_EXPORTS: dict[str, str] = {
    "walk_lora_files": "stylus_ext.catalog.walk:walk_lora_files",
    "read_lora_card": "stylus_ext.catalog.reader:read_lora_card",
    "cards_from_civitai_json": "stylus_ext.catalog.cards:cards_from_civitai_json",
    "load_json_file": "stylus_ext.catalog.cards:load_json_file",
    "iter_card_files": "stylus_ext.catalog.cards:iter_card_files",
    "base_model_family": "stylus_ext.catalog.derive:family_from_raw",
}
_LAZY_EXPORTS.update(_CATALOG_EXPORTS)
__all__ += list(_CATALOG_EXPORTS)
