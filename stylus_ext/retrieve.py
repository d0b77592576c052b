"""The retriever: prompt → top-K candidate adapters, scored by a fitted model, then filters.

1. **Pool**: the union of the best :data:`POOL` adapters by dense cosine (the cleaned prompt's
   embedding, through the fitted query map of :mod:`stylus_ext.query_map` where one exists for the
   index's encoder, against each adapter's search text), by BM25 over all card text, by BM25 over the
   cards' example prompts and by BM25 over the title (:mod:`stylus_ext.bm25`).
2. **Score**: every pooled adapter gets the features of :mod:`stylus_ext.ranking` (dense cosine and
   gap, the best cosine to one of its example prompts, each field's BM25 share and rank, title/tag
   coverage, prompt style, card length) and one
   fitted logistic score; boosted trees re-rank its best few hundred (the order only). The fusion
   is learned on real Civitai cards (``benchmarks/fit_retriever.py``), not hand-set: the old
   hand-set weighted sum fell below plain BM25 on real cards (R@10 0.43 vs 0.60).
3. **Versions**: several versions of one Civitai model are one choice: the best-scoring version
   stays (an installed one before a remote one), the others are dropped.

Generic quality tags and ``<lora:...>``/weight syntax are removed before both searches.

Filters: base-model compatibility (``sdk.compatible``); within a compatible group another
sub-family costs a ranking penalty, unknown passes. Banned adapters, installed adapters whose name
cannot be written in ``<lora:...>`` or whose file cannot be read, and (with ``installed_only``)
not-installed adapters never appear. Pinned adapters that pass those hard filters are always in
the result (appended when they did not rank in the top K).

``Candidate.similarity`` is the dense cosine of the prompt's own embedding (not the mapped one),
``lexical`` a BM25-based score in [0, 1), ``score`` the linear model's probability that this is the
adapter the prompt asks for, times the family preference. Candidates come in the re-ranker's order
(the linear score's on a pool smaller than the trees learnt from), so a score may exceed an
earlier one's.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stylus_ext import bm25, filters_file, lexical, query_map, ranking, sdk
from stylus_ext.catalog.db import Catalog, generation_key
from stylus_ext.id_rows import FilterTable, IdRows, Versions
from stylus_ext.index import VectorIndex, load_index

log = logging.getLogger("stylus")

#: Score factor for an adapter of another sub-family of the target's architecture group / unknown.
FAMILY_PENALTY = 0.85
UNKNOWN_FAMILY_PENALTY = 0.95
#: Best adapters taken from each ranking into the scored pool (at least 2k). Measured and not kept:
#: a seventh ranking, the best cosine to one of an adapter's example prompts (an exact scan of their
#: vectors), raised the dev truth's presence in the pool from 0.867 to 0.890, but after refitting the
#: ranker on those pools recover R@10 / R@150 read 0.683 / 0.820 against 0.680 / 0.823 (the added
#: truths were prompts like "masterpiece, best quality, 1girl" that rank past 150 anyway), for 18%
#: more candidates and 6 ms a search.
POOL = 300
MAX_TERMS = 40
ADAPTER_CACHE = 4096  # adapter records kept between searches (cleared when the catalog changes)


@dataclass(frozen=True)
class Pool:
    """The scored pool of one query: adapter ids, their features, dense cosines and BM25."""

    ids: np.ndarray
    features: np.ndarray
    sims: np.ndarray
    bm25_all: np.ndarray
    n_terms: int


class Retriever:
    """Hybrid retriever over a catalog. Cheap per query; keep one per catalog and thread.

    ``encoder`` defaults to the encoder the index was built with (created through the plugins);
    ``index`` to :func:`~stylus_ext.index.load_index`. Without an index (not indexed yet) the
    retriever is lexical-only and says so once in the log. ``ranker`` overrides the shipped fitted
    model (:func:`stylus_ext.ranking.default_ranker`); ``vector_cache`` (a mapping text → vector)
    is used for prompt embeddings, an LRU of ``cache_size`` texts by default. ``use_query_map``: search
    the dense side with the shipped query map where it was fitted for the index's encoder
    (:mod:`stylus_ext.query_map`; False: the prompt's own vector, as the map's fit needs).
    """

    def __init__(self, catalog: Catalog, encoder: sdk.Encoder | None = None, index: VectorIndex | None = None,
                 *, plugins: Any = None, vector_cache: MutableMapping[str, np.ndarray] | None = None,
                 cache_size: int = 2048, ranker: ranking.Ranker | None = None,
                 use_query_map: bool = True) -> None:
        self.catalog = catalog
        self.ranker = ranker or ranking.default_ranker()
        self.index = index if index is not None else load_index(catalog)
        self.encoder = encoder
        if self.index is not None:
            if self.encoder is None:
                self.encoder = _encoder_for(self.index.encoder, plugins)
            self.index.check_encoder(self.encoder.identity)
        self.query_map = (query_map.for_encoder(self.index.encoder, self.index.dimension)
                          if use_query_map and self.index is not None else None)
        if self.index is None:
            log.warning("the catalog has no vector index yet (run `stylus index`); searching by words only")
        self._cache: MutableMapping[str, np.ndarray] = vector_cache if vector_cache is not None else OrderedDict()
        self._cache_size = cache_size
        self._filter_key: tuple[int, int] | None = None
        self._rows = FilterTable([])
        self._allowed: dict[tuple[Any, ...], Any] = {}  # filter → allowed ids / index row mask
        self._lex: bm25.LexicalIndex | None = None
        self._lex_key: tuple[int, int] | None = None
        self._versions = Versions([])
        self._adapter_cache: OrderedDict[int, sdk.Adapter] = OrderedDict()
        self._adapter_key: tuple[Any, ...] | None = None
        self._index_rows: tuple[np.ndarray, IdRows] | None = None
        self._lock = threading.RLock()

    # -- embeddings ------------------------------------------------------------------------

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts with the index's encoder (L2-normalised rows); cached per text (LRU).

        The result is assembled before anything is evicted, so a call with more texts than the
        cache holds still gets every vector.
        """
        if self.encoder is None:
            raise RuntimeError("no encoder: the catalog is not indexed (run `stylus index`)")
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        lru = isinstance(self._cache, OrderedDict)
        with self._lock:
            found = {t: self._cache[t] for t in dict.fromkeys(texts) if t in self._cache}
            if lru:
                for t in found:
                    self._cache.move_to_end(t)  # type: ignore[attr-defined]
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            vectors = np.asarray(self.encoder.encode(missing), dtype=np.float32)
            found.update(zip(missing, vectors, strict=True))
        out = np.stack([found[t] for t in texts])
        with self._lock:
            for t in missing:
                self._cache[t] = found[t]
            while lru and len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)  # type: ignore[call-arg]
        return out

    @property
    def dimension(self) -> int:
        return self.index.dimension if self.index is not None else 0

    def vectors_for(self, ids: Sequence[int]) -> np.ndarray:
        """Stored vectors of adapters ``ids`` (one row each, zeros for adapters not indexed)."""
        if self.index is None:
            return np.zeros((len(ids), 0), dtype=np.float32)
        try:
            wanted = np.asarray(ids, dtype=np.int64).reshape(-1)
        except (OverflowError, TypeError, ValueError):
            return self.index.vectors_for(ids)
        index_ids = self.index.ids
        if self._index_rows is None or self._index_rows[0] is not index_ids:
            self._index_rows = (index_ids, IdRows(index_ids))
        rows = self._index_rows[1](wanted)
        out = np.zeros((len(wanted), self.index.dimension), dtype=np.float32)
        found = rows >= 0
        if found.any():
            out[found] = self.index.vectors[rows[found]]  # one gather from the memory-mapped rows
        return out

    # -- filters ---------------------------------------------------------------------------

    def _filter_rows(self) -> FilterTable:
        """Filter-relevant columns of every adapter, cached until the catalog changes.

        A search holds the table it got while a background scan/index may refresh the cache: ids
        added since are not in it and are filtered out, never a KeyError."""
        conn = self.catalog.db.conn
        key = (int(conn.execute("PRAGMA data_version").fetchone()[0]), conn.total_changes)
        if key != self._filter_key:
            self._rows, self._versions = self._read_filter_rows(conn)
            self._filter_key = key
            self._allowed.clear()
        return self._rows

    def _read_filter_rows(self, conn: Any) -> tuple[FilterTable, Versions]:
        """The saved filter table while the catalog is unchanged (:mod:`stylus_ext.filters_file`),
        else the rows (a scan of 100K cards costs 0.4-0.6 s here), saved for the next process."""
        generation = generation_key(conn)
        path = filters_file.path_for(self.catalog.path) if getattr(self.catalog, "path", None) else None
        saved = filters_file.load(path, generation) if generation and path else None
        if saved is not None:
            return saved
        table, versions = filters_file.read_rows(conn)
        if generation and path and not getattr(self.catalog, "readonly", False):
            filters_file.save(path, generation, table, versions)
        return table, versions

    def _mask(self, base_model: str | None, installed_only: bool, allowed: np.ndarray) -> np.ndarray:
        key = ("mask", base_model, installed_only)
        if key not in self._allowed:
            self._allowed[key] = np.isin(self.index.ids, allowed)  # type: ignore[union-attr]
        return self._allowed[key]

    def _pinned_ids(self, base_model: str | None, installed_only: bool) -> list[int]:
        """Pinned ids passing the hard filters, in id order (cached like :meth:`_allowed_ids`)."""
        allowed = self._allowed_ids(base_model, installed_only)
        key = ("pinned", base_model, installed_only)
        if key not in self._allowed:
            self._allowed[key] = allowed[self._rows.pinned[self._rows.rows(allowed)]].tolist()
        return self._allowed[key]  # type: ignore[return-value]

    def _allowed_ids(self, base_model: str | None, installed_only: bool) -> np.ndarray:
        """Ids passing the hard filters (sorted), cached per filter until the catalog changes."""
        table = self._filter_rows()
        key = (base_model, installed_only)
        if key not in self._allowed:
            passing = table.passing(lambda r: self._passes(r, base_model, installed_only))
            self._allowed[key] = np.sort(table.ids[passing])
        return self._allowed[key]

    @staticmethod
    def _passes(row: dict[str, Any], base_model: str | None, installed_only: bool) -> bool:
        if row["banned"]:
            return False
        if row["installed"] and (row["name_problem"] or not row.get("readable", True)):
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

    # -- lexical index -----------------------------------------------------------------------

    def _lexical(self) -> bm25.LexicalIndex:
        """The BM25 index of the current catalog (reloaded or rebuilt when the catalog changed)."""
        conn = self.catalog.db.conn
        key = (int(conn.execute("PRAGMA data_version").fetchone()[0]), conn.total_changes)
        with self._lock:
            if self._lex is None or key != self._lex_key:
                self._lex = bm25.load_or_build(self.catalog, previous=self._lex)
                self._lex_key = key
                self._lex_masks: dict[tuple[Any, ...], np.ndarray | None] = {}
            return self._lex

    def _lex_mask(self, lex: bm25.LexicalIndex, base_model: str | None, installed_only: bool,
                  allowed: np.ndarray) -> np.ndarray | None:
        """Rows of the lexical index the filters allow; None when they allow every row."""
        key = (base_model, installed_only, len(allowed), self._filter_key)
        if key not in self._lex_masks:
            mask = np.isin(lex.ids, allowed)
            self._lex_masks[key] = None if mask.all() else mask
        return self._lex_masks[key]

    def word_counter(self) -> tuple[Callable[[str], int], int]:
        """``(count, size)`` over the current lexical index: ``count(text)`` is how many of its
        ``size`` adapters hold ``text`` in their card text (its rarest token; 0 without one). Bound
        to one index, so a compose request counts on one snapshot, with no catalog query per word."""
        lex = self._lexical()

        def count(text: str) -> int:
            counts = [lex.doc_freq(t) for t in bm25.tokens(text)]
            return min(counts) if counts else 0

        return count, len(lex)

    # -- search ----------------------------------------------------------------------------

    def pool(self, prompt: str, *, base_model: str | None = None, installed_only: bool = False,
             size: int = POOL) -> Pool | None:
        """The candidate pool of ``prompt`` with its features (None when no adapter passes the filters)."""
        allowed = self._allowed_ids(base_model, installed_only)
        if not len(allowed):
            return None
        lex = self._lexical()
        cleaned = lexical.clean_prompt(prompt)
        terms = list(dict.fromkeys(bm25.tokens(cleaned)))[:MAX_TERMS]
        mask = self._lex_mask(lex, base_model, installed_only, allowed)
        n = len(lex)
        unit_terms = list(dict.fromkeys(bm25.units(prompt)))[:MAX_TERMS]
        field = {f: (lex.scores(f, unit_terms if f in bm25.UNIT_FIELDS else terms) if terms
                     else np.zeros(n, np.float32)) for f in ranking.LEX_FIELDS}
        if mask is not None:
            field = {f: values * mask for f, values in field.items()}
        top = [_top_positive(field[f], want) for f, want in (
            ("all", size), ("examples", size), ("units", size), ("title", size // 3), ("tags", size // 3))]
        pool_ids = set(lex.ids[np.concatenate(top)].tolist())
        query_vec = search_vec = d_ids = d_sims = None
        if self.index is not None and self.index.count and re.search(r"\w", cleaned):
            query_vec = search_vec = self.encode([cleaned])[0]
            if self.query_map is not None:
                search_vec = self.query_map(query_vec)
            restrict = None if len(allowed) == len(self._rows) else self._mask(base_model, installed_only, allowed)
            d_ids, d_sims = self.index.query(search_vec, size, allowed=restrict)
            pool_ids.update(d_ids.tolist())
        ids = np.unique(np.fromiter(pool_ids, dtype=np.int64, count=len(pool_ids)))
        ids = ids[allowed[np.minimum(np.searchsorted(allowed, ids), len(allowed) - 1)] == ids]
        mapped = self._dense_sims(ids, search_vec, d_ids, d_sims)
        dense = mapped if self.query_map is None else self._dense_sims(ids, query_vec, None, None)
        examples = (self.index.example_similarity(query_vec, ids) if query_vec is not None and self.index is not None
                    else None)
        lex_rows = lex.rows_for(ids)
        known = lex_rows >= 0
        safe = np.where(known, lex_rows, 0)

        def at(values: np.ndarray) -> np.ndarray:
            return np.where(known, values[safe], 0.0)

        title_hits = np.zeros(n, np.float32)
        tags_hits = np.zeros(n, np.float32)
        for term in terms:
            for hits, name in ((title_hits, "title"), (tags_hits, "tags")):
                span = lex.fields[name].offsets.get(term)
                if span:
                    hits[lex.fields[name].rows[span[0]:span[1]]] += 1
        positives = {f: field[f][field[f] > 0] for f in ("all", "examples", "units")}
        features = ranking.candidate_features(
            sims=dense, mapped=mapped, examples=examples, lex={f: at(field[f]) for f in ranking.LEX_FIELDS},
            lex_all=positives,
            title_hits=at(title_hits), tags_hits=at(tags_hits), title_len=at(lex.fields["title"].lengths),
            lengths={f: at(lex.fields[f].lengths) for f in ("examples", "description", "tags", "all")},
            n_terms=len(terms), tag_style=lexical.is_tag_style(prompt))
        return Pool(ids, features, dense, at(field["all"]), len(terms))

    def _dense_sims(self, ids: np.ndarray, query_vec: np.ndarray | None, d_ids: np.ndarray | None,
                    d_sims: np.ndarray | None) -> np.ndarray:
        """Dense cosine of every pool id: the dense search's own figure, else the stored vector's."""
        out = np.zeros(len(ids))
        if query_vec is None or not len(ids):
            return out
        have = np.zeros(len(ids), dtype=bool)
        if d_ids is not None and len(d_ids):
            pos = np.minimum(np.searchsorted(ids, d_ids), len(ids) - 1)
            hit = ids[pos] == d_ids
            out[pos[hit]] = d_sims[hit]
            have[pos[hit]] = True
        missing = np.flatnonzero(~have)
        if len(missing):
            vecs = self.vectors_for(ids[missing])
            out[missing] = np.where(vecs.any(axis=1), vecs @ np.asarray(query_vec, dtype=np.float32), 0.0)
        return out

    def search(self, prompt: str, k: int = 150, *, base_model: str | None = None,
               installed_only: bool = False) -> list[sdk.Candidate]:
        """Top-``k`` candidates for ``prompt`` (plus pinned adapters), best first."""
        with sdk.single_blas_thread():  # small products: BLAS threads cost more than they save
            return self._search(prompt, max(0, int(k)), base_model, installed_only)

    def _search(self, prompt: str, k: int, base_model: str | None, installed_only: bool) -> list[sdk.Candidate]:
        rows = self._filter_rows()
        pool = self.pool(prompt, base_model=base_model, installed_only=installed_only, size=max(POOL, 2 * k))
        if pool is None:
            return []
        table_rows = rows.rows(pool.ids)
        present = table_rows >= 0
        ids = pool.ids[present]
        factors = self._family_factors(table_rows[present], rows, base_model)
        first = self.ranker.score(pool.features)
        scores = first[present] * factors
        keys = self.ranker.order_keys(pool.features, first)[present] * factors
        ranked = ids[np.lexsort((ids, -keys))]  # best first, ties by id
        order = self._versions.one_each(ranked)[:k].tolist()
        chosen_set = set(order)
        chosen = order + [i for i in self._pinned_ids(base_model, installed_only) if i not in chosen_set]
        scored = dict(zip(ids.tolist(), scores.tolist(), strict=True))
        sims = dict(zip(pool.ids.tolist(), pool.sims.tolist(), strict=True))
        bm = dict(zip(pool.ids.tolist(), pool.bm25_all.tolist(), strict=True))
        adapters = self._adapters(chosen)
        return [sdk.Candidate(adapter=adapters[i], score=float(scored.get(i, 0.0)),
                              similarity=float(sims.get(i, 0.0)),
                              lexical=lexical.normalise(bm.get(i, 0.0), pool.n_terms))
                for i in chosen if i in adapters]

    def _family_factors(self, rows: np.ndarray, table: FilterTable, base_model: str | None) -> np.ndarray:
        """:meth:`_family_factor` of the adapters at ``rows`` of ``table`` (one call per combination)."""
        if not base_model or sdk.base_model_group(base_model) == "unknown":
            return np.ones(len(rows))
        factor = table.per_combination(lambda c: self._family_factor(c["base_model"], base_model), np.float64)
        return factor[table.combo[rows]]

    def _adapters(self, ids: Sequence[int]) -> dict[int, sdk.Adapter]:
        """Adapter records of ``ids``; an LRU of :data:`ADAPTER_CACHE` records, emptied whenever the
        catalog (or the active refiner) changes."""
        refiner = self.catalog.get_meta("refiner")
        with self._lock:
            if self._adapter_key != (self._filter_key, refiner):
                self._adapter_cache.clear()
                self._adapter_key = (self._filter_key, refiner)
            out = {i: self._adapter_cache[i] for i in ids if i in self._adapter_cache}
            for i in out:
                self._adapter_cache.move_to_end(i)
        missing = [i for i in dict.fromkeys(ids) if i not in out]
        fresh = self.catalog.adapters_by_id(missing, refiner)
        with self._lock:
            if self._adapter_key == (self._filter_key, refiner):
                self._adapter_cache.update(fresh)
                while len(self._adapter_cache) > ADAPTER_CACHE:
                    self._adapter_cache.popitem(last=False)
        out.update(fresh)
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


def _top_positive(scores: np.ndarray, k: int) -> np.ndarray:
    """Rows of the ``k`` best positive scores (unordered)."""
    positive = np.flatnonzero(scores > 0)
    if len(positive) <= k:
        return positive
    return positive[np.argpartition(-scores[positive], k - 1)[:k]]
