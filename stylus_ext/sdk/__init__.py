"""The public SDK: the one package a Stylus plugin imports. ``__all__`` below is the whole surface,
and docs/plugins.md documents every name in it.

A plugin is a module (or an installed package exposing the ``stylus_ext`` entry point, or a ``*.py``
file in the user plugins folder) with functions marked ``@hookimpl`` that register backends::

    from stylus_ext import sdk

    STYLUS_API = (1, 10)  # the sdk.API_VERSION this plugin was written for

    class ShoutComposer(sdk.Composer):
        name = "shout"
        env_prefix = "SHOUT"
        options = (sdk.Option("volume", int, 3, "How loud."),)

        def compose(self, request: sdk.ComposeRequest) -> sdk.Composition:
            ...

    @sdk.hookimpl
    def register_composers(register):
        register(ShoutComposer)

Modules: ``records`` (the dataclasses plugins exchange), ``options`` (declared settings),
``backends`` (the base classes), ``hooks`` (hook marker, hook specs, API version), ``contract`` (the
static rules a backend class must meet), ``files`` (data folder, key files), ``basemodels``,
``prompt`` (the prompt grammar), ``concepts`` (prompt → concepts, with ``english`` and
``concept_score``), ``characters`` (does a prompt name a character), ``http`` and ``redact`` (the
retrying client, secrets), ``llm_http`` (OpenAI-compatible servers), ``llm_compose`` (the LLM
composers' prompt and answer rules), ``cards`` (LoRA files and Civitai JSON → adapter cards),
``civitai`` (Civitai's API client and pages), ``threads`` (one BLAS thread for query work), ``trees``
(boosted trees evaluated in NumPy), and
``testing`` (the conformance kit, imported on its own). The SDK never imports the core: the core is
built on it.
"""

from __future__ import annotations

import functools

from stylus_ext.sdk import prompt as prompt  # the prompt grammar, as ``sdk.prompt`` (a module)
from stylus_ext.sdk.backends import Backend, CatalogSource, Composer, Encoder, Refiner
from stylus_ext.sdk.basemodels import BASE_MODEL_GROUPS, base_model_group, compatible  # Civitai's tiers
from stylus_ext.sdk.cards.civitai_json import cards_from_civitai_json, iter_card_files, load_json_file
from stylus_ext.sdk.cards.local import read_lora_card
from stylus_ext.sdk.cards.walk import LoraFile, walk_lora_files
from stylus_ext.sdk.characters import (
    character_evidence,
    distinctive,
    named_outright,
    named_with_series,
    prompt_words,
    series_matches,
    tagged_as,
    title_forms,
    words_of,
)
from stylus_ext.sdk.concepts import ADJECTIVES as CONCEPT_ADJECTIVES
from stylus_ext.sdk.concepts import MEDIUM_PHRASES as CONCEPT_MEDIA
from stylus_ext.sdk.concepts import Concept, NetworkTag, ParsedPrompt, split_concepts
from stylus_ext.sdk.concepts import parse_prompt as _parse_prompt
from stylus_ext.sdk.english import content_words, head_noun, singular
from stylus_ext.sdk.files import data_dir, read_secret, secrets_dir, sibling_module
from stylus_ext.sdk.hooks import API_VERSION, PROJECT, Command, CommandContext, check_api, hookimpl
from stylus_ext.sdk.llm_compose import (
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
from stylus_ext.sdk.options import Option, resolve_options, server_options, split_list
from stylus_ext.sdk.records import (
    CATEGORIES,
    NSFW_WORDS,
    Adapter,
    AdapterCard,
    Candidate,
    ComposeRequest,
    Composition,
    ConceptPicks,
    Pick,
    Refinement,
    SourceContext,
    is_nsfw,
)
from stylus_ext.sdk.redact import Secret
from stylus_ext.sdk.threads import single_blas_thread
from stylus_ext.sdk.trees import Trees
from stylus_ext.sdk.word_classes import name_kind


@functools.lru_cache(maxsize=256)
def _parsed(prompt: str) -> ParsedPrompt:
    return _parse_prompt(prompt)


def parse_prompt(prompt: str) -> ParsedPrompt:
    """Parse a prompt into concepts and existing extra-network tags (:mod:`stylus_ext.sdk.concepts`).

    Results are immutable, so prompts up to 4,096 characters are cached (256 of them): one compose
    reads its prompt in the pipeline, the composer and the validation."""
    prompt = prompt or ""
    return _parsed(prompt) if len(prompt) <= 4096 else _parse_prompt(prompt)


#: Names whose modules import ``requests`` (~0.2 s): loaded on first use, so a command that talks to
#: no server (a cold ``stylus compose``) never imports it (PEP 562).
_LAZY = {
    **dict.fromkeys(("CivitaiClient", "CivitaiError", "CivitaiNotFound", "CivitaiOffline"),
                    "stylus_ext.sdk.civitai.client"),
    **dict.fromkeys(("CivitaiFilters", "CivitaiPage", "civitai_pages"), "stylus_ext.sdk.civitai.pages"),
    **dict.fromkeys(("LLMError", "LLMStatusError", "LLMTimeout", "OpenAIClient", "server_client"),
                    "stylus_ext.sdk.llm_http"),
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [  # noqa: RUF022 - grouped by module
    # plugin protocol (hooks.py)
    "API_VERSION", "PROJECT", "check_api", "hookimpl", "Command", "CommandContext",
    # records (records.py)
    "CATEGORIES", "Adapter", "AdapterCard", "Candidate", "ComposeRequest", "Composition", "ConceptPicks",
    "Pick", "Refinement", "SourceContext", "NSFW_WORDS", "is_nsfw",
    # backends (backends.py) and their options (options.py, files.py)
    "Backend", "CatalogSource", "Composer", "Encoder", "Refiner",
    "Option", "data_dir", "read_secret", "resolve_options", "secrets_dir", "server_options", "sibling_module",
    "split_list", "single_blas_thread", "Trees",
    # base models
    "BASE_MODEL_GROUPS", "base_model_group", "compatible",
    # reading adapter cards (cards/): LoRA files and Civitai JSON, for catalog sources
    "LoraFile", "cards_from_civitai_json", "iter_card_files", "load_json_file", "read_lora_card", "walk_lora_files",
    # Civitai's API (civitai/)
    "CivitaiClient", "CivitaiError", "CivitaiFilters", "CivitaiNotFound", "CivitaiOffline", "CivitaiPage",
    "civitai_pages",
    # the prompt's concepts (concepts.py, english.py) and characters (characters.py)
    "CONCEPT_ADJECTIVES", "CONCEPT_MEDIA", "Concept", "NetworkTag", "ParsedPrompt", "character_evidence",
    "content_words", "distinctive", "head_noun", "name_kind", "named_outright", "named_with_series", "parse_prompt",
    "prompt_words", "series_matches", "singular", "split_concepts", "tagged_as", "title_forms", "words_of",
    # OpenAI-compatible servers (llm_http.py, redact.py) and LLM composers (llm_compose.py)
    "AnswerCache", "ComposerError", "ComposerPrompt", "LLMError", "LLMStatusError", "LLMTimeout", "OpenAIClient",
    "Secret", "answer_cache_key", "build_composer_messages", "clean_text", "compose_with", "extract_json_object",
    "parse_composer_answer", "quote_json", "review_messages", "server_client",
]
