"""English word classes for the concept splitter (small, hand-written lists; no NLP model).

Function words (prepositions, determiners incl. number words, auxiliaries, conjunctions) end noun
phrases; a few closed lists tell a noun phrase from its frame ("a group of", "in front of") and a
verb from a noun ("sits", "parked"). :func:`content_words`, :func:`singular` and :func:`head_noun`
are the helpers every composer matches words with.
"""

from __future__ import annotations

import functools
import re


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_LETTER = r"[0-9A-Za-z\u00C0-\u024F\u0370-\u03FF\u0400-\u04FF\u3040-\u30FF\u4E00-\u9FFF]"
#: A word: letters/digits, inner ' ’ . - allowed (linear: the inner class ends on a letter).
WORD_RE = re.compile(rf"{_LETTER}(?:[\w'’.\-]*{_LETTER})?")

PREPOSITIONS = _wordset("""
in on at near with under over above below behind beside besides next to inside into onto through across
along around by from of for against between toward towards during without among amongst beneath outside
past atop upon via within underneath alongside amid amidst like than off out up down after before since
until beyond
""")
SETTING_PREPS = _wordset("in on at inside under near beside behind atop within underneath amid amidst "
                         "among across along through over above below beneath outside against")
CONJUNCTIONS = _wordset("and or but while as that which who whom whose where when then so nor yet if "
                        "because though although how what why whether")
NUMBER_WORDS = _wordset("one two three four five six seven eight nine ten eleven twelve dozen dozens "
                        "hundred hundreds thousands several many few numerous multiple")
DETERMINERS = _wordset("""
a an the some any its his her their my our your this these those there here each every another other
it he she they we i you them him one's lots lot plenty bunch couple pair it's it’s others
""") | NUMBER_WORDS
AUX = _wordset("""
is are was were be been being am has have had having do does did can could will would should may might
must shall 's 're getting get gets got appears appear seems seem looks look
""")
FILLER = _wordset("very just also really quite together all both much several few various "
                  "different other same own such about ready visible able")
#: Size adjectives: no concept of their own and no part of one ("a large dog" → "dog").
SIZE_WORDS = _wordset("large big huge small")
#: Modal verbs: the next word is a verb ("can land").
MODALS = _wordset("can could will would should may might must shall")
#: Words after a verb that belong to it ("looking down", "knocked over").
PARTICLES = _wordset("up down over out off away back around apart")
#: Frame nouns of "X of Y": the concept is Y ("a group of skiers", "a plate of rice").
PARTITIVES = _wordset("""
group groups bunch bunches couple pair pairs lot lots set sets herd herds flock flocks pile piles stack
stacks row rows line lines number variety assortment collection crowd slice slices piece pieces plate
plates bowl bowls cup cups glass box boxes bag bags basket tray trays view views picture pictures photo
photos photograph photographs portrait portraits image images shot shots close closeup close-up display
kind kinds type types full filled made front top middle side sides edge back center centre bottom corner
end rest part inside outside
""")
#: A noun phrase of only one of these is no concept ("the background", "in the air", "in his hand").
GENERIC_NOUNS = _wordset("""
guy guys lady ladies someone somebody something adult adults background foreground air side sides ground
distance left right back front middle top bottom close picture image mouth head face hand hands
""")
ADJECTIVES = _wordset("""
red orange yellow green blue purple violet pink brown black white gray grey silver golden gold beige teal
cyan magenta dark light bright pale colorful colourful old young new ancient modern small large big huge
tiny giant little tall short long wide narrow empty full wet dry hot cold warm cute happy sad angry
beautiful pretty ugly fluffy furry shiny rusty wooden metal metallic glass stone plastic wooden broken
clean dirty busy crowded quiet calm foggy snowy rainy sunny cloudy misty glowing neon futuristic
medieval fantasy magical mysterious scary creepy spooky elegant fancy simple open closed cozy comfy messy
tidy grassy sandy rocky leafy windy stormy dusty muddy hairy curly lovely friendly lonely elderly nice
""")
#: Generic nouns for people (a class of the span score's features: the paper's composer often drops
#: them; "skier" or "chef" says more and is no member).
PERSON_WORDS = _wordset("""
man woman person people boy girl child kid guy lady gentleman teenager toddler adult someone friend
family couple crowd mother father son daughter brother sister
""")
#: Names of things that begin with a colour or another qualifier the span score trims ("a red panda" is
#: no panda that is red): kept whole wherever the prompt writes them.
COMPOUND_NOUNS = frozenset("""
red panda|red fox|arctic fox|blue whale|killer whale|black panther|white tiger|snow leopard|golden retriever
black widow|great white shark|white shark|blue jay|black bear|brown bear|grizzly bear|polar bear|teddy bear
red wine|white wine|green tea|black tea|black hole|white house|red carpet|golden gate bridge|red velvet cake
white dwarf|red giant|black swan|white rabbit|red riding hood|guinea pig|sea lion|sea turtle|hot dog
hot air balloon|fire truck|stained glass|white wolf|red dragon|black dragon|golden eagle|bald eagle
""".replace("\n", "|").split("|")) - {""}
#: Posture, support and light verbs (a class of the span score's features): the paper's composer seldom
#: makes a concept of "sitting" or "holding", often of "surfing" or "eating".
LIGHT_VERBS = _wordset("""
sit sitting sat sits stand standing stood stands lie lying lay laying lays lies hold holding holds held
wear wearing wears worn go going goes went look looking looks pose posing poses posed use using uses used
do doing does did try trying tries make making makes made show showing shows shown see seen seeing sees
walk walks come coming comes get getting gets got set sitting rest resting rests wait waiting waits
have having has had take taking takes taken keep keeping keeps stay staying stays talk talking talks
prepare preparing prepares contain containing contains cover covered covering filled park parked parking
place placed display displayed displaying
""")
#: Colour words (a class of the concept score's features).
COLORS = _wordset("red orange yellow green blue purple violet pink brown black white gray grey silver golden "
                  "gold beige teal cyan magenta tan maroon navy turquoise multicolored colorful colourful")
