"""A small fitted score that picks the words of a concept inside a noun phrase, and keeps or drops lone verbs.

The splitter (:mod:`stylus_ext.sdk.concepts`) finds noun phrases and verbs by hand-written rules; which
words of a phrase the concept keeps ("white boat" or "boat", "nice looking desk" or "desk") and whether
a verb without an object is a concept of its own ("sitting") is a logistic score over word-class
features only (colour, adjective, number, -ing, -ed, place word, position...; no word of the reference
set). The weights and the threshold were fitted by ``benchmarks/fit_concepts.py`` on the fit half of the
paper's concepts and ship in ``data/concept_scores.json``; without that file every phrase is kept whole
and no lone verb is added. A name is never trimmed off (:func:`name_word`): the paper's captions seldom
hold one, so the fit learnt to keep a phrase's last words ("abigail williams fate grand order" → "grand order").
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from stylus_ext.sdk.english import (
    ADJECTIVES,
    COLORS,
    DETERMINERS,
    GENERIC_NOUNS,
    MEDIUM_HEADS,
    NUMBER_WORDS,
    PLACE_WORDS,
    PREPOSITIONS,
    SIZE_WORDS,
    TIME_WORDS,
    is_adjective_like,
    is_adverb,
    is_ed,
    is_ing,
    singular,
)
from stylus_ext.sdk.word_classes import lookup, name_kind

WEIGHTS_PATH = Path(__file__).with_name("data") / "concept_scores.json"
#: Phrases longer than this are scored on their last words only (bounded work per phrase).
MAX_PHRASE = 8
#: When set (a list), each scored choice is appended as (kind, [(words, features), ...]): the fitting script.
RECORDER: list | None = None


def _load() -> tuple[dict[str, float], float, float]:
    try:
        data = json.loads(WEIGHTS_PATH.read_text(encoding="utf-8"))
        return ({str(k): float(v) for k, v in data["weights"].items()}, float(data["threshold"]),
                float(data["phrase_threshold"]))
    except (OSError, ValueError, KeyError, TypeError):
        return {}, math.inf, -math.inf


#: The weights; a lone verb scoring THRESHOLD or more is a concept; a phrase whose best span scores
#: less than PHRASE_THRESHOLD is none.
WEIGHTS, THRESHOLD, PHRASE_THRESHOLD = _load()


def word_class(word: str) -> str:
    """The class of one word (the first that applies)."""
    w = word.lower()
    if w.replace(".", "").replace("-", "").isdigit() or w in NUMBER_WORDS:
        return "num"
    for name, test in (("color", w in COLORS), ("size", w in SIZE_WORDS), ("adj", w in ADJECTIVES),
                       ("ing", is_ing(w)), ("ed", is_ed(w)), ("ly", is_adverb(w)), ("hyph", "-" in w),
                       ("adjend", is_adjective_like(w)), ("medium", w in MEDIUM_HEADS),
                       ("time", w in TIME_WORDS), ("place", w in PLACE_WORDS),
                       ("generic", singular(w) in GENERIC_NOUNS), ("cap", word[:1].isupper()),
                       ("y", w.endswith("y")), ("plural", singular(w) != w)):
        if test:
            return name
    return "noun"


def _context(word: str) -> str:
    w = word.lower()
    if not w:
        return "none"
    return w if w in PREPOSITIONS or w in ("and", "or") else "other"


def span_features(classes: list[str], i: int, j: int, prep: str, nxt: str) -> list[str]:
    """Features of keeping words ``i:j`` of a phrase whose word classes are ``classes``."""
    n = len(classes)
    kept, before, after = classes[i:j], classes[:i], classes[j:]
    f = [f"len{min(j - i, 4)}", f"n{min(n, 5)}", f"drop_pre{min(i, 3)}", f"drop_post{min(n - j, 2)}",
         f"head={kept[-1]}", f"first={kept[0]}", f"prep={_context(prep)}", f"next={_context(nxt)}"]
    f += [f"kept_has={c}" for c in set(kept[:-1])]
    f += [f"pre_has={c}" for c in set(before)] + [f"post_has={c}" for c in set(after)]
    if before:
        f.append(f"pre_last={before[-1]}|first={kept[0]}")
    if after:
        f.append(f"post_first={after[0]}|head={kept[-1]}")
    if j - i == 1:
        f.append(f"single={kept[0]}|n{min(n, 4)}")
    return f


def score(features: list[str]) -> float:
    """The logit of "this candidate is one of the paper's concepts"."""
    return WEIGHTS.get("bias", 0.0) + sum(filter(None, map(WEIGHTS.get, features)))  # (an unseen feature: None)


def best_span(words: list[str], prep: str = "", nxt: str = "") -> tuple[int, int] | None:
    """The words ``i:j`` of the phrase to keep, or None when none is worth a concept."""
    n = len(words)
    if not WEIGHTS and RECORDER is None:
        return 0, n
    lo = max(0, n - MAX_PHRASE)
    classes = [word_class(w) for w in words]
    names = [k for k, w in enumerate(words) if name_word(w)]
    # a name is never trimmed off ("abigail williams fate grand order" kept "grand order")
    hi, least_end = (min(names[0], n - 1), names[-1] + 1) if names else (n - 1, 1)
    best, best_score = None, -math.inf
    seen = []
    for i in range(lo, max(lo, hi) + 1):
        for j in range(max(i + 1, least_end), n + 1):
            feats = span_features(classes, i, j, prep, nxt)
            s = score(feats)
            seen.append((words[i:j], feats))
            if s > best_score:
                best, best_score = (i, j), s
    if RECORDER is not None:
        RECORDER.append(("np", seen))
    if not WEIGHTS or best is None:
        return 0, n
    return best if names or keep_score(span_features(classes, *best, prep, nxt)) >= PHRASE_THRESHOLD else None


def name_word(word: str) -> bool:
    """A word that names someone or something: a person's name of the encoder's vocabulary ("abigail",
    "williams") or a word it lacks ("keqing", "cadenzavna")."""
    w = word.lower()
    return len(w) > 2 and w.isalpha() and (lookup(w)[0] == "rare" or name_kind(w) != "")


def keep_score(features: list[str]) -> float:
    """The logit of "the chosen span of a phrase is one of the paper's concepts" (low: drop the phrase)."""
    return WEIGHTS.get("keep:bias", 0.0) + sum(WEIGHTS.get("keep:" + x, 0.0) for x in features)


def keep_verb(words: list[str], prev: str, nxt: str, at_end: bool) -> bool | None:
    """A verb (with its particles) that has no object of its own: a concept of its own? (None: no weights)"""
    cls = word_class(words[0])
    nxt_cls = "none" if not nxt else "det" if nxt.lower() in DETERMINERS else _context(nxt)
    if nxt_cls == "other":
        nxt_cls = word_class(nxt)
    prev_cls = word_class(prev) if prev and _context(prev) == "other" else _context(prev)
    feats = ["verb", f"verb={cls}", f"verb_particles={min(len(words) - 1, 1)}", f"verb_prev={prev_cls}",
             f"verb_next={nxt_cls}", f"verb_end={at_end}", f"verb={cls}|next={nxt_cls}",
             f"verb={cls}|prev={prev_cls}"]
    if RECORDER is not None:
        RECORDER.append(("verb", [(words, feats)]))
    return score(feats) >= THRESHOLD if WEIGHTS else None
