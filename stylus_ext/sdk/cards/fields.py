"""Small cleaners for adapter-card fields: HTML descriptions to text, JSON values to typed ones,
de-duplicated tags, ``<lora:NAME>`` name checks, trigger words, training-caption tags.
"""

from __future__ import annotations

import html
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from typing import Any, ClassVar

from stylus_ext.sdk.cards.fileio import fits_int64, loads

MAX_DESCRIPTION = 4000
MAX_EXAMPLE_PROMPTS = 20
MAX_PROMPT_CHARS = 1500
MAX_TRIGGERS = 24
LONG_TRIGGER = 100  # a "trigger word" longer than this is a whole prompt
MAX_TAG_CHARS = 40
MAX_TRAINING_TAGS = 30

#: Tags that say nothing about an adapter (quality boilerplate, score tags).
NOISE_TAGS = {
    "masterpiece", "best quality", "high quality", "highest quality", "top quality", "good quality",
    "normal quality", "low quality", "worst quality", "amazing quality", "very aesthetic", "aesthetic",
    "highres", "absurdres", "ultra detailed", "ultra-detailed", "extremely detailed", "highly detailed",
    "detailed", "8k", "4k", "hdr", "uhd", "official art", "newest", "realistic", "photorealistic",
    "score_9", "score_8_up", "score_7_up", "score_6_up", "score_5_up", "score_4_up", "source_anime",
    "rating_safe", "1girl", "solo",
}

# ------------------------------------------------------------------------------------------
# Small cleaners
# ------------------------------------------------------------------------------------------


class _TextExtractor(HTMLParser):
    BLOCK: ClassVar[set[str]] = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table",
             "blockquote", "pre", "hr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_to_text(value: Any) -> str:
    """Plain text from Civitai's HTML descriptions (also fine for plain text)."""
    if not isinstance(value, str) or not value.strip():
        return ""
    if "<" in value:
        parser = _TextExtractor()
        try:
            parser.feed(value)
            parser.close()
            value = "".join(parser.parts)
        except Exception:  # noqa: BLE001 - html.parser is lenient; never fail on odd markup
            value = re.sub(r"<[^>]*>", " ", value)
    value = html.unescape(value)
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in value.splitlines()]
    text = "\n".join(line for line in lines if line)
    return text.strip()


def as_str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def as_int(value: Any) -> int | None:
    """An integer SQLite can store (64-bit), from an int, an integral float or ASCII digits; else None
    (``"²"``, ``10**30``, a 5,000-digit string)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        value = int(text) if text.isascii() and text.isdigit() and len(text) <= 20 else None
    elif isinstance(value, float):
        value = int(value) if math.isfinite(value) and value.is_integer() else None
    return value if isinstance(value, int) and fits_int64(value) else None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def unique(items: Iterable[str], limit: int | None = None) -> tuple[str, ...]:
    """Non-empty items, first occurrence wins, compared case-insensitively."""
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        key = item.strip().lower()
        if key and key not in seen:
            seen.add(key)
            out.append(item.strip())
            if limit is not None and len(out) >= limit:
                break
    return tuple(out)


def name_problem(name: str) -> str:
    """Why ``<lora:NAME>`` cannot reference ``name`` ("" when it can): empty, ``:`` ``=`` ``<`` ``>``,
    a line break or control character, or edge spaces. The one rule of the catalog and the rewriter."""
    if not name or not name.strip():
        return "empty name"
    bad = [c for c in ":=<>" if c in name]
    if bad:
        return f"name contains {' '.join(repr(c) for c in bad)}, which <lora:...> cannot reference"
    if any(not c.isprintable() for c in name):
        return "name contains a line break or control character, which <lora:...> cannot reference"
    if name != name.strip():
        return "name starts or ends with a space, which <lora:...> cannot reference"
    return ""


_LORA_TAG = re.compile(r"<[^<>]*>")
_WEIGHTED = re.compile(r"^[(\[{]+(.*?)(?::\s*-?[\d.]+)?[)\]}]+$")


_PAIRS = {"(": ")", "[": "]", "{": "}"}
_OPENER = {v: k for k, v in _PAIRS.items()}


def _clean_tag(part: str) -> str:
    """One tag without ``<lora:…>`` tags, attention weights or stray brackets; a danbooru tag's
    escaped qualifier stays whole (``casca \\(berserk\\)`` → ``casca (berserk)``)."""
    part = _LORA_TAG.sub(" ", part).strip()
    match = _WEIGHTED.match(part)
    if match and _balanced(match.group(1)):
        part = match.group(1)
    part = part.replace("\\(", "(").replace("\\)", ")").replace("\\[", "[").replace("\\]", "]")
    while True:  # outer quotes, whole-tag brackets "((x))", and unbalanced edge brackets "x)" / "(x"
        part = part.strip(" \t\n\"'")
        if len(part) >= 2 and part[0] in _PAIRS and part[-1] == _PAIRS[part[0]] and _balanced(part[1:-1]):
            part = part[1:-1]
        elif part and part[-1] in _OPENER and part.count(part[-1]) > part.count(_OPENER[part[-1]]):
            part = part[:-1]
        elif part and part[0] in _PAIRS and part.count(part[0]) > part.count(_PAIRS[part[0]]):
            part = part[1:]
        else:
            break
    return re.sub(r"\s+", " ", part)


def _balanced(text: str) -> bool:
    """Whether every bracket in ``text`` closes in order (``a (b) c`` yes, ``a) (b`` no)."""
    stack: list[str] = []
    for ch in text:
        if ch in _PAIRS:
            stack.append(_PAIRS[ch])
        elif ch in ")]}" and (not stack or stack.pop() != ch):
            return False
    return not stack


def clean_trigger_words(entries: Iterable[Any]) -> tuple[str, ...]:
    """Trigger words: split on commas, de-duplicated; whole prompts trimmed to their distinctive tags.

    An entry longer than ``LONG_TRIGGER`` characters is a whole example prompt pasted as a trigger:
    quality boilerplate and ``<lora:...>`` tags are dropped and only its first few tags are kept.
    """
    words: list[str] = []
    for entry in entries:
        if not isinstance(entry, str):
            continue
        long_entry = len(entry) > LONG_TRIGGER
        parts = [_clean_tag(p) for p in re.split(r"[,\n]|\bBREAK\b", entry)]
        parts = [p for p in parts if p and len(p) <= 80]
        if long_entry:
            parts = [p for p in parts if p.lower() not in NOISE_TAGS][:6]
        words.extend(parts)
    return unique(words, MAX_TRIGGERS)


def training_tags(metadata: Mapping[str, str], limit: int = MAX_TRAINING_TAGS) -> tuple[str, ...]:
    """Most frequent training-caption tags from ``ss_tag_frequency`` (sentences are dropped)."""
    raw = metadata.get("ss_tag_frequency")
    if not raw:
        return ()
    try:
        obj = loads(raw)
    except (ValueError, TypeError):
        return ()
    counts: Counter[str] = Counter()
    for dataset in as_dict(obj).values():
        for raw_tag, count in as_dict(dataset).items():
            tag = _clean_tag(str(raw_tag))
            number = as_int(count) or 0
            if not tag or len(tag) > MAX_TAG_CHARS or len(tag.split()) > 5 or number <= 0:
                continue  # caption sentences are not tags
            counts[tag.lower()] += number
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(tag for tag, _ in ranked[:limit])
