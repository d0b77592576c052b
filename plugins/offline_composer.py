"""The ``offline`` composer: the paper's LLM composer rules, with a keep/refuse score learned from real prompts.

No network, no language model, a few milliseconds for 150 candidates. Steps (one function each):

1. **Admissible** (:func:`admissible`): banned, already tagged, incompatible base model, NSFW (unless
   allowed), utility adapters (sliders, detail tweakers, LCM/Turbo: only when pinned) and, when
   characters are not allowed, character/celebrity adapters never take part. Pinned ones are kept.
2. **Evidence** (:func:`best_concept`; the word rules: ``_offline_composer_words.py``): each
   candidate is matched to the concept it fits best — a concept holding one of its trigger phrases,
   its title's head noun or one of its tags first, else the concept most similar to it (cosine of
   the concept's embedding and the adapter's vector).
3. **Keep score** (:func:`pair_features`, :func:`keep_probability`): a logistic model over the
   retriever's fitted score (its probability that the adapter is the one the prompt asks for), its
   rank, the concept cosine and its gap to the concept's best, the word evidence, narrowness
   (specific title words the prompt lacks, qualifiers the adapter lacks) and style agreement, with
   the word evidence and the cosine once more for captions (where a title word means more than in a
   tag list; no feature says "caption" alone: most no-fit prompts are captions). It is
   fitted on real prompts → the LoRAs their authors used, the paper's GPT-4o picks and prompts nothing
   fits (``benchmarks/fit_composer.py`` writes ``offline_composer.json``); ``keep`` (default from the
   fit, chosen on held-out no-fit prompts) is the probability an adapter needs. No feature counts the
   prompt's length: our no-fit prompts were short at first, and a fit learnt "short fits nothing".
4. **Rules** (:func:`assign`): the paper's pruning — optionally, an adapter without the concept's own
   word needs near-synonym similarity (``synonym_similarity``, off by default: on real prompts it
   refused a third of the right adapters and no extra no-fit prompt); an adapter whose trigger IS the concept,
   or a style adapter named by a style concept's own word, is kept at a quarter of the fitted bar
   (the train prompts had their trigger words removed, so no fit can learn that); so is one whose
   trigger or name holds a word the prompt holds and the catalogue coined for it (``sdk.distinctive``:
   no English word or common tag, on at most 0.1% of the adapters), and a coined code that mixes
   letters and digits ("hq1992") is kept whatever the score, as is a tag's best-ranked adapter
   when the tag (in a tag list) is its whole first trigger and holds a word of the adapters' jargon
   (on at most :data:`TYPED_TAG_SHARE` of them: "tsurime", "midjourney"); a concept that is an
   adapter's whole title name with a word English lacks ("helltaker") asks at a quarter of the bar,
   a style concept that is a style adapter's whole name ("makoto shinkai") whatever the score, and a
   medium typed as a tag ("pixel art") its best-ranked exactly-named style; a
   non-character adapter the retriever is sure of (probability ≥ ``confident``) is kept, ranked by
   that probability; an adapter named by a negated concept ("not pixel art") never; 0–3 adapters per
   concept (the first a character it names, else one whose trigger or title IS the concept: "a horse"
   takes the horse card before "Horseback Riding", a thing's own card before a style named after
   it), each adapter once, at most two style adapters,
   at most ``max_adapters`` in total;
   characters/celebrities only when the prompt names them (``sdk.character_evidence``; one name word
   that a sentence writes as a thing, after an article or "of" in lower case, names no one: "a bottle
   of shampoo", "a pile of gravel") and their keep score passes too (not needed when a concept is
   nothing but the character's name with a word English lacks, ``sdk.named_outright``, nor when one
   holds the title's whole name and the retriever agrees: many cards of one character split the
   retriever's score, to 0.02 for a Miku card among 23); versions of one character are one choice; second and third
   picks of a concept must score close to its best.

Every pick's reason says in words why: the concept, the adapter, its evidence, the concept
similarity and the keep score.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stylus_ext import sdk

_WORDS = sdk.sibling_module(__file__, "_offline_composer_words")
Profile, Evidence, profile = _WORDS.Profile, _WORDS.Evidence, _WORDS.profile
STYLE_CATEGORIES, CHARACTER_CATEGORIES = _WORDS.STYLE_CATEGORIES, _WORDS.CHARACTER_CATEGORIES


MODEL_PATH = Path(__file__).with_name("offline_composer.json")

#: Concept cosine above which an adapter named for another thing is a near-synonym of it.
NEAR_SYNONYM = 0.6
PAIR_FEATURES = (
    "ret_logit", "ret_gap", "ret_rank", "sim", "sim_gap", "prompt_sim", "lexical", "anchor_trigger",
    "anchor_title", "anchor_tag", "exact_trigger", "extras", "missing", "overlap", "style_match",
    "style_for_subject", "caption_anchor_title", "caption_anchor_tag", "caption_sim",
)


#: Candidates the composer weighs, best first: every pick on 1,014 real-card prompts (recover, typed
#: triggers, silver) ranked in the retriever's top 20, and word profiles of the other ~100 were most
#: of a compose at 100K adapters. The rest only shape the relative features (best score, rank, best
#: cosine of a concept), so those stay what they were over all candidates.
CONSIDER = 50
#: Retriever probability at which a non-character adapter the composer found a concept for is kept
#: whatever its keep score: the lowest bar that left the fit no-fit prompts as empty (README).
CONFIDENT = 0.5

#: A tag list's tag that is the whole first trigger of the best-ranked adapter matched to it and holds
#: a word of the adapters' own jargon (no English word, no common tag, on at most this share of the
#: adapters: "tsurime", "midjourney", "chibi") asks for that adapter whatever its score.
TYPED_TAG_SHARE = 0.05


@dataclass(frozen=True)
class Admissible:
    rows: list[int]  # candidate indexes that may be chosen
    pinned: list[int]
    profiles: dict[int, Profile]
    tail: list[int] = field(default_factory=list)  # admissible beyond ``consider``, characters apart


def admissible(request: sdk.ComposeRequest, excluded: set[str], consider: int = CONSIDER,
               tagged: Sequence[str] = (), negated: Sequence[frozenset[str]] = ()) -> Admissible:
    """Step 1: the candidates that may take part (pinned ones apart: they are always kept); those
    past the first ``consider`` without their word profiles, as context only. A character that a
    ``<lora:...>`` tag of the prompt (``tagged``) already draws takes no part (``sdk.tagged_as``),
    nor an adapter whose title, file name or trigger holds every word of a negated concept
    (``negated``: "not pixel art" refuses "Pixel Art XL", "no hat" a "Witch Hat")."""
    rows: list[int] = []
    pinned: list[int] = []
    tail: list[int] = []
    profiles: dict[int, Profile] = {}
    for i, cand in enumerate(request.candidates):
        a = cand.adapter
        if a.banned or a.card.name.lower() in excluded or (a.card.alias or "").lower() in excluded:
            continue
        if not sdk.compatible(a.card.base_model, request.base_model):
            continue
        if not request.allow_nsfw and sdk.is_nsfw(a.card):
            continue
        if i >= consider and not a.pinned:
            category = (a.category or "concept").lower()
            if category not in CHARACTER_CATEGORIES and not _WORDS.is_utility(a.title, a.card.name, category):
                tail.append(i)
            continue
        p = profile(a)
        if a.pinned:
            pinned.append(i)
        elif p.utility or (p.category in CHARACTER_CATEGORIES and (
                not request.allow_characters or sdk.tagged_as(a.title, a.card.alias or a.card.name, tagged))) or (
                any(n <= p.title | p.name or any(n <= t for _, t in p.triggers) for n in negated)):
            continue
        else:
            rows.append(i)
        profiles[i] = p
    return Admissible(rows, pinned, profiles, tail)


def concept_similarities(request: sdk.ComposeRequest, concepts: Sequence[Any]) -> tuple[np.ndarray, bool]:
    """Concept × candidate cosines; without vectors, each candidate's prompt similarity (flag False)."""
    n = len(request.candidates)
    vecs = _unit_rows(request.candidate_vectors)
    if concepts and vecs is not None and request.encode is not None and len(vecs) == n:
        cvecs = _unit_rows(request.encode([c.text for c in concepts]))
        if cvecs is not None and cvecs.shape[1] == vecs.shape[1]:
            return cvecs @ vecs.T, True
    prompt_sims = np.array([max(0.0, float(c.similarity)) for c in request.candidates], dtype=np.float32)
    return np.tile(prompt_sims, (len(concepts), 1)), False


