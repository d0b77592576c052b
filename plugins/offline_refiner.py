"""Built-in refiner ``offline``: what an adapter does, its topic and a recommended weight, from the card alone.

Deterministic and instant (no model, no network). The description it writes is embedded together with
the title and tags, so it holds only informative text: the author's description without boilerplate
(links, thanks, sampler settings), trigger words, the top training tags and the subjects of the example
prompts (quality tags, weights syntax and ``<lora:...>`` tags removed).

Category: explicit Civitai category tags first (``utility``/``slider``, ``celebrity``, ``character``,
``clothing``, ``poses``, ...; Civitai's own category tag outranks a free "game character" tag; ``tool``
is a utility only with a utility keyword, :data:`TOOL_TAGS`). Without
one, small fitted models (``_offline_refiner_person.py``)
weighs the evidence of a character or real person (a person-like name in the trigger and title, a
franchise, prompts or training tags of one girl or boy with one hair colour; against: "style",
"outfit" or an animal in the title, a coined one-word trigger), then keyword evidence over title,
name, tags, triggers and description picks among the other categories.
Weight: the card's preferred weight > a "weight 0.6" phrase in the description > the median of
``<lora:NAME:W>`` values for this adapter in example prompts > 0.8 (``_offline_refiner_weight.py``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from stylus_ext import sdk

#: Civitai's own category tags (and close variants) → our category. Order = priority.
CATEGORY_TAGS: list[tuple[str, tuple[str, ...]]] = [
    ("utility", ("slider", "utility", "lcm", "detail tweaker", "sdxl turbo", "sdxl lightning", "hyper-sd")),
    ("celebrity", ("celebrity", "real person", "actress", "actor", "singer", "historical figure", "politician",
                   "youtuber", "athlete", "model (person)")),
    ("character", ("character", "characters", "anime character", "game character", "original character", "oc",
                   "vtuber", "waifu", "husbando", "cartoon character")),
    ("clothing", ("clothing", "clothes", "outfit", "costume", "fashion")),
    ("pose", ("pose", "poses", "posing")),
    ("action", ("action", "actions")),
    ("vehicle", ("vehicle", "vehicles")),
    ("animal", ("animal", "animals", "creature", "creatures")),
    ("building", ("building", "buildings", "architecture")),
    ("background", ("background", "backgrounds", "scenery", "landscape", "environment")),
    ("style", ("style", "art style", "artstyle", "styles", "artist style", "medium")),
    ("object", ("object", "objects", "item", "items", "prop", "props")),
    ("concept", ("concept", "concepts")),
]

#: Civitai's "tool" category: a utility only with a utility keyword ("Detail Tweaker", tag "noise
#: offset"); without one it is a design generator the prompt drives ("FlatIcon", "Avatar Frame
#: generator", "Black Stiletto Heels"), filed by its keywords like any card. On 11.8K real cards the
#: tag alone filed such cards, and bare "lightning"/"turbo" tags the character Lightning, as utilities
#: that only a pin could choose.
TOOL_TAGS = ("tool", "tools")

#: The category tags Civitai itself offers (an author picks one per card).
CIVITAI_CATEGORIES = frozenset({"character", "celebrity", "style", "concept", "clothing", "poses", "background",
                                "objects", "tool", "vehicle", "animal", "buildings", "assets", "action"})

#: Keyword evidence per category (word-boundary matches; a trailing ``*`` matches any ending).
KEYWORDS: dict[str, tuple[str, ...]] = {
    "utility": ("slider", "detail tweaker", "tweaker", "add detail", "add_detail", "more detail*", "lcm",
                "latent consistency", "sdxl turbo", "sd turbo", "turbo lora", "hyper-sd", "hyper sd", "hypersd",
                "sdxl lightning", "sdxl-lightning", "lightning lora", "few steps", "fewer steps", "offset noise",
                "noise offset", "contrast fix", "detail enhancer", "enhancer", "adjuster", "1 step*", "2 step*",
                "4 step*", "8 step*", "1-step*", "2-step*", "4-step*", "8-step*"),
    "style": ("style", "styles", "art style", "painting", "painted", "watercolor*", "watercolour*", "oil paint*",
              "impasto", "sketch*", "drawing", "illustration", "pixel art", "pixel", "lineart", "line art",
              "cel shading", "cel shaded", "ukiyo-e", "ukiyoe", "woodblock", "print", "aesthetic", "vaporwave",
              "synthwave", "low poly", "lowpoly", "3d render", "render", "claymation", "clay", "papercraft",
              "paper cut", "paper art", "stained glass", "film photo", "analog", "photograph*", "ink wash",
              "sumi-e", "ink", "comic", "manga", "cartoon", "artist", "art", "pastel", "gouache", "pencil",
              "charcoal", "crayon", "vector", "flat design", "pop art", "art nouveau", "art deco",
              "impressionis*", "surreal*", "cinematic", "anime", "retro", "pin-up", "graffiti", "mosaic",
              "engraving", "etching", "lithograph", "minimalis*", "noir", "chibi", "fantasy art"),
    "clothing": ("clothing", "clothes", "outfit*", "costume*", "dress", "dresses", "gown*", "armor", "armour",
                 "uniform*", "kimono", "yukata", "jacket*", "sweater*", "lingerie", "swimsuit*", "bikini*",
                 "hat", "hats", "shoes", "boots", "fashion", "techwear", "streetwear", "hoodie*", "skirt*",
                 "suit", "suits", "coat", "coats", "shirt*", "apron", "stockings", "gloves", "cloak", "robe*",
                 "wedding dress", "shiromuku", "cheongsam", "qipao", "hanfu", "maid", "knitwear", "wear",
                 "socks", "leotard*", "corset*", "bodysuit*", "bodystocking*", "mask", "masks", "attire",
                 "wearable", "pantyhose", "thighhighs", "leggings", "tights", "glasses", "earrings",
                 "necklace*", "choker*", "sneakers", "heels", "sandals", "scarf", "scarves"),
    "background": ("background*", "scenery", "landscape*", "cityscape*", "city", "skyline", "environment*",
                   "interior*", "forest*", "mountain*", "underwater", "ocean", "sea", "sky", "room", "street*",
                   "beach", "desert", "outer space", "jungle", "village", "cafe", "indoors", "outdoors",
                   "coral reef", "garden"),
    "building": ("building*", "architecture", "castle*", "cathedral*", "church*", "temple*", "shrine*",
                 "tower*", "house*", "palace*", "ruins", "skyscraper*", "torii", "pagoda*", "mansion*",
                 "bridge*", "lighthouse*"),
    "vehicle": ("vehicle*", "car", "cars", "muscle car", "train*", "locomotive*", "ship", "ships", "boat*",
                "motorcycle*", "motorbike*", "airplane*", "aircraft", "tank", "tanks", "spaceship*",
                "truck*", "bus", "mecha", "bicycle*", "helicopter*", "submarine*"),
    "animal": ("animal*", "cat", "cats", "kitten*", "dog", "dogs", "puppy", "puppies", "corgi*", "fox", "foxes",
               "bird*", "owl*", "fish", "koi", "horse*", "dragon*", "creature*", "wildlife", "pet", "pets",
               "wolf", "wolves", "tiger*", "lion*", "bear", "bears", "rabbit*", "bunny", "insect*",
               "butterfl*", "shark*", "whale*", "deer", "panda*", "monkey*", "frog*", "snake*",
               "shiba inu*", "husky", "huskies",
               "poodle*", "retriever*", "labrador*", "dachshund*", "pug", "pugs", "beagle*", "collie*", "terrier*",
               "maine coon", "siamese", "hamster*", "ferret*", "otter*", "raccoon*", "squirrel*", "penguin*"),
    "pose": ("pose", "poses", "posing", "sitting", "standing", "lying", "kneeling", "crossed legs", "squatting",
             "looking back", "from behind", "hands on hips", "leaning", "jump pose", "arms up", "contrapposto",
             "pov", "all fours", "from above", "from below", "on back", "on stomach", "bent over", "hugging",
             "selfie", "peace sign", "arms crossed", "crossed arms", "straddling", "carrying", "head tilt",
             "looking up", "hand on hip", "spread arms", "stretching", "reaching", "lying down"),
    "action": ("action", "fighting", "fight", "running", "dancing", "dance", "battle", "swinging", "eating",
               "drinking", "motion", "combat", "sword fight", "punching", "kicking", "swimming", "flying"),
    "object": ("object*", "prop", "props", "item*", "weapon*", "camera*", "bottle*", "potion*", "food",
               "plant", "bonsai", "flower*", "jewelry", "jewellery", "furniture", "book", "books", "cup",
               "cups", "sword", "swords", "gun", "guns", "guitar*", "instrument*", "lamp*", "clock*", "toy*"),
    "celebrity": ("celebrity", "likeness", "real person", "actress", "actor", "singer", "president", "politician",
                  "historical figure", "famous person", "athlete"),
    "character": ("character lora", "character", "original character", "from the anime", "from the game",
                  "from the manga", "vtuber", "waifu"),
    "concept": ("concept", "effect", "glow*", "lighting", "made of", "miniature", "double exposure",
                "transformation", "fire", "embers", "magic", "crystal*"),
}

#: Words that never make a name (boilerplate, model jargon, common prompt words).
_JARGON_WORDS = (
    "lora loras lycoris locon loha lokr dora model models v1 v2 v3 v4 v5 v6 xl sdxl sd sd15 sd1 pony "
    "ponyxl pdxl illustrious illu ill noob noobai flux epoch last final beta alpha version ver pack anime "
    "realistic style the a an of and in on at with for by from to is it my your his her their new old "
    "best high low quality detailed masterpiece score up girl boy girls boys woman man women men person "
    "people 1girl 1boy solo cute big small long short black white red blue green yellow pink purple "
    "orange brown grey gray silver gold golden dark light bright hair eyes eye skin face body hand hands "
    "default outfit dress uniform school casual swim swimsuit bikini pajamas inner gym commission season "
    "part official tag tags trigger"
)
_JARGON = set(_JARGON_WORDS.split())


grammar = sdk.prompt  # the one prompt grammar


def _generic(term: str) -> bool:
    """A quality or generic tag (sdk.prompt's one list): no evidence of what an adapter does."""
    return grammar.is_quality(term) or grammar.is_common_tag(term)


_BOILERPLATE = re.compile(
    r"patreon|ko-?fi|discord|buy me|support me|follow me|twitter|instagram|https?://|www\.|"
    r"\bupdate|changelog|thank|please|credit|licen[cs]e|review|feedback|donat|"
    r"sampler|\bcfg\b|\bsteps\b|clip skip|hires|upscal|negative|recommended|\bweights?\b|strength|"
    r"trigger|activation|\bepochs?\b|trained on|training|dataset|merge|don'?t forget|enjoy|v\d+(?:\.\d+)?\b",
    re.IGNORECASE,
)


def _kw_pattern(words: Iterable[str]) -> re.Pattern[str]:
    parts = []
    for w in words:
        star = w.endswith("*")
        core = re.escape(w.rstrip("*")).replace(r"\ ", r"[\s_-]+")
        parts.append(core + (r"\w*" if star else ""))
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(parts) + r")(?![a-z0-9])", re.I)


