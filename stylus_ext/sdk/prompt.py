"""The WebUI prompt grammar: the one reader of prompt syntax for every part of Stylus and its plugins.

What it understands (AUTOMATIC1111 / Forge syntax, plus the dynamic-prompts wildcards):

- extra-network tags of every kind, ``<kind:name[:w[:w2...]]>`` (``lora``, ``lyco``, ``lycoris``,
  ``hypernet``, ...): :func:`network_tags`; their names are never concepts or search words;
- attention ``(x)`` ×1.1, ``((x))`` ×1.21, ``(x:1.3)``, ``[x]`` ÷1.1; escaped ``\\(`` ``\\)`` are
  literal; alternation ``[a|b]`` and prompt editing ``[a:b:0.5]`` / ``[a:0.5]`` separate their parts;
  a weight left by an unbalanced bracket (``(castle:1.5, tree``) is syntax, not words;
- ``BREAK`` and ``AND`` (upper case) separate; wildcards ``__name__`` are placeholders (no words);
  ComfyUI's textual-inversion reference ``embedding:name`` (prompts pasted from ComfyUI; A1111 names
  an embedding by its bare file name, which stays words) names a file, not a concept, and separates;
  variants ``{a|b}`` separate their parts;
- quality words and phrases (``masterpiece``, ``best quality``, ``score_9``, ``8k uhd``, ...), the ONE
  list of the project: :data:`QUALITY_PHRASES`, :data:`QUALITY_WORDS`, :data:`QUALITY_MODIFIERS`,
  :func:`is_quality`. Decision: camera and rendering effects — ``depth of field``, ``bokeh``,
  ``film grain``, ``cinematic lighting``, ``realistic`` — are NOT quality: they change the picture and
  real adapters exist for each, so they stay concepts and search words.

Work is bounded: every pattern is linear-time (no nested quantifiers over overlapping classes) and
the syntax readers see at most :data:`MAX_PROMPT_CHARS` characters (the rest is ignored; a WebUI
prompt is rarely over 2 KB). :func:`sanitize` makes untrusted text (activation text, trained words,
card text) safe to append to a prompt.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = [
    "LORA_KINDS", "MAX_PROMPT_CHARS", "QUALITY_MODIFIERS", "QUALITY_PHRASES", "QUALITY_WORDS", "SEP",
    "STOPWORDS", "TAG_RE", "Blanked", "NetworkTag", "Sanitized", "Segment", "blank_syntax", "clean_prompt",
    "is_common_tag", "is_quality", "is_tag_style", "network_tags", "query_terms", "sanitize", "segments",
    "split_segments", "strip_syntax", "tokens",
]

#: The syntax readers see at most this many characters of a prompt (20 KB).
MAX_PROMPT_CHARS = 20_000
#: Tag kinds the WebUI's LoRA network handles.
LORA_KINDS = frozenset({"lora", "lyco", "lycoris", "locon", "loha", "lokr"})
#: What :func:`blank_syntax` puts where a separator was (tags, BREAK/AND, alternation bars).
SEP = "\n"

#: ``<kind:args>``: group 1 the kind, group 2 the ``:``-separated arguments (name first).
TAG_RE = re.compile(r"<\s*([A-Za-z_][\w\-]*)\s*:([^<>]*)>")
_ANGLE = re.compile(r"<[^<>]*>")
_WILDCARD = re.compile(r"__[A-Za-z0-9\-/*.]+(?:_[A-Za-z0-9\-/*.]+)*__")
_VARIANTS = re.compile(r"\{[^{}]*\}")
_COMFY_EMBEDDING = re.compile(r"(?i)(?<![\w:])embedding:[^\s,;()\[\]{}<>:|]+(?::[\d.]+)?")
_ESCAPED = re.compile(r"\\[()\[\]{}]")
_SEPARATOR_WORDS = re.compile(r"\b(?:BREAK|AND)\b")
_NUM = r"-?(?:\d+(?:\.\d*)?|\.\d+)"
_TRAILING_WEIGHT = re.compile(rf":\s*({_NUM})\s*$")
_WEIGHT_WINDOW = 40  # an explicit weight is looked for in the last 40 characters of a bracket
_DANGLING_WEIGHT = re.compile(rf"(?<=[^\s\d:])\s*:\s*{_NUM}\s*(?=[,;\n)\]]|$)")
_SEGMENT_SEP = re.compile(r"[,;\n|!?]|\.(?!\d)")
_TOKEN = re.compile(r"[^\W_]+(?:_[^\W_]+)*")


@dataclass(frozen=True)
class NetworkTag:
    """An extra-network tag of the prompt, kept verbatim (``weight``: its first number, if any)."""

    kind: str  # lower-case: lora | lyco | lycoris | hypernet | ...
    name: str
    weight: float | None
    text: str
    span: tuple[int, int]
    args: tuple[str, ...] = ()  # the arguments after the name, as written

    @property
    def is_lora(self) -> bool:
        return self.kind in LORA_KINDS


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def network_tags(prompt: str) -> list[NetworkTag]:
    """Every ``<kind:name[:w...]>`` tag of ``prompt`` (first :data:`MAX_PROMPT_CHARS`), in order."""
    out = []
    for m in TAG_RE.finditer(_cap(prompt)):
        name, *args = m.group(2).split(":")
        if name.strip():
            weight = _number(args[0]) if args else None
            out.append(NetworkTag(m.group(1).lower(), name.strip(), weight, m.group(0), m.span(),
                                  tuple(a.strip() for a in args)))
    return out


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _cap(prompt: str | None) -> str:
    return (prompt or "")[:MAX_PROMPT_CHARS]


# ------------------------------------------------------------------------------------------------
# Attention syntax → a same-length plain text (spans map back into the prompt)
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Blanked:
    """The prompt with its syntax blanked (same length), each character's attention, the tags."""

    text: str
    weights: tuple[float, ...]
    tags: tuple[NetworkTag, ...]