def _unit_rows(vectors: Any) -> np.ndarray | None:
    if vectors is None:
        return None
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim != 2 or not len(arr):
        return None
    return arr / np.maximum(np.linalg.norm(arr, axis=1, keepdims=True), 1e-8)



def best_concept(concepts: Sequence[Any], sims: np.ndarray, j: int, p: Profile, *, prompt_words: set[str],
                 character: tuple[str, set[str]] | None) -> Evidence | None:
    """Step 2: the concept candidate ``j`` fits best, with its evidence (None: a character not named)."""
    if character is not None:
        named, words = character
        if not named:
            return None
        holders = [ci for ci, c in enumerate(concepts) if words & sdk.prompt_words(c.text)]
        if not holders:
            return None
        text = named.split(" ", 1)[-1].strip("'")
        lead = sdk.words_of(text)[:1] if named.startswith("trigger") else []  # a trigger leads with the name
        ci = max(holders, key=lambda c: (bool(set(lead) & sdk.prompt_words(concepts[c].text)), sims[c, j]))
        return Evidence(ci, "name", text)
    found = [(ci, ev) for ci, c in enumerate(concepts) if (ev := _WORDS.word_evidence(c, p, prompt_words))]
    if found:
        ci, ev = max(found, key=lambda t: (t[1].exact, sims[t[0], j]))
        return Evidence(ci, ev.kind, ev.text, ev.exact)
    return Evidence(int(np.argmax(sims[:, j])))


