"""The recommended weight of an adapter, from its card: the card's preferred weight > a "weight 0.6"
phrase in the description > the median of ``<lora:NAME:W>`` values for this adapter in its example
prompts > 0.8, clamped to 0.1–1.5.

Helper of ``offline_refiner.py`` (the leading ``_`` keeps the plugin loader from loading it as a
plugin); also its text normalisers :func:`norm` and :func:`clean_html`.
"""

from __future__ import annotations

import difflib
import html
import re
import statistics

from stylus_ext import sdk

grammar = sdk.prompt  # the one prompt grammar

DEFAULT_WEIGHT = 0.8
WEIGHT_RANGE = (0.1, 1.5)

_WEIGHT_PHRASE = re.compile(
    r"(?:weight|strength)s?\b[^0-9\-.\n]{0,25}?(-?\d*\.?\d+)(?:\s*(?:-|–|~|to)\s*(-?\d*\.?\d+))?", re.I)
_WEIGHT_BEFORE = re.compile(r"(-?\d*\.\d+)(?:\s*(?:-|–|~|to)\s*(-?\d*\.?\d+))?\s*(?:weight|strength)\b", re.I)


def norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def clean_html(text: str) -> str:
    text = re.sub(r"<\s*(?:br|/p|/h\d|/li|/div)\s*/?>", ". ", text or "", flags=re.I)
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    return re.sub(r"\s+", " ", text).strip()


def _clamp(value: float) -> float:
    low, high = WEIGHT_RANGE
    return round(min(high, max(low, value)), 2)


def _number(raw: str | None) -> float | None:
    try:
        return float(raw) if raw not in (None, "") else None
    except ValueError:
        return None


def weight_from_text(text: str) -> float | None:
    """A "weight 0.6" / "strength 0.5-0.8" / "0.7 weight" phrase (a range gives its middle)."""
    text = clean_html(text)
    for pattern in (_WEIGHT_PHRASE, _WEIGHT_BEFORE):
        for match in pattern.finditer(text):
            low, high = _number(match.group(1)), _number(match.group(2))
            if low is None or not -3 <= low <= 3:
                continue
            value = (low + high) / 2 if high is not None and -3 <= high <= 3 else low
            if value > 0:
                return value
    return None


def _names_of(card: sdk.AdapterCard) -> set[str]:
    return {n for n in (norm(card.name), norm(card.alias or ""), norm(card.title),
                        norm((card.path or "").replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0])) if n}


def weight_from_examples(card: sdk.AdapterCard) -> float | None:
    """Median ``<lora:NAME:W>`` weight over example prompts that refer to this adapter."""
    names = _names_of(card)
    values: list[float] = []
    for prompt in [*card.example_prompts, card.description or ""]:
        tags = [(t.name, t.weight) for t in grammar.network_tags(prompt) if t.is_lora]
        for tag_name, value in tags:
            if value is None:
                continue
            key = norm(tag_name)
            close = key in names or any(
                (len(key) >= 4 and len(n) >= 4 and (key in n or n in key))
                or difflib.SequenceMatcher(None, key, n).ratio() >= 0.8 for n in names)
            if close or (len(tags) == 1 and prompt in card.example_prompts):
                values.append(value)
    values = [v for v in values if 0 < v <= 3]
    return statistics.median(values) if values else None


def recommended_weight(card: sdk.AdapterCard) -> float:
    """Card's preferred weight > description phrase > example prompts > 0.8, clamped to a sane range."""
    if card.preferred_weight is not None and card.preferred_weight > 0:
        return _clamp(card.preferred_weight)
    for value in (weight_from_text(card.description or ""), weight_from_examples(card)):
        if value is not None:
            return _clamp(value)
    return DEFAULT_WEIGHT