_ADJECTIVE_ENDINGS = ("ful", "ous", "ish", "ic", "ive", "less", "able", "ible", "al", "ed", "est")


def is_adjective_like(word: str) -> bool:
    """A known adjective or a word with an adjective ending ("beautiful", "wooden" no, "rustic" yes)."""
    w = word.lower()
    return w in ADJECTIVES or (len(w) > 4 and w.endswith(_ADJECTIVE_ENDINGS))
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
#: Common verbs whose inflected forms (-s, -ed) are rarely nouns: they end a noun phrase.
VERBS = _wordset("""
sit stand lie lay ride hold walk eat wait rest wear fly run sleep jump carry drive hang graze swim ski
surf pose smile watch talk throw catch swing hit prepare observe approach sneak gather cross pull push
lean fill cover surround stare stop park pile knock attach paint perch top use take show contain pass
travel go come head move roll climb fall float cut serve place sell hover overlook feature play grow peer
enter shine illuminate read write hug feed chase bite kiss fight dance sing cook bake wash clean open
close look drink kick touch reach cook sail fish shop skate skateboard snowboard race break appear seem
""")
#: Past participles without -ed: verbs when no noun follows ("is seen in the sky").
IRREGULAR_PAST = _wordset("seen written shown done made taken drawn grown thrown worn hung built held sat "
                          "stood lit spread left found known given sold driven ridden flown eaten fallen")
_LY_WORDS = _wordset("family belly jelly lily fly butterfly dragonfly firefly italy rally ally assembly july "
                     "bully gully monopoly anomaly supply holly dolly")
MEDIUM_PHRASES = frozenset("""
oil painting|acrylic painting|watercolor painting|watercolour painting|watercolor|watercolour|pixel art
pixelart|8-bit|16-bit|photo|photograph|photography|photorealistic|photorealism|realistic|hyperrealistic
polaroid|film photo|film grain|analog photo|35mm|dslr|sketch|pencil sketch|pencil drawing|charcoal drawing
charcoal|ink drawing|ink|line art|lineart|drawing|painting|illustration|digital art|digital painting
concept art|anime|manga|cartoon|comic|comic book|3d render|3d|render|cgi|octane render|unreal engine
low poly|isometric|claymation|clay|vector art|flat illustration|ukiyo-e|ukiyoe|impressionism|impressionist
expressionism|cubism|surrealism|surrealist|art nouveau|art deco|pop art|vaporwave|synthwave|cyberpunk
steampunk|dieselpunk|chibi|origami|papercut|paper cut|stained glass|mosaic|graffiti|cinematic|pastel
minimalist|minimalism|gothic|noir|vintage|retro|sticker|tarot card|woodcut|linocut|embroidery|chinese ink
sumi-e|gouache|fresco|mural|tapestry|blueprint|cel shading|cel shaded|toon|doodle|crayon|storybook
children's book illustration|poster|infographic|baroque|renaissance|ink wash|ink wash painting|ink and wash
35mm film|film still|kodak portra|portra 400|kodachrome|ektachrome|cinestill|fujifilm|tilt-shift|tilt shift
long exposure|double exposure|fisheye|macro photography|bokeh|depth of field
""".replace("\n", "|").split("|"))
#: A noun phrase ending in one of these is a style/medium ("ink wash painting", "concept art").
MEDIUM_HEADS = _wordset("painting paintings drawing drawings illustration illustrations art artwork sketch "
                        "render photo photograph photography print style aesthetic artstyle")