def pair_features(request: sdk.ComposeRequest, concepts: Sequence[Any], sims: np.ndarray, rows: Sequence[int], *,
                  evidence: dict[int, Evidence], profiles: dict[int, Profile],
                  prompt_words: set[str], context: Sequence[int] = ()) -> np.ndarray:
    """Step 3a: the keep model's features (one row per candidate in ``rows``, :data:`PAIR_FEATURES`);
    the relative ones (best score, rank, a concept's best cosine) count the ``context`` rows too."""
    every = [*rows, *context]
    scores = np.array([request.candidates[j].score for j in every], dtype=np.float64)
    logits = np.log(np.clip(scores, 1e-4, 1 - 1e-4) / (1 - np.clip(scores, 1e-4, 1 - 1e-4))) / 5.0
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(every))
    ranks[order] = np.arange(len(every))
    best_sim = dict(enumerate(sims[:, every].max(axis=1).tolist())) if rows else {}
    out = np.zeros((len(rows), len(PAIR_FEATURES)))
    caption = not sdk.prompt.is_tag_style(request.prompt)  # word evidence means more in a sentence
    for r, j in enumerate(rows):
        ev, p, cand = evidence[j], profiles[j], request.candidates[j]
        concept = concepts[ev.concept]
        cwords = set(_WORDS.content(concept.text))
        sim = float(sims[ev.concept, j])
        style = p.category in STYLE_CATEGORIES
        out[r] = (
            logits[r], logits[r] - logits.max(), 1.0 / math.log2(ranks[r] + 2), sim, sim - best_sim[ev.concept],
            float(cand.similarity), float(cand.lexical), ev.kind == "trigger", ev.kind in ("title", "name"),
            ev.kind == "tag", ev.kind == "trigger" and ev.exact, _WORDS.extras(concept, p, prompt_words),
            _WORDS.missing(concept, p),
            len(cwords & p.words) / max(1, len(cwords)), style and concept.kind == "style",
            style and concept.kind not in ("style", "setting"),
            caption and ev.kind == "title", caption and ev.kind == "tag", sim if caption else 0.0)
    return out


_KEEP = sdk.sibling_module(__file__, "_offline_composer_keep")
KeepModel = _KEEP.KeepModel


@functools.cache
def shipped_model() -> KeepModel:
    """The fitted keep model that ships beside this plugin (``offline_composer.json``)."""
    return KeepModel.load(MODEL_PATH, PAIR_FEATURES)


def keep_probability(features: np.ndarray, model: KeepModel | None = None) -> np.ndarray:
    """Step 3b: the fitted probability that each candidate belongs in the composition."""
    return (model or shipped_model()).probability(features)


