"""The retriever's learned fusion: per-candidate features → one fitted logistic score.

A candidate pool (the union of the best few hundred by dense cosine and by BM25 over the card text,
the example prompts, their whole tags and the title) is described by :data:`FEATURES`, mostly
relative to the query so a weight means the same on any catalogue: the dense cosine and its gap to
the pool's best (of the prompt's own embedding and of its mapped one, :mod:`stylus_ext.query_map`;
and the best cosine to one of the card's example prompts, ``ex_dense``),
each field's BM25 as a share of the field's best, as a log and as a rank, how much of the query the
title and tags cover (and how much of the title the query covers), and how much text the card has —
each once for captions and once for community tag prompts.

The weights are fitted, not hand-set: ``benchmarks/fit_retriever.py`` fits a pairwise logistic
regression (scikit-learn; positive minus negative candidates of one query), then calibrates it to a
probability, on the real-card train queries (a card's own example prompt, trigger words and name
removed → that card) and writes ``stylus_ext/data/ranker.json``, which ships with the package. The
score is the model's probability that the candidate is the adapter the prompt asks for.

A second stage may re-rank the linear score's best ``top`` candidates (:class:`Rerank`): boosted
trees fitted with LightGBM's LambdaMART on the same queries (fit time only; evaluated by
:mod:`stylus_ext.sdk.trees`), calibrated the same way. The features interact — a title match
means more on a short card, dense similarity more on a caption than on a tag list — which a linear
score cannot say; on the dev queries it lifts silver captions' first-place hits by a third (README).
Candidates past ``top`` keep the linear order below every re-ranked one. The re-ranker decides the
ORDER only (:meth:`Ranker.order_keys`); a candidate's score stays the linear stage's probability
(:meth:`Ranker.score`), which the composers' keep rules are fitted on. Trees fitted on real cards
judge a small hand-written folder's sparse cards by a distribution they never saw (on the sample
catalogue they gave an obvious corgi adapter 0.09 against the linear 0.73), so they decide the order
only, where they cannot make a composer refuse, and only on a pool as large as those they learnt
from (:attr:`Rerank.min_pool`): on a smaller one they also buried typed triggers, and the linear
order stands.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from stylus_ext.sdk.trees import Trees

LEX_FIELDS = ("title", "tags", "triggers", "description", "examples", "training", "units", "all")
#: Features of a candidate before the prompt-style split.
BASE_FEATURES: tuple[str, ...] = (
    "dense", "dense_gap", "dense_rank", "mapped", "mapped_gap", "mapped_rank", "ex_dense", "ex_dense_gap",
    "ex_dense_rank",
    *(f"{f}_rel" for f in LEX_FIELDS), *(f"{f}_log" for f in LEX_FIELDS),
    "all_rank", "examples_rank", "units_rank", "title_cover", "title_precision", "tags_cover",
    "len_examples", "len_description", "len_tags", "no_text",
)
#: Every base feature twice — once for captions, once for community tag prompts — plus the style
#: itself: the two kinds of prompt want different weights (dense leads on captions, whole-tag and
#: example-prompt BM25 on tags), and one fitted model holds both.
FEATURES: tuple[str, ...] = (*(f"caption:{f}" for f in BASE_FEATURES), *(f"tags:{f}" for f in BASE_FEATURES),
                             "tagstyle")
MODEL_PATH = Path(__file__).with_name("data") / "ranker.json"


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


@dataclass(frozen=True)
class Rerank:
    """Trees over the linear score's best ``top`` candidates: ``sigmoid(scale · trees + offset)``.

    They re-rank a pool of at least ``min_pool`` candidates only (:meth:`from_dict`: ``top`` unless
    the file says otherwise; 0 re-ranks every pool): they learnt from pools of a large catalogue,
    and a smaller pool is a small folder whose features (every rank near the best, few competing
    cards) they never saw. There the linear order stands: on the test
    folder it ranked a typed coined trigger's card first for 33 of 60 prompts against the trees' 12,
    and on a real user's 190-LoRA folder the named character first for 138 of 138 against 136.
    """

    top: int
    trees: Trees
    scale: float
    offset: float
    min_pool: int = 0

    def apply(self, features: np.ndarray, first: np.ndarray) -> np.ndarray:
        """``first`` with its best ``top`` re-scored; the rest scaled to stay below all of them."""
        best = np.argsort(-first, kind="stable")[:self.top]
        out = first.copy()
        out[best] = _sigmoid(self.scale * self.trees.decision(features[best]) + self.offset)
        rest = np.ones(len(out), dtype=bool)
        rest[best] = False
        if rest.any():
            floor, high = float(out[best].min()), float(out[rest].max())
            if high >= floor:  # scaling keeps the rest's own order
                out[rest] *= 0.999 * floor / max(high, 1e-300)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Rerank:
        trees = Trees.from_dicts(data["trees"], data["features"], FEATURES)
        top = int(data["top"])
        return cls(top, trees, float(data["scale"]), float(data["offset"]), int(data.get("min_pool", top)))


@dataclass(frozen=True)
class Ranker:
    """A linear model over :data:`FEATURES` (``sigmoid(features @ coef + intercept)``), then an
    optional :class:`Rerank` of its best candidates."""

    coef: np.ndarray
    intercept: float
    info: dict
    rerank: Rerank | None = None

    def score(self, features: np.ndarray) -> np.ndarray:
        """The calibrated probability per candidate that it is the adapter the prompt asks for."""
        return _sigmoid(features @ self.coef + self.intercept)

    def order_keys(self, features: np.ndarray, first: np.ndarray | None = None) -> np.ndarray:
        """Keys to rank candidates by, best highest: the re-ranker's (on a pool of at least its
        ``min_pool``), else the score ``first``."""
        first = self.score(features) if first is None else first
        if self.rerank is not None and len(first) and len(first) >= self.rerank.min_pool:
            return self.rerank.apply(features, first)
        return first

    @classmethod
    def from_dict(cls, data: dict) -> Ranker:
        names = data["features"]
        weights = dict(zip(names, data["coef"], strict=True))
        coef = np.array([weights.get(f, 0.0) for f in FEATURES], dtype=np.float64)
        rerank = Rerank.from_dict(data["rerank"]) if data.get("rerank") else None
        info = {k: v for k, v in data.items() if k not in ("coef", "rerank")}
        return cls(coef, float(data["intercept"]), info, rerank)


@cache
def default_ranker() -> Ranker:
    """The shipped model (``stylus_ext/data/ranker.json``)."""
    return Ranker.from_dict(json.loads(MODEL_PATH.read_text(encoding="utf-8")))


def _rel(values: np.ndarray) -> np.ndarray:
    top = float(values.max()) if values.size else 0.0
    return values / top if top > 0 else np.zeros_like(values)


def _rank_feature(values: np.ndarray, all_values: np.ndarray | None = None) -> np.ndarray:
    """1 for the best, falling as 1/log2(rank + 2) (0 where the value is 0)."""
    ref = values if all_values is None else all_values
    ordered = np.sort(ref)[::-1]
    # rank = how many reference values beat this one
    ranks = np.searchsorted(-ordered, -values, side="left")
    out = 1.0 / np.log2(ranks + 2.0)
    return np.where(values > 0, out, 0.0)


def candidate_features(*, sims: np.ndarray, lex: dict[str, np.ndarray], lex_all: dict[str, np.ndarray],
                       title_hits: np.ndarray, tags_hits: np.ndarray, title_len: np.ndarray,
                       lengths: dict[str, np.ndarray], n_terms: int, tag_style: bool,
                       mapped: np.ndarray | None = None, examples: np.ndarray | None = None) -> np.ndarray:
    """The feature matrix (pool size × len(FEATURES)) in :data:`FEATURES` order.

    ``sims``: dense cosine per pool candidate (0 when there is no index); ``mapped``: the same for
    the prompt's vector through the query map (:mod:`stylus_ext.query_map`; default ``sims``);
    ``examples``: the prompt's best cosine to one of the candidate's example prompts (default 0);
    ``lex[f]``: BM25 of field ``f`` per candidate; ``lex_all[f]``: that field's BM25 over every
    allowed adapter (for ranks); ``title_hits``/``tags_hits``: distinct query terms found in the
    title / tags; ``title_len``: terms in the title; ``lengths[f]``: terms in field ``f``.
    """
    n = len(sims)
    cols: dict[str, np.ndarray] = {}
    for name, values in (("dense", sims), ("mapped", sims if mapped is None else mapped),
                         ("ex_dense", np.zeros(n) if examples is None else examples)):
        has_dense = bool(np.any(values))
        cols[name] = values
        cols[f"{name}_gap"] = values - float(values.max()) if has_dense else np.zeros(n)
        cols[f"{name}_rank"] = _rank_feature(values) if has_dense else np.zeros(n)
    for f in LEX_FIELDS:
        cols[f"{f}_rel"] = _rel(lex[f])
        cols[f"{f}_log"] = np.log1p(lex[f])
    for f in ("all", "examples", "units"):
        cols[f"{f}_rank"] = _rank_feature(lex[f], lex_all.get(f))
    terms = max(1, n_terms)
    cols["title_cover"] = title_hits / terms
    cols["title_precision"] = np.minimum(1.0, title_hits / np.maximum(title_len, 1.0))
    cols["tags_cover"] = tags_hits / terms
    cols["len_examples"] = np.log1p(lengths["examples"]) / math.log(1000)
    cols["len_description"] = np.log1p(lengths["description"]) / math.log(1000)
    cols["len_tags"] = np.log1p(lengths["tags"]) / math.log(100)
    cols["no_text"] = (lengths["all"] <= 2).astype(np.float64)
    base = np.column_stack([np.asarray(cols[f], dtype=np.float64) for f in BASE_FEATURES])
    tag = 1.0 if tag_style else 0.0
    return np.hstack([base * (1.0 - tag), base * tag, np.full((n, 1), tag)])
