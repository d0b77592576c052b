"""Plan a generation so that every image's adapters are really active (pure logic, no WebUI).

The WebUI activates LoRAs once per batch, from the FIRST prompt of the batch: tags in the other
prompts of that batch are ignored. So images whose adapter sets differ must not share a batch.
Given each image's adapter set (any hashable key, e.g. the sorted ``<lora:...>`` tags of its
prompt and hires prompt) and the user's batch size, :func:`plan_batches` returns a new image order
(prompt, seed, subseed and negative prompt move together, so each image keeps its own seed) and
the largest batch size ≤ the user's for which every batch holds a single adapter set.
Groups are ordered so that consecutive batches share as many adapters as possible (the WebUI
keeps LoRAs that stay loaded; every switch is a disk read).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class BatchPlan:
    """``order[k]`` is the original index of the image generated at position ``k``."""

    order: tuple[int, ...]
    batch_size: int
    n_iter: int
    sets: int
    changed: bool
    message: str

    def apply(self, values: Sequence[T]) -> list[T]:
        """``values`` (one per image, original order) in the planned order."""
        if len(values) != len(self.order):
            raise ValueError(f"expected {len(self.order)} values, got {len(values)}")
        return [values[i] for i in self.order]

    def batches(self) -> list[tuple[int, ...]]:
        """Original indexes of the images in each planned batch."""
        return [self.order[i:i + self.batch_size] for i in range(0, len(self.order), self.batch_size)]


def _names(key: Hashable) -> frozenset[Any]:
    """The adapter names a key stands for: first items of ``(name, weight)`` pairs, else the items."""
    if isinstance(key, (tuple, list, frozenset, set)):
        return frozenset(item[0] if isinstance(item, tuple) and item else item for item in key)
    return frozenset([key])


def _homogeneous(keys: Sequence[Hashable], batch_size: int) -> bool:
    return all(len(set(keys[i:i + batch_size])) <= 1 for i in range(0, len(keys), batch_size))


def _order_groups(groups: list[tuple[Hashable, list[int]]]) -> list[tuple[Hashable, list[int]]]:
    """Greedy chain starting with the first image's group: next = most shared adapters, then first seen."""
    remaining = list(groups)
    ordered = [remaining.pop(0)]
    while remaining:
        last = _names(ordered[-1][0])
        best = max(range(len(remaining)), key=lambda j: (len(last & _names(remaining[j][0])), -j))
        ordered.append(remaining.pop(best))
    return ordered


def _switches(keys: Sequence[Hashable], batch_size: int) -> int:
    firsts = [keys[i] for i in range(0, len(keys), batch_size)]
    return sum(1 for a, b in itertools.pairwise(firsts) if a != b)


def plan_batches(keys: Sequence[Hashable], batch_size: int) -> BatchPlan:
    """Order images and pick a batch size so every batch has ONE adapter set.

    The user's order and batch size are kept when they already satisfy this with the fewest adapter
    switches. Otherwise images with the same set are grouped (in their original order), and the
    batch size becomes the largest divisor of every group's size that does not exceed the user's
    (1 in the worst case).
    """
    n = len(keys)
    batch_size = max(1, int(batch_size))
    if n == 0:
        return BatchPlan((), batch_size, 0, 0, False, "")
    if n % batch_size:
        batch_size = math.gcd(n, batch_size)
    groups: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    sets = len(groups)
    identity = tuple(range(n))
    if _homogeneous(keys, batch_size) and _switches(keys, batch_size) <= sets - 1:
        msg = "" if sets <= 1 else f"{n} images, {sets} adapter sets, already one set per batch"
        return BatchPlan(identity, batch_size, n // batch_size, sets, False, msg)
    size = math.gcd(*[len(v) for v in groups.values()])
    new_bs = max(d for d in range(1, batch_size + 1) if size % d == 0)
    ordered = _order_groups(list(groups.items()))
    order = tuple(i for _, idx in ordered for i in idx)
    n_batches = n // new_bs
    switches = _switches([keys[i] for i in order], new_bs)
    msg = f"{n} images in {n_batches} batches: {sets} different adapter sets"
    if new_bs != batch_size:
        msg += f" (batch size {batch_size} → {new_bs})"
    msg += f", {switches} switch{'es' if switches != 1 else ''}"
    if order != identity:
        moved = sum(1 for k, i in enumerate(order) if k != i)
        msg += f"; order changed: {moved} image(s) moved so each batch has one set (each keeps its own seed)"
    return BatchPlan(order, new_bs, n_batches, sets, order != identity or new_bs != batch_size, msg)
