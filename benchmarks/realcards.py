"""Shared parts of the real-card benchmark and the retriever fit: data sets, catalog, metrics.

The data sets are built outside the repository by ``../shared/eval`` (see its README): the card dump
has no licence, so nothing read here is ever written into the repository — only aggregate figures
are printed. Folders: ``$STYLUS_EVAL_DIR/recover`` (``build_dev_set.py`` output) and
``$STYLUS_EVAL_DIR/silver`` (``build_silver_set.py`` output), or pass them explicitly.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def default_dir(kind: str) -> Path:
    base = os.environ.get("STYLUS_EVAL_DIR") or str(ROOT.parent / "evaldata")
    return Path(base) / kind


def data_arguments(parser: Any) -> None:
    """The options every real-card script shares: where the sets and the catalogue are."""
    parser.add_argument("--recover", type=Path, default=default_dir("recover"))
    parser.add_argument("--silver", type=Path, default=default_dir("silver"))
    parser.add_argument("--skip-index", action="store_true", help="use an existing catalogue as it is")
    parser.add_argument("--catalog", type=Path, default=None, help="default: <recover>/stylus-catalog.db")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


#: ``<lora:...>`` / ``<lyco:...>`` tags of an example prompt.
LORA_TAG = re.compile(r"<[^<>]*>")


def typed_prompt(query: dict[str, Any]) -> str | None:
    """A recover query as a user who types the trigger writes it: the card's example prompt less only
    its ``<lora:>`` tags (None when the query had no trigger removed)."""
    if query.get("removed_trigger") and query.get("original_prompt"):
        return LORA_TAG.sub(" ", query["original_prompt"])
    return None


#: Bracketed parts of a card title ("(v1.0)", "[LuisaP]", "（中国水墨风）"), version and file words.
_TITLE_NOISE = (re.compile(r"\([^)]*\)|\[[^\]]*\]|【[^】]*】|（[^）]*）|<[^>]*>"), re.compile(r"[^\x00-\x7f]+"),
                re.compile(r"\b(?:v|ver|version)\s*\.?\s*\d[\w.]*\b|\b\d+(?:\.\d+)+\b|-0+\d+\b", re.I),
                re.compile(r"\b(?:lora|locon|loha|lycoris|lyco|model)\b", re.I),
                re.compile(r"[|/_:;,+\-~!?\"'`*#]+"))


def name_query(title: str) -> str | None:
    """A card's name as a user types it to ask for that adapter: its title without bracketed parts,
    versions, "LoRA" and non-Latin script, lower-cased ("Tifa Lockhart Lora (Tifa Lockhart v.1)" →
    "tifa lockhart"); None when fewer than three Latin letters in a row are left."""
    for pattern in _TITLE_NOISE:
        title = pattern.sub(" ", title)
    name = " ".join(title.split()).lower()
    return name if re.search(r"[a-z]{3}", name) else None


def same_name(name: str, title: str) -> bool:
    """True when ``title``'s :func:`name_query` has the words of ``name`` ("uzumaki naruto" and
    "Naruto Uzumaki / 漩涡鸣人 (v1.0)"): another card of the same character or thing."""
    other = name_query(title or "")
    return other is not None and set(re.findall(r"[a-z0-9]+", other)) == set(re.findall(r"[a-z0-9]+", name))


def titles(catalog: Any) -> dict[int, str]:
    """Civitai model id → the title of its first version in ``catalog`` (a :class:`Catalog`)."""
    out: dict[int, str] = {}
    for model_id, title in catalog.db.execute("select civitai_model_id, title from adapters order by id"):
        out.setdefault(model_id, title)
    return out


def named_queries(queries: Iterable[dict[str, Any]], title_of: dict[int, str]) -> list[tuple[str, int]]:
    """One :func:`name_query` per answer model of ``queries`` (``title_of``: model id → a title)."""
    out: dict[int, str] = {}
    for q in queries:
        if q["model_id"] not in out and (name := name_query(title_of.get(q["model_id"]) or "")):
            out[q["model_id"]] = name
    return [(name, model) for model, name in out.items()]


def half(key: str) -> str:
    """'fit' or 'dev': a stable hash split (silver has no split of its own)."""
    return "fit" if hashlib.sha1(key.encode()).digest()[0] % 2 == 0 else "dev"


def map_fold(key: str, folds: int) -> int:
    """The query-map fold of a fit query (``key``: a recover answer's model id, or a silver caption's
    ``source-row``): a stable hash, so the map fold that left a query out is known later."""
    return int.from_bytes(hashlib.sha1(f"qmap-{key}".encode()).digest()[:4], "big") % folds


class FoldMaps:
    """Out-of-fold query maps (``fit_query_map.py --folds``): a fit that reads the retriever's features
    of a query the shipped map was fitted on takes the map of the fold that left it out, so the
    mapped cosine it learns from is as good as it is on a card the map never saw, not better."""

    def __init__(self, folder: Path) -> None:
        from stylus_ext import query_map

        paths = sorted(folder.glob("fold-*.npz"), key=lambda p: int(p.stem.split("-")[1]))
        if not paths:
            raise SystemExit(f"no fold-*.npz query maps in {folder} (run fit_query_map.py --folds N)")
        self.maps = [query_map.load(p) for p in paths]

    def for_key(self, key: str) -> Any:
        return self.maps[map_fold(key, len(self.maps))]


def silver_key(row: dict[str, Any]) -> str:
    return f"{row['source']}-{row['row']}"


def silver_rows(silver_dir: Path, part: str = "dev") -> list[dict[str, Any]]:
    rows = read_jsonl(silver_dir / "silver.jsonl")
    return [r for r in rows if part == "all" or half(f"{r['source']}-{r['row']}") == part]


def ensure_catalog(cards_dir: Path, catalog: Path, *, quiet: bool = True, index: bool = True) -> Path:
    """Build the catalogue the product's way: ``stylus import-cards`` then ``stylus index``
    (``index=False``: take an existing catalogue as it is)."""
    if not index and catalog.exists():
        return catalog
    run = [sys.executable, "-m", "stylus_ext", "--catalog", str(catalog)]
    out = subprocess.DEVNULL if quiet else None
    if not catalog.exists():
        subprocess.run([*run, "import-cards", str(cards_dir)], check=True, stdout=out)
    subprocess.run([*run, "index"], check=True, stdout=out)
    return catalog


def model_ids(adapters: Iterable[Any]) -> list[int]:
    """Civitai model ids of ranked adapters, first occurrence only (versions of one model = one)."""
    seen: dict[int, None] = {}
    for a in adapters:
        mid = a.card.civitai_model_id
        if mid is not None and mid not in seen:
            seen[mid] = None
    return list(seen)


def rank_of(truth: int, ranked: Sequence[int]) -> int | None:
    try:
        return ranked.index(truth) + 1
    except ValueError:
        return None


class RankStats:
    """R@1/10/150 and MRR@150 of one group of queries."""

    def __init__(self) -> None:
        self.ranks: list[int | None] = []

    def add(self, rank: int | None) -> None:
        self.ranks.append(rank)

    def row(self) -> dict[str, float]:
        n = max(1, len(self.ranks))
        hit = lambda k: sum(1 for r in self.ranks if r is not None and r <= k) / n  # noqa: E731
        mrr = sum(1 / r for r in self.ranks if r is not None and r <= 150) / n
        return {"n": len(self.ranks), "R@1": hit(1), "R@10": hit(10), "R@150": hit(150), "MRR": mrr}


def effective_count(picks: Iterable[int]) -> float:
    """Effective LoRA Count: exp(entropy) of the pick distribution (CARLoS)."""
    counts = Counter(picks)
    total = sum(counts.values())
    if not total:
        return 0.0
    return math.exp(-sum(c / total * math.log(c / total) for c in counts.values()))


def table(rows: list[tuple[str, dict[str, float]]], cols: Sequence[str]) -> str:
    head = f"{'':28s}" + "".join(f"{c:>9s}" for c in cols)
    lines = [head]
    for name, row in rows:
        cells = "".join(f"{row[c]:9.3f}" if isinstance(row[c], float) else f"{row[c]:9d}" for c in cols)
        lines.append(f"{name:28s}{cells}")
    return "\n".join(lines)