def assign(request: sdk.ComposeRequest, concepts: Sequence[Any], ranked: list[tuple[float, int, str]], *,
           evidence: dict[int, Evidence], profiles: dict[int, Profile], character_words: dict[int, frozenset[str]],
           pinned: Sequence[int], sims: np.ndarray, per_concept: int, max_styles: int, margin: float
           ) -> list[sdk.ConceptPicks]:
    """Step 4: pinned first, then the kept candidates best first under the paper's caps."""
    chosen: dict[int, list[sdk.Pick]] = {ci: [] for ci in range(len(concepts))}
    extra: list[sdk.ConceptPicks] = []
    best: dict[int, float] = {}
    taken_characters: set[frozenset[str]] = set()
    styles = total = 0
    # a concept's first pick: a character the prompt names, else one its own word names exactly (its
    # trigger or title IS the concept: "a horse" takes the horse adapter before "Horseback Riding",
    # which only looks like it), for a thing an adapter of that thing before a style named after it
    # ("a butterfly"); the others may still follow as second picks
    tier = {j: _lead_tier(evidence[j], profiles[j], concepts[evidence[j].concept]) for _, j, _ in ranked}
    first_tier: dict[int, int] = {}
    for j, t in tier.items():
        first_tier[evidence[j].concept] = min(t, first_tier.get(evidence[j].concept, t))
    for j in pinned:
        a = request.candidates[j].adapter
        if concepts:
            ci = int(np.argmax(sims[:, j]))
            chosen[ci].append(sdk.Pick(a.id, f"pinned: '{a.title}' (sim {float(sims[ci, j]):.2f})"))
        else:
            extra.append(sdk.ConceptPicks("pinned", (sdk.Pick(a.id, f"pinned: '{a.title}'"),)))
        total += 1
        styles += profiles[j].category in STYLE_CATEGORIES
    for first_pass in (True, False):  # every concept's best adapter before anyone's second
        for prob, j, reason in ranked:
            ci = evidence[j].concept
            a = request.candidates[j].adapter
            if total >= request.max_adapters or len(chosen[ci]) >= per_concept or any(
                    p.adapter_id == a.id for p in chosen[ci]) or (
                    first_pass and (chosen[ci] or tier[j] > first_tier[ci])):
                continue
            words = character_words.get(j)
            if (first_pass is False and prob < best.get(ci, 0.0) - margin) or (words is not None and any(
                    words <= taken or taken <= words for taken in taken_characters)):
                continue  # versions of one character are one choice ("ganyu", "ganyu (genshin impact)")
            is_style = profiles[j].category in STYLE_CATEGORIES
            if is_style and styles >= max_styles:
                continue
            chosen[ci].append(sdk.Pick(a.id, reason))
            best.setdefault(ci, prob)
            if j in character_words:
                taken_characters.add(character_words[j])
            total += 1
            styles += is_style
    return [sdk.ConceptPicks(c.text, tuple(chosen[ci])) for ci, c in enumerate(concepts)] + extra


def _lead_tier(ev: Evidence, p: Profile, concept: Any) -> int:
    """Which of a concept's kept candidates may be its first pick (the lowest tier there is): 0 a
    character it names, 1 an adapter whose trigger or title IS the concept word for word, 2 such a
    style adapter for a concept that is no style, 3 the rest."""
    if ev.kind == "name" and p.category in CHARACTER_CATEGORIES:
        return 0
    if ev.exact and ev.kind in ("trigger", "title"):
        return 2 if p.category in STYLE_CATEGORIES and concept.kind != "style" else 1
    return 3


def _reason(concept: Any, adapter: sdk.Adapter, ev: Evidence, sim: float, prob: float, *, asked: str = "") -> str:
    """The pick in words; ``asked`` says which word rule asked for it when its fit score alone would not."""
    said = {"trigger": f"trigger '{ev.text}'", "title": f"title '{ev.text}'", "tag": f"tag '{ev.text}'",
            "name": f"named '{ev.text}'"}.get(ev.kind, "similar meaning")
    why = f"; {asked}" if asked else ""
    return f"{concept.kind}: {concept.text} ← '{adapter.title}' ({said}, sim {sim:.2f}, fits {prob:.2f}{why})"


