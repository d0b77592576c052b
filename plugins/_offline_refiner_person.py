"""Is an adapter a character or a real person? Evidence features and small fitted models.

Helper of ``offline_refiner.py`` (the leading ``_`` keeps the plugin loader from loading it as a
plugin). Used when a card's own tags do not say: folders without cards, cards with poor tags.
Features come from the title, file name, trigger words, description, example prompts and training
tags (``ss_tag_frequency``): a trigger that is a person-like name recurring in the title, a
franchise in parentheses, prompts that keep one hair and eye colour and show one girl or boy, words
such as "style", "outfit" or "panda" in the title, a trigger that is one coined word made of the
title's common words (``redpanda``), one that is the title's names run together (``mirakessel``),
a description that names a work ("from ..."), people's names by the encoder vocabulary's name
groups (``sdk.name_kind``: "Megan Fox" is a first and last name), and a word model's evidence: a
logistic over which general English words the card and, apart, its example prompts use ("her",
"outfit" for; "style", "concept" against; fitted on the same cards, out of fold, and fed to the
trees as ``text_words``; cards with text only).
The person call is boosted trees per kind of card (with text, header, bare), the real-person call
a logistic model, both fitted on one half of real Civitai cards with their tags hidden
(``benchmarks/fit_refiner.py``) and shipped beside this file as ``offline_refiner_person.json``;
without that file the calls fall back to hand-set weights. Stdlib only (the trees are walked in
plain Python) and deterministic.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from stylus_ext import sdk

WEIGHTS_FILE = Path(__file__).with_name("offline_refiner_person.json")
#: Common nouns of accessories, bodies, views, materials, things and places: never a character's name.
COMMON_WORDS = """socks sock leggings tights pantyhose thighhighs mask masks helmet glasses eyewear goggles accessory
    accessories earrings necklace choker collar ribbon bow tie necktie scarf belt bag backpack crop top bra
    panties underwear tassel fishnet fishnets couture latex leather silk lace denim jeans shorts pants trousers
    sleeve sleeves sneakers heels sandals crown tiara veil wig ears tail tails wings horns halo face faces
    expression expressions smile tongue mouth lips teeth nose feet legs breasts head view views angle pov
    reference sheet censorship censored detail details shadow shadows color colors colour colours texture
    pattern patterns statue statues marble bronze stone metal glass wood paper gem gems icon icons logo
    sticker emoji cake drink coffee tea tree trees leaf leaves water rain snow cloud clouds smoke sun moon
    star stars night day sunset library school classroom office bedroom kitchen bathroom bath cockpit station
    shop store market restaurant bar hospital prison dungeon cave garden park pool lake river rock robot
    cyborg android monster zombie demon angel fairy witch knight samurai ninja pirate nurse idol
    princess queen king god goddess warrior soldier police cheerleader bunny girl lady wife sister mother
    teen punk cyber mix merge pack collection series set concept horror cute sexy dark slime goo tentacle
    latex plastic rubber shiny wet oil skin tan muscle muscular fat chubby petite tall giantess doll dolls
    figure figurine chibi mascot furry kemono beast hybrid mermaid centaur vampire ghost skeleton"""

#: Keyword groups whose hits are features (the refiner's own keyword patterns are passed in).
GROUPS: dict[str, tuple[str, ...]] = {
    "style": ("style",), "clothing": ("clothing",), "pose": ("pose", "action"),
    "place": ("background", "building"), "thing": ("vehicle", "object"), "animal": ("animal",),
    "concept": ("concept",),
    "utility": ("utility",), "character": ("character",), "celebrity": ("celebrity",),
}
#: Franchises and media words that mark a character card (a title "Name (Franchise)" and similar).
FRANCHISES = re.compile(
    r"(?<![a-z])(?:genshin|honkai|star ?rail|azur ?lane|blue ?archive|arknights|kancolle|kantai|hololive|"
    r"nijisanji|vtuber|pok[eé]mon|fate|fgo|touhou|umamusume|idolmaster|love ?live|bang ?dream|"
    r"final ?fantasy|league of legends|overwatch|naruto|one ?piece|bleach|dragon ?ball|jojo|evangelion|"
    r"gundam|persona|zelda|nintendo|mario|sonic|street ?fighter|tekken|resident ?evil|nikke|"
    r"girls'? ?frontline|granblue|princess ?connect|fire ?emblem|xenoblade|danganronpa|chainsaw ?man|"
    r"jujutsu|kimetsu|demon ?slayer|spy ?x ?family|my hero academia|boku no hero|sword art online|sao|"
    r"re:? ?zero|konosuba|madoka|sailor ?moon|gintama|attack on titan|shingeki|marvel|dc comics|disney|"
    r"pixar|anime|manga|game|video ?game|series|visual novel|gacha|waifu|husbando|cosplay)(?![a-z])", re.I)
_COLOURS = ("black|white|blonde|blond|brown|red|blue|green|pink|purple|silver|grey|gray|orange|yellow|"
            "aqua|light blue|light brown|dark blue|multicolored|two-tone|streaked")
_HAIR = re.compile(rf"\b({_COLOURS})[ _]hair\b", re.I)
_EYES = re.compile(rf"\b({_COLOURS}|golden|heterochromia)[ _]eyes\b", re.I)
_SUBJECT = re.compile(r"\b(?:1girl|1boy|solo|solo focus|1woman|1man)\b", re.I)
_PHOTO = re.compile(r"\b(?:photo|photograph|raw photo|realistic|photorealistic|dslr|film grain|"
                    r"portrait photo|8k uhd|skin pores|korean|japanese idol|kpop)\b", re.I)
_PRONOUN = re.compile(r"\b(?:she|her|hers|he|his|him)\b", re.I)
_REAL = re.compile(r"\b(?:actress|actor|singer|idol|model|streamer|youtuber|influencer|athlete|celebrity|"
                   r"real person|likeness|famous|born|politician|president|tv|film|movie star)\b", re.I)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
_VERSION = re.compile(r"\((?:[^()]*\bv?\d+(?:\.\d+)*[^()]*|[^()]*\b(?:lora|locon|lycoris|offset|final)\b"
                      r"[^()]*)\)\s*$", re.I)
_DIGITS = re.compile(r"\d")
#: One-word triggers made of a word and a house suffix, as style and concept adapters coin them.
_SUFFIX = re.compile(r"[a-z]{3,}(?:ai|punk|core|wave|style|art|mix|diff|tech)$", re.I)


#: Adapter-format names, one word each however they are cased ("LoRA" is not "lo" + "ra", two
#: name-like words), and no word of a title's name.
_FORMATS = frozenset({"lora", "lycoris", "locon", "loha", "lokr", "dora"})
_FORMAT_WORDS = re.compile(rf"(?i)(?<![a-z])(?:{'|'.join(sorted(_FORMATS))})(?![a-z])")


def tokens(text: str) -> list[str]:
    """Lower-case words of a title or file name (``fluffyRedPanda`` → fluffy, red, panda; ``LoRA`` → lora)."""
    text = _FORMAT_WORDS.sub(lambda m: m.group(0).lower(), text)
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    return [t for t in re.split(r"[^A-Za-z]+", text.lower()) if t]


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


class NameRules:
    """Which words can be a name (not jargon, not a common word), and the name evidence of a card."""

    def __init__(self, *, jargon: set[str], lexicon: set[str]) -> None:
        self.jargon, self.lexicon = jargon, lexicon

    def name_like(self, token: str) -> bool:
        return len(token) >= 2 and token not in self.jargon and token not in self.lexicon

    def character_evidence(self, card: sdk.AdapterCard) -> float:
        """How much the card looks like a named character: person-name triggers that recur in the name."""
        score = 0.0
        names = f"{card.name} {card.alias or ''} {card.title}"
        name_tokens = set(tokens(names))
        if re.search(r"\w[\w .'-]*\s\((?!sd|xl|pony|lora|v\d|illustrious)[^)]{2,40}\)", card.title or "", re.I):
            score += 1
        for raw in card.trigger_words[:4]:
            trigger = raw
            if re.search(r"\\?\([^)]+\\?\)", raw):
                score += 1.5
                trigger = re.sub(r"\\?\([^)]*\\?\)", " ", raw)
            toks = [t for t in tokens(trigger) if t not in self.jargon]
            if not toks or len(toks) > 4 or not all(self.name_like(t) for t in toks):
                continue
            in_name = [t for t in toks if t in name_tokens
                       or any((len(t) >= 4 and t in n) or (len(n) >= 4 and n in t) for n in name_tokens)]
            if len(toks) >= 2 and in_name:
                score += 2.5
            elif in_name:
                others = [t for t in name_tokens
                          if self.name_like(t) and t not in toks and not any(t in x for x in toks)]
                whole = _norm(re.sub(r"[-_ ]*\d+$", "", card.name)) == _norm(trigger)
                score += 2 if others or whole else 1
            break
        stem_words = [t for t in tokens(f"{card.name} {card.alias or ''}") if t not in self.jargon]
        if len(stem_words) >= 2 and all(self.name_like(t) for t in stem_words):
            # A file name made of two or more name-like words; confirmed when an independent title repeats it.
            title_tokens = set(tokens(card.title or ""))
            confirmed = _norm(card.title or "") != _norm(card.name) and all(t in title_tokens for t in stem_words[:2])
            score = max(score, 2.0 if confirmed else 1.5)
        return score


def card_texts(card: sdk.AdapterCard) -> tuple[str, list[str], str]:
    """(title with file name and alias as words, trigger words, plain description): the text the
    keyword evidence reads, shared with the refiner so each keyword search runs once per card."""
    names = split_camel(f"{card.title} {card.name} {card.alias or ''}")
    triggers = [t for t in card.trigger_words if t.strip()][:8]
    if not triggers and card.activation_text:
        triggers = [t for t in re.split(r"[,\n]", card.activation_text) if t.strip()][:8]
    desc = re.sub(r"<[^>]+>|https?://\S+|www\.\S+", " ", card.description or "")
    return names, triggers, re.sub(r"\s+", " ", desc).strip()[:1500]


_WORD = re.compile(r"[a-z]{3,}")


def card_words(card: sdk.AdapterCard) -> frozenset[str]:
    """The words the word model weighs, each once: lower-case runs of 3+ letters in the card's title,
    file name, triggers and description, and, marked ``p:``, in its first 12 example prompts and its
    training tags (prompts say "style" of every picture: "mksks style" is a tag, not a style card)."""
    names, triggers, desc = card_texts(card)
    card_text = " ".join([names, *triggers, desc]).lower()
    prompts = " ".join([*card.example_prompts[:12], *card.training_tags]).lower()
    return frozenset(_WORD.findall(card_text)) | frozenset("p:" + w for w in _WORD.findall(prompts))


def word_probability(model: Mapping[str, Any], words: frozenset[str]) -> float:
    """A logistic ``{"bias": b, "weights": {word: w}}`` over which words a card has."""
    weights = model.get("weights") or {}
    z = float(model.get("bias", 0.0)) + sum(weights.get(w, 0.0) for w in words)
    return 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))


def word_features(model: Mapping[str, Any], words: frozenset[str]) -> dict[str, float]:
    """``text_words``: the word model's evidence, its probability without the bias: 0.5 when the card
    has none of its words, whatever share of the fitted cards were characters. (A count of the words
    known as a second feature let the trees learn that cards saying little in English are people, as
    this dump's many Chinese-language celebrity cards are: "LCM LoRA" became a celebrity.)"""
    return {"text_words": word_probability({"weights": model.get("weights") or {}}, words)}


def split_camel(text: str) -> str:
    """``fluffyRedPanda_v1`` → ``fluffy Red Panda v1``: file names as words."""
    return re.sub(r"([a-z])([A-Z])", r"\1 \2", text).replace("_", " ")


def _hits(pattern: re.Pattern[str], text: str, cap: int) -> float:
    return min(cap, len({m.lower() for m in pattern.findall(text)})) / cap


def _share(prompts: list[str], pattern: re.Pattern[str]) -> float:
    return sum(1 for p in prompts if pattern.search(p)) / len(prompts) if prompts else 0.0


def _consistent(prompts: list[str], training: list[str], pattern: re.Pattern[str]) -> float:
    """Share of example prompts with the most common colour (hair or eyes); a colour among the top
    training tags counts as a fully consistent one (a character's tags repeat on every image)."""
    if any(pattern.search(t) for t in training[:15]):
        return 1.0
    counts: Counter[str] = Counter()
    for p in prompts:
        counts.update({m.lower() for m in pattern.findall(p)})
    return counts.most_common(1)[0][1] / len(prompts) if counts and len(prompts) >= 2 else 0.0


def _coined(trigger: str, title_words: list[str], lexicon: set[str]) -> float:
    """1 when the trigger is the title's common words run together (``redpanda`` of "Fluffy Red Panda")."""
    token = re.sub(r"[^a-z0-9]", "", trigger.lower())
    if not token or " " in trigger.strip() or len(token) < 3:
        return 0.0
    common = [w for w in title_words if w in lexicon]
    for i in range(len(title_words)):
        for j in range(i + 2, min(len(title_words), i + 4) + 1):
            run = title_words[i:j]
            if "".join(run) == token and any(w in common for w in run):
                return 1.0
    return 0.0


def features(card: sdk.AdapterCard, *, found: Callable[[str, str], frozenset[str]],
             rules: NameRules) -> dict[str, float]:
    """Evidence that ``card`` is a character or a real person, as named numbers in about [0, 1]."""
    title = (card.title or split_camel(card.name) or "").replace("_", " ")  # a file: its stem
    bare_title = _VERSION.sub("", title).strip()
    _, triggers, desc = card_texts(card)
    names = split_camel(f"{bare_title} {card.name} {card.alias or ''}")
    trig_text = " , ".join(triggers)
    prompts = [p for p in card.example_prompts if p.strip()][:12]
    training = [t.replace("_", " ") for t in card.training_tags if t.strip()]
    f: dict[str, float] = {}
    for group, cats in GROUPS.items():
        f[f"title_{group}"] = max(min(2, len(found(c, names))) for c in cats) / 2
        f[f"trig_{group}"] = max(min(2, len(found(c, trig_text))) for c in cats) / 2
        f[f"desc_{group}"] = max(min(3, len(found(c, desc))) for c in cats) / 3
    f["name_evidence"] = min(4.0, rules.character_evidence(card)) / 4
    f["franchise_title"] = _hits(FRANCHISES, names, 2)
    f["franchise_trig"] = _hits(FRANCHISES, trig_text, 1)
    f["franchise_desc"] = _hits(FRANCHISES, desc, 3)
    f["title_paren"] = float(bool(re.search(r"\w\s*[(\[【][^)\]】]{2,40}[)\]】]", bare_title)))
    f["title_sep"] = float(bool(re.search(r"\s[|/]\s|\s-\s", bare_title)))
    f["title_cjk"] = float(bool(_CJK.search(title)))
    f["trig_paren"] = float(bool(re.search(r"\\?\(\s*[a-z][^)]{1,40}\\?\)", trig_text, re.I)))
    words = [t for t in tokens(bare_title) if t and t not in _FORMATS]  # "Gojo Satoru LoRA" is "Gojo Satoru"
    person_words = [w for w in words if rules.name_like(w)]
    f["title_name_words"] = min(3, len(person_words)) / 3
    f["title_all_names"] = float(1 <= len(words) <= 4 and len(person_words) == len(words))
    first = triggers[0] if triggers else ""
    first_tokens = tokens(re.sub(r"\\?\([^)]*\\?\)", " ", first))
    f.update(given_name_features(words, first))
    f["desc_names_trigger"] = _capitalised_in(desc, [*first_tokens, *person_words])
    f["trig_none"] = float(not triggers)
    f["trig_count"] = min(5, len(triggers)) / 5
    f["trig_words"] = min(4, len(first_tokens)) / 4
    f["trig_name_like"] = float(bool(first_tokens) and all(rules.name_like(t) for t in first_tokens))
    f["trig_two_names"] = float(len(first_tokens) >= 2 and f["trig_name_like"] == 1.0)
    f["trig_coined"] = _coined(first, words + tokens(card.name), rules.lexicon)
    f["trig_digits"] = float(bool(_DIGITS.search(first)) and " " not in first.strip())
    f["trig_one_word"] = float(len(first_tokens) == 1)
    f["trig_in_training"] = float(bool(first.strip()) and any(
        first.strip().lower().replace("_", " ") == t.lower() for t in training[:10]))
    f["trig_suffix"] = float(bool(_SUFFIX.search(first.strip())) and " " not in first.strip())
    f["trig_in_prompts"] = _share(prompts, re.compile(re.escape(first.strip()), re.I)) if first.strip() else 0.0
    f["examples_none"] = float(not prompts)
    f["subject"] = max(_share(prompts, _SUBJECT), float(any(_SUBJECT.search(t) for t in training[:10])))
    f["subject_top"] = float(_share(prompts, _SUBJECT) >= 0.7 or any(_SUBJECT.search(t) for t in training[:3]))
    f["hair_same"] = _consistent(prompts, training, _HAIR)
    f["eyes_same"] = _consistent(prompts, training, _EYES)
    f["photo"] = _share(prompts, _PHOTO)
    f["desc_none"] = float(len(desc.strip()) < 20)
    f["desc_pronoun"] = min(3, len(_PRONOUN.findall(desc))) / 3
    f["desc_real"] = _hits(_REAL, desc, 2)
    f["title_real"] = _hits(_REAL, names, 1)
    person_talk = max(f["desc_pronoun"], f["desc_real"], f["desc_character"], f["desc_celebrity"])
    f["desc_no_person"] = float(not f["desc_none"] and not person_talk)
    f["desc_only_things"] = max(f["desc_animal"], f["desc_thing"], f["desc_place"]) * (1 - person_talk)
    f["training_none"] = float(not training)
    f.update(structure_features(words, person_words, desc, prompts, training=training, first=first))
    return f


def _capitalised_in(text: str, names: list[str]) -> float:
    """1 when a name word of the trigger or title (3+ letters, not a clothing or body word) is written in
    ``text`` capitalised, as a name is ("A LoRA of Kaguya Shinomiya" for the trigger ``kaguya shinomiya``;
    also "Pixel art ..." for ``pixel art``: the fitted trees weigh it with the other evidence)."""
    return float(any(re.search(rf"\b{re.escape(w.capitalize())}\b", text)
                     for w in {w.lower() for w in names if len(w) >= 3 and w.isalpha() and w.lower() not in _COMMON}))


def given_name_features(words: list[str], trigger: str) -> dict[str, float]:
    """People's names by the encoder vocabulary's name groups (``sdk.name_kind``), which no card taught:
    a given name in the title ("Megan Fox", "Natalie Dormer"), one followed by another word that is no
    common noun (a first and last name), and a given name in the first trigger."""
    kinds = [sdk.name_kind(w) for w in words]
    full = any(k == "given" and i + 1 < len(words) and words[i + 1] not in _COMMON and len(words[i + 1]) >= 2
               for i, k in enumerate(kinds))
    return {"title_given_name": float("given" in kinds), "title_surname": float("surname" in kinds),
            "title_full_name": float(full),
            "trig_given_name": float(any(sdk.name_kind(w) == "given" for w in tokens(trigger)))}


_COMMON = frozenset(COMMON_WORDS.split())
_CAPS = re.compile(r"(?<![.!?:]\s)(?<!^)\b[A-Z][a-z]{2,}\b")
_FROM = re.compile(r"\b(?:from|of)\s+(?:the\s+)?(?:(?:anime|game|manga|series|movie|show|novel|film)\s+)?"
                   r"[\"“'「(]?[A-Z0-9][\w'’!:-]+")
_TRAINED_ON = re.compile(r"\b(?:trained|made|based)\s+(?:on|of|from)\s+(?:the\s+)?(?:character\s+)?[A-Z]")
_PEOPLE = re.compile(r"\b(?:woman|girl|man|boy|lady|female|male)\b", re.I)
_BODY = re.compile(r"\b(?:hair|eyes|ears|horns|tail|bangs|ahoge|ponytail|twintails|braid|pupils|skin)\b", re.I)


def _recurring(prompts: list[str], skip: str) -> list[str]:
    """Prompt terms (no weights, no quality tags, not the trigger) in at least 60% of 3+ prompts."""
    if len(prompts) < 3:
        return []
    counts: Counter[str] = Counter()
    for prompt in prompts:
        text = re.sub(r"<[^<>]*>|:\s*-?\d*\.?\d+", " ", prompt)
        terms = {" ".join(t.strip(" .()[]{}").lower().replace("_", " ").split()) for t in re.split(r"[,\n|]", text)}
        counts.update(t for t in terms if t and len(t) <= 40 and t != skip and not _quality(t))
    return [t for t, n in counts.items() if n >= 0.6 * len(prompts)]


def _quality(term: str) -> bool:
    return sdk.prompt.is_quality(term) or sdk.prompt.is_common_tag(term)


def structure_features(words: list[str], named: list[str], desc: str, prompts: list[str], *,
                       training: list[str], first: str) -> dict[str, float]:
    """Card structure beyond keywords: common nouns in the title, a trigger that is the title's
    name-like words run together, proper nouns and "from <Work>" in the description, example prompts
    that repeat one look (hair, eyes, outfit) on every image. ``named``: the title's name-like words."""
    recurring = _recurring(prompts, first.strip().lower())
    head = desc[:800]
    joined = re.sub(r"[^a-z]", "", re.sub(r"\\?\([^)]*\\?\)", " ", first.lower()))
    return {
        "trig_joined_title": float(len(joined) >= 4 and len(named) >= 2 and any(
            "".join(named[i:j]) == joined for i in range(len(named)) for j in range(i + 2, len(named) + 1))),
        "subject_words": _share(prompts, _PEOPLE),
        "title_common": min(2, sum(1 for w in words if w in _COMMON)) / 2,
        "desc_caps": min(6, len({m for m in _CAPS.findall(head) if m.lower() not in _COMMON})) / 6,
        "desc_from": float(bool(_FROM.search(head))),
        "desc_trained_on": float(bool(_TRAINED_ON.search(head))),
        "desc_len": min(1.0, len(desc) / 1200),
        "prompts_count": min(8, len(prompts)) / 8,
        "prompts_recurring": min(8, len(recurring)) / 8,
        "prompts_recurring_body": min(4, sum(1 for t in recurring if _BODY.search(t))) / 4,
        "training_body": min(4, sum(1 for t in training[:15] if _BODY.search(t))) / 4,
    }


DEFAULT_MODEL: dict[str, dict[str, float]] = {  # hand-set fallback; the fitted file replaces it
    "person": {"bias": -1.5, "name_evidence": 2.5, "franchise_title": 2.0, "title_paren": 1.0, "subject": 1.0,
               "hair_same": 1.0, "eyes_same": 1.0, "title_character": 2.0, "desc_character": 1.5,
               "title_celebrity": 2.0, "desc_celebrity": 1.5, "title_style": -3.0, "title_thing": -3.0,
               "title_clothing": -2.0, "trig_coined": -1.5, "title_utility": -4.0, "title_place": -2.0},
    "celebrity": {"bias": -1.5, "photo": 2.0, "desc_real": 2.0, "title_celebrity": 2.0, "desc_celebrity": 2.0,
                  "franchise_title": -2.0, "franchise_desc": -1.0},
    "threshold": {"person": 0.5},
}


def load_model(path: Path = WEIGHTS_FILE) -> dict[str, dict[str, float]]:
    """The fitted weights, or :data:`DEFAULT_MODEL` when the file is missing or malformed."""
    try:
        model = json.loads(path.read_text(encoding="utf-8"))
        if all(isinstance(model.get(k), dict) for k in ("person", "celebrity", "threshold")) and all(
                isinstance(m.get("trees"), list) and isinstance(m.get("features"), list)
                for m in model.values() if isinstance(m, dict) and m.get("kind") == "trees") and all(
                isinstance(m, dict) and isinstance(m.get("weights"), dict)
                for k, m in model.items() if k.startswith("words_")):
            return model
    except (OSError, ValueError):
        pass
    return DEFAULT_MODEL


def kind_of(card: sdk.AdapterCard) -> str:
    """Which model weighs a card: ``person`` (a card with a description or example prompts),
    ``person_header`` (a local file's header with training tags) or ``person_bare`` (names only)."""
    text = re.sub(r"https?://\S+|www\.\S+", " ", card.description or "")
    if len(text.strip()) >= 20 or any(p.strip() for p in card.example_prompts):
        return "person"
    return "person_header" if any(t.strip() for t in card.training_tags) else "person_bare"


def probability(model: Mapping[str, Any], feats: Mapping[str, float]) -> float:
    """The model's probability for ``feats``: a logistic ``{"bias": b, feature: w, ...}`` or boosted
    trees ``{"kind": "trees", "features": [...], "baseline": b, "trees": [[node, ...], ...]}``, where a
    node is ``[feature index, threshold, left, right, leaf value]`` (index -1: a leaf) and a row goes
    left where its value is at most the threshold (scikit-learn's convention)."""
    if model.get("kind") == "trees":
        x = [feats.get(name, 0.0) for name in model["features"]]
        z = float(model["baseline"])
        for tree in model["trees"]:
            node = tree[0]
            while node[0] >= 0:
                node = tree[node[2] if x[node[0]] <= node[1] else node[3]]
            z += node[4]
    else:
        z = model.get("bias", 0.0) + sum(w * feats.get(k, 0.0) for k, w in model.items() if k != "bias")
    return 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))
