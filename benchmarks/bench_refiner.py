"""The offline refiner's category and character calls on real Civitai cards, labelled by the cards' own tags.

Reads a folder of raw ``/api/v1/models`` JSON items (default: the recover set's ``cards_heldout``,
see ``../shared/eval/README.md``) through the product's own parser (``stylus import-cards``'s
``cards_from_civitai_json``), refines each model's newest version with the ``offline`` refiner and
prints, per view and per half of a model-id hash split (tune on ``fit``, report ``held-out`` too):

- precision / recall of the "character or celebrity" call (goal >= 0.95 / >= 0.90);
- a confusion summary per label (how each tag-labelled group was filed).

Label: the card's first tag among character, celebrity, style, concept, clothing, poses,
background, objects (the dev set's ``category``); cards with none are left out. Views:

- ``card``: the card as imported (its tags are also the labels, so this flatters the call);
- ``no-tags``: the same card with its tags hidden (title, description, triggers, example prompts):
  the honest number for cards with poor tags;
- ``header``: the file stem, trigger words and training tags, as a local file without a card holds
  (the training tags are the example prompts' most frequent terms: the Civitai API has no header);
- ``bare``: only the file stem and trigger words.

With ``--table`` (default: the user table in ``../shared/data``) it also prints how many of that
real user's 190 LoRAs (mostly character LoRAs, no cards) are filed as characters.
The card dump has no licence: this prints aggregate figures only.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

from stylus_ext import sdk
from stylus_ext.sdk.cards.civitai_json import cards_from_civitai_json, iter_card_files, load_json_file

ROOT = Path(__file__).resolve().parents[1]
CARDS = ROOT.parent / "evaldata" / "recover" / "cards_heldout"
TABLE = ROOT.parent / "shared" / "data" / "sd_tools_user_lora_table.json"
SPLIT_SALT = "refiner-split-v1"
#: Tag label → the product category that counts as the same call.
LABELS = {"character": "character", "celebrity": "celebrity", "style": "style", "concept": "concept",
          "clothing": "clothing", "poses": "pose", "background": "background", "objects": "object"}
PERSON = {"character", "celebrity"}


@dataclasses.dataclass
class Row:
    model_id: int
    label: str
    card: sdk.AdapterCard

    @property
    def half(self) -> str:
        return split_of(self.model_id)


def split_of(model_id: int) -> str:
    """``fit`` or ``held-out``: a stable hash of the model id."""
    digest = hashlib.sha1(f"{SPLIT_SALT}:{model_id}".encode()).digest()
    return "fit" if digest[0] % 2 == 0 else "held-out"


def label_of(tags: Iterable[str]) -> str | None:
    return next((t for t in (x.strip().lower() for x in tags) if t in LABELS), None)


def load_rows(folder: Path, limit: int | None = None) -> tuple[list[Row], int]:
    """One labelled row per model (its newest version), parsed as ``stylus import-cards`` parses it."""
    rows, unlabelled = [], 0
    for path in iter_card_files([folder]):
        values, _problem = load_json_file(path)
        for value in values:
            cards = cards_from_civitai_json(value)
            if not cards or cards[0].civitai_model_id is None:
                continue
            label = label_of(cards[0].tags)
            if label is None:
                unlabelled += 1
                continue
            rows.append(Row(cards[0].civitai_model_id, label, cards[0]))
        if limit and len(rows) >= limit:
            break
    return rows, unlabelled


def view_card(card: sdk.AdapterCard) -> sdk.AdapterCard:
    return card


def view_no_tags(card: sdk.AdapterCard) -> sdk.AdapterCard:
    return dataclasses.replace(card, tags=())


def view_bare(card: sdk.AdapterCard) -> sdk.AdapterCard:
    return sdk.AdapterCard(source="bench", name=card.name, trigger_words=card.trigger_words)


def caption_tags(prompts: Iterable[str], top: int = 20) -> tuple[str, ...]:
    """The most frequent comma-separated terms of the example prompts: a stand-in for the kohya
    training tags (``ss_tag_frequency``) a local file's header holds, which the Civitai API lacks."""
    counts: Counter[str] = Counter()
    for prompt in prompts:
        text = re.sub(r"<[^<>]*>", " ", prompt)
        text = re.sub(r":\s*-?\d*\.?\d+\s*\)", ")", text)
        terms = {" ".join(t.strip(" .()[]{}").lower().split()) for t in re.split(r"[,\n|]", text)}
        counts.update(sorted(t for t in terms if t and len(t) <= 40))  # sorted: ties rank the same every run
    return tuple(t for t, _ in counts.most_common(top))


def view_header(card: sdk.AdapterCard) -> sdk.AdapterCard:
    return sdk.AdapterCard(source="bench", name=card.name, trigger_words=card.trigger_words,
                           training_tags=caption_tags(card.example_prompts))


VIEWS: dict[str, Callable[[sdk.AdapterCard], sdk.AdapterCard]] = {
    "card": view_card, "no-tags": view_no_tags, "header": view_header, "bare": view_bare}