def _fill(chars: list[str], start: int, end: int, fill: str = " ") -> None:
    chars[start:end] = fill * (end - start)


def _close(chars: list[str], opener: str, start: int, end: int, seps: list[int]) -> float:
    """Blank one matched bracket pair's syntax; its attention factor."""
    lo = max(start + 1, end - _WEIGHT_WINDOW)
    m = _TRAILING_WEIGHT.search("".join(chars[lo:end]))
    factor = 1.1 if opener == "(" else 1 / 1.1
    if m:
        _fill(chars, lo + m.start(), end)
        factor = (_number(m.group(1)) or 0.0) if opener == "(" else 1.0  # "[a:b:0.5]": an editing step
    if opener == "[":
        for j in seps:
            if chars[j] in "|:":
                chars[j] = SEP  # [a|b] alternation, [a:b:0.5] editing: separate parts
                factor = 1.0
    chars[start] = chars[end] = " "
    return factor


def _brackets(chars: list[str]) -> list[float]:
    """Match ``()`` / ``[]`` with a stack (one pass), blank them; per-character attention."""
    stack: list[tuple[str, int, list[int]]] = []
    opens: dict[int, float] = {}  # first character inside a pair → its factor
    closes: set[int] = set()
    for i, ch in enumerate(chars):
        if ch in "([":
            stack.append((ch, i, []))
        elif ch in "|:" and stack and stack[-1][0] == "[":
            stack[-1][2].append(i)
        elif ch in ")]" and stack and stack[-1][0] == ("(" if ch == ")" else "["):
            opener, start, seps = stack.pop()
            factor = _close(chars, opener, start, i, seps)
            if i > start + 1:  # "()" holds nothing
                opens[start + 1] = factor
                closes.add(i)
    weights, products = [], [1.0]
    for i in range(len(chars)):
        if i in closes:
            products.pop()
        if i in opens:
            products.append(products[-1] * opens[i])
        weights.append(products[-1])
    return weights