class OfflineComposer(sdk.Composer):
    """Concepts → 0–3 adapters each, kept by a fitted score, with the paper's pruning rules."""

    name = "offline"
    description = "No-LLM composer: concept splitting, a keep score fitted on real prompts, the paper's rules."
    env_prefix = "COMPOSER_OFFLINE"
    options = (
        sdk.Option("keep", float, None, "Least fitted probability to keep an adapter (default: the fit's)."),
        sdk.Option("synonym_similarity", float, 0.0,
                   "Least concept cosine for an adapter without word evidence (0: the keep score decides)."),
        sdk.Option("min_similarity", float, 0.40, "Least concept cosine for a style named by its own word."),
        sdk.Option("character_score", float, 0.05, "Least retriever score for a named character adapter."),
        sdk.Option("per_concept", int, 3, "Most adapters per concept (0–3 in the paper)."),
        sdk.Option("max_styles", int, 2, "Most style adapters in total."),
        sdk.Option("margin", float, 0.25, "Extra picks of a concept must score within this of its best."),
        sdk.Option("consider", int, CONSIDER, "Candidates weighed, best first (the rest only set relative features)."),
        sdk.Option("confident", float, CONFIDENT,
                   "Retriever probability at which a non-character adapter with evidence is kept (1: never)."),
    )

    def compose(self, request: sdk.ComposeRequest) -> sdk.Composition:
        return compose(request, **self.config)


def candidate_pairs(request: sdk.ComposeRequest, *, character_score: float = 0.05,
                    consider: int = CONSIDER) -> dict[str, Any]:
    """Steps 1–3a for ``request``: concepts, admissible rows, evidence and features (also used to fit)."""
    parsed = sdk.parse_prompt(request.prompt)
    concepts = list(parsed.topical)
    excluded = {n.lower() for n in (*request.exclude_names, *parsed.excluded_names)}
    prompt_words = sdk.prompt_words(" ".join(c.text for c in parsed.concepts))
    negated = [n for c in parsed.concepts if c.kind == "negated"
               if (n := frozenset(_WORDS._tokens(c.text.split(" ", 1)[-1])))]
    adm = admissible(request, excluded, consider, tagged=[t.name for t in parsed.tags if t.is_lora], negated=negated)
    coined = sdk.distinctive(request)
    sims, with_vectors = concept_similarities(request, concepts)
    evidence: dict[int, Evidence] = {}
    character_words: dict[int, frozenset[str]] = {}
    outright: set[int] = set()
    tag_style = sdk.prompt.is_tag_style(request.prompt)  # a tag list names a character in any case
    characters: dict[int, tuple[str, set[str]] | None] = {}
    for j in adm.rows if concepts else ():
        p = adm.profiles[j]
        character = None
        if p.category in CHARACTER_CATEGORIES:
            a = request.candidates[j].adapter
            character = sdk.character_evidence(a.title, a.card.alias or a.card.name,
                                               (*a.card.trigger_words, a.card.activation_text), prompt_words,
                                               coined=coined)
            one = next(iter(character[1])) if len(character[1]) == 1 else ""
            if one and not tag_style and not re.search(r"\d", one) and not any(
                    _typed_as_name(cp, request.prompt) for cp in concepts if character[1] & sdk.prompt_words(cp.text)):
                character = ("", set())  # one name word written as a thing: "a bottle of shampoo" (not a code)
            # name evidence, or a trigger that is the title's name (not a shared "sks woman", nor the
            # "blindfold" of a version "WitheredRose | Realistic LORA (blindfold)")
            if (character[0].startswith("name") or any(character[1] <= f for f in sdk.title_forms(a.title))) and \
                    any(sdk.named_outright(cp.text, character[1]) for cp in concepts
                        if cp.kind != "style" or cp.text not in sdk.CONCEPT_MEDIA):
                outright.add(j)  # a concept IS its name ("hatsune miku"), however many Mikus compete
            elif character[0] and any(sdk.named_with_series(cp.text, a.card.trigger_words, prompt_words)
                                      for cp in concepts):
                outright.add(j)  # "sirius, azur lane": the name and its series, as its booru tag has them
            elif character[0] and request.candidates[j].score >= character_score and \
                    _whole_title_name(a.title, character[1]):
                outright.add(j)  # "rin tohsaka character semestaai": its title's whole name among other
                # words, and the retriever agrees (a "hatsune miku concert crowds" poster, at 0.04, is no request)
            elif character[0] and not character[0].startswith("trigger") and \
                    request.candidates[j].score < character_score:
                character = ("", set())  # a name word in passing ("white"), and the retriever disagrees
        characters[j] = character
    # "genshin impact" is part of the names of Lumine, Nahida and Raiden Shogun: a series, nobody's name
    series = sdk.series_matches((ch[1] if ch[0] else (), a.title, a.card.alias or a.card.name, a.card.trigger_words)
                                for j, ch in characters.items() if ch is not None
                                for a in (request.candidates[j].adapter,))
    for j, found in characters.items():
        p = adm.profiles[j]
        character = ("", set()) if found is not None and found[0] and frozenset(found[1]) in series else found
        if character is not found:
            outright.discard(j)
        ev = best_concept(concepts, sims, j, p, prompt_words=prompt_words, character=character)
        if ev is not None:
            evidence[j] = ev
            if character is not None:
                character_words[j] = frozenset(character[1])
    rows = [j for j in adm.rows if j in evidence]
    features = pair_features(request, concepts, sims, rows, evidence=evidence, profiles=adm.profiles,
                             prompt_words=prompt_words, context=adm.tail)
    named = {j: _coined_in_prompt(evidence[j], prompt_words, coined) for j in rows} if coined else {}
    typed = {j: t for j in rows if (characters.get(j) is None or characters[j][0].startswith("trigger"))
             and (t := _typed_first_trigger(concepts[evidence[j].concept], request.candidates[j].adapter.card))[0]}
    jargon = sdk.distinctive(request, share=TYPED_TAG_SHARE) if tag_style and rows else None
    typed_tag: set[int] = set()
    if jargon is not None:
        firsts: dict[int, int] = {}  # concept → its best-ranked candidate
        for j in rows:
            firsts.setdefault(evidence[j].concept, j)
        typed_tag = {j for j in firsts.values() if j in typed and any(
            jargon(w) for w in sdk.words_of(concepts[evidence[j].concept].text, camel=False))}
    return {"concepts": concepts, "admissible": adm, "sims": sims, "with_vectors": with_vectors, "rows": rows,
            "evidence": evidence, "features": features, "character_words": character_words,
            "coined": {j: kind for j, kind in named.items() if kind}, "outright": outright & set(rows),
            "typed": typed, "tag_style": tag_style, "typed_tag": typed_tag}