_KW = {cat: _kw_pattern(words) for cat, words in KEYWORDS.items()}
_PERSON = sdk.sibling_module(__file__, "_offline_refiner_person")
_MODEL = _PERSON.load_model()
_WEIGHT = sdk.sibling_module(__file__, "_offline_refiner_weight")
_norm, _clean_html, recommended_weight = _WEIGHT.norm, _WEIGHT.clean_html, _WEIGHT.recommended_weight


#: Descriptive words that are no evidence of a category but are never names either.
_DESCRIPTIVE = [
    "cyberpunk", "steampunk", "neon", "futuristic", "scifi", "sci", "fi", "gothic", "fantasy", "horror", "kawaii",
    "glowing", "fluffy", "cozy", "vintage", "modern", "ancient", "medieval", "victorian", "japanese", "chinese",
    "korean", "american", "european", "magic", "magical", "tiny", "giant", "cute", "beautiful", "epic", "dramatic",
    "soft", "hard",
    *_PERSON.COMMON_WORDS.split(),
]
_LEXICON = {w.rstrip("*") for words in KEYWORDS.values() for phrase in words for w in phrase.split()}
_LEXICON.update(_DESCRIPTIVE)
_LEXICON -= {"shiba", "inu", "koi"}  # keyword words that are also common given or family names
_NAMES = _PERSON.NameRules(jargon=_JARGON, lexicon=_LEXICON)
_character_evidence = _NAMES.character_evidence
_PRIORITY = [c for c, _ in CATEGORY_TAGS]




