"""Prompt rewriting: ``<lora:NAME:WEIGHT>`` tags, trigger words, negative text, debias, emphasis.

Idempotent: rewriting an already rewritten prompt (e.g. pasted back from an image's metadata)
changes nothing — an adapter whose tag is already in the prompt (any weight, ``lora`` or ``lyco``)
is not tagged again, trigger words / negative text / the debias suffix already present are not
added again, and concepts already wrapped in ``(concept:1.1)`` stay as they are.

Names: the tag uses the name the WebUI resolves (``AdapterCard.name``: file stem or unique alias).
A name the WebUI cannot parse (:func:`stylus_ext.sdk.cards.fields.name_problem`: ``:``, ``=``,
``>``, ``<``, line breaks or control characters, edge spaces, empty; or a recorded ``name_problem``)
never gets a tag: :func:`rewrite` reports it instead.

Trigger words: on by default for an explicit activation text (the user's ``.json`` "activation
text", meant to be pasted); Civitai "trained words" are added only with ``add_trained_words`` and
only when short (≤ 4 words, no comma): long ones are whole-prompt "triggers", never added. Their
brackets are literal (a danbooru tag's qualifier, ``casca (berserk)``) and are written escaped
(``casca \\(berserk\\)``), so the WebUI does not read them as attention.

Card text is untrusted (files and Civitai cards are written by strangers): activation, negative and
trained-word text pass :func:`stylus_ext.sdk.prompt.sanitize` first — no extra-network tags
(``<lora:…>`` or any ``<…>``), no ``BREAK``/``AND``, no wildcards (``__x__``, ``{a|b}``), no line
breaks or control characters, no attention weight outside 0–2, at most :data:`MAX_CARD_TEXT`
characters. What was dropped is reported in :attr:`Rewritten.skipped` (the pipeline tells the user once).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from stylus_ext.sdk.cards.fields import name_problem
from stylus_ext.sdk.prompt import TAG_RE, sanitize

EMPHASIS = 1.1
MAX_CARD_TEXT = 300  # characters of activation / negative text added per adapter
_LITERAL_BRACKET = re.compile(r"(?<!\\)([()\[\]])")
_UNESCAPE = re.compile(r"\\([()\[\]])")


@dataclass(frozen=True)
class TagSpec:
    """One adapter to apply: its WebUI name, weight, and the texts it brings."""

    name: str
    weight: float
    activation_text: str = ""
    trained_words: tuple[str, ...] = ()
    negative_text: str = ""
    name_problem: str = ""


@dataclass
class Rewritten:
    prompt: str
    negative_prompt: str
    skipped: list[str] = field(default_factory=list)  # adapters not tagged / card text dropped, with why
    skipped_names: list[str] = field(default_factory=list)


def _card_texts(spec: TagSpec, add_triggers: bool, add_trained_words: bool,
                add_negative: bool) -> tuple[list[str], str, list[str]]:
    """(trigger texts, negative text, notes on what was dropped) of one adapter, sanitised."""
    words: list[str] = []
    notes: list[str] = []

    def clean(what: str, text: str, limit: int = MAX_CARD_TEXT) -> str:
        clean_text = sanitize(text, max_chars=limit)
        if clean_text.dropped:
            notes.append(f"{spec.name!r}: {what} {', '.join(clean_text.dropped)}; dropped from the prompt")
        return clean_text.text

    if add_triggers and spec.activation_text.strip():
        words.append(clean("activation text:", spec.activation_text))
    if add_triggers and add_trained_words:
        for w in spec.trained_words[:2]:
            if _short(w):  # a trained word's brackets are literal ("casca (berserk)"): escaped, not a weight
                words.append(clean("trained word:", _LITERAL_BRACKET.sub(r"\\\1", w), 60))
    negative = clean("negative text:", spec.negative_text) if add_negative and spec.negative_text.strip() else ""
    return [w for w in words if w], negative, notes


def existing_tag_names(prompt: str) -> set[str]:
    """Lower-case names of every ``<lora:...>``-style tag already in ``prompt``."""
    return {m.group(2).split(":")[0].strip().lower() for m in TAG_RE.finditer(prompt or "")}


def _contains(haystack: str, needle: str) -> bool:
    n = " ".join(needle.lower().split())
    if not n:
        return True
    h = " ".join(TAG_RE.sub(" ", haystack).lower().replace("_", " ").split())
    n = n.replace("_", " ")
    h, n = (_UNESCAPE.sub(r"\1", x) for x in (h, n))  # "casca \(berserk\)" is "casca (berserk)"
    return re.search(r"(?<![\w])" + re.escape(n) + r"(?![\w])", h) is not None


def _append(text: str, addition: str) -> str:
    text = text.rstrip()
    if not text:
        return addition
    return f"{text}, {addition}" if not text.endswith(",") else f"{text} {addition}"


def _fmt(weight: float) -> str:
    return f"{round(float(weight), 2):g}"


def _short(word: str) -> bool:
    return bool(word.strip()) and "," not in word and len(word.split()) <= 4 and len(word) <= 60


def rewrite(
    prompt: str,
    adapters: Sequence[TagSpec],
    *,
    negative_prompt: str = "",
    add_triggers: bool = True,
    add_trained_words: bool = False,
    add_negative: bool = True,
    debias: str = "",
    emphasize: Sequence[str] = (),
) -> Rewritten:
    """Append tags and texts for ``adapters`` to ``prompt`` (idempotent, see the module doc)."""
    out = prompt or ""
    neg = negative_prompt or ""
    skipped: list[str] = []
    skipped_names: list[str] = []
    present = existing_tag_names(out)
    # re-emphasis of concepts that got no adapter: wrap their first plain occurrence
    for concept in emphasize:
        c = " ".join(concept.split())
        if not c or re.search(r"\(\s*" + re.escape(c) + r"\s*:\s*[\d.]+\s*\)", out, re.I):
            continue
        m = re.search(r"(?<![\w(])" + re.escape(c) + r"(?![\w])", out, re.I)
        if m and not _inside_brackets(out, m.start()):
            out = f"{out[:m.start()]}({m.group(0)}:{_fmt(EMPHASIS)}){out[m.end():]}"
    texts: list[str] = []
    tags: list[str] = []
    for spec in adapters:
        problem = spec.name_problem or name_problem(spec.name)
        if problem:
            skipped.append(f"{spec.name!r}: {problem}; no tag emitted")
            skipped_names.append(spec.name)
            continue
        words, n, notes = _card_texts(spec, add_triggers, add_trained_words, add_negative)
        skipped.extend(notes)
        for w in words:
            if not _contains(out, w) and all(not _contains(t, w) for t in texts):
                texts.append(w)
        if spec.name.lower() not in present:
            tags.append(f"<lora:{spec.name}:{_fmt(spec.weight)}>")
            present.add(spec.name.lower())
        if n and not _contains(neg, n):
            neg = _append(neg, n)
    for t in texts:
        out = _append(out, t)
    if debias.strip() and not _contains(out, debias.strip()):
        out = _append(out, debias.strip())
    if tags:
        out = (out.rstrip() + " " if out.strip() else "") + " ".join(tags)
    return Rewritten(out, neg, skipped, skipped_names)


def _inside_brackets(text: str, pos: int) -> bool:
    depth = 0
    for ch in text[:pos]:
        if ch in "(<[":
            depth += 1
        elif ch in ")>]" and depth:
            depth -= 1
    return depth > 0