def _typed_first_trigger(concept: Any, card: sdk.AdapterCard) -> tuple[int, bool]:
    """(how many words, whether they are words of its title) when the concept is the adapter's first
    trigger phrase typed whole, else (0, False): a tag typed on purpose, which the fitted score never saw
    (its prompts had their triggers removed). Two or more words of its title ask for it at a quarter
    of the bar ("sailor saturn" of "Sailor Saturn | Sailor Moon"; not a shared "sks woman"), one coined
    word whatever its score ("keqingdef"), one word of its title in a tag list at a quarter of the bar
    ("tensura" of "... Slime (Tensura)")."""
    phrases = (p.strip() for t in (*card.trigger_words, card.activation_text) for p in t.split(","))
    first = next((p for p in phrases if p), "")
    words = sdk.words_of(first, camel=False)
    if not words or words != sdk.words_of(concept.text, camel=False):
        return 0, False
    return len(words), set(words) <= sdk.prompt_words(card.title or card.name)


#: Words before a noun that make it a thing, not a name ("a robot", "a bottle of shampoo").
_ARTICLES = frozenset({"a", "an", "the", "of", "some", "this", "that", "these", "those", "his", "her", "their",
                       "my", "your", "its", "our"})


def _typed_as_name(concept: Any, prompt: str) -> bool:
    """False for a one-word concept a sentence writes as a thing: after an article or "of", in lower
    case ("a bottle of shampoo", "a pile of gravel", "a robot"), though the word is no word of the
    encoder's vocabulary (``sdk.named_outright``'s test of English) or the character is named after
    it. Names take no article ("miku singing on a stage") or a capital ("a photo of Zelda"). (A tag
    list, "1girl, shampoo", names it in any case: the caller asks only for sentences.) Measured: also
    asking a longer phrase to be headed by the name ("vesper bells" are bells) lost the character for
    a card's own name as the query ("asuna sao sword art online"): 0.709 → 0.657 on the dev split."""
    start, end = concept.span
    if len(concept.text.split()) > 1 or prompt[start:end][:1].isupper():
        return True
    before = re.findall(r"[\w']+", prompt[max(0, start - 40):start].lower())
    return not before or before[-1] not in _ARTICLES


def _lacks_english(words: Iterable[str]) -> bool:
    """One of ``words`` (longer than two letters) is no word of the encoder's vocabulary: a name."""
    return any(len(w) > 2 and sdk.word_classes.lookup(w)[0] == "rare" for w in words)


def _whole_title_name(title: str, matched: set[str]) -> bool:
    """The prompt's name evidence holds the character title's whole name, two or more words, one of
    them a word English lacks ("rin tohsaka" of "Rin Tohsaka (Fate: Stay Night) | Character LoRA",
    with other words beside it): named, not in passing, however many cards of it split the score."""
    return any(len(form) >= 2 and form <= matched and _lacks_english(form) for form in sdk.title_forms(title))


