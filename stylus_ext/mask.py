"""Masking (the paper's §3.4): which of the chosen adapters each image uses, and their weights.

Strategies (by name):

- ``paper``: per concept, one adapter, all of them, or none; crossed over concepts;
- ``subsets``: per concept every subset (2^n, as the reference code);
- ``all``: every chosen adapter in every image (no masking);
- ``none``: no adapters at all (a baseline).

Each image draws its mask from an RNG seeded by THAT image's seed, so one image is reproducible alone
(e.g. from pasted-back metadata). For ``paper`` / ``subsets`` the combination "no adapter in any
concept" is excluded whenever some concept has adapters, unless ``allow_empty``.

Weight of a kept adapter: effective weight (user override > card/refined > 0.8) × ``strength``
(default 0.8) ÷ adapters kept in its concept, clamped to [``MIN_WEIGHT``, ``MAX_WEIGHT``] and rounded
to 2 decimals.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence

STRATEGIES = ("paper", "subsets", "all", "none")
MIN_WEIGHT = 0.1
MAX_WEIGHT = 1.5
_MAX_TRIES = 256


def concept_options(n: int, strategy: str) -> list[tuple[bool, ...]]:
    """The masks one concept with ``n`` adapters may take under ``strategy`` (deduplicated, ordered)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown mask strategy {strategy!r} (choose from {', '.join(STRATEGIES)})")
    if n == 0:
        return [()]
    if strategy == "all":
        return [(True,) * n]
    if strategy == "none":
        return [(False,) * n]
    if strategy == "subsets":
        return [tuple(bits) for bits in itertools.product((False, True), repeat=n)]
    opts = [(False,) * n, *(tuple(i == j for j in range(n)) for i in range(n)), (True,) * n]
    seen: list[tuple[bool, ...]] = []
    for o in opts:
        if o not in seen:
            seen.append(o)
    return seen


def draw_mask(sizes: Sequence[int], strategy: str, seed: int, *, allow_empty: bool = False) -> list[tuple[bool, ...]]:
    """One mask per concept for the image with ``seed`` (uniform over the crossed combinations)."""
    options = [concept_options(n, strategy) for n in sizes]
    if strategy in ("all", "none"):
        return [o[0] for o in options]
    rng = random.Random(f"stylus-mask:{int(seed)}")
    anything = any(n > 0 for n in sizes)
    # uniform over the cross product == independent uniform draws per concept; reject "all empty"
    for _ in range(_MAX_TRIES):
        mask = [opts[rng.randrange(len(opts))] for opts in options]
        if allow_empty or not anything or any(any(m) for m in mask):
            return mask
    return [(True,) * n for n in sizes]


def adapter_weight(effective: float | None, strength: float, kept_in_concept: int) -> float:
    """``effective × strength ÷ kept``, clamped and rounded (``effective`` None → 0.8)."""
    base = 0.8 if effective is None or math.isnan(effective) or effective <= 0 else float(effective)
    w = base * float(strength) / max(1, kept_in_concept)
    return round(min(MAX_WEIGHT, max(MIN_WEIGHT, w)), 2)
