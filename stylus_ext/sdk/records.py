"""The records plugins exchange with Stylus: plain frozen dataclasses (no pydantic: A1111 ships v1,
Forge v2), so they behave the same in every WebUI."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Adapter topics. The paper's ten plus ``character`` split from ``celebrity``, ``object`` and
#: ``utility`` (sliders, detail tweakers, LCM/Turbo: only used when pinned).
CATEGORIES: tuple[str, ...] = (
    "concept", "style", "pose", "action", "character", "celebrity", "clothing", "background",
    "building", "vehicle", "animal", "object", "utility",
)


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


#: Words that mark a card NSFW when its title, file name or one of its tags holds them, whatever
#: Civitai's flag says: that model-level flag missed 477 of the 11,843 real cards of mid-2023 flagged
#: SFW ("… anal sex", "Riding a dildo …", "… LORA EROTIC MODELS COLLECTION"). "sexy", "lingerie",
#: "underwear" and "bikini" are not among them: they name SFW clothing and poses too.
NSFW_WORDS = frozenset({
    "nsfw", "hentai", "porn", "porno", "nude", "nudes", "nudity", "naked", "sex", "bdsm", "bondage", "lewd",
    "ecchi", "erotic", "erotica", "r18", "xxx", "nipples", "pussy", "penis", "genitals", "topless", "ahegao",
    "cum",
})


def is_nsfw(card: AdapterCard) -> bool:
    """Civitai's flag (``card.nsfw``), or a word of :data:`NSFW_WORDS` in the card's title, file name
    or tags: what "allow NSFW" governs."""
    return card.nsfw or _nsfw_words(card.title, card.name, card.tags)


#: What "nude" names as a colour, not as nudity ("Nude pantyhose", "nude lipstick").
_NUDE_COLOURED = frozenset({"pantyhose", "stockings", "tights", "heels", "shoes", "lipstick", "lips", "makeup",
                            "nails", "color", "colour", "colors", "colours", "tone", "tones", "dress", "palette"})


@functools.lru_cache(maxsize=16384)
def _nsfw_words(title: str, name: str, tags: tuple[str, ...]) -> bool:
    for text in (title or "", name or "", *tags):
        words = re.findall(r"[a-z0-9]+", text.lower())
        if any(w in NSFW_WORDS and not (w == "nude" and nxt in _NUDE_COLOURED)
               for w, nxt in zip(words, [*words[1:], ""], strict=False)):
            return True
    return False


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
    """Everything a composer sees for one prompt (every field is described in docs/plugins.md).

    ``encode`` embeds texts with the catalog's active encoder (L2-normalised rows), so a composer
    can score concepts against ``candidate_vectors`` (row i belongs to ``candidates[i]``).
    ``adapters_with(word)`` counts the catalogue's adapters whose card text holds ``word`` (out of
    ``catalog_size``): how distinctive a word is here (:func:`stylus_ext.sdk.distinctive`).
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
    adapters_with: Callable[[str], int] | None = None
    catalog_size: int = 0


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
