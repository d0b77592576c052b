"""The ``offline`` composer: the paper's LLM composer rules, done with embeddings and word matching.

No network, no language model, tens of milliseconds for 150 candidates. Steps:

1. **Concepts**: ``sdk.parse_prompt`` splits the prompt (subjects, settings, styles, attributes);
   quality tags never pull adapters; adapters already tagged in the prompt are excluded.
2. **Scores**: for every (concept, candidate) pair the cosine between the concept's embedding (same
   encoder as the index) and the candidate's vector, plus lexical evidence from the adapter's own
   words — trigger words, title/name, tags — matched against the concept's words.
3. **Rules** (the paper's pruning):
   - *too narrow / wrong thing* ("okapi" for "giraffe"): an adapter is accepted for a concept only when
     the concept's head noun (or its trigger word) appears in the adapter's title, name, tags or
     triggers and the similarity is at least ``min_similarity``; without that lexical anchor it needs
     ``synonym_similarity`` (near-synonym level). Titles naming extra specific things not in the prompt
     are penalised.
   - *too broad*: utility adapters (sliders, detail tweakers, LCM/Turbo) only when pinned; an adapter
     matched only through its long description never clears the synonym bar.
   - character / celebrity adapters only when the prompt names them (name or trigger words present in
     the prompt; similarity never suffices) and ``allow_characters`` is set;
   - NSFW adapters only when ``allow_nsfw``; banned never; incompatible base models never;
   - 0–3 adapters per concept, each adapter once, at most two style adapters, at most
     ``max_adapters`` in total; second and third picks of a concept must be close to its best.
4. Pinned, compatible adapters are always kept (assigned to the concept they fit best).

Calibration (MiniLM ``all-MiniLM-L6-v2``; cosine of a concept's embedding vs the adapter's indexed
search text; ``python benchmarks/bench_compose.py --calibrate``). On the generated catalogue (240
cards with distractors, 154 labelled prompts) the best concept↔adapter cosine of RIGHT adapters is
p5 0.51 / p50 0.63 / p95 0.76; WRONG adapters that share the concept's head word ("Sand Castle" for
castle, "Wheat Field" for field) p25 0.39 / p50 0.42 / p95 0.53; WRONG adapters sharing no head word
p95 0.30 / p99 0.37 (the sample catalogue gives the same picture: right p5 0.48, wrong-free p99 0.36).
A concept that IS one of the adapter's trigger phrases (coined tokens such as "aachloe" on thin
cards score only 0.22–0.37 against the card text) needs just ``trigger_similarity`` = 0.20.
Hence ``min_similarity`` = 0.40 for pairs anchored by the head word or a trigger (cuts ~half of the
wrong anchored pairs, loses <5 % of right ones) and ``synonym_similarity`` = 0.60 without an anchor
(far above the 0.37 p99 of unrelated pairs, so unrelated prompts get NO adapters; only
near-synonyms pass — an "okapi" card reaches ~0.53 for "giraffe" and is refused). Each specific word
one side has and the other lacks costs ``NARROW_PENALTY`` (0.05) of similarity; two or more such
words on the adapter's title (or any for a generic medium word such as "photo") drop the anchor.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stylus_ext import sdk

#: Words in adapter titles/names that say nothing about the content.
_GENERIC_TEXT = """
lora loras lycoris locon loha lokr lyco dora model models style styles concept concepts version ver beta alpha
final lite sd sd1 sd15 sd1.5 sdxl xl pony illustrious noobai flux sd2 sd3 v1 v2 v3 v4 v5 v6 v7 v8 v9 v10 by
for the and of a an in with art new edition pack set type test trained training character characters
celebrity realistic anime photorealistic better best quality detail details detailed high embedding
"""
GENERIC = frozenset(_GENERIC_TEXT.split())


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


UTILITY_WORDS = ("slider", "tweaker", "detailer", "lcm", "turbo", "hyper", "lightning", "offset noise",
                 "add detail", "more details", "contrast fix")
STYLE_CATEGORIES = frozenset({"style"})
CHARACTER_CATEGORIES = frozenset({"character", "celebrity"})
#: Head words of titles that say "what kind of adapter", not "what thing" ("Cafe Interior" is a cafe).
GENERIC_HEADS = _wordset(
    "background backgrounds scenery scene landscape interior exterior effect effects aesthetic pose outfit "
    "costume look vibe theme world print render xl collection pack mix tweak slider 3d 2d cg")
#: Medium words so generic that only an adapter named exactly for them fits ("photo" ≠ "Polaroid Photo").
GENERIC_MEDIA = _wordset("photo photograph photography painting drawing illustration render art 3d realistic cinematic")
NUMBERS = _wordset("one two three four five six seven eight nine ten dozen 1 2 3 4 5")
#: Acceptance similarity lost per specific word on one side that the other lacks.
NARROW_PENALTY = 0.05
ADJECTIVES = sdk.CONCEPT_ADJECTIVES
_VERSION_RE = re.compile(r"^v?\d+(?:\.\d+)*[a-z]?$")
_TITLE_SPLIT = re.compile(r"\s*[|\-–—(\[:/]\s*")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z][a-z])")  # "FluffyCat" → "Fluffy Cat"; "LoRA", "GhibliBG" stay


def _verb(word: str) -> bool:
    return len(word) > 4 and word.endswith("ing")


def _tokens(text: str) -> list[str]:
    text = _CAMEL.sub(" ", text.replace("_", " "))
    return [w for w in sdk.content_words(text) if w not in GENERIC and not _VERSION_RE.match(w)]


def _compounds(words: Sequence[str]) -> set[str]:
    """Adjacent words written as one ("low poly" → "lowpoly", "pixel art" → "pixelart"), as file names do."""
    return {a + b for a, b in itertools.pairwise(words)}


@dataclass
class _Profile:
    """Word evidence of one candidate adapter."""

    title: set[str]
    name: set[str]
    tags: set[str]
    triggers: list[tuple[str, set[str]]]
    words: set[str]  # title ∪ name ∪ tags ∪ triggers
    head_title: set[str]  # the title's first segment ("Hatsune Miku | Vocaloid" → hatsune, miku)
    title_head: str  # its head noun (last non-generic word)
    specifics: set[str]  # its words that name a specific thing (not colours, sizes, generic words)
    category: str
    utility: bool


def _profile(adapter: sdk.Adapter) -> _Profile:
    card = adapter.card
    title = set(_tokens(adapter.title))
    name = set(_tokens(card.name))
    tags = {w for t in card.tags for w in _tokens(t)}
    triggers = []
    for t in (*card.trigger_words, *([card.activation_text] if card.activation_text else [])):
        for part in str(t).split(","):
            words = set(_tokens(part))
            if words and len(words) <= 4:
                triggers.append((part.strip(), words))
    first = _TITLE_SPLIT.split(adapter.title.strip(), maxsplit=1)[0] if adapter.title else ""
    first_words = _tokens(first) or _tokens(adapter.title)
    head_title = set(first_words) or title
    nouns = [w for w in first_words if w not in ADJECTIVES and w not in GENERIC_HEADS and not _verb(w)]
    title_head = nouns[-1] if nouns else ""
    specifics = {w for w in head_title if w not in ADJECTIVES and w not in GENERIC_HEADS}
    category = (adapter.category or "concept").lower()
    low = f"{adapter.title} {card.name}".lower().replace("_", " ")
    utility = category == "utility" or any(u in low for u in UTILITY_WORDS)
    return _Profile(title, name, tags, triggers, title | name | tags | {w for _, ws in triggers for w in ws},
                    head_title, title_head, specifics, category, utility)


def _cosine_rows(vectors: Any) -> np.ndarray | None:
    if vectors is None:
        return None
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim != 2 or not len(arr):
        return None
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return arr / np.maximum(norms, 1e-8)


class OfflineComposer(sdk.Composer):
    """Concepts → 0–3 adapters each, by similarity + lexical evidence, with the paper's pruning rules."""

    name = "offline"
    description = "No-LLM composer: concept splitting, embedding + word evidence, paper's pruning rules."
    env_prefix = "COMPOSER_OFFLINE"
    options = (
        sdk.Option("min_similarity", float, 0.40, "Least cosine for a pair anchored by a shared head word."),
        sdk.Option("synonym_similarity", float, 0.60, "Least cosine for a pair without shared words."),
        sdk.Option("trigger_similarity", float, 0.20, "Least cosine when the concept is exactly a trigger word."),
        sdk.Option("per_concept", int, 3, "Most adapters per concept (0–3 in the paper)."),
        sdk.Option("max_styles", int, 2, "Most style adapters in total."),
        sdk.Option("margin", float, 0.10, "Extra picks of a concept must score within this of its best."),
    )

    def compose(self, request: sdk.ComposeRequest) -> sdk.Composition:
        return compose(request, **self.config)


