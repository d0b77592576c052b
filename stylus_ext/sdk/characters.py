"""Does a prompt name a character? One rule, shared by the offline composer and by the validation
every composer's answer goes through (character/celebrity adapters hijack images: the paper allows
them only when the prompt names the character).

The evidence, strongest first:

1. a trigger phrase that carries the name — the first phrase of the activation text / trained words
   (booru convention: the character tag comes first; "aachloe", "hatsune miku") unless it only
   describes looks ("twintails", "aqua hair"), and any phrase sharing a word with the adapter's name —
   when all its words are in the prompt;
2. the title's first segment ("Hatsune Miku | Vocaloid" → "hatsune miku"), all its words;
3. the file name's distinctive words ("ai-hayasaka-ponyxl-lora-nochekaiser" → ai, hayasaka,
   nochekaiser): two of them, or the only one, in the prompt — a lone common word ("shadow" of
   "shadow-alpha-…") never names anybody.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Any

from stylus_ext.sdk import prompt, word_classes
from stylus_ext.sdk.concepts import ADJECTIVES, content_words

_SEPARATORS = re.compile(r"[_\-.+]+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z][a-z]|[A-Z]+\b)")  # "LatifaFleuranzaXL" → Latifa Fleuranza XL
_HAS_DIGIT = re.compile(r"\d")

def _wordset(text: str) -> frozenset[str]:
    """The words as written and as :func:`content_words` gives them (singular: "twintails" → "twintail")."""
    return frozenset(w for t in text.split() for w in (t, *content_words(t)))


#: Words of file names and titles that are not part of anybody's name.
NOT_NAMES = _wordset("""
character characters celebrity original oc lora loras lycoris locon loha lokr dora style anime realistic
version ver sd sd1 sd15 sdxl xl pdxl ponyxl pony illustrious noobai flux il nai v pred epoch final
girl boy woman man female male outfit costume cosplay uniform pack set mix model the of and by for
""")

#: Booru tags that describe looks, never who it is.
APPEARANCE = _wordset("""
hair eyes eye twintails ponytail twin tails braid braids bangs ahoge bob cut long short medium
dress skirt shirt uniform school serafuku kimono armor gloves thighhighs pantyhose boots hat ribbon
bow jacket coat hoodie sweater swimsuit bikini glasses earrings necklace horns tail ears wings halo
1girl 2girls 1boy solo smile breasts large small chest
""")


def words_of(text: str, *, camel: bool = True) -> list[str]:
    """Content words of a name, title, trigger or prompt: ``_ - . +`` split, and camelCase split
    (``camel=False`` keeps "LatifaFleuranza" whole, as a lower-cased prompt has it)."""
    return list(_words_of(text, camel))


@functools.lru_cache(maxsize=65536)
def _words_of(text: str, camel: bool) -> tuple[str, ...]:
    """:func:`words_of`, cached: each compose reads the names of up to 150 candidates."""
    text = _SEPARATORS.sub(" ", text)
    return tuple(content_words(_CAMEL.sub(" ", text) if camel else text))


def prompt_words(prompt: str) -> set[str]:
    """The words :func:`character_evidence` looks for: both split and whole camelCase forms."""
    return set(words_of(prompt)) | set(words_of(prompt, camel=False))


#: "LoRA" / "LyCORIS" as written in titles, before camelCase splits them into "Lo RA".
_NETWORK_WORD = re.compile(r"(?:LoRA|LORA|LyCORIS|LoCon|LoHa|LoKr)s?|(?i:(?<![a-z])lora(?![a-z]))")


def name_words(text: str, *, camel: bool = True) -> set[str]:
    """Distinctive words of a file name / title (no versions, numbers, base models or generic words)."""
    return {w for w in words_of(_NETWORK_WORD.sub(" ", text), camel=camel) if len(w) > 1 and w not in NOT_NAMES
            and not _HAS_DIGIT.search(w)}


def title_words(title: str) -> set[str]:
    """The name words of a title's first segment ("Hatsune Miku | Vocaloid", "Asuka / Yu-Gi-Oh!",
    "Maria（Symphogear）" → hatsune, miku; asuka; maria)."""
    return name_words(_SEGMENT.split(title, maxsplit=1)[0]) if title else set()


_SEGMENT = re.compile(r"[|(（]| / ")
#: A letter of no Latin alphabet (CJK, kana, hangul, Cyrillic...): "墨心" of "墨心 MoXin".
_OTHER_SCRIPT = re.compile(r"[^\W\d_a-zA-Z\u00c0-\u024f]")


def _only_looks(words: Iterable[str]) -> bool:
    """Every word describes looks (booru appearance tags, colours): no name, whatever card holds it."""
    return all(w in APPEARANCE or w in ADJECTIVES for w in words)


@functools.lru_cache(maxsize=16384)
def title_forms(title: str) -> tuple[frozenset[str], ...]:
    """The ways a prompt may type a title's name: all of :func:`title_words`, then — where one of them
    holds a word of no English (:func:`word_classes.lookup` "rare") — its Latin-script words alone
    (bilingual titles: "墨心 MoXin", "xhsGirl 小红书网红A" → moxin; xhs) and its camelCase words whole
    ("MimiChan", "RuGu" → mimichan; rugu: a prompt types them lower-cased, in one piece).

    A Latin part of common words alone ("花 Flower") is no name: a prompt with "flower" names nobody.
    Cached: each compose reads the titles of its character candidates twice."""
    lead = frozenset(title_words(title))
    if not lead:
        return ()
    forms = [lead]
    segment = _SEGMENT.split(title, maxsplit=1)[0]
    for form in (frozenset(w for w in lead if not _OTHER_SCRIPT.search(w)),
                 frozenset(w for w in name_words(segment, camel=False) if not _OTHER_SCRIPT.search(w))):
        if form and form not in forms and any(len(w) > 2 and word_classes.lookup(w)[0] == "rare" for w in form):
            forms.append(form)
    return tuple(forms)


def _phrases(triggers: Iterable[str]) -> list[str]:
    return [p.strip() for t in triggers for p in str(t).split(",") if p.strip()]


def character_evidence(title: str, name: str, triggers: Iterable[str], prompt_words: set[str], *,
                       lenient: bool = False, coined: Callable[[str], bool] | None = None) -> tuple[str, set[str]]:
    """``(evidence, matched words)`` when the prompt (its content words) names this character, else ``("", set())``.

    ``title``, ``name`` (file stem / alias) and ``triggers`` (trained words, then activation text) are
    the adapter's; ``prompt_words`` come from :func:`prompt_words`. ``lenient`` also accepts a single
    name word ("miku" for "Hatsune Miku"): the safety net applied to other composers' picks.
    ``coined`` (:func:`distinctive`) also accepts a trigger phrase after the first that holds a word
    coined for this adapter (an outfit trigger such as "libhllw"): nobody types it by chance.
    """
    names = name_words(name)
    lead = title_words(title)
    typed = next((form for form in title_forms(title) if form <= prompt_words), None)
    phrases = _phrases(triggers)
    for i, phrase in enumerate(phrases):
        forms = [{w for w in words_of(phrase, camel=c) if len(w) > 1} for c in (True, False)]
        words = next((f for f in forms if f and f <= prompt_words), None)
        if words is None:
            continue
        looks_only = all(w in APPEARANCE or w in ADJECTIVES or w in NOT_NAMES for w in forms[0])
        proper_noun = all(w[:1].isupper() for w in phrase.split())  # "Thorn Princess"
        if (not looks_only and (i == 0 or proper_noun or (coined is not None and any(map(coined, words))))) \
                or (forms[0] & (names | lead)) - APPEARANCE - ADJECTIVES:  # not the "serafuku" of "Colored serafuku"
            if typed and (words < typed or not words & typed):
                break  # the whole name is typed too: "maria" of "Maria Cadenzavna Eve", a version's "blindfold"
            return f"trigger '{phrase}'", words
    if typed:
        return f"name '{' '.join(sorted(typed))}'", set(typed)
    hit = (names | lead) & prompt_words
    if _only_looks(hit):
        return "", set()  # nothing, or only its looks ("serafuku" of "Colored serafuku")
    if hit and (lenient or len(hit) >= 2 or hit in (names, lead)):
        return f"name '{' '.join(sorted(hit))}'", hit
    return "", set()


def named_outright(concept: str, words: set[str]) -> bool:
    """True when ``concept`` (a concept's text) is nothing but the name words :func:`character_evidence`
    matched (``words``, from the title or file name) and one of them is no word of general English
    ("hatsune miku", "tifa lockhart"; not "black cat", "gravel"), or two or more of them with a given
    name ("walter white", "abigail williams"): a user who types that asks for the
    character, however many adapters of it the catalogue holds. Callers pass name evidence only: a
    shared trigger placeholder ("sks woman") is no word of English either."""
    said = prompt_words(concept)
    if words and _only_looks(words):
        return False  # "serafuku", "twintails": a look, however a character's card is titled
    return bool(words) and words <= said and set(words_of(concept)) <= words and (any(
        len(w) > 2 and word_classes.lookup(w)[0] == "rare" for w in words) or (
        len(words) >= 2 and any(word_classes.name_kind(w) == "given" for w in words)))


def named_with_series(concept: str, triggers: Iterable[str], prompt_words: set[str]) -> bool:
    """True when ``concept`` is the name part of a booru trigger "name (series)" and the prompt also
    holds the series ("sirius, azur lane, 1girl" for ``sirius_(azur_lane)``): the booru way to name a
    character, so it asks for it however common its name word is ("sirius" is a star too)."""
    said = set(words_of(concept))
    for phrase in _phrases(triggers)[:4]:
        qualifiers = _QUALIFIER.findall(phrase)
        series = {w for q in qualifiers for w in words_of(q) if len(w) > 1}
        name = {w for w in words_of(_QUALIFIER.sub(" ", phrase).replace(")", " ")) if len(w) > 1}
        if series and name == said and series <= prompt_words:
            return True
    return False


#: A name match shared, as only part of their names, by this many differently named characters is a series.
SERIES_MIN_CHARACTERS = 3


_QUALIFIER = re.compile(r"[(（\[【]([^)）\]】]*)")


def _name_parts(title: str, name: str, triggers: Iterable[str]) -> tuple[set[str], set[str]]:
    """(the name words a reader sees: the title's first segment, else the file name's; the words of
    its qualifiers: the title's brackets and segments after "|", the triggers' brackets —
    "Lumine | Genshin Impact", "lumine (genshin impact)")."""
    lead = title_words(title)
    qualifiers = [*_QUALIFIER.findall(title or ""), *(title or "").split("|")[1:]]
    qualifiers += [q for t in _phrases(triggers)[:4] for q in _QUALIFIER.findall(t)]
    return lead or name_words(name), {w for q in qualifiers for w in name_words(_QUALIFIER.sub(" ", q))}


def series_matches(named: Iterable[tuple[Iterable[str], str, str, Iterable[str]]]) -> set[frozenset[str]]:
    """The matched name words that name a series, not somebody, among one prompt's character candidates.

    ``named`` holds, per character candidate, (the words :func:`character_evidence` matched, none
    when the prompt does not name it, its title, file name, triggers). Matched words are a series
    when they qualify the names of two or more candidates ("Lumine | Genshin Impact", "raiden shogun
    (genshin impact)") and are only part of the names of :data:`SERIES_MIN_CHARACTERS` or more whose
    other name words share nothing ("Lumine Genshin Impact", "GenshinImpact_Nahida", "Kamisato Ayaka
    Genshin Impact"): a prompt saying "genshin impact" names none of them. A character's own name is
    nobody's qualifier, however many adapters of it there are ("hatsune miku"), and words that are a
    candidate's whole name, or its one naming trigger, stay a name even when several characters share
    them ("Asuna LoRA"; the trigger "Naruto", also a series). Catalogue-driven: no franchise list.
    """
    keys: set[frozenset[str]] = set()
    leads: list[set[str]] = []
    qualified: list[set[str]] = []
    whole: set[frozenset[str]] = set()  # somebody's whole name ("Asuna LoRA", the trigger "naruto"): a name
    for matched, title, name, triggers in named:
        lead, qualifiers = _name_parts(title, name, triggers)
        keys.add(frozenset(matched))
        leads.append(lead)
        qualified.append(qualifiers)
        whole.add(frozenset(lead))
        own = [set(words_of(_QUALIFIER.sub(" ", t).replace(")", " "))) for t in _phrases(triggers)[:4]]
        own = [w for w in own if w & lead]
        if len(own) == 1:  # its one naming trigger ("Naruto"; not "genshin impact" beside "kamisato ayaka")
            whole.add(frozenset(own[0]))
    series = set()
    for words in keys - whole - {frozenset()}:
        rests = [frozenset(w for w in lead if w not in words and len(w) > 2 and word_classes.lookup(w)[0] == "rare")
                 for lead in leads if words <= lead]
        seen: set[str] = set()
        distinct = 0
        for rest in sorted(filter(None, rests), key=sorted):  # characters apart: "nahida", "nahida sumeru" are one
            distinct += not rest & seen
            seen |= rest
        if distinct >= SERIES_MIN_CHARACTERS and sum(words <= q for q in qualified) >= 2:
            series.add(words)
    return series


#: A coined word is held by at most this share of the catalogue's adapters (and by at least
#: :data:`COINED_MIN_ADAPTERS` whatever its size): on 11.8K real cards the coined triggers users type
#: ("hq1992", "fuxuan", "libhllw") are held by 1–5 adapters, shared placeholders ("sks": 17) and style
#: words ("chibi": 215, "midjourney": 103) by more.
COINED_SHARE = 0.001
COINED_MIN_ADAPTERS = 3


def distinctive(request: Any, share: float = COINED_SHARE) -> Callable[[str], bool] | None:
    """``coined(word)`` for ``request`` (a :class:`ComposeRequest`): True when ``word`` is no word of
    general English (the encoder's vocabulary, :mod:`word_classes`), no common prompt tag, and the
    catalogue holds it on only a few adapters (``request.adapters_with``: at most ``share`` of them,
    at least :data:`COINED_MIN_ADAPTERS`). A prompt that holds such a word of an adapter's trigger
    names that adapter. A larger ``share`` asks only "a word of the adapters' own jargon" ("chibi",
    "tsurime"). None when the request cannot count words."""
    count = getattr(request, "adapters_with", None)
    if count is None:
        return None
    limit = max(COINED_MIN_ADAPTERS, int(getattr(request, "catalog_size", 0) * share))

    @functools.lru_cache(maxsize=1024)
    def coined(word: str) -> bool:
        w = word.lower()
        english = any(word_classes.lookup(form)[0] != "rare" for form in (w, w + "s", w + "es"))  # "sunglass"
        if len(w) < 3 or not re.search(r"[a-z]", w) or english or prompt.is_common_tag(w) or prompt.is_quality(w):
            return False
        try:
            n = int(count(w))
        except (TypeError, ValueError, OSError):  # a host's counter that cannot say: not coined
            return False
        return 1 <= n <= limit

    return coined


def tagged_as(title: str, name: str, tags: Iterable[str]) -> str:
    """The name of the ``<lora:...>`` tag (of ``tags``, the prompt's extra-network names) that already
    draws this character, else "": the tag's name holds one of the character's name words English
    lacks ("my_miku_v3" for "Hatsune Miku"), or its whole name run together ("hatsunemiku1"). A second
    adapter of one character stacks two of them on one face; a tag of plain words ("add_detail",
    "black_dress") names nobody."""
    tags = list(tags)
    if not tags:  # the common case: nothing to read
        return ""
    lead = [w for w in words_of(_SEGMENT.split(title or "", maxsplit=1)[0]) if w in title_words(title)]
    mine = {w for w in (*lead, *name_words(name or "")) if len(w) > 2 and word_classes.lookup(w)[0] == "rare"}
    joined = "".join(w for w in lead if not _OTHER_SCRIPT.search(w))
    for tag in tags:
        stem = re.sub(r"\d+", " ", tag)
        words = set(words_of(stem)) | set(words_of(stem, camel=False))
        letters = re.sub(r"[^a-z]", "", tag.lower())
        if mine & words or (len(lead) >= 2 and len(joined) > 5 and joined in letters):
            return tag
    return ""
