"""An example Stylus plugin: the ``title-match`` composer.

It picks every candidate whose title words all appear in the prompt (one concept per adapter), at
most ``max_adapters`` of them, best retrieval score first. Install it with ``pip install -e .`` (the
``stylus_ext`` entry point registers it) or copy this file into the user plugins folder
(``stylus plugins`` shows where); then ``stylus compose "a corgi in the snow" --composer title-match``.
"""

from __future__ import annotations

import re
from typing import Any

from stylus_ext import sdk

STYLUS_API = (1, 0)  # the sdk.API_VERSION this plugin was written for

WORD = re.compile(r"[a-z0-9]+")


class TitleMatchComposer(sdk.Composer):
    """Prompt + candidates → the candidates whose title is spelled out in the prompt."""

    name = "title-match"
    description = "Picks candidates whose title words all occur in the prompt"
    env_prefix = "TITLE_MATCH"  # options also come from STYLUS_TITLE_MATCH_<OPTION>
    options = (
        sdk.Option("min_words", int, 1, "ignore titles with fewer words than this"),
    )

    def compose(self, request: sdk.ComposeRequest) -> sdk.Composition:
        prompt_words = set(WORD.findall(request.prompt.lower()))
        concepts: list[sdk.ConceptPicks] = []
        for cand in request.candidates:  # best first
            words = set(WORD.findall(cand.adapter.title.lower()))
            if len(words) < self.config["min_words"] or not words <= prompt_words:
                continue
            if len(concepts) >= request.max_adapters:
                break
            pick = sdk.Pick(adapter_id=cand.adapter.id, reason=f"the prompt names {cand.adapter.title!r}")
            concepts.append(sdk.ConceptPicks(concept=" ".join(sorted(words)), picks=(pick,)))
        return sdk.Composition(concepts=tuple(concepts), composer=self.name)


@sdk.hookimpl
def register_composers(register: Any) -> None:
    register(TitleMatchComposer)
