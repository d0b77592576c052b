"""Word evidence for the offline composer: what an adapter's title, file name, tags and triggers say,
and whether a concept of the prompt names it (a helper module of ``offline_composer.py``)."""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stylus_ext import sdk


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Words in adapter titles/names that say nothing about the content.
GENERIC = _wordset("""
lora loras lycoris locon loha lokr lyco dora model models style styles concept concepts version ver beta alpha
final lite sd sd1 sd15 sd1.5 sdxl xl pony illustrious noobai flux sd2 sd3 v1 v2 v3 v4 v5 v6 v7 v8 v9 v10 by
for the and of a an in with art new edition pack set type test trained training character characters
celebrity realistic anime photorealistic better best quality detail details detailed high embedding
""")
UTILITY_WORDS = ("slider", "tweaker", "detailer", "lcm", "hyper-sd", "hypersd", "hyper sd", "sdxl turbo", "sd turbo",
                 "turbo lora", "sdxl lightning", "sdxl-lightning", "lightning lora", "offset noise",
                 "add detail", "add details", "more detail", "more details", "contrast fix",
                 *(f"{n}{sep}step{s}" for n in (1, 2, 4, 8) for sep in (" ", "-") for s in ("", "s")))
#: Each a whole word or phrase of the title or file name: "Twin Turbo", "Lightning (Claire Farron)" and
#: "Hyperdimension Neptunia" are characters, which a bare "turbo", "lightning" or "hyper" filed as
#: utilities that only a pin could choose (on 11.8K real cards, 5 characters and their versions).
_UTILITY_RE = re.compile(r"(?<![a-z0-9])(?:" + "|".join(map(re.escape, UTILITY_WORDS)) + r")(?![a-z0-9])")
STYLE_CATEGORIES = frozenset({"style"})
CHARACTER_CATEGORIES = frozenset({"character", "celebrity"})
#: Head words of titles that say "what kind of adapter", not "what thing" ("Cafe Interior" is a cafe).
GENERIC_HEADS = _wordset(
    "background backgrounds scenery scene landscape interior exterior effect effects aesthetic pose outfit "
    "costume look vibe theme world print render xl collection pack mix tweak slider 3d 2d cg")
NUMBERS = _wordset("one two three four five six seven eight nine ten dozen 1 2 3 4 5")
ADJECTIVES = sdk.CONCEPT_ADJECTIVES
#: Multi-word media: one style each, whose words apart mean other things ("pixel art" is not "Pixel Sorting").
COMPOUND_MEDIA = frozenset(m for m in sdk.CONCEPT_MEDIA if " " in m)
_VERSION_RE = re.compile(r"^v?\d+(?:\.\d+)*[a-z]?$")
_TITLE_SPLIT = re.compile(r"\s*[|\-–—(\[:/]\s*")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z][a-z])")  # "FluffyCat" → "Fluffy Cat"; "LoRA", "GhibliBG" stay


def _verb(word: str) -> bool:
    return len(word) > 4 and word.endswith("ing")


@functools.lru_cache(maxsize=65536)
def content(text: str) -> tuple[str, ...]:
    """:func:`sdk.content_words` of ``text``, cached: a concept is matched against 150 candidates."""
    return tuple(sdk.content_words(text))


@functools.lru_cache(maxsize=65536)
def _tokens(text: str) -> tuple[str, ...]:
    """Content words of a card field, less generic and version words (cached: tags recur across cards)."""
    text = _CAMEL.sub(" ", text.replace("_", " "))
    return tuple(w for w in content(text) if w not in GENERIC and not _VERSION_RE.match(w))


def compounds(words: Sequence[str]) -> set[str]:
    """Adjacent words written as one ("low poly" → "lowpoly", "pixel art" → "pixelart"), as file names do."""
    return {a + b for a, b in itertools.pairwise(words)}


@dataclass(frozen=True)
class Profile:
    """Word evidence of one candidate adapter (shared between calls: never mutated)."""

    title: frozenset[str]
    name: frozenset[str]
    tags: frozenset[str]
    triggers: tuple[tuple[str, frozenset[str]], ...]
    words: frozenset[str]  # title ∪ name ∪ tags ∪ triggers
    title_head: str  # the head noun of the title's first segment
    specifics: frozenset[str]  # its title words that name a specific thing (not colours, sizes, generic words)
    category: str
    utility: bool
    whole: frozenset[str] = frozenset()  # camelCase words of the title's first segment, unsplit ("yukikaoristyle")


def profile(adapter: sdk.Adapter) -> Profile:
    """The word profile of ``adapter`` (cached by the fields it reads: a long-running WebUI sees the
    same adapters prompt after prompt, and tokenising 150 cards was half the composer's time)."""
    card = adapter.card
    return _profile((adapter.title, card.name, card.tags, card.trigger_words, card.activation_text,
                     adapter.category))


