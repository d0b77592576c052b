"""A generated adapter catalogue (~260 cards) and labelled prompts for the composer benchmark.

Cards are written from templates across all categories with realistic noise: titles with version
suffixes and base-model markers, missing trigger words, empty or generic author descriptions, and
DISTRACTORS — look-alikes of the same family (okapi vs giraffe, husky vs wolf), narrower variants
(a corgi-in-a-sweater card), broad "collection" cards, unnamed characters, NSFW and utility cards.

Prompts come in kinds: ``single``/``multi`` (captions naming catalogue things, sometimes with
synonyms), ``style`` (style phrases), ``tags`` (comma-separated WebUI style), ``character``
(names a character), ``unnamed`` (describes a character without naming it: should pick no
character), ``lookalike`` (a look-alike's subject that has no adapter of its own), ``none``
(nothing in the catalogue fits). Each labelled prompt lists adapter names that SHOULD be chosen
and names that must NOT be.

    python benchmarks/gen_catalog.py   # rewrites benchmarks/data/labelled_prompts_generated.jsonl
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from stylus_ext import sdk

DATA = Path(__file__).resolve().parent / "data"
SEED = 20240428

# (key, title words, category, tags, description, synonyms usable in prompts)
THINGS: list[tuple[str, str, str, list[str], str, list[str]]] = []


def _add(category: str, rows: list[tuple[str, str, list[str]]]) -> None:
    for title, desc, syn in rows:
        key = title.lower().replace(" ", "_").replace("-", "_").replace("'", "")
        THINGS.append((key, title, category, title.lower().split(), desc, syn))


_add("animal", [
    ("Giraffe", "tall giraffes with long necks and spotted coats", ["giraffe"]),
    ("Okapi", "the okapi, a forest animal with zebra-striped legs related to the giraffe", ["okapi"]),
    ("Zebra", "zebras with black and white stripes on the plains", ["zebra"]),
    ("Siberian Husky", "husky dogs with blue eyes and thick fur", ["husky"]),
    ("Gray Wolf", "wild gray wolves in the wilderness", ["wolf"]),
    ("Red Panda", "red pandas with ringed tails in trees", ["red panda"]),
    ("Snow Leopard", "snow leopards with thick spotted fur in the mountains", ["snow leopard"]),
    ("Cheetah", "cheetahs sprinting on the savanna", ["cheetah"]),
    ("Emperor Penguin", "emperor penguins on antarctic ice", ["penguin"]),
    ("Barn Owl", "barn owls with heart-shaped white faces", ["barn owl", "owl"]),
    ("Octopus", "octopus with curling tentacles", ["octopus"]),
    ("Hummingbird", "tiny iridescent hummingbirds hovering at flowers", ["hummingbird"]),
    ("Axolotl", "pink axolotls with frilly gills", ["axolotl"]),
    ("Highland Cow", "shaggy highland cattle with long horns", ["highland cow"]),
    ("Monarch Butterfly", "orange monarch butterflies", ["butterfly"]),
    ("Sea Turtle", "sea turtles swimming in the ocean", ["sea turtle", "turtle"]),
    ("Chameleon", "colorful chameleons on branches", ["chameleon"]),
    ("Jellyfish", "glowing translucent jellyfish", ["jellyfish"]),
    ("Eastern Dragon", "long serpentine chinese dragons among clouds", ["chinese dragon"]),
    ("Phoenix", "a phoenix bird of fire rising from flames", ["phoenix"]),
])
_add("style", [
    ("Watercolor", "loose watercolor painting with soft bleeding colors on paper", ["watercolor"]),
    ("Oil Painting", "thick oil painting brush strokes on canvas", ["oil painting"]),
    ("Pixel Art", "crisp retro pixel art sprites", ["pixel art"]),
    ("Ukiyo-e", "japanese ukiyo-e woodblock prints", ["ukiyo-e"]),
    ("Vaporwave", "pink and teal vaporwave aesthetic with statues and grids", ["vaporwave"]),
    ("Art Nouveau", "art nouveau posters with ornate floral frames", ["art nouveau"]),
    ("Pencil Sketch", "graphite pencil sketch drawings", ["pencil sketch"]),
    ("Low Poly", "low poly 3d renders with flat shaded facets", ["low poly"]),
    ("Claymation", "stop motion clay figures", ["claymation"]),
    ("Stained Glass", "stained glass window art with lead lines", ["stained glass"]),
    ("Ghibli Anime", "soft painted anime scenery like studio ghibli films", ["studio ghibli", "ghibli"]),
    ("Steampunk", "brass gears, steam machines and victorian steampunk design", ["steampunk"]),
    ("Comic Book", "bold ink outlines and halftone comic book art", ["comic book"]),
    ("Polaroid Photo", "instant polaroid photographs with white frames", ["polaroid"]),
    ("Isometric", "isometric diorama renders", ["isometric"]),
    ("Charcoal Drawing", "smudged charcoal drawings", ["charcoal"]),
    ("Paper Cut", "layered paper cut art with shadows", ["paper cut"]),
    ("Synthwave", "retro 80s synthwave neon sunsets and grids", ["synthwave"]),
])
_add("background", [
    ("Enchanted Forest", "magical glowing forests with mushrooms and fog", ["enchanted forest"]),
    ("Snowy Mountains", "snowy mountain peaks and alpine landscapes", ["snowy mountains"]),
    ("Desert Dunes", "golden sand dunes in a vast desert", ["desert", "dunes"]),
    ("Tropical Beach", "tropical beaches with palm trees and turquoise water", ["tropical beach", "beach"]),
    ("Coral Reef", "colorful underwater coral reefs", ["coral reef"]),
    ("Cyberpunk City", "neon-lit futuristic city streets at night in the rain", ["cyberpunk city"]),
    ("Space Nebula", "colorful nebulae and stars in outer space", ["nebula"]),
    ("Cozy Library", "warm libraries full of old books and armchairs", ["library"]),
    ("Japanese Garden", "zen gardens with koi ponds and maple trees", ["japanese garden"]),
    ("Volcano", "erupting volcanoes with lava flows", ["volcano"]),
    ("Ice Cave", "blue glacial ice caves", ["ice cave"]),
    ("Wheat Field", "golden wheat fields at sunset", ["wheat field"]),
])
_add("building", [
    ("Gothic Cathedral", "gothic cathedrals with spires and rose windows", ["cathedral"]),
    ("Lighthouse", "lighthouses on rocky coasts", ["lighthouse"]),
    ("Pagoda", "multi-tiered asian pagodas", ["pagoda"]),
    ("Windmill", "old dutch windmills in fields", ["windmill"]),
    ("Treehouse", "wooden treehouses in big trees", ["treehouse"]),
    ("Log Cabin", "rustic log cabins in the woods", ["log cabin", "cabin"]),
    ("Egyptian Pyramid", "ancient egyptian pyramids", ["pyramid"]),
    ("Medieval Castle", "stone medieval castles with towers", ["castle"]),
])
_add("vehicle", [
    ("Steam Locomotive", "black steam trains with smoke", ["steam locomotive", "steam train"]),
    ("Pirate Ship", "wooden pirate ships with sails", ["pirate ship"]),
    ("Vintage Motorcycle", "classic vintage motorcycles", ["motorcycle"]),
    ("Hot Air Balloon", "colorful hot air balloons in the sky", ["hot air balloon"]),
    ("Submarine", "submarines under the sea", ["submarine"]),
    ("Airship", "floating zeppelin airships", ["airship"]),
    ("Muscle Car", "american muscle cars", ["muscle car"]),
])
_add("clothing", [
    ("Kimono", "traditional japanese kimono robes", ["kimono"]),
    ("Samurai Armor", "lacquered samurai armor", ["samurai armor"]),
    ("Knit Sweater", "cozy chunky knit sweaters", ["sweater"]),
    ("Ball Gown", "elegant victorian ball gowns", ["ball gown"]),
    ("Leather Jacket", "black leather biker jackets", ["leather jacket"]),
    ("Spacesuit", "astronaut spacesuits with helmets", ["spacesuit"]),
    ("Wedding Dress", "white lace wedding dresses", ["wedding dress"]),
    ("Knight Armor", "shining plate armor of knights", ["knight armor", "plate armor"]),
])
_add("object", [
    ("Bonsai", "miniature bonsai trees in pots", ["bonsai"]),
    ("Pocket Watch", "antique golden pocket watches", ["pocket watch"]),
    ("Potion Bottles", "glowing fantasy potion bottles", ["potion"]),
    ("Crystal Ball", "a fortune teller's crystal ball", ["crystal ball"]),
    ("Paper Lantern", "glowing paper lanterns at a festival", ["lantern"]),
    ("Electric Guitar", "electric guitars", ["guitar"]),
    ("Teapot", "ornate porcelain teapots", ["teapot"]),
])
_add("concept", [
    ("Bioluminescence", "glowing bioluminescent light in the dark", ["bioluminescent"]),
    ("Double Exposure", "double exposure photo blending a portrait with a landscape", ["double exposure"]),
    ("Made of Crystal", "objects made of translucent crystal", ["made of crystal", "crystal"]),
    ("Floating Islands", "floating islands in the sky", ["floating islands"]),
    ("Glitch Art", "digital glitch distortion effects", ["glitch"]),
    ("Tilt-Shift", "tilt-shift miniature photography", ["tilt-shift"]),
])
_add("pose", [
    ("Sitting Cross-legged", "a person sitting with crossed legs", ["sitting cross-legged"]),
    ("Midair Jump", "dynamic jumping in midair", ["jumping"]),
    ("Yoga Pose", "yoga poses and stretches", ["yoga"]),
])
_add("action", [
    ("Sword Fighting", "dynamic sword fighting action", ["sword fight", "sword fighting"]),
    ("Ballet Dancing", "ballet dancers on pointe", ["ballet"]),
    ("Surfing", "surfers riding big waves", ["surfing", "surfer"]),
])

# invented characters (name, look) and celebrities (name, job)
CHARACTERS = [("Aria Vesper", "silver-haired elf archer in green"), ("Kael Dunmore", "scarred red-haired mercenary"),
              ("Mira Solenne", "blue-haired magical girl with a star wand"),
              ("Captain Orrin Vale", "one-eyed pirate captain with a parrot"),
              ("Yuki Hanabira", "pink-haired shrine maiden"),
              ("Doctor Zeph", "mad scientist in a lab coat with goggles")]
CELEBRITIES = [("Elena Marquez", "actress"), ("Jonah Whitfield", "singer"), ("Priya Castellanos", "tennis player")]
UTILITY = ["Detail Slider", "Brightness Slider", "LCM Speed LoRA", "Turbo Sampler Fix", "Add More Details",
           "Contrast Fix", "Age Slider"]
NSFW = ["Lace Lingerie", "Boudoir Pinup", "Bikini Beach"]
BROAD = [("Animals Collection", "animal", "all kinds of animals, pets and wildlife"),
         ("Fantasy Everything", "concept", "fantasy creatures, castles, magic and landscapes"),
         ("Better Backgrounds", "background", "improves any background scenery"),
         ("Art Styles Mix", "style", "a mix of many art styles")]
NARROW = [("Corgi in Knit Sweater", "animal", "corgi dogs wearing knit sweaters", ["corgi", "sweater"]),
          ("Giraffe Calf Plush Toy", "object", "plush toy of a baby giraffe", ["giraffe plush"]),
          ("Lighthouse Keeper Portrait", "concept", "portrait of an old lighthouse keeper", ["lighthouse keeper"]),
          ("Castle Ruins at Night", "building", "crumbling castle ruins under moonlight", ["castle ruins"]),
          ("Watercolor Cats Only", "style", "watercolor paintings of cats", ["watercolor cat"])]
GENERIC_DESC = ["", "My first LoRA, please leave a review!", "Trained on 40 images. Use weight 0.6-0.8.",
                "Works best with a good checkpoint. Have fun!", ""]
TITLE_FORMS = ["{t}", "{t} LoRA", "{t} | SD1.5", "{t} v2", "{t} (LoRA)", "{t} - concept"]


def _name(rng: random.Random, key: str) -> str:
    form = rng.choice(["{k}", "{k}_v1", "{k}-lora", "{K}", "{k}_sd15"])
    camel = "".join(p.capitalize() for p in key.split("_"))
    return form.format(k=key, K=camel)


def make_cards(seed: int = SEED) -> list[sdk.AdapterCard]:
    """The generated catalogue (deterministic for ``seed``)."""
    rng = random.Random(seed)
    cards: list[sdk.AdapterCard] = []

    def card(name: str, title: str, category: str, tags: list[str], desc: str, triggers: list[str],
             *, nsfw: bool = False) -> None:
        if rng.random() < 0.35:
            desc = rng.choice(GENERIC_DESC)  # author descriptions are often empty or useless
        if rng.random() < 0.3:
            triggers = []
        if rng.random() < 0.25:
            tags = []
        examples = (f"masterpiece, best quality, {triggers[0] if triggers else title.lower()}, detailed",) \
            if rng.random() < 0.6 else ()
        cards.append(sdk.AdapterCard(
            source="bench", name=name, title=title, path=f"/bench/{name}.safetensors", base_model="SD1",
            description=desc, tags=tuple(dict.fromkeys([category, *tags])), trigger_words=tuple(triggers),
            example_prompts=examples, nsfw=nsfw, civitai_model_id=100000 + len(cards)))

    for key, title, category, tags, desc, syn in THINGS:
        for variant in range(2 if category in ("style", "background") else 1):
            t = rng.choice(TITLE_FORMS).format(t=title) if variant == 0 else f"{title} Style XL"
            name = _name(rng, key) + ("" if variant == 0 else "_alt")
            card(name, t, category, tags, f"{desc}." if variant == 0 else f"Another take on {desc}.", [syn[0]])
    for cname, look in CHARACTERS:
        key = cname.lower().replace(" ", "_")
        card(_name(rng, key), f"{cname} (Original Character)", "character", ["character", "original character"],
             f"{cname}, a {look}.", [cname.lower()])
    for cname, job in CELEBRITIES:
        key = cname.lower().replace(" ", "_")
        card(_name(rng, key), cname, "celebrity", ["celebrity", job], f"Likeness of the {job} {cname}.",
             [cname.lower()])
    for title in UTILITY:
        key = title.lower().replace(" ", "_")
        card(_name(rng, key), title, "utility", ["utility", "tool"], f"{title}: a tool adapter.", [])
    for title in NSFW:
        key = title.lower().replace(" ", "_")
        card(_name(rng, key), title, "clothing", ["nsfw", "sexy"], f"{title} outfits.", [title.lower()], nsfw=True)
    for title, category, desc in BROAD:
        key = title.lower().replace(" ", "_")
        card(_name(rng, key), title, category, [category], f"{desc}.", [])
    for title, category, desc, trig in NARROW:
        key = title.lower().replace(" ", "_")
        card(_name(rng, key), title, category, [category], f"{desc}.", trig)
    # filler: many unrelated adapters so the catalogue has ~260 entries and retrieval has to work
    fillers = ["Cherry Blossom Petals", "Neon Signs", "Rainy Window", "Autumn Leaves", "Foggy Harbor",
               "Sunflower Field", "Crown Jewels", "Mechanical Wings", "Lava Lamp", "Knitted Toys", "Chess Pieces",
               "Old Typewriter", "Vinyl Records", "Street Food Stall", "Neon Katana", "Clockwork Owl",
               "Frozen Waterfall", "Mushroom House", "Candy Land", "Retro Arcade", "Bamboo Forest",
               "Terracotta Warriors", "Aurora Borealis", "Thunderstorm", "Origami Cranes", "Sand Castle",
               "Ice Sculpture", "Tattoo Sleeves", "Victorian Lamp Post", "Circus Tent"]
    for i, title in enumerate(fillers):
        key = title.lower().replace(" ", "_")
        category = ["concept", "object", "background"][i % 3]
        for v in range(3):
            t = title if v == 0 else f"{title} ({['Realistic', 'Anime', 'Painterly', 'XL'][(i + v) % 4]})"
            card(_name(rng, key) + ("" if v == 0 else f"_{v}"), t, category, title.lower().split(),
                 f"{title.lower()} in detail.", [title.lower()])
    return cards


def make_prompts(seed: int = SEED) -> list[dict]:
    rng = random.Random(seed + 1)
    cards = make_cards(seed)
    names_of: dict[str, list[str]] = {}
    for c in cards:
        low = c.title.lower()
        for key, title, *_ in THINGS:
            t = title.lower()
            if low in {f.format(t=t).lower() for f in TITLE_FORMS} | {f"{t} style xl"}:
                names_of.setdefault(key, []).append(c.name)
    things = {key: (title, category, syn) for key, title, category, _, _, syn in THINGS}
    char_names = {c.title.split(" (")[0].lower(): c.name for c in cards if "Original Character" in c.title}
    celeb = {c.title.lower(): c.name for c in cards if c.tags and c.tags[0] == "celebrity"}
    utility = [c.name for c in cards if c.tags and c.tags[0] == "utility"]
    nsfw = [c.name for c in cards if c.nsfw]
    broad = [c.name for c in cards if c.title in {b[0] for b in BROAD}]
    lookalike_pairs = [("giraffe", "okapi"), ("gray_wolf", "siberian_husky"), ("cheetah", "snow_leopard"),
                       ("zebra", "okapi"), ("lighthouse", "windmill")]
    prompts: list[dict] = []
    forbid_always = utility + nsfw + broad + list(char_names.values()) + list(celeb.values())

    def add(prompt: str, groups: list[list[str]], kind: str, forbid: list[str] | None = None) -> None:
        """``groups``: one list of acceptable adapter names per concept that should get an adapter."""
        groups = [sorted(set(g)) for g in groups if g]
        allowed = {n for g in groups for n in g}
        f = [n for n in [*forbid_always, *(forbid or [])] if n not in allowed]
        prompts.append({"catalog": "generated", "prompt": prompt, "expect": groups,
                        "forbid": sorted(set(f)), "kind": kind})

    subjects = [k for k, (_, c, _) in things.items() if c in ("animal", "vehicle", "object", "building")]
    settings = [k for k, (_, c, _) in things.items() if c == "background"]
    styles = [k for k, (_, c, _) in things.items() if c == "style"]
    clothes = [k for k, (_, c, _) in things.items() if c == "clothing"]
    narrow = [(c.title.lower(), c.name) for c in cards if c.title in {n[0] for n in NARROW}]
    for key in subjects:
        title, _, syn = things[key]
        near = [n for t, n in narrow if title.lower().split()[-1] in t]
        add(f"a photo of a {rng.choice(syn)}", [names_of.get(key, [])], "single", near)
    for _ in range(30):
        s, b, st = rng.choice(subjects), rng.choice(settings), rng.choice(styles)
        add(f"a {rng.choice(things[s][2])} in the {rng.choice(things[b][2])}, {rng.choice(things[st][2])} style",
            [names_of.get(s, []), names_of.get(b, []), names_of.get(st, [])], "multi")
    for st in styles:
        form = rng.choice(["a portrait of an old man in the style of {x}", "a quiet village street, {x}",
                           "a bowl of fruit, {x} style", "a cat sleeping on a sofa, {x}"])
        add(form.format(x=rng.choice(things[st][2])), [names_of.get(st, [])], "style")
    for _ in range(15):
        c, st = rng.choice(clothes), rng.choice(styles)
        add(f"masterpiece, best quality, 1girl, solo, {rng.choice(things[c][2])}, "
            f"(smile:1.2), looking at viewer, {rng.choice(things[st][2])}", [names_of.get(c, []), names_of.get(st, [])],
            "tags")
    for cname, look in CHARACTERS:
        add(f"{cname} standing in a field of flowers", [[char_names[cname.lower()]]], "character")
        add(f"a {look}, full body", [], "unnamed")
    for cname, job in CELEBRITIES:
        add(f"portrait photo of {cname} smiling", [[celeb[cname.lower()]]], "character")
        add(f"portrait photo of a famous {job} smiling", [], "unnamed")
    for real, look in lookalike_pairs:
        rtitle = things[real][0].lower()
        add(f"a {rtitle} standing in the grass", [names_of.get(real, [])], "lookalike", names_of.get(look, []))
    for absent, look in [("donkey", "zebra"), ("tapir", "okapi"), ("leopard seal", "emperor_penguin"),
                         ("coyote", "gray_wolf"), ("lynx", "snow_leopard"), ("clock tower", "lighthouse")]:
        add(f"a {absent} in the morning light", [], "lookalike", names_of.get(look, []))
    for p in ["a bowl of soup on a wooden table", "a man holding an umbrella at a bus stop",
              "a laptop and a cup of coffee on a desk", "two people shaking hands in an office",
              "a plate of pasta with tomato sauce", "a toilet next to a sink in a bathroom",
              "a stop sign on a street corner", "a tennis player serving the ball", "a pizza with pepperoni",
              "a refrigerator full of food", "quarterly sales chart", "a parking lot with white cars",
              "an empty classroom with desks", "a baseball player swinging a bat", "a kitchen with white cabinets",
              "masterpiece, best quality, highres, absurdres", "a cow grazing on a hill", "a person brushing teeth",
              "an old man reading a newspaper", "a bicycle leaning against a wall"]:
        add(p, [], "none")
    return prompts


def main() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    out = DATA / "labelled_prompts_generated.jsonl"
    with out.open("w", encoding="utf-8") as fh:
        for row in make_prompts():
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"{len(make_cards())} cards; wrote {out}")


if __name__ == "__main__":
    main()