def score(pairs: list[tuple[str, str]]) -> dict[str, float]:
    """Precision / recall of "character or celebrity" over (label, predicted category) pairs."""
    tp = sum(1 for lab, got in pairs if lab in PERSON and got in PERSON)
    fp = sum(1 for lab, got in pairs if lab not in PERSON and got in PERSON)
    fn = sum(1 for lab, got in pairs if lab in PERSON and got not in PERSON)
    exact = sum(1 for lab, got in pairs if LABELS[lab] == got)
    return {"n": len(pairs), "precision": tp / max(1, tp + fp), "recall": tp / max(1, tp + fn),
            "exact": exact / max(1, len(pairs)), "fp": fp, "fn": fn}


def confusion(pairs: list[tuple[str, str]]) -> list[str]:
    by_label: dict[str, Counter[str]] = defaultdict(Counter)
    for lab, got in pairs:
        by_label[lab][got] += 1
    lines = []
    for lab in LABELS:
        got = by_label.get(lab)
        if not got:
            continue
        total = sum(got.values())
        top = ", ".join(f"{c} {n / total:.0%}" for c, n in got.most_common(4))
        lines.append(f"    {lab:10} n={total:5}  same={got[LABELS[lab]] / total:5.1%}  "
                     f"person={sum(got[c] for c in PERSON) / total:5.1%}  -> {top}")
    return lines


def run_views(rows: list[Row], refiner: sdk.Refiner, views: list[str], show_confusion: bool) -> None:
    print(f"{'view':8} {'half':9} {'n':>5} {'prec':>6} {'recall':>6} {'exact':>6} {'FP':>5} {'FN':>5} "
          f"{'ms/card':>7}")
    for view in views:
        make = VIEWS[view]
        t0 = time.perf_counter()
        pairs = {r.model_id: (r.label, refiner.refine(make(r.card)).category) for r in rows}
        ms = (time.perf_counter() - t0) * 1000 / max(1, len(rows))
        halves = {"fit": [], "held-out": []}
        for r in rows:
            halves[r.half].append(pairs[r.model_id])
        for half, got in [*halves.items(), ("all", list(pairs.values()))]:
            s = score(got)
            print(f"{view:8} {half:9} {s['n']:5} {s['precision']:6.3f} {s['recall']:6.3f} {s['exact']:6.3f} "
                  f"{s['fp']:5} {s['fn']:5} {ms:7.2f}")
        if show_confusion:
            print(f"  confusion ({view}, held-out): label -> filed as")
            print("\n".join(confusion(halves["held-out"])))


def user_table(table: Path, refiner: sdk.Refiner) -> None:
    """Category calls on the user's folder as the scanner reads it (safetensors headers + sidecars)."""
    from stylus_ext.sample.user_table import folder_from_table
    from stylus_ext.sdk.cards.local import read_lora_card

    items = json.loads(table.read_text(encoding="utf-8"))["items"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = folder_from_table(items, Path(tmp) / "Lora")
        calls = {p.stem: refiner.refine(read_lora_card(str(p))).category for p in folder.glob("*.safetensors")}
    named = {i["lora_name"] for i in items if i.get("character_trigger_tags")}
    got = Counter(calls[s] for s in named if s in calls)
    rest = Counter(c for s, c in calls.items() if s not in named)
    print(f"user table: {len(calls)} LoRAs; {len(named)} with character triggers filed as character "
          f"{got['character'] / max(1, sum(got.values())):.1%} ({dict(got.most_common())}); "
          f"the others: {dict(rest.most_common())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", type=Path, default=CARDS, help="folder of Civitai model JSON")
    parser.add_argument("--views", default="card,no-tags,header,bare", help="comma-separated: " + ", ".join(VIEWS))
    parser.add_argument("--limit", type=int, default=None, help="at most this many labelled models")
    parser.add_argument("--table", type=Path, default=TABLE, help="user LoRA table (skipped when absent)")
    parser.add_argument("--no-confusion", action="store_true")
    args = parser.parse_args()
    from stylus_ext.plugins import PluginManager

    refiner = PluginManager(user_dir=Path(tempfile.gettempdir()) / "stylus-bench-none",
                            entry_points_enabled=False).create("refiner", "offline")
    print(f"refiner offline@{refiner.version}")
    if args.folder.is_dir():
        t0 = time.perf_counter()
        rows, unlabelled = load_rows(args.folder, args.limit)
        print(f"{len(rows)} labelled models ({unlabelled} without a label tag left out), "
              f"parsed in {time.perf_counter() - t0:.1f} s; labels: {dict(Counter(r.label for r in rows))}")
        views = [v for v in args.views.split(",") if v in VIEWS]
        run_views(rows, refiner, views, not args.no_confusion)
    else:
        print(f"no card folder at {args.folder}; see ../shared/eval/README.md", file=sys.stderr)
    if args.table.is_file():
        user_table(args.table, refiner)


if __name__ == "__main__":
    main()
