"""A fitted span scorer: which runs of a sentence's words are the paper's concepts.

The hand-written chunker (:mod:`stylus_ext.sdk.concepts`) proposes noun phrases and verbs; the paper's
composer often joins them ("building with a clock", "man sitting"), splits an attribute off ("white",
"bus") or drops a generic one ("man"). This module scores EVERY run of up to :data:`MAX_WORDS` words
that starts and ends on a content word: a logistic model over word classes (colour, adjective, -ing,
place, person...), the closed-class words around and inside it ("with", "of", "on"), its length, the
sentence's length, how it relates to the chunker's concepts (the same, inside one, covering two), and
general word classes of its head, first word and neighbours (:mod:`stylus_ext.sdk.word_classes`: how
common the word is and its meaning group, from a language model's vocabulary, not from the reference).
No content word is a feature. Then the non-overlapping runs with the greatest total probability above
:data:`THRESHOLD` are kept (a linear-time dynamic programme: bounded work on hostile prompts). Never
chosen: part of a noun phrase ("red" or "panda" of "red panda"), nor the modifier the chunker trimmed
off one ("red" before "lego block"); always kept: a chunker concept headed by a word the table lacks
(a name: "hatsune miku").

The weights were fitted by ``benchmarks/fit_concepts.py`` on the fit half of the paper's concepts and
ship in ``data/concept_spans.json``; without that file the chunker's concepts are kept as they are.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

from stylus_ext.sdk.concept_score import name_word, word_class
from stylus_ext.sdk.english import (
    AUX,
    CONJUNCTIONS,
    GENERIC_NOUNS,
    LIGHT_VERBS,
    PARTITIVES,
    PERSON_WORDS,
    PREPOSITIONS,
    is_function_word,
    singular,
)
from stylus_ext.sdk.word_classes import lookup

WEIGHTS_PATH = Path(__file__).with_name("data") / "concept_spans.json"
#: A candidate run has at most this many words (function words included) ...
MAX_WORDS = 7
#: ... and at most this many content words.
MAX_CONTENT = 4
#: May a run stop before the head of one of the chunker's noun phrases ("red" of "red panda")?
SPLIT_PHRASES = False
#: The least gain of a chunker concept whose head is outside the word table (a name, a coined word): kept.
UNKNOWN_GAIN = 1.0
#: Word classes that start a verb phrase, not a modifier ("holding" + "umbrella" may stand apart).
VERB_CLASSES = frozenset(("ing", "ed", "light", "aux"))
#: When set (a list), every sentence's candidates are appended as [(text, features), ...]: the fitting script.
RECORDER: list | None = None

Rule = tuple[int, int, str]  # word span (i, j) of a chunker concept, its kind


def _load() -> tuple[dict[str, float], float]:
    try:
        data = json.loads(WEIGHTS_PATH.read_text(encoding="utf-8"))
        return {str(k): float(v) for k, v in data["weights"].items()}, float(data["threshold"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}, math.inf


#: The weights, and the probability a kept run must exceed (set for the concepts-per-prompt budget).
WEIGHTS, THRESHOLD = _load()


def span_class(word: str) -> str:
    """The class of a word: a function word names itself (closed class), a person noun is ``person``."""
    w = word.lower()
    if w in PREPOSITIONS or w in CONJUNCTIONS:
        return w
    if w in AUX:
        return "aux"
    if is_function_word(w):
        return "det"
    if singular(w) in PERSON_WORDS:
        return "person"
    if w in LIGHT_VERBS:
        return "light"
    return word_class(word)


def content_class(cls: str) -> bool:
    """A class of content words (not a function word's own name, ``aux`` or ``det``)."""
    return cls not in PREPOSITIONS and cls not in CONJUNCTIONS and cls not in ("aux", "det")


def _bucket(n: int) -> str:
    return "1" if n <= 1 else "2" if n == 2 else "3" if n <= 4 else "5" if n <= 7 else "8" if n <= 11 else "12"


def _relation(s: Sentence, i: int, j: int) -> str:
    """How the run ``i:j`` stands to the chunker's concepts (constant time: they do not overlap)."""
    at_i, at_j = s.rule_at[i], s.rule_at[j - 1]
    if at_i >= 0:
        a, b, kind = s.rules[at_i]
        if (a, b) == (i, j):
            return f"exact:{kind}"
        if j <= b:
            return "trim" if j == b else "inside"
        if a < i:
            return "crosses"
    if at_j >= 0 and s.rules[at_j][1] > j:
        return "crosses"
    return f"covers{min(s.rule_starts[j] - s.rule_starts[i], 2)}"


@dataclass(frozen=True)
class Sentence:
    """What the features of a sentence's runs are read from."""

    classes: list[str]
    content: list[bool]  # not a function word
    lengths: list[int]  # characters per word (a long head word is a specific one)
    rules: list[Rule]
    starts: frozenset[int]  # where a run may start: a content word, or where a chunker concept does
    ends: frozenset[int]  # where a run may end ("looking down": a particle ends a chunker concept)
    rule_at: list[int]  # per word: the index of the chunker concept over it, or -1
    rule_starts: list[int]  # per word index k: how many chunker concepts start before k
    lex: list[tuple[str, str]]  # per word: (frequency bucket, cluster) from :mod:`word_classes`
    prev_content: list[int]  # per word index k: the last content word before k, or -1
    next_content: list[int]  # per word index k: the first content word at or after k, or len(words)
    ccount: list[int]  # per word index k: how many content words come before k

    @classmethod
    def of(cls, words: list[str], rules: list[Rule]) -> Sentence:
        content = [not is_function_word(w) for w in words]
        rules = sorted(r for r in rules if r[0] < r[1] <= len(words))
        rules = [r for k, r in enumerate(rules) if not k or r[0] >= rules[k - 1][1]]  # disjoint
        rule_at, begun = [-1] * len(words), [0] * (len(words) + 1)
        for k, (a, b, _) in enumerate(rules):
            rule_at[a:b] = [k] * (b - a)
            begun[a + 1] += 1
        starts = {i for i, c in enumerate(content) if c} | {a for a, _, _ in rules}
        ends = {i + 1 for i, c in enumerate(content) if c} | {b for _, b, _ in rules}
        prev, nxt = [-1] * (len(words) + 1), [len(words)] * (len(words) + 1)
        for k in range(1, len(words) + 1):
            prev[k] = k - 1 if content[k - 1] else prev[k - 1]
        for k in range(len(words) - 1, -1, -1):
            nxt[k] = k if content[k] else nxt[k + 1]
        return cls([span_class(w) for w in words], content, [len(w) for w in words], rules,
                   frozenset(starts), frozenset(ends), rule_at, list(itertools.accumulate(begun)),
                   [lookup(w) for w in words], prev, nxt, [0, *itertools.accumulate(content)])


def features(s: Sentence, i: int, j: int, rel: str) -> list[str]:
    """Features of the run ``i:j`` of the sentence ``s`` (``rel``: how it stands to the chunker's concepts)."""
    classes = s.classes
    n, slen, nrules = s.ccount[j] - s.ccount[i], _bucket(s.ccount[-1]), min(len(s.rules), 5)
    first, last = classes[i], classes[j - 1]
    left, left2 = (classes[i - 1] if i else "BOS"), (classes[i - 2] if i > 1 else "BOS")
    right = classes[j] if j < len(classes) else "EOS"
    right2 = classes[j + 1] if j + 1 < len(classes) else "EOS"
    headlen = min(s.lengths[j - 1], 12)
    f = [f"nc{n}", f"nw{j - i}", f"first={first}", f"last={last}", f"left={left}", f"right={right}",
         f"first={first}|last={last}", f"left={left}|first={first}", f"last={last}|right={right}",
         f"rel={rel}", f"rel={rel}|nc{n}", f"slen={slen}|nc{n}", f"rel={rel}|slen={slen}",
         f"last={last}|nc{n}", f"rel={rel}|last={last}", f"left={left}|first={first}|last={last}",
         f"first={first}|last={last}|right={right}", f"left2={left2}|left={left}", f"right={right}|right2={right2}",
         f"rel={rel}|left={left}", f"rel={rel}|right={right}", f"left={left}|last={last}|right={right}",
         f"nrules={nrules}|rel={rel}", f"nrules={nrules}|nc{n}", f"headlen={headlen}",
         f"headlen={headlen}|last={last}"]
    inner = set(classes[i + 1:j - 1])
    f += [f"in={c}" for c in inner] + [f"in={c}|last={last}" for c in inner if not content_class(c)]
    if n == 1:
        f.append(f"single={first}|left={left}|right={right}")
    if not any(s.content[:i]):
        f.append(f"initial|nc{n}")
    return f + _lex_features(s, i, j, rel)


def _lex_features(s: Sentence, i: int, j: int, rel: str) -> list[str]:
    """How common the run's head is and the meaning groups of its head, first word and neighbours."""
    hf, hc = s.lex[j - 1]
    n, left = s.ccount[j] - s.ccount[i], (s.classes[i - 1] if i else "BOS")
    right, last = (s.classes[j] if j < len(s.classes) else "EOS"), s.classes[j - 1]
    k, m = s.prev_content[i], s.next_content[j]
    lc = s.lex[k][1] if k >= 0 else "BOS"
    rc = s.lex[m][1] if m < len(s.lex) else "EOS"
    nc = min(n, 3)
    f = [f"hf={hf}", f"hf={hf}|nc{nc}", f"hf={hf}|rel={rel}", f"hc={hc}", f"hc={hc}|nc{nc}", f"hc={hc}|rel={rel}",
         f"hc={hc}|left={left}", f"lc={lc}", f"rc={rc}", f"lc={lc}|hc={hc}", f"hc={hc}|rc={rc}",
         f"hc={hc}|right={right}", f"hc={hc}|last={last}", f"lc={lc}|left={left}", f"rc={rc}|right={right}",
         f"lc={lc}|rel={rel}", f"rc={rc}|rel={rel}", f"hf={hf}|left={left}", f"hf={hf}|right={right}"]
    if j - i > 1:
        fc = s.lex[i][1]
        f += [f"fc={fc}", f"fc={fc}|hc={hc}"]
    return f


def _frame(words: list[str], i: int, j: int) -> bool:
    """The run is a frame, no concept: "a group | of", "in the | background" (the chunker's rules)."""
    last = words[j - 1].lower()
    if j < len(words) and words[j].lower() == "of" and last in PARTITIVES:
        return True
    return j == i + 1 and singular(last) in GENERIC_NOUNS


def _modifier(s: Sentence, i: int, j: int, rel: str) -> bool:
    """The run is the modifier the chunker trimmed off the noun phrase right after it ("red" of "red lego block")."""
    if SPLIT_PHRASES or rel != "covers0" or j >= len(s.classes) or s.rule_at[j] < 0:
        return False
    a, _, kind = s.rules[s.rule_at[j]]
    return a == j and kind in ("subject", "setting", "style") and all(
        s.content[k] and s.classes[k] not in VERB_CLASSES for k in range(i, j))


def score(feats: list[str]) -> float:
    """The probability that a run is one of the paper's concepts."""
    z = WEIGHTS.get("bias", 0.0) + sum(filter(None, map(WEIGHTS.get, feats)))  # (an unseen feature: None)
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def select(words: list[str], rules: list[Rule]) -> list[tuple[int, int]] | None:
    """The runs to keep (word spans, in order), or None without fitted weights (keep the chunker's)."""
    if not WEIGHTS and RECORDER is None:
        return None
    sent = Sentence.of(words, rules)
    n = len(words)
    best = [0.0] * (n + 1)  # best[j]: greatest gain from the first j words
    back: list[tuple[int, int] | None] = [None] * (n + 1)
    seen = []
    for j in range(1, n + 1):
        best[j], back[j] = best[j - 1], None
        if j not in sent.ends:
            continue
        for i in range(j - 1, max(-1, j - 1 - MAX_WORDS), -1):
            if i not in sent.starts:
                continue
            rel = _relation(sent, i, j)
            named = rel.startswith("exact") and (sent.lex[j - 1][1] == "rare" or any(map(name_word, words[i:j])))
            if sent.ccount[j] - sent.ccount[i] > MAX_CONTENT and not named:
                continue  # too long to be one concept, unless it is a whole phrase holding a name
            if (rel == "inside" and not SPLIT_PHRASES) or _frame(words, i, j) or _modifier(sent, i, j, rel):
                continue  # "red panda" is never "red" + "panda"; "boat" may stand for "white boat"
            feats = features(sent, i, j, rel)
            if RECORDER is not None:
                seen.append((" ".join(words[i:j]), feats))
            gain = score(feats) - THRESHOLD if WEIGHTS else -1.0
            if named:
                gain = max(gain, UNKNOWN_GAIN)  # "hatsune miku", "harley quinn": a name is not ours to judge
            if gain > 0 and best[i] + gain > best[j]:
                best[j], back[j] = best[i] + gain, (i, j)
    if RECORDER is not None:
        RECORDER.append(seen)
    return _trace(back) if WEIGHTS else None


def _trace(back: list[tuple[int, int] | None]) -> list[tuple[int, int]]:
    out, j = [], len(back) - 1
    while j > 0:
        run = back[j]
        if run is None:
            j -= 1
        else:
            out.append(run)
            j = run[0]
    return out[::-1]
