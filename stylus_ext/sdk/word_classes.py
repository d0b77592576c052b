"""Word classes from a general language model: how common a word is, and which of a few dozen meaning groups it is in.

``data/word_classes.txt`` lists the whole-word entries of the all-MiniLM-L6-v2 (BERT uncased) vocabulary in
the vocabulary's own order, which is by corpus frequency, each with its cluster: k-means over the model's
input word embeddings (colours, places, people's roles, body parts, vehicles... fall in their own
groups). Nothing in it comes from the concept reference set, so a weight fitted on a cluster applies to
every word of it, seen in the reference or not. Built by ``benchmarks/build_word_classes.py``; the model's
vocabulary and weights are Apache-2.0. Without the file every word is ``rare``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

from stylus_ext.sdk.english import singular

PATH = Path(__file__).with_name("data") / "word_classes.txt"
#: Frequency buckets are log2 of the rank, capped here (ranks past 2**CAP_BUCKET share the last bucket).
CAP_BUCKET = 14


@lru_cache(maxsize=1)
def _table() -> dict[str, tuple[int, int]]:
    """word -> (frequency rank, cluster); empty without the data file."""
    table: dict[str, tuple[int, int]] = {}
    try:
        lines = PATH.read_text(encoding="utf-8").splitlines()
    except OSError:
        return table
    for line in lines:
        if line.startswith("#"):
            continue
        word, _, cluster = line.partition(" ")
        if word and cluster.isdigit():
            table.setdefault(word, (len(table), int(cluster)))
    return table


def lookup(word: str) -> tuple[str, str]:
    """(frequency bucket, cluster) of a word or its singular, as feature values; ``("rare", "rare")`` if unknown."""
    table = _table()
    w = word.lower()
    entry = table.get(w) or table.get(singular(w))
    if entry is None:
        return "rare", "rare"
    return str(min(int(math.log2(entry[0] + 1)), CAP_BUCKET)), str(entry[1])


#: Words whose clusters are people's names (the k-means numbering may change when the file is rebuilt,
#: so the clusters are found by these members, not by number).
_NAME_EXEMPLARS = {"given": ("mary", "john"), "surname": ("smith",)}


@lru_cache(maxsize=1)
def _name_clusters() -> dict[int, str]:
    table = _table()
    return {table[w][1]: kind for kind, words in _NAME_EXEMPLARS.items() for w in words if w in table}


def name_kind(word: str) -> str:
    """``"given"`` for a word of the vocabulary's given-name groups ("megan", "natalie", "david"),
    ``"surname"`` for its family-name group ("smith", "taylor"), else ``""`` (also without the file)."""
    entry = _table().get(word.lower())
    return _name_clusters().get(entry[1], "") if entry else ""