def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+|\s*\.\s*\.\s*|\n+", text)
    return [p.strip(" .") for p in parts if p and p.strip(" .")]


def clean_description(text: str, limit: int = 320, title: str = "") -> str:
    """The author's description as plain text without links, thanks, settings, weight advice and repeats."""
    kept: list[str] = []
    seen = {_norm(title)} if title else set()
    total = 0
    for raw in _sentences(_clean_html(text)):
        sentence = raw
        if title and raw.lower().startswith(title.lower() + " ") and len(raw) > len(title) + 20:
            sentence = raw[len(title):].strip()
        key = _norm(sentence)
        if _BOILERPLATE.search(sentence) or len(sentence) < 3 or key in seen:
            continue
        seen.add(key)
        if total + len(sentence) > limit:
            if not kept:
                kept.append(sentence[:limit].rsplit(" ", 1)[0] + "…")
            break
        kept.append(sentence)
        total += len(sentence) + 2
    return ". ".join(kept) + ("." if kept and not kept[-1].endswith(("…", "!", "?")) else "")


def prompt_terms(prompt: str) -> list[str]:
    """The informative comma-separated terms of a prompt: no ``<...>`` tags, weights or quality tags."""
    terms = [segment.text.strip(" .:_") for segment in grammar.segments(prompt)]
    return [term for term in terms if term and not _generic(term) and len(term) <= 80]