def _coined_in_prompt(ev: Evidence, prompt_words: set[str], coined: Callable[[str], bool]) -> str:
    """``"code"`` when the prompt holds a word of this trigger/name evidence that is coined for a few
    adapters and mixes letters and digits ("hq1992", "aloe1"): typed on purpose, kept whatever the
    score; ``"word"`` for another coined word ("fuxuan", "libhllw"): kept at a quarter of the bar
    (a rare plain word of a small catalogue is coined by count too); ``""`` otherwise."""
    if ev.kind not in ("trigger", "name"):
        return ""
    words = [w for w in {*sdk.words_of(ev.text, camel=False), *sdk.words_of(ev.text)} if w in prompt_words]
    found = [w for w in words if coined(w)]
    if any(re.search(r"\d", w) for w in found):
        return "code"
    return "word" if found else ""


def _style_named(concept: Any, ev: Evidence, p: Profile, title: str, *, shared: bool = False) -> bool:
    """A style concept that is a style adapter's whole trigger or whole title name, of two or more
    words or a word English lacks ("makoto shinkai", "blade runner" of "Blade Runner (1982 style)"):
    the user asked for that style by name. A medium or a style word many adapters share
    (``sdk.CONCEPT_MEDIA``: "watercolor", "pixel art", "chibi") names one only with ``shared``: the
    caller asks for the best-ranked of them alone (:func:`_media_firsts`)."""
    if concept.kind != "style" or p.category not in STYLE_CATEGORIES:
        return False
    said = sdk.prompt_words(concept.text)
    if not (ev.exact or any(said == form for form in sdk.title_forms(title))):
        return False
    if concept.text in sdk.CONCEPT_MEDIA:
        return shared
    return len(said) >= 2 or _lacks_english(said)


def _media_firsts(request: sdk.ComposeRequest, c: dict[str, Any]) -> set[int]:
    """Per medium concept ("pixel art" in a tag list: dozens of pixel-art cards split the retriever's
    score, each under a quarter of the bar), the best-ranked style adapter named by it exactly. Not
    for a generic tag ("realistic": ``sdk.prompt.is_common_tag``), nor for a look word on more than
    :data:`TYPED_TAG_SHARE` of the adapters ("illustration", "cinematic": habits of community
    prompts, on 14% and 9% of the real cards, not requests for a style)."""
    media = {i for i, concept in enumerate(c["concepts"]) if concept.text in sdk.CONCEPT_MEDIA and
             not sdk.prompt.is_common_tag(concept.text) and _held_by_few(request, concept.text)}
    firsts: dict[int, int] = {}
    for j in c["rows"] if media else ():  # best-ranked first
        ev = c["evidence"][j]
        if ev.concept in media and ev.concept not in firsts and _style_named(
                c["concepts"][ev.concept], ev, c["admissible"].profiles[j], request.candidates[j].adapter.title,
                shared=True):
            firsts[ev.concept] = j
    return set(firsts.values())


def _held_by_few(request: sdk.ComposeRequest, text: str) -> bool:
    """A word of ``text`` is on at most :data:`TYPED_TAG_SHARE` of the catalogue's adapters (True
    when the request cannot count)."""
    count, size = request.adapters_with, request.catalog_size
    if count is None or size <= 0:
        return True
    try:
        return any(int(count(w)) <= TYPED_TAG_SHARE * size for w in sdk.words_of(text, camel=False))
    except (TypeError, ValueError, OSError):  # a host's counter that cannot say
        return True


def _title_typed(concept: Any, p: Profile, adapter: sdk.Adapter) -> bool:
    """The concept is a (non-character) adapter's whole name as its title gives it ("helltaker" of
    "Helltaker LoRA (1.0)", "knife thigh strap" of "Knife thigh strap (v1)"): the user asked for it by name."""
    if p.category in CHARACTER_CATEGORIES:
        return False
    said = sdk.prompt_words(concept.text)
    return bool(said) and any(said == form for form in sdk.title_forms(adapter.title)) and _lacks_english(said)


