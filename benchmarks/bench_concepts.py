"""Concept-splitter agreement with the paper's LLM composer, speed, and linear time on hostile prompts.

Reference: ``shared/data/stylus_selections.jsonl`` (11,632 prompts, the concepts the Stylus composer
produced). Both sides are normalised the same way (lower case, singular, function words dropped, with
a word list pinned HERE so a change to the splitter's lists cannot move the measure). A reference
concept is *exact* when it equals one of ours, *contained* when it is inside one of ours.

The prompts are split in two halves by a hash of the prompt text: rules and thresholds are fitted on
``fit`` (the phrase score: ``benchmarks/fit_concepts.py``); ``held-out`` shows whether they generalise.
The ReDoS section times 100 KB hostile prompts against 1 KB ones of the same shape (a linear parser
gives a ratio near 100; the splitter reads at most ``MAX_PROMPT_CHARS``, so lower).

    python benchmarks/bench_concepts.py [--data PATH] [--show N] [--errors] [--no-redos]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from collections import Counter
from pathlib import Path

from stylus_ext.sdk.concepts import parse_prompt
from stylus_ext.sdk.english import WORD_RE, singular

# ../shared beside the checkout
DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "stylus_selections.jsonl"
_STOP = frozenset(str.split("""
in on at near with under over above below behind beside besides next to inside into onto through across
along around by from of for against between toward towards during without among amongst beneath outside
past atop upon via within underneath alongside amid amidst like than off out up down and or but while as
that which who whom whose where when then so nor yet if because though although a an the some any its
his her their my our your this these those there here each every another other it he she they we i you
them him one's lots lot plenty bunch couple pair is are was were be been being am has have had having do
does did can could will would should may might must shall 's 're getting get gets got appears appear
seems seem looks look very just also really quite together all both much many several few various
different same own such about
"""))


def _norm(text: str) -> str:
    words = (m.group(0).strip(".'’-") for m in WORD_RE.finditer(text.lower()))
    return " ".join(singular(w) for w in words if w and w not in _STOP)


def half(prompt: str) -> str:
    return "fit" if hashlib.sha1(prompt.encode("utf-8")).digest()[0] % 2 == 0 else "held-out"


def agreement(rows: list[dict], show: int = 0) -> None:
    stats: dict[str, dict[str, float]] = {}
    times = []
    for row in rows:
        t0 = time.perf_counter()
        parsed = parse_prompt(row["prompt"])
        times.append(time.perf_counter() - t0)
        ours = [_norm(c.text) for c in parsed.topical]
        s = stats.setdefault(half(row["prompt"]), {"n": 0, "exact": 0, "contained": 0, "ours": 0, "ref": 0,
                                                    "prompts": 0})
        s["prompts"] += 1
        s["ours"] += len(ours)
        s["ref"] += len(row["concepts"])
        missed = []
        for concept in row["concepts"]:
            ref = _norm(concept)
            if not ref:
                continue
            s["n"] += 1
            s["exact"] += ref in ours
            s["contained"] += any(f" {ref} " in f" {o} " for o in ours)
            if ref not in ours:
                missed.append(concept)
        if show and missed and half(row["prompt"]) == "fit":
            show -= 1
            ours_text = [c.text for c in parsed.topical]
            print(f"  {row['prompt'][:100]!r}\n    ref {list(row['concepts'])}\n    ours {ours_text}")
    total = {k: sum(s[k] for s in stats.values()) for k in ("n", "exact", "contained", "ours", "ref", "prompts")}
    for name, s in [*sorted(stats.items()), ("all", total)]:
        print(f"{name:>8}: exact {s['exact'] / s['n']:.1%}, contained {s['contained'] / s['n']:.1%} of {s['n']} "
              f"reference concepts; concepts/prompt ours {s['ours'] / s['prompts']:.2f}, "
              f"reference {s['ref'] / s['prompts']:.2f} ({s['prompts']} prompts)")
    times.sort()
    print(f"parse time: p50 {times[len(times) // 2] * 1e3:.3f} ms, p99 {times[int(len(times) * .99)] * 1e3:.3f} ms")


def outcome(ref: str, ours: list[str], prompt: str) -> str:
    """How a (normalised) reference concept stands to ours: the error classes ``--errors`` counts."""
    if ref in ours:
        return "exact"
    if f" {ref} " not in f" {_norm(prompt)} ":
        return "not in prompt"  # the paper's composer paraphrased ("vehicle" for "a car")
    if any(f" {ref} " in f" {o} " for o in ours):
        return "ours longer"
    inside = [o for o in ours if o and f" {o} " in f" {ref} "]
    if inside:
        return "ours split it" if len(inside) > 1 else "ours shorter"
    return "overlap" if any(set(o.split()) & set(ref.split()) for o in ours) else "dropped"


def errors(rows: list[dict]) -> None:
    """Reference concepts per half by outcome, and our concepts that match none (reporting only)."""
    counts: dict[str, Counter] = {}
    extra: Counter = Counter()
    for row in rows:
        ours = [_norm(c.text) for c in parse_prompt(row["prompt"]).topical]
        refs = [r for r in (_norm(c) for c in row["concepts"]) if r]
        c = counts.setdefault(half(row["prompt"]), Counter())
        c.update(outcome(r, ours, row["prompt"]) for r in refs)
        extra[half(row["prompt"])] += sum(o not in refs for o in ours)
    for name, c in sorted(counts.items()):
        n = sum(c.values())
        print(f"{name:>8}: " + ", ".join(f"{k} {v / n:.1%}" for k, v in c.most_common())
              + f"; {extra[name]} of ours match no reference concept")


HOSTILE = {
    "pixel art + dashes": lambda n: "pixel art " + "-" * n,
    "deep brackets": lambda n: "(" * (n // 2) + "x" + ")" * (n // 2),
    "commas": lambda n: "a," * (n // 2),
    "by + capitals": lambda n: "painting by " + "A" * n + "#",
    "unclosed tags": lambda n: "<lora:" * (n // 6),
    "embedding refs": lambda n: "embedding:" * (n // 10),
    "underscores": lambda n: "__a" * (n // 3),
    "words": lambda n: "a red cat sitting on the mat " * (n // 29),
    "quotes": lambda n: 'x "ab cd" y ' * (n // 12),
    "style runs": lambda n: "a b style " * (n // 10),
    "camera credits": lambda n: "shot on film " * (n // 13),
}


def redos() -> None:
    print("hostile prompts: 100 KB time / 1 KB time (linear ≈ 100; capped input → less)")
    for name, make in HOSTILE.items():
        small, big = make(1_000), make(100_000)
        t0 = time.perf_counter()
        for _ in range(10):
            parse_prompt(small)
        t_small = (time.perf_counter() - t0) / 10
        t0 = time.perf_counter()
        parse_prompt(big)
        t_big = time.perf_counter() - t0
        print(f"  {name:>20}: 1 KB {t_small * 1e3:7.2f} ms, 100 KB {t_big * 1e3:8.1f} ms, "
              f"ratio {t_big / max(t_small, 1e-9):6.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DEFAULT))
    ap.add_argument("--show", type=int, default=0, help="print N fit-half prompts with missed concepts")
    ap.add_argument("--no-redos", action="store_true")
    ap.add_argument("--errors", action="store_true", help="reference concepts by outcome (too long, dropped...)")
    args = ap.parse_args()
    rows = [json.loads(line) for line in Path(args.data).read_text(encoding="utf-8").splitlines() if line.strip()]
    agreement(rows, args.show)
    print(f"(mean reference concepts per prompt: {statistics.mean(len(r['concepts']) for r in rows):.2f})")
    if args.errors:
        errors(rows)
    if not args.no_redos:
        redos()


if __name__ == "__main__":
    main()
