"""The retriever: prompt → top-K candidate adapters, hybrid dense + lexical, then filters.

Three rankings, fused by a weighted sum of normalised scores (``fusion="score"``, the default;
``fusion="rrf"`` gives reciprocal-rank fusion, k=60):

- dense: cosine similarity of the cleaned prompt's embedding to each adapter's search text;
- card BM25: FTS5 over name, title, tags, trigger words, activation text and description;
- example BM25: FTS5 over the cards' example-image prompts and top training tags.

Measured on ~8,000 real Civitai cards (see the foundation issue): for tag-style community prompts
BM25 is far better than all-MiniLM and example prompts help a lot; for natural captions dense is
better and example prompts hurt. So the prompt's style (:func:`~stylus_ext.lexical.is_tag_style`)
sets the weights (:data:`WEIGHTS`). Generic quality tags and ``<lora:...>``/weight syntax are removed
before both searches. Score fusion (dense: cosine gap to the best match over :data:`DENSE_SPAN`;
BM25: share of the best BM25) keeps a clear dense winner on captions, where rank fusion let a
single word match ("dress") overturn it; on the test catalog it beat dense-only, BM25-only and
RRF (tests/test_retrieve.py). The weights are hand-set from the measured facts above, not fitted
on a large labelled set.

Filters: base-model compatibility is hard only across architecture groups (``sdk.compatible``);
within a group, another sub-family (Pony vs SDXL) costs a ranking penalty, unknown passes. Banned
adapters, installed adapters whose name cannot be written in ``<lora:...>``, and (with
``installed_only``) not-installed adapters never appear. Pinned adapters that pass those hard
filters are always in the result (appended when they did not rank in the top K).

``Candidate.similarity`` is the dense cosine, ``lexical`` a BM25-based score in [0, 1), ``score``
the fused score in [0, 1] (1 = best in every active ranking), times the family preference.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stylus_ext import lexical, sdk
from stylus_ext.catalog.db import Catalog
from stylus_ext.index import VectorIndex, load_index, read_meta

log = logging.getLogger("stylus")

RRF_K = 60
#: (dense, card BM25, example BM25) weights per prompt style.
WEIGHTS = {"caption": (1.0, 0.3, 0.0), "tags": (0.25, 1.0, 1.0)}
#: Score factor for an adapter of another sub-family of the target's architecture group / unknown.
FAMILY_PENALTY = 0.85
UNKNOWN_FAMILY_PENALTY = 0.95
#: Dense scores are normalised as 1 - (best cosine - cosine) / DENSE_SPAN (clipped at 0): a cosine gap
#: of 0.2 below the best match is worth nothing; BM25 scores are divided by the best BM25.
DENSE_SPAN = 0.2
POOL_FACTOR = 2  # each ranking contributes its top POOL_FACTOR * k


@dataclass(frozen=True)
class _Scored:
    adapter_id: int
    score: float
    similarity: float | None
    lexical: float


class Retriever:
    """Hybrid retriever over a catalog. Cheap per query; keep one per catalog and thread.

    ``encoder`` defaults to the encoder the index was built with (created through the plugins);
    ``index`` to :func:`~stylus_ext.index.load_index`. Without an index (not indexed yet) the
    retriever is lexical-only and says so once in the log. ``weights`` overrides :data:`WEIGHTS`
    per style; ``vector_cache`` (a mapping text → vector) is used for prompt embeddings.
    """

    def __init__(self, catalog: Catalog, encoder: sdk.Encoder | None = None, index: VectorIndex | None = None,
                 *, plugins: Any = None, vector_cache: MutableMapping[str, np.ndarray] | None = None,
                 cache_size: int = 512, weights: dict[str, tuple[float, float, float]] | None = None,
                 fusion: str = "score") -> None:
        self.catalog = catalog
        self.weights = dict(WEIGHTS, **(weights or {}))
        self.fusion = fusion
        self.index = index if index is not None else load_index(catalog)
        self.encoder = encoder
        if self.index is not None:
            if self.encoder is None:
                self.encoder = _encoder_for(self.index.encoder, plugins)
            self.index.check_encoder(self.encoder.identity)
        else:
            log.warning("the catalog has no vector index yet (run `stylus index`); searching by words only")
        if not lexical.has_fts(catalog):
            lexical.ensure_fts(catalog)
        self._cache: MutableMapping[str, np.ndarray] = vector_cache if vector_cache is not None else OrderedDict()
        self._cache_size = cache_size
        self._filter_key: tuple[int, int] | None = None
        self._rows: dict[int, dict[str, Any]] = {}
        self._allowed: dict[tuple[Any, ...], Any] = {}  # filter → allowed ids / index row mask

    # -- embeddings ------------------------------------------------------------------------

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts with the index's encoder (L2-normalised rows); cached per text."""
        if self.encoder is None:
            raise RuntimeError("no encoder: the catalog is not indexed (run `stylus index`)")
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            vectors = np.asarray(self.encoder.encode(missing), dtype=np.float32)
            for text, vec in zip(missing, vectors, strict=True):
                self._cache[text] = vec
                if isinstance(self._cache, OrderedDict) and len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, self.dimension), np.float32)

    @property
    def dimension(self) -> int:
        return self.index.dimension if self.index is not None else 0

    def vectors_for(self, ids: Sequence[int]) -> np.ndarray:
        """Stored vectors of adapters ``ids`` (one row each, zeros for adapters not indexed)."""
        if self.index is None:
            return np.zeros((len(ids), 0), dtype=np.float32)
        return self.index.vectors_for(ids)

    # -- filters ---------------------------------------------------------------------------

    def _filter_rows(self) -> dict[int, dict[str, Any]]:
        """Filter-relevant columns of every adapter, cached until the catalog changes."""
        conn = self.catalog.db.conn
        key = (int(conn.execute("PRAGMA data_version").fetchone()[0]), conn.total_changes)
        if key != self._filter_key:
            rows = conn.execute(
                "select id, base_model, path is not null, banned, pinned, coalesce(name_problem, '') from adapters")
            self._rows = {int(r[0]): {"base_model": r[1] or "unknown", "installed": bool(r[2]), "banned": bool(r[3]),
                                      "pinned": bool(r[4]), "name_problem": r[5]} for r in rows}
            self._filter_key = key
            self._allowed.clear()
        return self._rows

    def _mask(self, base_model: str | None, installed_only: bool, allowed: set[int]) -> np.ndarray:
        key = ("mask", base_model, installed_only)
        if key not in self._allowed:
            self._allowed[key] = self.index.mask_for(allowed)  # type: ignore[union-attr,assignment]
        return self._allowed[key]  # type: ignore[return-value]

    def _allowed_ids(self, base_model: str | None, installed_only: bool) -> set[int]:
        """Ids passing the hard filters, cached per filter until the catalog changes."""
        rows = self._filter_rows()
        key = (base_model, installed_only)
        if key not in self._allowed:
            self._allowed[key] = {i for i, r in rows.items() if self._passes(r, base_model, installed_only)}
        return self._allowed[key]

    @staticmethod
    def _passes(row: dict[str, Any], base_model: str | None, installed_only: bool) -> bool:
        if row["banned"]:
            return False
        if row["installed"] and row["name_problem"]:
            return False
        if installed_only and not row["installed"]:
            return False
        return not base_model or sdk.compatible(row["base_model"], base_model)

    @staticmethod
    def _family_factor(family: str, base_model: str | None) -> float:
        if not base_model or sdk.base_model_group(base_model) == "unknown":
            return 1.0
        if family in (None, "", "unknown"):
            return UNKNOWN_FAMILY_PENALTY
        return 1.0 if family == base_model else FAMILY_PENALTY

    @staticmethod
    def _sql_filter(base_model: str | None, installed_only: bool) -> tuple[str, tuple[Any, ...]]:
        parts = ["coalesce(adapters.banned, 0) = 0",
                 "(adapters.path is null or coalesce(adapters.name_problem, '') = '')"]
        params: list[Any] = []
        if installed_only:
            parts.append("adapters.path is not null")
        group = sdk.base_model_group(base_model)
        if base_model and group != "unknown":
            families = sorted(f for f, g in sdk.BASE_MODEL_GROUPS.items() if g == group)
            known = sorted(f for f in sdk.BASE_MODEL_GROUPS if f != "unknown")
            parts.append(
                f"(adapters.base_model in ({','.join('?' * len(families))}) or adapters.base_model is null "
                f"or adapters.base_model not in ({','.join('?' * len(known))}))")
            params += families + known
        return " and ".join(parts), tuple(params)

    # -- search ----------------------------------------------------------------------------

    def search(self, prompt: str, k: int = 150, *, base_model: str | None = None,
               installed_only: bool = False) -> list[sdk.Candidate]:
        """Top-``k`` candidates for ``prompt`` (plus pinned adapters), best first."""
        k = max(0, int(k))
        rows = self._filter_rows()
        allowed = self._allowed_ids(base_model, installed_only)
        if not allowed:
            return []
        style = "tags" if lexical.is_tag_style(prompt) else "caption"
        w_dense, w_card, w_examples = self.weights[style]
        pool = max(POOL_FACTOR * k, 50)
        rankings: list[tuple[float, dict[int, float]]] = []  # weight, adapter id → raw score (best first)

        cleaned = lexical.clean_prompt(prompt)
        query_vec: np.ndarray | None = None
        dense_sims: dict[int, float] = {}
        if self.index is not None and self.index.count and w_dense > 0 and re.search(r"\w", cleaned):
            query_vec = self.encode([cleaned])[0]
            restrict = None if len(allowed) == len(rows) else self._mask(base_model, installed_only, allowed)
            ids, sims = self.index.query(query_vec, pool, allowed=restrict)
            dense_sims = {int(i): float(s) for i, s in zip(ids, sims, strict=True)}
            rankings.append((w_dense, dict(dense_sims)))

        terms = lexical.query_terms(prompt)
        n_terms = len(terms)
        if w_card > 0 or w_examples > 0:
            terms = lexical.prune_common(self.catalog, terms, len(rows))
        where, params = self._sql_filter(base_model, installed_only)
        bm25: dict[int, float] = {}
        for weight, examples in ((w_card, False), (w_examples, True)):
            if weight <= 0 or not terms:
                continue
            hits = [h for h in lexical.search(self.catalog, terms, examples=examples, where=where, params=params,
                                              limit=pool) if h.adapter_id in allowed]
            for h in hits:
                bm25[h.adapter_id] = max(bm25.get(h.adapter_id, 0.0), h.bm25)
            rankings.append((weight, {h.adapter_id: h.bm25 for h in hits}))

        dense_floor: float | None = None
        if query_vec is not None:
            # Every candidate gets its true cosine (also those found only by words).
            dense_floor = float(min(dense_sims.values())) if dense_sims else 0.0
            union = sorted({i for _, ranking in rankings for i in ranking})
            self._complete_sims(union, query_vec, dense_sims)
            rankings[0] = (w_dense, {i: dense_sims[i] for i in union})
        fused = self._fuse(rankings, dense_floor)
        scored = {i: s * self._family_factor(rows[i]["base_model"], base_model) for i, s in fused.items()}
        order = sorted(scored, key=lambda i: (-scored[i], i))[:k]
        pinned = [i for i in sorted(allowed) if rows[i]["pinned"] and i not in set(order)]
        chosen = order + pinned
        if query_vec is not None:
            self._complete_sims(chosen, query_vec, dense_sims)
        adapters = self._adapters(chosen)
        return [sdk.Candidate(adapter=adapters[i], score=float(scored.get(i, 0.0)),
                              similarity=float(dense_sims.get(i, 0.0)),
                              lexical=lexical.normalise(bm25.get(i, 0.0), n_terms))
                for i in chosen if i in adapters]

    def _complete_sims(self, ids: Sequence[int], query_vec: np.ndarray, sims: dict[int, float]) -> None:
        missing = [i for i in ids if i not in sims]
        if missing and self.index is not None:
            vecs = self.index.vectors_for(missing)
            sims.update({i: float(v @ query_vec) if np.any(v) else 0.0 for i, v in zip(missing, vecs, strict=True)})

    def _fuse(self, rankings: list[tuple[float, dict[int, float]]], dense_floor: float | None) -> dict[int, float]:
        """Fused score in [0, 1] per adapter; ``dense_floor`` is set when rankings[0] is the dense one."""
        fused: dict[int, float] = {}
        total = sum(w for w, r in rankings if r) or 1.0
        for n, (weight, ranking) in enumerate(rankings):
            if not ranking:
                continue
            if self.fusion == "rrf":
                ordered = sorted(ranking, key=lambda i: (-ranking[i], i))
                contrib = {i: (RRF_K + 1) / (RRF_K + r + 1) for r, i in enumerate(ordered)}
            else:
                top = max(ranking.values())
                floor = max(dense_floor, top - DENSE_SPAN) if n == 0 and dense_floor is not None else 0.0
                span = top - floor if top > floor else 1.0
                contrib = {i: max(0.0, (v - floor) / span) for i, v in ranking.items()}
            for i, c in contrib.items():
                fused[i] = fused.get(i, 0.0) + weight * c / total
        return fused

    def _adapters(self, ids: Sequence[int]) -> dict[int, sdk.Adapter]:
        refiner = self.catalog.get_meta("refiner")
        out: dict[int, sdk.Adapter] = {}
        id_list = list(ids)
        for start in range(0, len(id_list), 500):
            chunk = id_list[start:start + 500]
            for row in self.catalog.rows(f"id in ({','.join('?' * len(chunk))})", chunk):
                out[int(row["id"])] = self.catalog.adapter(row, refiner)
        return out

    def close(self) -> None:
        if self.index is not None:
            self.index.close()


def _encoder_for(identity: str, plugins: Any = None) -> sdk.Encoder:
    """Create the encoder an index was built with, from its recorded identity ``name[:model]``."""
    if plugins is None:
        from stylus_ext.plugins import get_plugins

        plugins = get_plugins()
    name, _, model = identity.partition(":")
    # The configured encoder first (settings/env may point at a local copy of the same weights).
    encoder: sdk.Encoder = plugins.create("encoder", name)
    if encoder.identity != identity and model:
        try:
            encoder = plugins.create("encoder", name, model=model)
        except ValueError:  # this encoder has no 'model' option
            pass
    if encoder.identity != identity:
        raise RuntimeError(
            f"the index was built with encoder {identity!r}, but {name!r} is now {encoder.identity!r}; "
            f"re-index with `stylus index --encoder {name}`")
    return encoder


def index_info(catalog: Catalog) -> dict[str, Any] | None:
    """The recorded index meta (encoder, dimension, count, kind, version) or None."""
    return read_meta(catalog)
