"""What the BM25 index counts: search tokens (stopwords dropped, plurals folded), whole-tag units,
and the text of each card field (the prompt side reads prompts with the same :func:`tokens`)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from stylus_ext.sdk import prompt as grammar
from stylus_ext.sdk.prompt import STOPWORDS

MAX_FIELD_CHARS = 20_000  # per card and field: a pasted novel in a description counts once

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_NO_FOLD = ("ss", "us", "is", "ous", "ics", "ness", "sis")


def fold(word: str) -> str:
    """Cheap plural folding (``dogs`` → ``dog``, ``puppies`` → ``puppy``, ``boxes`` → ``box``)."""
    if len(word) <= 3 or not word.endswith("s") or word.endswith(_NO_FOLD) or word.isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "zes")):
        return word[:-2]
    return word[:-1]


_TERM_CACHE: dict[str, str | None] = {}


def _term(tok: str) -> str | None:
    """The index term of a raw lower-case token (None: a stopword or a lone letter); memoised."""
    term = _TERM_CACHE.get(tok, "")
    if term == "":
        term = None if tok in STOPWORDS or (len(tok) < 2 and not tok.isdigit()) else fold(tok)
        if len(_TERM_CACHE) < 1_000_000:
            _TERM_CACHE[tok] = term
    return term


def tokens(text: str) -> list[str]:
    """Search tokens of ``text`` (lower-case, stopwords dropped, plurals folded; repeats kept)."""
    return [t for t in map(_term, _TOKEN.findall((text or "").lower())) if t]


def term_counts(text: str) -> Counter[str]:
    """Term frequencies of ``text`` (as :func:`tokens`, counted)."""
    out: Counter[str] = Counter()
    for tok, n in Counter(_TOKEN.findall((text or "").lower())).items():
        term = _term(tok)
        if term:
            out[term] += n
    return out


UNIT_FIELDS = frozenset({"units"})


def units(text: str) -> list[str]:
    """The whole tags of ``text``: its comma-separated parts (syntax and quality tags removed), as tokens."""
    out = []
    for segment in grammar.split_segments(text):
        unit = " ".join(tokens(segment))
        if unit:
            out.append(unit)
    return out


def field_items(row: dict[str, Any], columns: Sequence[str]) -> list[str]:
    """The values of ``columns`` of a catalog row (JSON lists unpacked), each capped."""
    items: list[str] = []
    for col in columns:
        value = row.get(col)
        if not value:
            continue
        try:
            parsed = json.loads(value) if isinstance(value, str) and value[:1] == "[" else [value]
        except ValueError:
            parsed = [value]
        items.extend(str(v)[:MAX_FIELD_CHARS] for v in parsed)
    return items


def unit_counts(items: Iterable[str]) -> Counter[str]:
    """How many of ``items`` (example prompts, tags) hold each whole tag."""
    out: Counter[str] = Counter()
    for item in items:
        out.update(set(units(item)))
    return out


def field_text(row: dict[str, Any], columns: Sequence[str]) -> str:
    """The text of ``columns`` of a catalog row as one string (JSON lists joined by commas), capped."""
    parts = []
    for col in columns:
        value = row.get(col)
        if not value:
            continue
        if isinstance(value, str) and value[:1] == "[":
            try:
                value = " , ".join(str(v) for v in json.loads(value))
            except ValueError:
                pass
        parts.append(str(value)[:MAX_FIELD_CHARS])
    return " \n ".join(parts)