def blank_syntax(prompt: str | None) -> Blanked:
    """Blank tags, wildcards, brackets, weights, BREAK/AND in the first :data:`MAX_PROMPT_CHARS`."""
    prompt = _cap(prompt)
    chars = list(prompt)
    tags = network_tags(prompt)
    for rx, fill in ((TAG_RE, SEP), (_ANGLE, " "), (_WILDCARD, " "), (_COMFY_EMBEDDING, SEP), (_ESCAPED, " "),
                     (_SEPARATOR_WORDS, SEP)):
        for m in list(rx.finditer("".join(chars))):
            _fill(chars, m.start(), m.end(), fill)
    weights = _brackets(chars)
    for m in list(_DANGLING_WEIGHT.finditer("".join(chars))):
        _fill(chars, m.start(), m.end())
    text = "".join(chars).translate(_BRACKETS)
    return Blanked(text, tuple(weights), tuple(tags))


_BRACKETS = str.maketrans({c: " " for c in "()[]{}<>\\"})


@dataclass(frozen=True)
class Segment:
    """A comma/BREAK/sentence-separated part of the blanked prompt: its text and span."""

    text: str
    span: tuple[int, int]


def segments(prompt: str | None, *, blanked: Blanked | None = None) -> list[Segment]:
    """The prompt's segments, split at ``, ; | ! ?``, sentence ends, newlines, tags and BREAK/AND."""
    text = (blanked or blank_syntax(prompt)).text
    out, start = [], 0
    for m in [*_SEGMENT_SEP.finditer(text), None]:
        end = m.start() if m else len(text)
        piece = text[start:end]
        stripped = piece.strip()
        if stripped:
            lead = start + len(piece) - len(piece.lstrip())
            out.append(Segment(" ".join(stripped.split()), (lead, lead + len(stripped))))
        start = m.end() if m else end
    return out


def strip_syntax(prompt: str | None) -> str:
    """What the retriever reads: the prompt without tags, weights, brackets, wildcards, BREAK/AND."""
    return ", ".join(s.text for s in segments(prompt))


def split_segments(prompt: str | None) -> list[str]:
    """The prompt's segments without the quality ones (masterpiece, best quality, ...)."""
    return [s.text.strip(" .:!-") for s in segments(prompt) if s.text.strip(" .:!-") and not is_quality(s.text)]


def clean_prompt(prompt: str | None) -> str:
    """The prompt as the retriever embeds it: syntax and quality segments removed."""
    return ", ".join(split_segments(prompt))


_TAG_MARKERS = re.compile(r"\b\d+(?:girl|boy)s?\b", re.I)
#: Pony's quality boilerplate: a tag list's mark unless a segment is a sentence ("score_9, score_8_up,
#: a watercolor painting of a fox in a snowy forest" is a caption with its model's quality words).
_BOILERPLATE_MARKERS = re.compile(r"\b(?:score_\d|source_[a-z]+)\b", re.I)


def is_tag_style(prompt: str | None, *, blanked: Blanked | None = None) -> bool:
    """True for community tag prompts (``1girl, long hair, beach``), False for sentences/captions.

    Tag style: danbooru markers (``1girl``; Pony's ``score_9`` and ``source_anime`` when no segment
    is longer than 6 words), or three or more segments that are short (≤ 3 words on average, none
    longer than 6).
    """
    parts = segments(prompt, blanked=blanked)
    if any(_TAG_MARKERS.search(s.text) for s in parts):
        return True
    lengths = [len(s.text.split()) for s in parts]
    if lengths and max(lengths) <= 6 and any(_BOILERPLATE_MARKERS.search(s.text) for s in parts):
        return True
    if len(parts) < 3:
        return False
    return sum(lengths) / len(lengths) <= 3.0 and max(lengths) <= 6


def tokens(text: str | None) -> list[str]:
    """Lower-case word tokens (``hatsune_miku`` stays one token; punctuation dropped)."""
    return _TOKEN.findall(_cap(text).lower())


STOPWORDS = _wordset("""
a an the and or but if of on in at to for with without from by as is are was were be been being this
that these those it its it's into onto over under near up down out off than then there here some any
each every all both few more most other such no nor not only own same so too very can will just should
now his her their our your my me him them they she he we you i who whom which what when where why how
while during before after above below between through again further once has have had having do does did
doing would could am one two three four five six seven eight nine ten several many lot lots
""")


