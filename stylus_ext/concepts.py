"""Prompt → fine-grained concepts (subjects, settings, styles, attributes, quality tags).

A small, deterministic chunker in the spirit of the paper's LLM composer (which splits a prompt into
"fine-grained, orthogonal keyword topics"): no NLP model, well under a millisecond per prompt.

It understands the WebUI prompt syntax:

- ``<lora:NAME:W>`` / ``<lyco:...>`` / ``<hypernet:...>`` extra-network tags are kept verbatim in
  :attr:`ParsedPrompt.tags` and their names land in :attr:`ParsedPrompt.excluded_names` (they are
  never selected or emitted again);
- attention ``(word:1.2)``, ``((word))``, ``[word]``; alternation ``[a|b]``; prompt editing
  ``[a:b:0.5]`` / ``[a:0.5]``; ``BREAK`` and ``AND`` separators; escaped ``\\(`` ``\\)``.

Kinds: ``subject`` (things, people, animals), ``setting`` (places, backgrounds, times of day),
``style`` ("in the style of X", "X style", "looks like X", "by Artist", medium words such as
watercolor / pixel art / photo / oil painting), ``attribute`` (a lone adjective), ``action`` (a lone
verb), and ``quality`` (masterpiece, best quality, 8k, ...: kept apart, they never pull adapters).

Agreement with the paper's composer (``shared/data/stylus_selections.jsonl``, 11,632 prompts) is
measured by ``benchmarks/bench_concepts.py``: the share of reference concepts that equal, or are
contained in, one of ours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "Concept", "NetworkTag", "ParsedPrompt", "content_words", "head_noun", "parse_prompt", "singular",
    "split_concepts",
]


@dataclass(frozen=True)
class Concept:
    """One concept of a prompt: its text (lower-case, syntax removed), kind and span in the prompt."""

    text: str
    kind: str  # subject | setting | style | attribute | action | quality
    span: tuple[int, int]
    weight: float = 1.0
    head: str = ""

    @property
    def pulls_adapters(self) -> bool:
        return self.kind != "quality"


@dataclass(frozen=True)
class NetworkTag:
    """An extra-network tag already in the prompt (kept verbatim)."""

    kind: str  # lora | lyco | hypernet | ...
    name: str
    weight: float | None
    text: str
    span: tuple[int, int]


@dataclass(frozen=True)
class ParsedPrompt:
    prompt: str
    concepts: tuple[Concept, ...]
    tags: tuple[NetworkTag, ...]

    @property
    def excluded_names(self) -> tuple[str, ...]:
        """Adapter names already tagged in the prompt (lower-case): never selected again."""
        return tuple(sorted({t.name.lower() for t in self.tags}))

    @property
    def topical(self) -> tuple[Concept, ...]:
        """Concepts that may pull adapters (everything but quality tags)."""
        return tuple(c for c in self.concepts if c.pulls_adapters)


# ------------------------------------------------------------------------------------------------
# Word lists (small, hand-written; no NLP dependency)
# ------------------------------------------------------------------------------------------------

def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


TAG_RE = re.compile(r"<(lora|lyco|hypernet|hypernetwork|embedding|ti|lyco_lora|locon):([^<>]*)>", re.I)
WORD_RE = re.compile(r"[0-9A-Za-z\u00C0-\u024F\u0370-\u03FF\u0400-\u04FF\u3040-\u30FF\u4E00-\u9FFF]"
                     r"(?:[\w'’.\-]*[0-9A-Za-z\u00C0-\u024F\u0370-\u03FF\u0400-\u04FF\u3040-\u30FF\u4E00-\u9FFF])?")

PREPOSITIONS = _wordset("""
in on at near with under over above below behind beside besides next to inside into onto through across
along around by from of for against between toward towards during without among amongst beneath outside
past atop upon via within underneath alongside amid amidst like than off out up down
""")
SETTING_PREPS = _wordset("in on at inside under near beside behind atop within underneath amid amidst "
                          "among across along through over above below beneath outside against")
CONJUNCTIONS = _wordset("and or but while as that which who whom whose where when then so nor yet if "
                         "because though although")
DETERMINERS = _wordset("""
a an the some any its his her their my our your this these those there here each every another other
it he she they we i you them him one's lots lot plenty bunch couple pair
""")
AUX = _wordset("""
is are was were be been being am has have had having do does did can could will would should may might
must shall 's 're getting get gets got appears appear seems seem looks look
""")
FILLER = _wordset("very just also really quite together all both very much many several few various "
                   "different other same own such about")
QUALITY_WORDS = _wordset("""
masterpiece masterpieces best quality high highres hires absurdres absurd res 4k 8k 16k uhd hd hdr fhd
ultra detailed highly extremely intricate sharp focus professional award winning trending artstation
resolution amazing beautiful stunning aesthetic aesthetics score_9 score_8 score_7 score_6 score_5 score_4
score_8_up score_7_up score_6_up score_5_up score_4_up source_anime source_realistic source_cartoon rating_safe
newest normal worst low lowres jpeg artifacts detail details definition incredibly insanely hyper
hyperdetailed quality_tags top tier perfect good great nice fine official art wallpaper unity cg
""")
# multi-word quality phrases (matched on a whole chunk after weight syntax is removed)
QUALITY_PHRASES = (
    "best quality", "high quality", "highest quality", "masterpiece", "ultra detailed", "highly detailed",
    "extremely detailed", "intricate details", "intricate detail", "sharp focus", "trending on artstation",
    "award winning", "8k uhd", "4k", "8k", "hdr", "uhd", "absurdres", "highres", "detailed",
    "professional", "very aesthetic", "amazing quality", "high resolution", "official art",
    "extremely detailed cg unity 8k wallpaper", "depth of field", "good quality", "normal quality",
)
MEDIUM_PHRASES = (
    "oil painting", "acrylic painting", "watercolor painting", "watercolour painting", "watercolor",
    "watercolour", "pixel art", "pixelart", "8-bit", "16-bit", "photo", "photograph", "photography",
    "photorealistic", "photorealism", "realistic", "hyperrealistic", "polaroid", "film photo", "film grain",
    "analog photo", "35mm", "dslr", "sketch", "pencil sketch", "pencil drawing", "charcoal drawing",
    "charcoal", "ink drawing", "ink", "line art", "lineart", "drawing", "painting", "illustration",
    "digital art", "digital painting", "concept art", "anime", "manga", "cartoon", "comic", "comic book",
    "3d render", "3d", "render", "cgi", "octane render", "unreal engine", "low poly", "isometric",
    "claymation", "clay", "vector art", "flat illustration", "ukiyo-e", "ukiyoe", "impressionism",
    "impressionist", "expressionism", "cubism", "surrealism", "surrealist", "art nouveau", "art deco",
    "pop art", "vaporwave", "synthwave", "cyberpunk", "steampunk", "dieselpunk", "chibi", "origami",
    "papercut", "paper cut", "stained glass", "mosaic", "graffiti", "cinematic", "studio ghibli",
    "ghibli", "pastel", "minimalist", "minimalism", "gothic", "noir", "vintage", "retro", "sticker",
    "tarot card", "woodcut", "linocut", "embroidery", "chinese ink", "sumi-e", "gouache", "fresco",
    "mural", "tapestry", "blueprint", "cel shading", "cel shaded", "toon", "doodle", "crayon",
    "storybook", "children's book illustration", "poster", "infographic", "baroque", "renaissance",
)
MEDIUM_SET = frozenset(MEDIUM_PHRASES)
STYLE_MARKERS = ("style", "aesthetic", "art style", "artstyle", "inspired")
PLACE_WORDS = _wordset("""
background backdrop scenery scene landscape city town village street streets road roads alley forest woods
jungle beach ocean sea lake river pond waterfall mountain mountains hill hills valley desert field fields
meadow garden park farm sky skies clouds space galaxy universe night sunset sunrise dawn dusk room bedroom
kitchen bathroom office classroom library church temple castle palace house home building buildings
interior exterior indoors outdoors cave island snow rain fog storm underwater shore coast cliff canyon
station airport harbor harbour port market shop store restaurant cafe bar stadium court arena track tracks
highway bridge tunnel ruins dungeon tower rooftop window stage studio lab laboratory hospital school
yard backyard lawn grass sand water ice glacier swamp marsh savanna prairie countryside downtown
skyline cityscape alleyway plaza square subway train-station spaceship cockpit throne hall corridor
""")
TIME_WORDS = _wordset("night sunset sunrise dawn dusk evening morning noon twilight midnight winter summer "
                       "autumn fall spring")
ADJECTIVES = _wordset("""
red orange yellow green blue purple violet pink brown black white gray grey silver golden gold beige teal
cyan magenta dark light bright pale colorful colourful old young new ancient modern small large big huge
tiny giant little tall short long wide narrow empty full wet dry hot cold warm cute happy sad angry
beautiful pretty ugly fluffy furry shiny rusty wooden metal metallic glass stone plastic wooden broken
clean dirty busy crowded quiet calm foggy snowy rainy sunny cloudy misty glowing neon futuristic
medieval fantasy magical mysterious scary creepy spooky elegant fancy simple open closed
""")
# irregular plurals for head-noun matching
IRREGULAR = {"men": "man", "women": "woman", "children": "child", "people": "person", "mice": "mouse",
             "geese": "goose", "teeth": "tooth", "feet": "foot", "wolves": "wolf", "knives": "knife",
             "leaves": "leaf", "shelves": "shelf", "loaves": "loaf", "elves": "elf", "dwarves": "dwarf",
             "sheep": "sheep", "fish": "fish", "deer": "deer", "cacti": "cactus", "fungi": "fungus"}
_NO_SINGULAR = ("ss", "us", "is", "ous", "ics", "ness", "sis", "ies_")


def singular(word: str) -> str:
    """Cheap English singular for matching (``dogs`` → ``dog``, ``puppies`` → ``puppy``)."""
    w = word.lower()
    if w in IRREGULAR:
        return IRREGULAR[w]
    if len(w) <= 3 or not w.endswith("s") or w.endswith(_NO_SINGULAR):
        return w
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("ches", "shes", "xes", "sses", "zes")):
        return w[:-2]
    if w.endswith("oes") and len(w) > 4:
        return w[:-2]
    return w[:-1]


def content_words(text: str) -> list[str]:
    """Lower-case, singular content words of ``text`` (function words and quality words removed)."""
    out = []
    for m in WORD_RE.finditer(text.lower()):
        w = m.group(0).strip(".'’-")
        if not w or w in DETERMINERS or w in PREPOSITIONS or w in CONJUNCTIONS or w in AUX or w in FILLER:
            continue
        out.append(singular(w))
    return out


def head_noun(text: str) -> str:
    """The last content word (English noun phrases end with their head)."""
    words = content_words(text)
    nouns = [w for w in words if w not in ADJECTIVES and not w.isdigit() and not _is_verb(w)]
    return nouns[-1] if nouns else (words[-1] if words else "")


# ------------------------------------------------------------------------------------------------
# Syntax removal: produce a same-length "clean" string so spans map back to the prompt
# ------------------------------------------------------------------------------------------------

_NUM = r"-?\d+(?:\.\d+)?"
_EXPLICIT_WEIGHT = re.compile(rf":\s*({_NUM})\s*(?=\))")
_EDIT_STEP = re.compile(rf":\s*{_NUM}\s*(?=\])")
_DANGLING_WEIGHT = re.compile(rf"(?<=[^\s\d:])\s*:\s*{_NUM}\s*(?=[,;\n)\]]|$)")
_SEPARATOR_WORDS = re.compile(r"\b(BREAK|AND)\b")
SEP = "\n"


def _blank(chars: list[str], start: int, end: int, fill: str = " ") -> None:
    for i in range(start, end):
        chars[i] = fill


def _clean(prompt: str) -> tuple[str, list[float], list[NetworkTag]]:
    """Same-length copy of ``prompt`` with syntax blanked, and an attention weight per character."""
    chars = list(prompt)
    tags: list[NetworkTag] = []
    for m in TAG_RE.finditer(prompt):
        parts = m.group(2).split(":")
        name = parts[0].strip()
        weight = None
        if len(parts) > 1:
            try:
                weight = float(parts[1])
            except ValueError:
                weight = None
        if name:
            tags.append(NetworkTag(m.group(1).lower(), name, weight, m.group(0), m.span()))
        _blank(chars, m.start(), m.end(), SEP)
    text = "".join(chars)
    # escaped brackets are literal characters: blank them (they carry no attention)
    for m in re.finditer(r"\\[()\[\]]", text):
        _blank(chars, m.start(), m.end())
    text = "".join(chars)
    for m in _SEPARATOR_WORDS.finditer(text):
        _blank(chars, m.start(), m.end(), SEP)
    weights = [1.0] * len(chars)
    # explicit weights and attention brackets, innermost first
    stack: list[tuple[str, int]] = []
    text = "".join(chars)
    for i, ch in enumerate(text):
        if ch in "([":
            stack.append((ch, i))
        elif ch in ")]" and stack:
            opener, start = stack.pop()
            if (opener, ch) not in (("(", ")"), ("[", "]")):
                continue
            inner = text[start + 1:i]
            factor = 1.1 if opener == "(" else 1 / 1.1
            if opener == "(":
                m = re.search(rf":\s*({_NUM})\s*$", inner)
                if m:
                    factor = float(m.group(1))
                    _blank(chars, start + 1 + m.start(), i)
            else:
                m = re.search(rf":\s*{_NUM}\s*$", inner)
                if m:  # prompt editing step
                    _blank(chars, start + 1 + m.start(), i)
                    factor = 1.0
                for j in range(start + 1, i):
                    if chars[j] in "|:":
                        chars[j] = SEP  # [a|b] alternation, [a:b:0.5] editing → separate concepts
                        factor = 1.0
            for j in range(start + 1, i):
                weights[j] *= factor
            chars[start] = " "
            chars[i] = " "
    # a weight left behind by an unbalanced bracket ("(castle:1.5"): not part of the concept
    # (a digit before the colon keeps ratios and times such as "16:9" as written)
    for m in _DANGLING_WEIGHT.finditer("".join(chars)):
        _blank(chars, m.start(), m.end())
    for i, ch in enumerate(chars):
        if ch in "()[]{}":
            chars[i] = " "
    return "".join(chars), weights, tags


# ------------------------------------------------------------------------------------------------
# Chunking
# ------------------------------------------------------------------------------------------------

_SEGMENT_RE = re.compile(r"[^,;\n.!?|]+")
_STYLE_OF = re.compile(r"\b(?:in\s+(?:the\s+|a\s+)?)?(?:art\s+)?style\s+of\s+(.+)$", re.I)
_LOOKS_LIKE = re.compile(r"\b(?:that\s+)?(?:looks?|looking)\s+like\s+(?:an?\s+|the\s+)?(.+)$", re.I)
_INSPIRED = re.compile(r"\binspired\s+by\s+(.+)$", re.I)
_X_STYLE = re.compile(r"((?:[\w'’\-]+\s+){0,3}?[\w'’\-]+)[\s\-]+(?:art\s*style|style|aesthetic)\b", re.I)
_BY_ARTIST = re.compile(r"\b(?:painting|drawing|art|artwork|illustration|photo|photograph|sketch|print|works?)?"
                        r"\s*\bby\s+((?:(?:[A-Z][\w'’\-]*\.?|van|von|de|da|di|del|der|la|le)\s*){1,5})$")


def _words(seg: str, base: int) -> list[tuple[str, int, int]]:
    return [(m.group(0), base + m.start(), base + m.end()) for m in WORD_RE.finditer(seg)]


def _is_quality(text: str) -> bool:
    t = " ".join(text.lower().replace("_", " ").split())
    if not t:
        return False
    if t in QUALITY_PHRASES or t.startswith(("score ", "source ", "rating ")):
        return True
    words = t.replace("-", " ").split()
    return all(w in QUALITY_WORDS or w.isdigit() or re.fullmatch(r"\d+k", w) or w in ("of", "on", "in", "cg")
               for w in words)


def _style_kind(text: str) -> bool:
    t = text.lower()
    return t in MEDIUM_SET or any(t.endswith(" " + m) or t.startswith(m + " ") for m in ("painting", "art", "photo"))


class _Builder:
    def __init__(self, prompt: str, clean: str, weights: list[float]) -> None:
        self.prompt = prompt
        self.clean = clean
        self.weights = weights
        self.out: list[Concept] = []
        self.seen: set[str] = set()

    def add(self, start: int, end: int, kind: str) -> None:
        raw = self.clean[start:end]
        text = " ".join(raw.replace("_", " ").split()).strip(" -'’\"").lower()
        if not text:
            return
        words = content_words(text)
        if not words:
            return
        if kind not in ("style", "quality") and _is_quality(text):
            kind = "quality"
        if kind == "subject":
            if all(w in ADJECTIVES for w in words):
                kind = "attribute"
            elif len(words) == 1 and _is_verb(words[0]):
                kind = "action"
        key = f"{kind}:{text}"
        if key in self.seen:
            return
        self.seen.add(key)
        w = max(self.weights[start:end]) if end > start else 1.0
        self.out.append(Concept(text, kind, (start, end), round(w, 3), head_noun(text)))


def _chunk_segment(b: _Builder, seg_start: int, seg_end: int) -> None:
    seg = b.clean[seg_start:seg_end]
    if not seg.strip():
        return
    whole = " ".join(seg.split())
    if _is_quality(whole):
        b.add(seg_start, seg_end, "quality")
        return
    # style phrases consume their tail / head
    for rx in (_STYLE_OF, _LOOKS_LIKE, _INSPIRED, _BY_ARTIST):
        m = rx.search(seg)
        if m and m.group(1).strip():
            b.add(seg_start + m.start(1), seg_start + m.end(1), "style")
            # the part before the phrase may still hold a medium word ("painting by X" → painting)
            _chunk_segment(b, seg_start, seg_start + m.start())
            return
    m = _X_STYLE.search(seg)
    if m:
        # only the words after the last function word belong to the style name
        words = _words(m.group(1), seg_start + m.start(1))
        keep = []
        for w, s, e in reversed(words):
            lw = w.lower()
            if lw in PREPOSITIONS or lw in DETERMINERS or lw in CONJUNCTIONS or lw in AUX:
                break
            keep.append((s, e))
        if keep:
            s, e = keep[-1][0], keep[0][1]
            b.add(s, e, "style")
            _chunk_segment(b, seg_start, s)
            _chunk_segment(b, seg_start + m.end(), seg_end)
            return
    _chunk_words(b, _words(seg, seg_start))


def _chunk_words(b: _Builder, words: list[tuple[str, int, int]]) -> None:
    """Split a segment at prepositions, conjunctions, auxiliaries and new determiners."""
    chunk: list[tuple[str, int, int]] = []
    kind = "subject"
    prep = ""

    def flush() -> None:
        nonlocal chunk, kind
        # medium words inside a chunk become their own style concept ("watercolor fox" → watercolor + fox)
        i = 0
        rest: list[tuple[str, int, int]] = []
        while i < len(chunk):
            matched = 0
            for n in (3, 2, 1):
                if i + n <= len(chunk):
                    phrase = " ".join(w.lower() for w, _, _ in chunk[i:i + n])
                    if phrase in MEDIUM_SET:
                        matched = n
                        break
            if matched:
                b.add(chunk[i][1], chunk[i + matched - 1][2], "style")
                i += matched
            else:
                rest.append(chunk[i])
                i += 1
        if rest:
            k = kind
            head = head_noun(" ".join(w for w, _, _ in rest))
            if k == "subject" and ((head in PLACE_WORDS and prep in SETTING_PREPS) or head in TIME_WORDS
                                   or head in ("background", "backdrop", "scenery", "landscape")):
                k = "setting"
            b.add(rest[0][1], rest[-1][2], k)
        chunk = []
        kind = "subject"

    for k, (w, s, e) in enumerate(words):
        lw = w.lower()
        if lw in ("and", "or") and chunk and all(x.lower() in ADJECTIVES for x, _, _ in chunk) and \
                k + 1 < len(words) and words[k + 1][0].lower() in ADJECTIVES:
            continue  # "orange and white cat": coordinated adjectives stay with their noun
        if lw in PREPOSITIONS or lw in CONJUNCTIONS or lw in AUX:
            if lw == "of" and chunk and " ".join(x.lower() for x, _, _ in chunk) in MEDIUM_SET:
                flush()  # "a watercolor painting of a fox": the medium, then the subject
            else:
                flush()
            prep = lw if lw in PREPOSITIONS else prep if lw in ("and", "or") else ""
            continue
        if lw in DETERMINERS or lw in FILLER:
            if chunk and _is_verb(chunk[-1][0]):
                flush()  # "surfer riding | a wave"
            continue
        if len(chunk) >= 2 and _is_verb(chunk[-1][0]) and not _is_verb(w):
            flush()  # "giraffe eating | leaves"
        chunk.append((w, s, e))
    flush()


NOT_VERBS = _wordset("""
building buildings painting paintings ceiling king ring rings morning evening clothing wedding pudding string
strings wing wings thing things spring swing sing sling sibling icing frosting awning railing lightning
nothing something anything everything bedding stuffing sapling viking darling dumpling duckling ceiling
landing parking clearing dressing topping""")


def _is_verb(word: str) -> bool:
    w = word.lower()
    return len(w) > 4 and w.endswith("ing") and w not in NOT_VERBS


def parse_prompt(prompt: str) -> ParsedPrompt:
    """Parse a prompt into concepts and existing extra-network tags (deterministic)."""
    prompt = prompt or ""
    clean, weights, tags = _clean(prompt)
    b = _Builder(prompt, clean, weights)
    for m in _SEGMENT_RE.finditer(clean):
        _chunk_segment(b, m.start(), m.end())
    concepts = sorted(b.out, key=lambda c: c.span)
    return ParsedPrompt(prompt, tuple(concepts), tuple(tags))


def split_concepts(prompt: str) -> list[Concept]:
    """The concepts of ``prompt`` (quality tags included, with kind ``quality``)."""
    return list(parse_prompt(prompt).concepts)
