"""Helpers for the composition tests: adapters and candidates built from hand-written cards."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from stylus_ext import sdk


def make_adapter(
    aid: int,
    title: str,
    *,
    category: str = "concept",
    tags: Sequence[str] = (),
    triggers: Sequence[str] = (),
    description: str = "",
    name: str | None = None,
    nsfw: bool = False,
    base_model: str = "SD1",
    pinned: bool = False,
    banned: bool = False,
    weight: float = 0.8,
    activation_text: str = "",
    negative_text: str = "",
    installed: bool = True,
    civitai_model_id: int | None = None,
) -> sdk.Adapter:
    name = name or title.lower().replace(" ", "_")
    card = sdk.AdapterCard(
        source="test", name=name, title=title, path=f"/loras/{name}.safetensors" if installed else None,
        base_model=base_model, description=description, tags=tuple(tags), trigger_words=tuple(triggers),
        nsfw=nsfw, activation_text=activation_text, negative_text=negative_text,
        civitai_model_id=civitai_model_id)
    return sdk.Adapter(id=aid, card=card, description=description or title, category=category, weight=weight,
                       pinned=pinned, banned=banned)


def search_text(adapter: sdk.Adapter) -> str:
    """The text the index embeds for an adapter (the search helper's function when available)."""
    try:
        from stylus_ext.embed import search_text as real

        return real(adapter)
    except ImportError:  # pragma: no cover - the search work is not there yet
        return f"{adapter.title}. Tags: {', '.join(adapter.card.tags)}. {adapter.description}"


def make_request(
    prompt: str, adapters: Sequence[sdk.Adapter], encoder: Any, **kwargs: Any
) -> sdk.ComposeRequest:
    """A ComposeRequest with real encoder vectors for ``adapters`` (all offered as candidates)."""
    vecs = np.asarray(encoder.encode([search_text(a) for a in adapters]), dtype=np.float32)
    q = np.asarray(encoder.encode([prompt]), dtype=np.float32)[0]
    sims = vecs @ q
    # The retriever's score is its fitted probability that the adapter is the one the prompt asks for;
    # without a catalog, a logistic of the prompt cosine stands in for it (0.5 at cosine 0.45).
    scores = 1.0 / (1.0 + np.exp(-12.0 * (sims - 0.45)))
    # best first, as the retriever offers them (the composer reads the order too)
    order = sorted(range(len(adapters)), key=lambda i: -scores[i])
    cands = tuple(sdk.Candidate(adapters[i], score=float(scores[i]), similarity=float(sims[i])) for i in order)
    return sdk.ComposeRequest(prompt=prompt, candidates=cands, candidate_vectors=vecs[order] if order else vecs,
                              encode=encoder.encode, **kwargs)


def rescored(request: sdk.ComposeRequest, adapter_id: int, score: float) -> sdk.ComposeRequest:
    """``request`` with one candidate's retriever score set (its place in the order kept)."""
    return replace(request, candidates=tuple(replace(c, score=score) if c.adapter.id == adapter_id else c
                                             for c in request.candidates))


def picked_ids(comp: sdk.Composition) -> list[int]:
    return [p.adapter_id for cp in comp.concepts for p in cp.picks]


def picks_by_concept(comp: sdk.Composition) -> dict[str, list[int]]:
    return {cp.concept: [p.adapter_id for p in cp.picks] for cp in comp.concepts}


def catalog_adapters() -> list[sdk.Adapter]:
    """A small varied catalogue with distractors, written for the tests (not the benchmark set)."""
    return [
        make_adapter(1, "Ghibli Background Style", category="style", triggers=["ghibli style"],
                     tags=["style", "anime", "background"],
                     description="Soft painted anime backgrounds in the style of Studio Ghibli films."),
        make_adapter(2, "Watercolor Painting", category="style", triggers=["watercolor"],
                     tags=["style", "watercolor", "painting"],
                     description="Loose watercolor painting look with paper texture and soft bleeding colors."),
        make_adapter(3, "Pixel Art XL", category="style", triggers=["pixel art"], tags=["style", "pixel art", "retro"],
                     description="Crisp 16-bit pixel art sprites and scenes."),
        make_adapter(4, "Okapi", category="animal", tags=["animal", "okapi"], triggers=["okapi"],
                     description="A realistic okapi, the forest giraffe relative with striped legs."),
        make_adapter(5, "Corgi Dog", category="animal", tags=["animal", "dog", "corgi"], triggers=["corgi"],
                     description="Cute corgi dogs with short legs and fluffy butts."),
        make_adapter(6, "Medieval Castle", category="building", tags=["building", "castle", "medieval"],
                     description="Stone medieval castles with towers and walls."),
        make_adapter(7, "Hatsune Miku", category="character", tags=["character", "vocaloid"],
                     triggers=["hatsune miku"], description="The vocaloid character Hatsune Miku with twin tails."),
        make_adapter(8, "Detail Tweaker", category="utility", tags=["detail", "slider"],
                     description="Adds or removes fine detail."),
        make_adapter(9, "Cyberpunk City", category="background", tags=["city", "cyberpunk", "neon"],
                     triggers=["cyberpunk city"], description="Neon-lit futuristic cyberpunk city streets at night."),
        make_adapter(10, "Lingerie Pinup", category="clothing", tags=["nsfw", "lingerie"], nsfw=True,
                     description="Lingerie pinup outfits."),
        make_adapter(11, "Snow Landscape", category="background", tags=["snow", "winter", "landscape"],
                     description="Snowy winter landscapes with deep snow and frost."),
        make_adapter(12, "Steampunk Airship", category="vehicle", tags=["vehicle", "airship", "steampunk"],
                     description="Brass steampunk airships with propellers."),
        make_adapter(13, "Giraffe", category="animal", tags=["animal", "giraffe"],
                     description="Tall giraffes with long necks and spotted coats on the savanna."),
        make_adapter(14, "Taylor Swift", category="celebrity", tags=["celebrity", "singer"],
                     triggers=["taylor swift"], description="Likeness of the singer Taylor Swift."),
    ]