IRREGULAR = {"men": "man", "women": "woman", "children": "child", "people": "person", "mice": "mouse",
             "geese": "goose", "teeth": "tooth", "feet": "foot", "wolves": "wolf", "knives": "knife",
             "leaves": "leaf", "shelves": "shelf", "loaves": "loaf", "elves": "elf", "dwarves": "dwarf",
             "sheep": "sheep", "fish": "fish", "deer": "deer", "cacti": "cactus", "fungi": "fungus"}
_NO_SINGULAR = ("ss", "us", "is", "ous", "ics", "ness", "sis")
NOT_VERBS = _wordset("""
building buildings painting paintings ceiling king ring rings morning evening clothing wedding pudding string
strings wing wings thing things spring swing sing sling sibling icing frosting awning railing lightning
nothing something anything everything bedding stuffing sapling viking darling dumpling duckling
landing parking clearing dressing topping drawing drawings lighting shading rendering setting settings
earring earrings opening""")
_ED_NOT_VERBS = _wordset("speed steed breed seed weed hundred kindred sacred naked wicked beloved bed shed sled")


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


def is_function_word(word: str) -> bool:
    w = word.lower()
    return w in DETERMINERS or w in PREPOSITIONS or w in CONJUNCTIONS or w in AUX or w in FILLER


def content_words(text: str) -> list[str]:
    """Lower-case, singular content words of ``text`` (function words removed)."""
    return [form for form in map(_content_form, WORD_RE.findall(text.lower())) if form]


@functools.lru_cache(maxsize=1 << 17)
def _content_form(word: str) -> str:
    """The content form of one lower-case word ("" for a function word); cached, as words recur across
    the 150 cards the composer reads per prompt."""
    w = word.strip(".'’-")
    return singular(w) if w and not is_function_word(w) else ""


def is_ing(word: str) -> bool:
    """A present participle ("riding"), not a noun in -ing ("building", "morning")."""
    w = word.lower()
    return len(w) > 4 and w.endswith("ing") and w not in NOT_VERBS


def is_ed(word: str) -> bool:
    """A past form ("parked", "piled", "seen"): a verb when no noun follows it."""
    w = word.lower()
    return (len(w) > 4 and w.endswith("ed") and w not in _ED_NOT_VERBS) or w in IRREGULAR_PAST


def is_adverb(word: str) -> bool:
    """An adverb in -ly ("delicately"), not a noun or adjective ("family", "curly" before a noun)."""
    w = word.lower()
    return len(w) > 4 and w.endswith("ly") and w not in _LY_WORDS


def _verb_base(word: str) -> str:
    w = word.lower()
    for suffix, repl in (("ies", "y"), ("ied", "y"), ("es", ""), ("ed", ""), ("ed", "e"), ("s", ""), ("d", "")):
        if w.endswith(suffix) and w[: len(w) - len(suffix)] + repl in VERBS:
            return w[: len(w) - len(suffix)] + repl
    if len(w) > 4 and w.endswith("ed") and w[-3] == w[-4] and w[:-3] in VERBS:  # "stopped"
        return w[:-3]
    return w


def is_finite_verb(word: str, previous: str, following: str = "") -> bool:
    """``word`` after the noun ``previous`` is a verb: "bus sits", "giraffes stand", "picture depicts a".

    A word in -s after a singular noun and before a determiner is a verb whatever it is.
    """
    w = word.lower()
    if following in DETERMINERS and w.endswith("s") and not w.endswith(_NO_SINGULAR) and \
            singular(previous) == previous.lower() and not is_function_word(previous):
        return True
    base = _verb_base(w)
    if base not in VERBS or w.endswith("ed"):  # past forms: see is_ed
        return False
    if following in PARTICLES and previous and not is_function_word(previous):
        return True  # "a pitcher winds up", "a boy on a skateboard go over": a phrasal verb, agreement or not
    if w == base:  # "giraffes stand", "people sit": a plural subject
        p = previous.lower()
        return singular(p) != p
    return not w.endswith("s") or singular(previous) == previous.lower()  # "bus sits": a singular subject


def head_noun(text: str) -> str:
    """The last content word (English noun phrases end with their head)."""
    words = content_words(text)
    nouns = [w for w in words if w not in ADJECTIVES and not w.isdigit() and not is_ing(w)]
    return nouns[-1] if nouns else (words[-1] if words else "")
