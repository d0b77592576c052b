"""Hostile 100 KB prompts finish (the splitter's work is bounded; their speed ratio is a benchmark figure:
benchmarks/bench_concepts.py prints the 100 KB / 1 KB time per shape)."""

from __future__ import annotations

import pytest

from stylus_ext.sdk import prompt as grammar
from stylus_ext.sdk.concepts import parse_prompt

N = 100_000
HOSTILE = {
    "pixel art + dashes": "pixel art " + "-" * N,  # the ReDoS of issue 12 (_X_STYLE): 393 s at 1,600 dashes
    "style + dashes": "a " + "x-" * (N // 2) + " style",
    "deep brackets": "(" * (N // 2) + "x" + ")" * (N // 2),
    "unbalanced brackets": "([" * (N // 2),
    "commas": "," * N,
    "tag commas": "a, " * (N // 3),
    "by + capitals": "painting by " + "A" * N + "#",
    "unclosed tags": "<lora:" * (N // 6),
    "colons": "(x" + ":" * N + "1.2)",
    "underscores": "__a" * (N // 3),
    "spaces before a weight": "castle" + " " * N + ":1.5",
    "one long word": "a" * N,
    "sentences": "a red cat sitting on the mat in the style of Van Gogh. " * (N // 55),
    "quotes": 'x "ab cd" y ' * (N // 12),  # one concept per quote: a recursion per quote overflowed the stack
    "written words": 'the word "x" ' * (N // 13),
    "style runs": "a b style " * (N // 10),  # a style phrase splits its segment: one recursion per run overflowed
    "artist credits": "painting by Bob Ross of " * (N // 24),
    "quoted styles": '"a b" style ' * (N // 12),  # every part re-read every quote: seconds, not milliseconds
    "camera credits": "shot on film " * (N // 13),  # each credit peels off the end: bounded by MAX_PARTS
    "camera words without a camera": "a shot on " * (N // 10),  # an early draft read every tail: 0.9 s
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_prompts_finish(name):
    prompt = HOSTILE[name]
    assert len(prompt) >= 0.9 * N
    parsed = parse_prompt(prompt)
    assert all(c.span[1] <= grammar.MAX_PROMPT_CHARS for c in parsed.concepts)
    grammar.strip_syntax(prompt)
    grammar.is_tag_style(prompt)
    grammar.sanitize(prompt)


def test_the_redos_prompt_still_reads_its_style():
    assert "pixel art" in [c.text for c in parse_prompt("pixel art " + "-" * 1_600).concepts]


def test_concepts_per_prompt_are_capped():
    from stylus_ext.sdk.concepts import MAX_CONCEPTS

    parsed = parse_prompt(", ".join(f"thing{i}" for i in range(2_000)))
    assert len(parsed.concepts) == MAX_CONCEPTS and parsed.concepts[0].text == "thing0"