def query_terms(prompt: str | None, limit: int = 40) -> list[str]:
    """Search words of the prompt: no syntax, quality or stop words; ``a_b`` also gives a and b."""
    terms: list[str] = []
    for segment in split_segments(prompt):
        for token in tokens(segment):
            for part in (token, *token.split("_")) if "_" in token else (token,):
                if (len(part) >= 2 or part.isdigit()) and part not in STOPWORDS and part not in QUALITY_WORDS:
                    terms.append(part)
    return list(dict.fromkeys(terms))[:limit]


# ------------------------------------------------------------------------------------------------
# Quality words: the one list
# ------------------------------------------------------------------------------------------------

#: Boilerplate tokens, safe to drop from any search (never the topic of a prompt or an adapter).
QUALITY_WORDS = _wordset("""
masterpiece masterpieces highres absurdres hires hd fhd uhd 4k 8k 16k raw score_9 score_8 score_7
score_6 score_8_up score_7_up score_6_up score_5_up score_4_up lowres newest aesthetic quality best
detailed intricate ultra extremely highly resolution wallpaper unity cg artstation trending professional
""")
#: Words that are quality only when a whole tag is made of quality words ("high quality", "perfect").
QUALITY_MODIFIERS = _wordset("""
high higher highest low top good great nice fine normal amazing beautiful stunning perfect worst absurd
res detail details definition incredibly insanely hyper hyperdetailed very official award awarded
winning sharp focus jpeg artifacts tier
""")
#: Whole quality tags (spaces, not underscores).
QUALITY_PHRASES = frozenset("""
masterpiece|best quality|high quality|highest quality|top quality|good quality|normal quality|amazing quality
great quality|very aesthetic|aesthetic|highres|high res|absurdres|incredibly absurdres|hires|hd|fhd|uhd|4k|8k
16k|8k uhd|4k uhd|ultra hd|raw photo|ultra detailed|ultra-detailed|extremely detailed|highly detailed
very detailed|intricate details|intricate detail|detailed|ultra high res|ultra-high res|best aesthetic
official art|unity 8k wallpaper|extremely detailed cg|extremely detailed cg unity 8k wallpaper|8k wallpaper
sharp focus|award winning|award-winning|professional|trending on artstation|high resolution|newest|lowres
worst quality|low quality|bad quality|masterpiece quality|best quality masterpiece|high detail|hyperdetailed
4k resolution|8k resolution|jpeg artifacts|amazing|stunning|perfect|beautiful|hdr|uhd 8k|hd 4k
very awa|worst aesthetic|bad aesthetic|displeasing|very displeasing|normal aesthetic
""".replace("\n", "|").split("|"))
_QUALITY_GLUE = frozenset({"of", "on", "in", "cg", "and"})
#: Pony's "score_9" / "source_anime" / "rating_safe", Animagine's "rating:general" / "year 2024".
_RATINGS = "safe|general|sensitive|questionable|explicit|nsfw|sfw"
#: ... and Animagine's / Illustrious's bare rating tags, as a whole tag ("1girl, solo, sensitive").
_QUALITY_PREFIX = re.compile(rf"^(?:score \d|source [a-z]|(?:rating ?[:=]? ?)?(?:{_RATINGS})$|year \d{{4}}$)")
_RES = re.compile(r"^\d+(?:k|p)$")


def _normal(text: str) -> str:
    return " ".join(text.lower().replace("_", " ").split())


def is_quality(text: str | None) -> bool:
    """True for a whole quality tag (``best quality``, ``(masterpiece:1.2)`` after blanking, ``score_9``)."""
    t = _normal((text or "")[:200])
    if not t:
        return False
    if t in QUALITY_PHRASES or _QUALITY_PREFIX.match(t):
        return True
    words = t.replace("-", " ").split()
    return not all(w in _QUALITY_GLUE for w in words) and all(
        w in QUALITY_WORDS or w in QUALITY_MODIFIERS or w in _QUALITY_GLUE or w.isdigit() or _RES.match(w)
        for w in words)