def _prompt_words(prompt: str) -> set[str]:
    return sdk.prompt_words(prompt)


def _character_evidence(adapter: sdk.Adapter, prompt_words: set[str]) -> tuple[str, set[str]]:
    card = adapter.card
    triggers = (*card.trigger_words, card.activation_text)
    return sdk.character_evidence(adapter.title, card.alias or card.name, triggers, prompt_words)


def compose(
    request: sdk.ComposeRequest,
    *,
    min_similarity: float = 0.40,
    synonym_similarity: float = 0.60,
    trigger_similarity: float = 0.20,
    per_concept: int = 3,
    max_styles: int = 2,
    margin: float = 0.10,
) -> sdk.Composition:
    """The offline composition of ``request`` (pure function of its inputs: deterministic)."""
    parsed = sdk.parse_prompt(request.prompt)
    concepts = list(parsed.topical)
    excluded = {n.lower() for n in (*request.exclude_names, *parsed.excluded_names)}
    prompt_words = _prompt_words(" ".join(c.text for c in parsed.concepts))
    notes: list[str] = []

    rows: list[int] = []
    profiles: dict[int, _Profile] = {}
    pinned: list[int] = []
    for i, cand in enumerate(request.candidates):
        a = cand.adapter
        if a.banned or a.card.name.lower() in excluded or (a.card.alias or "").lower() in excluded:
            continue
        if not sdk.compatible(a.card.base_model, request.base_model):
            continue
        if a.card.nsfw and not request.allow_nsfw:
            continue
        p = _profile(a)
        if a.pinned:
            pinned.append(i)
            profiles[i] = p
            continue
        if p.utility:
            continue
        if p.category in CHARACTER_CATEGORIES and not request.allow_characters:
            continue
        rows.append(i)
        profiles[i] = p

    if not concepts and not pinned:
        return sdk.Composition((), "offline", ("no concept in the prompt can take an adapter",))

    sims = np.zeros((len(concepts), len(request.candidates)), dtype=np.float32)
    vecs = _cosine_rows(request.candidate_vectors)
    if concepts and vecs is not None and request.encode is not None and len(vecs) == len(request.candidates):
        cvecs = _cosine_rows(request.encode([c.text for c in concepts]))
        if cvecs is not None and cvecs.shape[1] == vecs.shape[1]:
            sims = cvecs @ vecs.T
    else:
        notes.append("no vectors: word evidence only")
        for ci in range(len(concepts)):
            for j in range(len(request.candidates)):
                sims[ci, j] = max(0.0, float(request.candidates[j].similarity))

    characters = {j: _character_evidence(request.candidates[j].adapter, prompt_words)
                  for j in rows if profiles[j].category in CHARACTER_CATEGORIES}

    # ---- score every admissible pair ------------------------------------------------------------
    pairs: list[tuple[float, int, int, str]] = []  # (-score, concept index, candidate index, reason)
    for ci, concept in enumerate(concepts):
        ordered = sdk.content_words(concept.text)
        cwords = set(ordered)
        head = concept.head
        compounds = _compounds(ordered)
        head_forms = {head} | {c for c in compounds if head and c.endswith(head)}
        # the concept's own qualifiers ("stop" in "stop sign"): nouns, not colours/sizes/verbs/numbers
        qualifiers = {w for w in cwords - {head} if w not in ADJECTIVES and w not in NUMBERS and not _verb(w)}
        generic_medium = concept.kind == "style" and cwords <= GENERIC_MEDIA
        cwords_split = sdk.prompt_words(concept.text)
        for j in rows:
            p = profiles[j]
            sim = float(sims[ci, j])
            evidence = ""
            anchored = exact = False
            if p.category in CHARACTER_CATEGORIES:
                named, named_words = characters[j]
                if not named or not named_words & cwords_split:
                    continue  # never by similarity; and only for the concept that holds the name
                evidence, anchored = named, True
            else:
                for raw, words in p.triggers:
                    if words <= cwords or (head and head in words and words <= prompt_words):
                        evidence, anchored = f"trigger '{raw}'", True
                        # the concept IS the trigger ("aaillya", "ukiyo-e"): the words decide, the
                        # similarity to a thin card's text barely matters
                        exact = words == cwords and not words <= ADJECTIVES
                        break
                # the head must be the adapter's own head noun: "Giraffe Plush Toy" is a toy
                titled = head_forms & (p.title | p.name)
                if not anchored and head and titled and (
                        p.title_head in head_forms or p.title_head in ("", *cwords)):
                    evidence, anchored = f"title '{sorted(titled)[0]}'", True
                if not anchored and head and head in p.tags:
                    evidence, anchored = f"tag '{head}'", True
            is_style_adapter = p.category in STYLE_CATEGORIES
            if concept.kind == "style" and not anchored and cwords & p.words and sim >= min_similarity + 0.1:
                shared = sorted(cwords & p.words)[0]
                evidence, anchored = f"title '{shared}'", True
            if is_style_adapter and concept.kind not in ("style", "setting") and not anchored:
                continue  # a style adapter for a subject concept needs the subject's own word
            # narrower / different: specific words on one side that the other side lacks
            extras = p.specifics - prompt_words - cwords - compounds
            missing = qualifiers - p.words
            if anchored and not evidence.startswith("trigger") and p.category not in CHARACTER_CATEGORIES and (
                    len(extras) >= 2 or (generic_medium and extras)):
                anchored = False  # "Lighthouse Keeper Portrait" for "portrait", "Polaroid Photo" for "photo"
                evidence = ""
            penalty = 0.0 if exact else NARROW_PENALTY * (min(len(extras), 2) + min(len(missing), 1))
            overlap = len(cwords & p.words) / max(1, len(cwords))
            adjusted = sim - penalty
            if anchored:
                bar = trigger_similarity if exact else min_similarity
                if adjusted < bar and p.category not in CHARACTER_CATEGORIES:
                    continue
            elif adjusted < synonym_similarity:
                continue
            score = adjusted + 0.10 * overlap + (0.05 if anchored else 0.0)
            if concept.kind == "style" and is_style_adapter:
                score += 0.05
            reason = (f"{concept.kind}: {concept.text} ← '{request.candidates[j].adapter.title}' "
                      f"({evidence + ', ' if evidence else ''}sim {sim:.2f})")
            pairs.append((-round(score, 6), ci, request.candidates[j].adapter.id, reason))
    pairs.sort()

    # ---- greedy assignment under the caps -------------------------------------------------------
    chosen: dict[int, list[tuple[int, str]]] = {ci: [] for ci in range(len(concepts))}
    best: dict[int, float] = {}
    used: set[int] = set()
    styles = 0
    total = 0
    by_id = {c.adapter.id: c.adapter for c in request.candidates}
    # pinned first: they are always kept, under the concept they fit best
    extra_concepts: list[sdk.ConceptPicks] = []
    for j in pinned:
        a = request.candidates[j].adapter
        if a.id in used:
            continue
        if concepts:
            ci = int(np.argmax(sims[:, j]))
            chosen[ci].append((a.id, f"pinned: '{a.title}' (sim {float(sims[ci, j]):.2f})"))
        else:
            extra_concepts.append(sdk.ConceptPicks("pinned", (sdk.Pick(a.id, f"pinned: '{a.title}'"),)))
        used.add(a.id)
        total += 1
        styles += profiles[j].category in STYLE_CATEGORIES
    # versions of one character (same naming words: "ai hayasaka" s1 and s3) are one choice, not two
    same_character = {request.candidates[j].adapter.id: frozenset(words)
                      for j, (evidence, words) in characters.items() if evidence}
    taken_characters: set[frozenset[str]] = set()
    # two passes: every concept gets its best adapter first, then second/third picks (coverage first)
    for first_pass in (True, False):
        for neg, ci, aid, reason in pairs:
            if aid in used or total >= request.max_adapters or len(chosen[ci]) >= per_concept:
                continue
            if first_pass and chosen[ci]:
                continue
            if same_character.get(aid) in taken_characters:
                continue
            score = -neg
            if ci in best and score < best[ci] - margin:
                continue
            is_style = (by_id[aid].category or "").lower() in STYLE_CATEGORIES
            if is_style and styles >= max_styles:
                continue
            chosen[ci].append((aid, reason))
            if aid in same_character:
                taken_characters.add(same_character[aid])
            best.setdefault(ci, score)
            used.add(aid)
            total += 1
            styles += is_style
    out = [sdk.ConceptPicks(c.text, tuple(sdk.Pick(aid, r) for aid, r in chosen[ci]))
           for ci, c in enumerate(concepts)]
    out.extend(extra_concepts)
    if not any(cp.picks for cp in out):
        notes.append("no candidate is close enough to any concept: no adapters")
    return sdk.Composition(tuple(out), "offline", tuple(notes))


def compose_many(requests: Sequence[sdk.ComposeRequest], **options: Any) -> list[sdk.Composition]:
    """Convenience for benchmarks: compose a batch of requests."""
    return [compose(r, **options) for r in requests]


@sdk.hookimpl
def register_composers(register):
    register(OfflineComposer)
