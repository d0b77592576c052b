"""TEMPORARY: the only place where the SDK re-exports core modules. Nothing new goes here.

These names keep ``sdk.X`` working for existing plugins while their implementations move into the
SDK package (the core will then import them from there, not the other way round):

- prompt parsing (``stylus_ext.concepts``, ``stylus_ext.characters``) → ``stylus_ext.sdk.prompt``,
  the one prompt grammar;
- the OpenAI-compatible client and the LLM composer rules (``stylus_ext.llm_http``,
  ``stylus_ext.llm_compose``) → ``stylus_ext.sdk.http``.

The modules imported here must not import ``stylus_ext.sdk`` itself (only its submodules, such as
``stylus_ext.sdk.records``), so there is no import cycle; ``tests/test_sdk_surface.py`` checks it.
"""

from __future__ import annotations

from typing import Any

# -- prompt parsing → stylus_ext.sdk.prompt ----------------------------------------------------
from stylus_ext.characters import character_evidence, prompt_words, words_of
from stylus_ext.concepts import ADJECTIVES as CONCEPT_ADJECTIVES
from stylus_ext.concepts import (
    Concept,
    NetworkTag,
    ParsedPrompt,
    content_words,
    head_noun,
    parse_prompt,
    singular,
    split_concepts,
)

# -- OpenAI-compatible servers and LLM composers → stylus_ext.sdk.http -------------------------
from stylus_ext.llm_compose import (
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
from stylus_ext.llm_http import LLMError, LLMStatusError, LLMTimeout, OpenAIClient, Secret


def server_client(config: dict[str, Any]) -> OpenAIClient:
    """The client for a backend declared with ``sdk.server_options``. The API key moves into the
    client (as a ``Secret``); ``config["api_key"]`` keeps only ``"***"`` or ``""``."""
    key = Secret(config.get("api_key"))
    config["api_key"] = "***" if key else ""
    return OpenAIClient(config["base_url"], key, timeout=config["timeout"], max_retries=config["max_retries"])



__all__ = [
    "CONCEPT_ADJECTIVES", "AnswerCache", "ComposerError", "ComposerPrompt", "Concept", "LLMError", "LLMStatusError",
    "LLMTimeout", "NetworkTag", "OpenAIClient", "ParsedPrompt", "Secret", "answer_cache_key", "build_composer_messages",
    "character_evidence", "clean_text", "compose_with", "content_words", "extract_json_object", "head_noun",
    "parse_composer_answer", "parse_prompt", "prompt_words", "quote_json", "review_messages", "server_client",
    "singular", "split_concepts", "words_of",
]
