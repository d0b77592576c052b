"""Concept-splitter agreement with the paper's LLM composer, and speed.

Reference: ``shared/data/stylus_selections.jsonl`` (11,632 prompts, the concepts the Stylus composer
produced). A reference concept counts as *covered* when it equals, or is contained in, one of our
concept texts (after lower-casing and singularising words); *adapter-bearing* concepts (those the
reference gave ≥1 adapter) are reported separately since only they matter for selection.

    python benchmarks/bench_concepts.py [--data PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from stylus_ext.concepts import content_words, parse_prompt

# ../shared beside the checkout
DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "stylus_selections.jsonl"


def _norm(text: str) -> str:
    return " ".join(content_words(text))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DEFAULT))
    args = ap.parse_args()
    rows = [json.loads(line) for line in Path(args.data).read_text(encoding="utf-8").splitlines() if line.strip()]
    stats = {"all": [0, 0], "with_adapters": [0, 0], "exact": [0, 0]}
    by_source: dict[str, list[int]] = {}
    ours_counts, ref_counts, times = [], [], []
    for row in rows:
        t0 = time.perf_counter()
        parsed = parse_prompt(row["prompt"])
        times.append(time.perf_counter() - t0)
        ours = [_norm(c.text) for c in parsed.topical]
        ours_counts.append(len(ours))
        ref_counts.append(len(row["concepts"]))
        for concept, ids in row["concepts"].items():
            ref = _norm(concept)
            if not ref:
                continue
            hit = any(ref == o or f" {ref} " in f" {o} " for o in ours)
            exact = any(ref == o for o in ours)
            for key, cond in (("all", True), ("with_adapters", bool(ids))):
                if cond:
                    stats[key][0] += hit
                    stats[key][1] += 1
            stats["exact"][0] += exact
            stats["exact"][1] += 1
            src = by_source.setdefault(row["source"], [0, 0])
            src[0] += hit
            src[1] += 1
    for key, (hit, n) in stats.items():
        print(f"reference concepts covered ({key}): {hit / n:.1%} of {n}")
    for key, (hit, n) in sorted(by_source.items()):
        print(f"  source {key}: {hit / n:.1%} of {n}")
    print(f"concepts per prompt: ours {statistics.mean(ours_counts):.2f}, reference {statistics.mean(ref_counts):.2f}")
    times.sort()
    print(f"parse time: p50 {times[len(times) // 2] * 1e3:.3f} ms, p99 {times[int(len(times) * .99)] * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