def _dedupe(items: Iterable[str], seen: set[str]) -> list[str]:
    out = []
    for item in items:
        key = _norm(item)
        if key and key not in seen:
            seen.add(key)
            out.append(item)
    return out


class OfflineRefiner(sdk.Refiner):
    """Card → description, category, weight with rules only (the default refiner)."""

    name = "offline"
    version = "9"  # bumped whenever its output changes: catalogs refine their cards again
    description = "Deterministic rules over the card: cleaned description, triggers, training tags, examples."
    env_prefix = "REFINER_OFFLINE"
    options = (
        sdk.Option("max_chars", int, 700, "Maximum length of the written description."),
        sdk.Option("max_examples", int, 3, "Example prompts quoted in the description."),
    )

    def refine(self, card: sdk.AdapterCard) -> sdk.Refinement:
        category = categorize(card)
        return sdk.Refinement(description=self.describe(card, category), category=category,
                              weight=recommended_weight(card))

    def describe(self, card: sdk.AdapterCard, category: str = "concept") -> str:
        limit = max(100, int(self.config["max_chars"]))
        title = (card.title or card.name or "").strip()
        seen = {_norm(title), _norm(card.name)} | {_norm(t) for t in card.tags}
        parts: list[str] = []
        desc = clean_description(card.description, limit=min(360, limit // 2), title=title)
        if desc:
            parts.append(desc)
        else:
            parts.append(f"{category.capitalize()} adapter: {title}.")
        triggers = [t.strip() for t in card.trigger_words if t.strip() and len(t) <= 80]
        if card.activation_text and len(card.activation_text) <= 200:
            triggers += [t.strip() for t in re.split(r"[,\n]", card.activation_text) if t.strip()]
        triggers = _dedupe((" ".join(prompt_terms(t)) or t for t in triggers), seen)[:6]
        if triggers:
            parts.append("Trigger: " + ", ".join(triggers) + ".")
        training = [t for t in card.training_tags if len(t) <= 40 and len(t.split()) <= 5
                    and not _generic(t)]
        training = _dedupe(training, seen)[:8]
        if training:
            parts.append("Training tags: " + ", ".join(training) + ".")
        examples = []
        for prompt in card.example_prompts:
            terms = _dedupe(prompt_terms(prompt), seen)
            if terms:
                examples.append(", ".join(terms)[:160].rstrip(", "))
            if len(examples) >= int(self.config["max_examples"]):
                break
        if examples:
            parts.append("Examples: " + "; ".join(examples) + ".")
        text = " ".join(parts)
        return text if len(text) <= limit else text[:limit - 1].rsplit(" ", 1)[0] + "…"


# -- category ---------------------------------------------------------------------------------


def categorize(card: sdk.AdapterCard) -> str:
    """One of :data:`sdk.CATEGORIES` from the card's tags, words and names; a character call on a card
    whose title names a style (:func:`titled_style`) is a style."""
    category = _categorize(card)
    if category in ("character", "celebrity") and titled_style(card.title or ""):
        return "style"
    return category


_BRACKETED = re.compile(r"\([^)]*\)|\[[^\]]*\]|【[^】]*】|（[^）]*）|\{[^}]*\}")
_TITLE_SEGMENT = re.compile(r"\s[|/-]\s|\|")
_STYLE_TAIL = re.compile(r"(?i)\bstyle(?:\s+(?:lora|lycoris|locon|v?\d[\w.]*))*\s*$")
#: A first segment that names something beside the style: "Holo + Outfits & Style", "Mitsuri Kanroji
#: Anime style" (a character drawn as in her anime), "Kitsune Character/Style".
_NOT_STYLE_ONLY = re.compile(r"(?i)character|outfit|costume|[&+]|\band\b|\b(?:anime|game|cartoon)\s+style")


def titled_style(title: str) -> bool:
    """The title's first segment (brackets dropped) ends in "style" and names nothing else ("Starry
    Style (v3.0)", "Wada Arco style V3.0 LORA", "【Art Style】RyanReos Style"; not "Shiro LoRA | No Game
    No Life (2.0 Anime Style)", "Holo + Outfits & Style", "Kitsune Character/Style LoRA"). On the 11.8K
    real cards 74 cards titled with "style" were filed as characters, about half of them styles whose
    authors tagged them "character"."""
    first = next((seg.strip() for seg in _TITLE_SEGMENT.split(_BRACKETED.sub(" ", title)) if seg.strip()), "")
    return bool(_STYLE_TAIL.search(first)) and not _NOT_STYLE_ONLY.search(first) and len(first.split()) > 1


def _categorize(card: sdk.AdapterCard) -> str:
    tags = [t.strip().lower() for t in card.tags if t.strip()]
    # Civitai's own category tag (one per card) outranks free tags: a style tagged "game character".
    civitai = any(t in CIVITAI_CATEGORIES and t not in ("character", "celebrity") for t in tags)
    for category, words in CATEGORY_TAGS:
        if category in ("style", "object", "concept", "background"):
            continue  # weak tags: decided by the keyword evidence below
        if category in tags if civitai and category in ("character", "celebrity") else any(t in words for t in tags):
            return category
    scores = _keyword_scores(card, tags)
    tool = any(t in TOOL_TAGS for t in tags)
    if tool and scores["utility"] >= 1:
        return "utility"  # a Civitai "tool" that tweaks the image (a detail slider, an offset-noise LoRA)
    tagged = tool or any(t in words for t in tags for _, words in CATEGORY_TAGS)
    kind = _PERSON.kind_of(card)
    if scores["utility"] >= 3 and (tagged or kind != "person"):
        return "utility"
    if not tagged:  # the author named no category: weigh the evidence of a character or real person,
        # on a card with text before its utility keywords ("Lightning | Final Fantasy XIII").
        person, celebrity = person_call(card)
        threshold = _MODEL["threshold"].get(kind, _MODEL["threshold"]["person"])
        if person >= threshold:
            return "celebrity" if celebrity >= _MODEL["threshold"].get("celebrity", 0.5) else "character"
    if scores["utility"] >= 3:
        return "utility"
    others = [c for c in _PRIORITY if c not in ("character", "celebrity")]
    best = max(others, key=lambda c: (scores[c], -_PRIORITY.index(c)))
    return best if scores[best] >= 1.0 else "concept"


def _keyword_scores(card: sdk.AdapterCard, tags: list[str]) -> dict[str, float]:
    """Keyword evidence per category: title x3, tags x2, triggers x1.5, description (capped)."""
    title, trigger_list, description = _PERSON.card_texts(card)
    triggers = " , ".join(trigger_list)
    scores: dict[str, float] = dict.fromkeys(_PRIORITY, 0.0)
    for category, words in CATEGORY_TAGS:
        if any(t in words for t in tags):
            scores[category] += 4
    for category, pattern in _KW.items():
        scores[category] += 3 * len(_found(category, title))
        scores[category] += 2 * sum(1 for t in tags if pattern.search(t))
        scores[category] += 1.5 * len(_found(category, triggers))
        per_hit = 1.0 if category in ("celebrity", "character") else 0.5
        scores[category] += per_hit * min(3, len(_found(category, description)))
    title_style = re.search(r"\bstyle\s*(?:$|[\(\[|\-–:,])", title.strip(), re.I)
    if title_style or re.search(r"\bin the style of\b", title, re.I):
        scores["style"] += 3
    return scores


@functools.lru_cache(maxsize=1024)
def _found(category: str, text: str) -> frozenset[str]:
    """The distinct keywords of ``category`` in ``text`` (cached: the call and the features share them)."""
    return frozenset(m.lower() for m in _KW[category].findall(text)) if text else frozenset()


def person_features(card: sdk.AdapterCard) -> dict[str, float]:
    """The evidence :func:`person_call` weighs (see ``_offline_refiner_person.py``), with the word
    model's evidence as ``text_words`` when the fitted file has one for this kind of card."""
    feats = _PERSON.features(card, found=_found, rules=_NAMES)
    words = _MODEL.get("words_" + _PERSON.kind_of(card))
    if isinstance(words, dict):
        feats.update(_PERSON.word_features(words, _PERSON.card_words(card)))
    return feats


def person_call(card: sdk.AdapterCard) -> tuple[float, float]:
    """(probability the adapter is a character or real person, probability such a one is a real person)."""
    feats = person_features(card)
    if (max(feats["title_animal"], feats["title_thing"]) and not feats["subject"] and not feats["franchise_title"]
            and not feats["title_full_name"] and (feats["trig_coined"] or not feats["name_evidence"])):
        return 0.0, 0.0  # an animal or thing in the title, no girl or boy in prompts or training tags, no name
        # (a first and last name is one: "Megan Fox")
    kind = _PERSON.kind_of(card)
    person = _MODEL.get(kind, _MODEL["person"])
    celebrity = _MODEL.get(kind.replace("person", "celebrity"), _MODEL["celebrity"])
    return _PERSON.probability(person, feats), _PERSON.probability(celebrity, feats)


@sdk.hookimpl
def register_refiners(register):  # type: ignore[no-untyped-def]
    register(OfflineRefiner)
