"""Lexical side of retrieval: prompt cleaning, prompt-style detection and BM25 over SQLite FTS5.

One FTS5 table, ``adapters_fts`` (made by sqlite-utils ``enable_fts`` with triggers, so inserts,
updates and deletes of ``adapters`` keep it in sync; ``stylus index`` also rebuilds it), indexes
the card text in :data:`CARD_COLUMNS` and, separately ranked, the cards' example-image prompts and
top training tags (:data:`EXAMPLE_COLUMNS`). Column filters + per-column bm25 weights give two
rankings from the one table: card text, and example prompts (used only for tag-style prompts).

User text never reaches FTS syntax: prompts are reduced to word tokens, each quoted, OR-ed.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from stylus_ext.catalog.db import Catalog

FTS_TABLE = "adapters_fts"
CARD_COLUMNS = ("name", "title", "tags", "trigger_words", "activation_text", "description")
EXAMPLE_COLUMNS = ("example_prompts", "training_tags")
FTS_COLUMNS = CARD_COLUMNS + EXAMPLE_COLUMNS
#: bm25 column weights (same order as FTS_COLUMNS) for the two rankings.
CARD_WEIGHTS = (3.0, 4.0, 3.0, 2.0, 1.0, 1.0, 0.0, 0.0)
EXAMPLE_WEIGHTS = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0)
MAX_TERMS = 40
COMMON_SHARE = 0.3  # terms in more than this share of adapters are dropped on big catalogs
PRUNE_MIN_ADAPTERS = 5000

#: Generic quality/boilerplate tags: on every community prompt, they say nothing about adapters.
QUALITY_TAGS = frozenset({
    "masterpiece", "best quality", "high quality", "highest quality", "top quality", "good quality",
    "normal quality", "amazing quality", "great quality", "very aesthetic", "aesthetic", "highres",
    "high res", "absurdres", "incredibly absurdres", "hires", "hd", "fhd", "uhd", "4k", "8k", "16k",
    "8k uhd", "4k uhd", "ultra hd", "raw photo", "ultra detailed", "ultra-detailed", "extremely detailed",
    "highly detailed", "very detailed", "intricate details", "intricate detail", "detailed",
    "ultra high res", "ultra-high res", "best aesthetic", "official art", "unity 8k wallpaper",
    "extremely detailed cg", "extremely detailed cg unity 8k wallpaper", "8k wallpaper", "sharp focus",
    "award winning", "award-winning", "professional", "trending on artstation", "high resolution",
    "newest", "score_9", "score_8_up", "score_7_up", "score_6_up", "score_5_up", "score_4_up",
    "score_8", "score_7", "score_6", "source_anime", "source_realistic", "source_cartoon", "source_pony",
    "rating_safe", "rating_questionable", "rating_explicit", "lowres", "worst quality", "low quality",
    "masterpiece quality", "best quality masterpiece", "high detail", "hyperdetailed",
    "4k resolution", "8k resolution",
})
_QUALITY_PHRASES = QUALITY_TAGS | {t.replace("_", " ") for t in QUALITY_TAGS}

QUALITY_WORDS = frozenset({
    "masterpiece", "highres", "absurdres", "hires", "hd", "fhd", "uhd", "4k", "8k", "16k", "raw",
    "score_9", "score_8_up", "score_7_up", "score_6_up", "score_5_up", "score_4_up", "lowres",
    "newest", "aesthetic", "quality", "best", "detailed", "intricate", "ultra", "extremely", "highly",
    "resolution", "wallpaper", "unity", "cg", "artstation", "trending", "professional",
})

STOPWORDS = frozenset(str.split("""
a an the and or but if of on in at to for with without from by as is are was were be been being
this that these those it its it's into onto over under near up down out off than then there here
some any each every all both few more most other such no nor not only own same so too very can
will just should now his her their our your my me him them they she he we you i who whom which
what when where why how while during before after above below between through again further once
has have had having do does did doing would could am one two three four five six seven eight nine
ten several many lot lots
"""))

_LORA_TAG = re.compile(r"<\s*(?:lora|lyco|lycoris|hypernet|embedding|ti)\s*:[^>]*>", re.I)
_ANGLE = re.compile(r"<[^>]*>")
_WEIGHT = re.compile(r":\s*-?\d+(?:\.\d+)?\s*(?=[)\]}])")
_BREAK = re.compile(r"\b(?:BREAK|AND)\b")
_SEGMENT = re.compile(r"[,\n;|]+")
_TOKEN = re.compile(r"[^\W_]+(?:_[^\W_]+)*", re.UNICODE)


def strip_syntax(prompt: str) -> str:
    """Remove ``<lora:...>``-style tags, attention weights ``(x:1.2)``, brackets, BREAK/AND."""
    text = _LORA_TAG.sub(" ", prompt or "")
    text = _ANGLE.sub(" ", text)
    text = _WEIGHT.sub("", text)
    text = _BREAK.sub(",", text)
    text = re.sub(r"[()\[\]{}]", " ", text)
    text = text.replace("\\", " ")
    return re.sub(r"[ \t]+", " ", text).strip()


def _normal_tag(segment: str) -> str:
    return re.sub(r"\s+", " ", segment.replace("_", " ").strip().lower())


def split_segments(prompt: str) -> list[str]:
    """Comma/newline separated segments of a cleaned prompt, without generic quality tags."""
    out = []
    for segment in _SEGMENT.split(strip_syntax(prompt)):
        seg = segment.strip(" .:!-")
        if not seg:
            continue
        norm = _normal_tag(seg)
        if norm in _QUALITY_PHRASES:
            continue
        if all(w in QUALITY_WORDS for w in norm.split()):
            continue
        out.append(seg)
    return out


def clean_prompt(prompt: str) -> str:
    """The prompt as the retriever embeds it: syntax and quality tags removed."""
    return ", ".join(split_segments(prompt))


def is_tag_style(prompt: str) -> bool:
    """True for community tag prompts (``1girl, long hair, beach``), False for sentences/captions.

    Tag style: three or more comma-separated segments that are short (≤ 3 words on average, none
    longer than 6), or danbooru-style underscores/``score_`` tags.
    """
    raw = strip_syntax(prompt)
    if re.search(r"\b(?:score_\d|source_\w+|\d+(?:girl|boy)s?)\b", raw, re.I):
        return True
    segments = [s.strip() for s in _SEGMENT.split(raw) if s.strip()]
    if len(segments) < 3:
        return False
    lengths = [len(s.split()) for s in segments]
    return sum(lengths) / len(lengths) <= 3.0 and max(lengths) <= 6


def query_terms(prompt: str) -> list[str]:
    """Word tokens of the cleaned prompt (lower-case, no stopwords/quality words, de-duplicated)."""
    terms: list[str] = []
    for segment in split_segments(prompt):
        for token in _TOKEN.findall(segment.lower()):
            for part in [token, *token.split("_")] if "_" in token else [token]:
                if len(part) < 2 and not part.isdigit():
                    continue
                if part in STOPWORDS or part in QUALITY_WORDS:
                    continue
                terms.append(part)
    return list(dict.fromkeys(terms))[:MAX_TERMS]


def fts_query(terms: list[str], columns: tuple[str, ...]) -> str:
    """A safe FTS5 MATCH expression: every term a quoted string, OR-ed, within ``columns``."""
    quoted = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
    return "{" + " ".join(columns) + "} : (" + quoted + ")"


def has_fts(catalog: Catalog) -> bool:
    return FTS_TABLE in catalog.db.table_names()


def ensure_fts(catalog: Catalog, *, rebuild: bool = False) -> None:
    """Create the FTS table and its sync triggers if missing; ``rebuild`` re-reads every row."""
    table = catalog.db["adapters"]
    if not has_fts(catalog) or not _triggers_present(catalog):
        with catalog.db.conn:
            table.enable_fts(list(FTS_COLUMNS), create_triggers=True, tokenize="porter", replace=True)
            rebuild = True
    if rebuild:
        with catalog.db.conn:
            table.rebuild_fts()


def _triggers_present(catalog: Catalog) -> bool:
    rows = catalog.db.execute(
        "select count(*) from sqlite_master where type = 'trigger' and tbl_name = 'adapters' "
        "and name like 'adapters_a%'").fetchone()
    return bool(rows and rows[0] >= 3)


def prune_common(catalog: Catalog, terms: list[str], total: int, *, max_share: float = COMMON_SHARE,
                 min_total: int = PRUNE_MIN_ADAPTERS) -> list[str]:
    """Drop terms found in more than ``max_share`` of ``total`` adapters (keep at least the rarest).

    FTS5's BM25 gives such terms almost no weight (idf ≤ log(0.7/0.3) ≈ 0.85 vs ≈ 9 for a rare
    term), but scoring every adapter they match dominates query time on big catalogs (100K cards:
    ~150 ms per ranking). Small catalogs keep every term.
    """
    if total < min_total or len(terms) < 2 or not has_fts(catalog):
        return terms
    counts: dict[str, int] = {}
    for term in terms:
        try:
            counts[term] = int(catalog.db.execute(
                f"select count(*) from {FTS_TABLE} where {FTS_TABLE} match ?", [fts_query([term], FTS_COLUMNS)]
            ).fetchone()[0])
        except sqlite3.OperationalError:
            counts[term] = 0
    kept = [t for t in terms if counts[t] <= max_share * total]
    return kept or [min(terms, key=lambda t: (counts[t], t))]


@dataclass(frozen=True)
class LexicalHit:
    adapter_id: int
    bm25: float  # positive: larger is better


def search(catalog: Catalog, terms: list[str], *, examples: bool = False, where: str = "",
           params: tuple = (), limit: int = 300) -> list[LexicalHit]:
    """BM25 ranking of adapters for ``terms`` over card text (or example prompts), best first.

    ``where`` is an extra SQL condition on ``adapters`` (filters). Never raises on user text.
    """
    if not terms or not has_fts(catalog):
        return []
    columns = EXAMPLE_COLUMNS if examples else CARD_COLUMNS
    weights = EXAMPLE_WEIGHTS if examples else CARD_WEIGHTS
    weight_sql = ", ".join(str(w) for w in weights)
    sql = (f"select adapters.id, bm25({FTS_TABLE}, {weight_sql}) as rank from {FTS_TABLE} "
           f"join adapters on adapters.id = {FTS_TABLE}.rowid where {FTS_TABLE} match ? "
           + (f"and ({where}) " if where else "") + "order by rank, adapters.id limit ?")
    try:
        rows = catalog.db.execute(sql, [fts_query(terms, columns), *params, int(limit)]).fetchall()
    except sqlite3.OperationalError:
        return []
    return [LexicalHit(int(r[0]), -float(r[1])) for r in rows if r[1] is not None and -float(r[1]) > 0]


def normalise(bm25: float, n_terms: int) -> float:
    """Map a BM25 score to [0, 1): saturating, scaled by how many terms the query had."""
    scale = 1.5 * max(1, min(n_terms, 12)) ** 0.5
    return bm25 / (bm25 + scale) if bm25 > 0 else 0.0