@functools.lru_cache(maxsize=16384)
def _profile(fields: tuple[str, str, tuple[str, ...], tuple[str, ...], str, str | None]) -> Profile:
    title_text, file_name, card_tags, trigger_words, activation_text, category_text = fields
    title = frozenset(_tokens(title_text))
    name = frozenset(_tokens(file_name))
    tags = frozenset(w for t in card_tags for w in _tokens(t))
    triggers = []
    for t in (*trigger_words, *([activation_text] if activation_text else [])):
        for part in str(t).split(","):
            # as written and camelCase split: a prompt writes "AetherPunkAI" as one lower-case word
            for words in dict.fromkeys((frozenset(_tokens(part)), frozenset(_tokens(part.lower())))):
                if words and len(words) <= 4:
                    triggers.append((part.strip(), words))
    first = _TITLE_SPLIT.split(title_text.strip(), maxsplit=1)[0] if title_text else ""
    first_words = _tokens(first) or _tokens(title_text)
    nouns = [w for w in first_words if w not in ADJECTIVES and w not in GENERIC_HEADS and not _verb(w)]
    specifics = frozenset(w for w in (set(first_words) or title) if w not in ADJECTIVES and w not in GENERIC_HEADS)
    category = (category_text or "concept").lower()
    utility = is_utility(title_text, file_name, category)
    words = title | name | tags | frozenset(w for _, ws in triggers for w in ws)
    # a prompt types a camelCase title lower-cased, in one piece: "YukiKaoriStyle" → "yukikaoristyle"
    whole = frozenset(_tokens(first.lower())) - set(first_words)
    return Profile(title, name, tags, tuple(triggers), words, nouns[-1] if nouns else "", specifics, category,
                   utility, whole)


def is_utility(title: str, file_name: str, category: str | None) -> bool:
    """A utility adapter (sliders, detailers, speed LoRAs): chosen only when pinned."""
    low = f"{title} {file_name}".lower().replace("_", " ")
    return (category or "").lower() == "utility" or bool(_UTILITY_RE.search(low))


@dataclass(frozen=True)
class Evidence:
    """Why a candidate fits a concept: ``kind`` is trigger / title / tag / name (characters) or ""."""

    concept: int
    kind: str = ""
    text: str = ""
    exact: bool = False


@functools.lru_cache(maxsize=65536)
def _concept_words(text: str, head: str) -> tuple[frozenset[str], frozenset[str], str]:
    """A concept's content words, its head's forms (alone and written into one word with the word
    before: "lowpoly") and its words run together; once per concept, not per candidate."""
    words = content(text)
    head_forms = frozenset({head} | {c for c in compounds(words) if head and c.endswith(head)})
    return frozenset(words), head_forms, "".join(words)


def word_evidence(concept: Any, p: Profile, prompt_words: set[str]) -> Evidence | None:
    head = concept.head
    cwords, head_forms, run_together = _concept_words(concept.text, head or "")
    for raw, words in p.triggers:
        if words <= cwords or (head and head in words and words <= prompt_words):
            return Evidence(-1, "trigger", raw, exact=words == cwords and not words <= ADJECTIVES)
    named = p.title | p.name
    titled = head_forms & named
    # a style concept that is the adapter's whole name ("low poly" ← "lowpoly_3d_render") is named outright
    whole = concept.kind == "style" and (cwords <= named or run_together in named)
    if head and titled and (p.title_head in head_forms or p.title_head in ("", *cwords)):
        return Evidence(-1, "title", sorted(titled)[0], exact=whole)
    if head and head in p.whole:  # the title's camelCase name typed as one word ("pastelka" ← "PastelKa")
        return Evidence(-1, "title", head, exact=cwords == {head})
    if head and head in p.tags:
        return Evidence(-1, "tag", head)
    if concept.kind == "style" and cwords & named and (whole or concept.text not in COMPOUND_MEDIA):
        return Evidence(-1, "title", sorted(cwords & named)[0], exact=whole)
    return None


def extras(concept: Any, p: Profile, prompt_words: set[str]) -> float:
    """Narrowness: the adapter's specific title words that neither the prompt nor the concept holds."""
    words = content(concept.text)
    return min(len(p.specifics - prompt_words - set(words) - compounds(words)), 3) / 3


def missing(concept: Any, p: Profile) -> float:
    """The concept's qualifiers ("gothic" of "gothic cathedral") the adapter's words lack; a pair the
    adapter writes as one word ("lowpoly" for "low poly") holds both."""
    words = content(concept.text)
    joined = {w for a, b in itertools.pairwise(words) if a + b in p.words for w in (a, b)}
    qualifiers = {w for w in set(words) - {concept.head} if w not in ADJECTIVES and w not in NUMBERS
                  and not _verb(w)}
    return min(len(qualifiers - p.words - joined), 2) / 2


def another_thing(concept: Any, p: Profile) -> bool:
    """The adapter is named for another thing that shares only a qualifier with the concept: "Red Fox"
    for "red panda", "Silk Scarf" for "silk kimono" — the concept's head is none of its words and its
    title's head none of the concept's (the paper's "wrong thing": an okapi is not a giraffe)."""
    words = content(concept.text)
    head = concept.head
    if len(words) < 2 or not head or not p.title_head or head in p.words or p.title_head in words:
        return False
    joined = compounds(words)
    return bool(set(words) & p.title) and not joined & p.words and p.category not in (*STYLE_CATEGORIES,
                                                                                         *CHARACTER_CATEGORIES)
