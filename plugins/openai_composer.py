"""Composer ``openai``: an LLM behind any OpenAI-compatible ``/v1/chat/completions`` endpoint.

Works with OpenAI, Ollama, LM Studio, llama.cpp's server, vLLM, koboldcpp... (see docs/backends.md).
Configure with ``STYLUS_LLM_BASE_URL``, ``STYLUS_LLM_MODEL`` and ``STYLUS_LLM_API_KEY`` (or the
owner-only key file ``~/.config/stylus/keys/STYLUS_LLM_API_KEY``), or explicit options.
The candidates go to the model as quoted, escaped JSON data; its answer may only name candidate
numbers (see ``sdk.parse_composer_answer``). Any failure raises, so the pipeline falls back to
the offline composer.
"""

from __future__ import annotations

import time

from stylus_ext import sdk

#: Shared by all instances: answers survive re-creating the composer (the WebUI does per run).
_MEMORY = sdk.AnswerCache(size=256)


class OpenAIComposer(sdk.Composer):
    """Prompt + candidates → concepts and picks, asked from a chat model over HTTP."""

    name = "openai"
    description = "LLM composer over an OpenAI-compatible chat API (OpenAI, Ollama, LM Studio, vLLM...)"
    env_prefix = "LLM"
    options = (
        *sdk.server_options("LLM", "gpt-4o-mini", timeout=60.0),
        sdk.Option("temperature", float, 0.2, "sampling temperature"),
        sdk.Option("max_candidates", int, 60, "candidates shown to the model"),
        sdk.Option("token_budget", int, 6000, "approximate token budget of the candidate catalogue"),
        sdk.Option("max_tokens", int, 800, "maximum answer tokens"),
        sdk.Option("review", bool, False, "second 'review and prune' turn (the paper's self-repair)"),
        sdk.Option("json_mode", bool, True, "ask for response_format=json_object (dropped if refused)"),
        sdk.Option("disk_cache", bool, False, "also cache answers as JSON files in the data folder"),
    )

    def __init__(self, **values: object) -> None:
        super().__init__(**values)
        self.client = sdk.server_client(self.config)  # the key lives only in the client
        folder = sdk.data_dir() / "cache" / "composer-openai" if self.config["disk_cache"] else None
        self.cache = sdk.AnswerCache(folder=folder) if folder else _MEMORY
        self.requests_sent = 0

    def compose(self, request: sdk.ComposeRequest) -> sdk.Composition:
        # a little under the pipeline's own budget, so a clean error (not an abandoned thread) ends it
        deadline = time.monotonic() + max(0.1, 0.95 * float(request.time_budget_s))
        cfg = self.config
        prompt = sdk.build_composer_messages(request, max_candidates=cfg["max_candidates"],
                                             token_budget=cfg["token_budget"])
        if not prompt.candidates:
            return sdk.Composition(composer=self.name, notes=("no candidates",))
        key = sdk.answer_cache_key(prompt, composer=self.name, base_url=self.client.root, model=cfg["model"],
                                   temperature=cfg["temperature"], review=cfg["review"],
                                   max_tokens=cfg["max_tokens"])

        def generate(messages: list[dict[str, str]]) -> str:
            self.requests_sent += 1
            return self.client.chat(messages, cfg["model"], temperature=cfg["temperature"],
                                    max_tokens=cfg["max_tokens"], json_mode=cfg["json_mode"], deadline=deadline)

        return sdk.compose_with(generate, prompt, composer=self.name, review=cfg["review"],
                                cache=self.cache, key=key, deadline=deadline)

    def close(self) -> None:
        self.client.close()


@sdk.hookimpl
def register_composers(register):  # type: ignore[no-untyped-def]
    register(OpenAIComposer)