#: Generic community tags on most prompts: topical, but no evidence of which adapter a prompt is for.
COMMON_TAGS = frozenset("""
solo|1other|simple background|white background|looking at viewer|realistic|photorealistic|upper body
full body|cowboy shot|portrait
""".replace("\n", "|").split("|"))
_COUNT_TAG = re.compile(r"^\d+\s*(?:girls?|boys?|others?)$")


def is_common_tag(text: str | None) -> bool:
    """True for generic tags (``1girl``, ``solo``, ``looking at viewer``): see :data:`COMMON_TAGS`."""
    t = _normal((text or "")[:200])
    return t in COMMON_TAGS or bool(_COUNT_TAG.match(t))


# ------------------------------------------------------------------------------------------------
# Untrusted text
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sanitized:
    """Text safe to add to a prompt, and what was taken out (short descriptions, for the user)."""

    text: str
    dropped: tuple[str, ...]


#: Card text beyond this is not even looked at (bounded regex work).
_SCAN_CHARS = 4000
_LINES = re.compile(r"[\r\n\t\v\f\u2028\u2029\x85]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_BOUNDED_WEIGHT = re.compile(r"\(([^():]{0,200}):\s*(-?\d{1,6}(?:\.\d{0,6})?)\s*\)")
_COMMAS = re.compile(r"\s*(?:,\s*)+")


def _drop(pattern: re.Pattern[str], text: str, what: str, dropped: list[str], *, show: bool = True,
          by: str = " ") -> str:
    found = pattern.findall(text)
    if found:
        dropped.append(f"{what} {found[0][:40]!r}" if show else what)
        text = pattern.sub(by, text)
    return text


def _weight_in_range(match: re.Match[str]) -> str:
    return match.group(0) if 0.0 <= float(match.group(2)) <= 2.0 else f"({match.group(1).strip()})"


def sanitize(text: str | None, *, max_chars: int = 300) -> Sanitized:
    """Untrusted text (activation, negative and trained-word text of a card) safe to add to a prompt.

    Drops extra-network tags (any ``<…>``, and stray ``<``/``>`` so two pieces cannot join into
    one), ``BREAK``/``AND`` (a comma keeps the pieces apart), wildcards (``__x__``, ``{a|b}``), line
    breaks, control characters, lone surrogates and attention weights outside 0–2 (``(worst
    quality:-9)`` → ``(worst quality)``); looks at the first 4,000 characters only and cuts the rest
    to ``max_chars`` at a comma or space. ``dropped`` names each kind once, for the user.
    """
    raw = str(text or "")
    dropped: list[str] = []
    work = raw[:_SCAN_CHARS]
    work = _drop(_LINES, work, "line breaks", dropped, show=False, by=", ")
    work = _drop(_CONTROL, work, "control characters", dropped, show=False, by="")
    work = _drop(_ANGLE, work, "extra-network tag", dropped)
    if "<" in work or ">" in work:
        dropped.append("stray '<'/'>'")
        work = work.replace("<", " ").replace(">", " ")
    work = _drop(_SEPARATOR_WORDS, work, "BREAK/AND", dropped, show=False, by=", ")
    work = _drop(_WILDCARD, work, "wildcard", dropped)
    work = _drop(_VARIANTS, work, "variants", dropped)
    weighted = _BOUNDED_WEIGHT.sub(_weight_in_range, work)
    if weighted != work:
        dropped.append("attention weights outside 0-2")
    work = _COMMAS.sub(", ", " ".join(weighted.split())).strip(" ,")
    if len(work) > max_chars or len(raw) > _SCAN_CHARS:
        cut = work[:max_chars]
        stop = max(cut.rfind(","), cut.rfind(" "))
        work = (cut[:stop] if stop > max_chars // 2 else cut).strip(" ,")
        dropped.append(f"cut to {len(work)} of {len(raw)} characters")
    return Sanitized(work, tuple(dropped))