def _named_outright(concept: Any, ev: Evidence, p: Profile, sim: float, min_similarity: float) -> bool:
    """Word rules the fitted score cannot learn (its train prompts had the trigger words removed): the
    concept IS the adapter's trigger phrase, or a style concept names a style adapter by its title or
    trigger word ("watercolor" → "Soft Watercolor Style")."""
    if p.category in CHARACTER_CATEGORIES:
        return False
    if ev.exact and sim >= min_similarity * 0.75:
        return True
    return concept.kind == "style" and p.category in STYLE_CATEGORIES and ev.kind in ("trigger", "title") \
        and sim >= min_similarity + 0.1


def compose(request: sdk.ComposeRequest, *, keep: float | None = None, synonym_similarity: float = 0.0,
            min_similarity: float = 0.40, character_score: float = 0.05, per_concept: int = 3, max_styles: int = 2,
            margin: float = 0.25, consider: int = CONSIDER, confident: float = CONFIDENT) -> sdk.Composition:
    """The offline composition of ``request`` (a pure function of its inputs: deterministic)."""
    c = candidate_pairs(request, character_score=character_score, consider=consider)
    concepts, adm, sims = c["concepts"], c["admissible"], c["sims"]
    notes = [] if c["with_vectors"] or not concepts else ["no vectors: word evidence only"]
    if not concepts and not adm.pinned:
        return sdk.Composition((), "offline", ("no concept in the prompt can take an adapter",))
    probs = keep_probability(c["features"]) if c["rows"] else np.zeros(0)
    bar = shipped_model().keep if keep is None else keep
    ranked = []
    media = _media_firsts(request, c)

    for prob, j in sorted(zip(probs.tolist(), c["rows"], strict=True), key=lambda t: (-t[0], t[1])):
        ev = c["evidence"][j]
        # a character needs both: the prompt names it AND the score agrees ("wall", "cat" and "milk"
        # name characters too — on real captions the naming rule alone picked one for 12% of prompts)
        sim = float(sims[ev.concept, j])
        # the paper's "too broad / wrong thing" rule: without the concept's own word (title, tag,
        # trigger) only a near-synonym passes — an okapi is not a giraffe
        coined = c["coined"].get(j, "")
        if not coined and sim < NEAR_SYNONYM and _WORDS.another_thing(concepts[ev.concept], adm.profiles[j]):
            continue  # "Red Fox" for "red panda": only the qualifier is shared
        typed, in_title = c["typed"].get(j, (0, False))  # the concept is its first trigger, typed whole
        # a typed code, a concept that is the character's name, its coined or jargon trigger typed whole
        score = request.candidates[j].score
        sure = score >= confident and adm.profiles[j].category not in CHARACTER_CATEGORIES
        asked = ("a coined code typed" if coined == "code" else "its name typed" if j in c["outright"]
                 else "its coined trigger typed" if typed == 1 and coined
                 else "its trigger typed as a tag" if j in c["typed_tag"]
                 else "its style named" if j in media or _style_named(
                     concepts[ev.concept], ev, adm.profiles[j], request.candidates[j].adapter.title)
                 else f"the retriever is sure of it ({score:.2f})" if sure and prob < bar else "")
        if asked or (prob >= bar and (ev.kind or sim >= synonym_similarity)) or (prob >= bar / 4 and (
                coined or (in_title and (typed >= 2 or c["tag_style"]))
                or _title_typed(concepts[ev.concept], adm.profiles[j], request.candidates[j].adapter)
                or _named_outright(concepts[ev.concept], ev, adm.profiles[j], sim, min_similarity))):
            a = request.candidates[j].adapter
            why = asked or ("" if prob >= bar else "its own word, at a quarter of the bar")
            # what the retriever is sure of keeps at least its probability: ranked, and held to a
            # concept's margin, by that ("a butterfly": a butterfly card at 0.51 beside one kept at 0.6)
            ranked.append((max(prob, score) if sure else prob, j,
                           _reason(concepts[ev.concept], a, ev, sim, prob, asked=why)))
    ranked.sort(key=lambda t: (-t[0], t[1]))
    out = assign(request, concepts, ranked, evidence=c["evidence"], profiles=adm.profiles,
                 character_words=c["character_words"], pinned=adm.pinned, sims=sims,
                 per_concept=per_concept, max_styles=max_styles, margin=margin)
    if not any(cp.picks for cp in out):
        notes.append("no candidate fits any concept well enough: no adapters")
    return sdk.Composition(tuple(out), "offline", tuple(notes))


@sdk.hookimpl
def register_composers(register):
    register(OfflineComposer)
