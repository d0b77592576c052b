"""BM25 over the catalog's card fields, held as sparse postings in NumPy arrays.

Why not SQLite FTS5: its ``bm25()`` scores every matching row per query, so a query costs time
linear in the catalogue (127 ms p50 at 100K cards), and it ranks one column set at a time, while
the retriever needs each field's score for every candidate. Here each field is a CSC-style postings
matrix (one array of document rows, one of precomputed BM25 weights, one offset per term):
a query adds up the postings of its few terms into one score vector — a few milliseconds at 100K
cards, and every candidate's score of every field comes for free.

Fields (:data:`FIELDS`) group the card columns the retriever scores separately: ``title`` (file
name, alias, title), ``tags``, ``triggers`` (trigger words, activation text), ``description``,
``examples`` (the cards' example-image prompts), ``training`` (top training tags of the file) and
``all`` (everything: the plain BM25 baseline). ``units`` indexes whole tags, not words: each
comma-separated part of an example prompt or training tag, normalised (``Looking_at viewer`` →
``looking viewer``), counted once per example — authors reuse their prompt templates, and a
query's whole tags matching a card's is strong evidence (+3 points R@10 on the real-card dev set).

Tokens: lower-case word characters, ``_`` split (``long_hair`` → ``long``, ``hair``), the grammar's
stopwords (:data:`stylus_ext.sdk.prompt.STOPWORDS`) dropped, plurals folded (``dogs`` → ``dog``).
The same :func:`tokens` reads prompts (``bm25_terms.py``: tokens, units, field texts). The index is
built from the catalog rows in one pass and cached next to the catalog, keyed by a fingerprint of
(id, card hash, name, alias) of every row, so a process loads it instead of re-tokenising.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stylus_ext.bm25_terms import UNIT_FIELDS, field_items, field_text, term_counts, tokens, unit_counts, units
from stylus_ext.id_rows import IdRows
from stylus_ext.npz_map import open_npz, save_npz

log = logging.getLogger("stylus")
__all__ = ["FIELDS", "UNIT_FIELDS", "LexicalIndex", "fingerprint", "index_path", "load_or_build", "tokens", "units"]

#: field → catalog columns it reads.
FIELDS: dict[str, tuple[str, ...]] = {
    "title": ("name", "alias", "title"),
    "tags": ("tags",),
    "triggers": ("trigger_words", "activation_text"),
    "description": ("description",),
    "examples": ("example_prompts",),
    "training": ("training_tags",),
    "units": ("example_prompts", "training_tags"),
    "all": ("name", "alias", "title", "tags", "trigger_words", "activation_text", "description",
            "example_prompts", "training_tags"),
}
K1, B = 1.2, 0.75
FORMAT = 2

class TermSpans(Mapping[str, tuple[int, int]]):
    """term → (start, end) of its postings: one dict term → position over one bounds array (a load
    at 100K cards built ~450,000 tuples for this, more time than the first query took)."""

    def __init__(self, terms: Sequence[str], bounds: np.ndarray) -> None:
        self.bounds = np.asarray(bounds, dtype=np.int64).reshape(-1, 2)
        if len(self.bounds) != len(terms):
            raise ValueError(f"{len(terms)} terms for {len(self.bounds)} posting bounds")
        self._at = dict(zip(terms, range(len(terms)), strict=True))

    def get(self, term: str, default: Any = None) -> Any:  # type: ignore[override]
        i = self._at.get(term)
        if i is None:
            return default
        start, end = self.bounds[i]
        return int(start), int(end)

    def __getitem__(self, term: str) -> tuple[int, int]:
        span = self.get(term)
        if span is None:
            raise KeyError(term)
        return span

    def __contains__(self, term: object) -> bool:
        return term in self._at

    def __iter__(self) -> Iterator[str]:
        return iter(self._at)

    def __len__(self) -> int:
        return len(self._at)


@dataclass
class FieldPostings:
    """One field's postings: term → slice of (document row, term frequency, BM25 weight) arrays."""

    terms: list[str]
    offsets: TermSpans
    rows: np.ndarray  # int32 document rows
    tf: np.ndarray  # float32 term frequency in that document
    weights: np.ndarray  # float32 BM25 weight of the term in that document
    lengths: np.ndarray  # float32 number of terms of each document in this field

    def df(self, term: str) -> int:
        span = self.offsets.get(term)
        return span[1] - span[0] if span else 0

    def scores(self, terms: Iterable[str], n_docs: int, out: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every document for the (de-duplicated) ``terms``."""
        scores = np.zeros(n_docs, dtype=np.float32) if out is None else out
        for term in dict.fromkeys(terms):
            span = self.offsets.get(term)
            if span:
                scores[self.rows[span[0]:span[1]]] += self.weights[span[0]:span[1]]
        return scores

    def triples(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(term id, row, tf) of every posting; term ids index :attr:`terms`."""
        counts = (self.offsets.bounds[:, 1] - self.offsets.bounds[:, 0]) if len(self.terms) else np.zeros(0, np.int64)
        return np.repeat(np.arange(len(self.terms)), counts), self.rows, self.tf

    @classmethod
    def from_triples(cls, terms: list[str], term_ids: np.ndarray, rows: np.ndarray, tf: np.ndarray,
                     lengths: np.ndarray) -> FieldPostings:
        """Sort by term and weight every posting in one vectorised pass (unused terms dropped)."""
        n = len(lengths)
        order = np.argsort(term_ids, kind="stable")
        t, r, f = term_ids[order], rows[order].astype(np.int32), tf[order].astype(np.float32)
        df = np.bincount(t, minlength=len(terms)) if len(terms) else np.zeros(0, np.int64)
        idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        avg = float(lengths.mean()) if n and lengths.sum() else 1.0
        weights = (idf[t] * f * (K1 + 1) / (f + K1 * (1 - B + B * lengths[r] / avg))).astype(np.float32)
        ends = np.cumsum(df)
        used = np.flatnonzero(df)
        kept = [terms[i] for i in used.tolist()]
        bounds = np.stack([ends[used] - df[used], ends[used]], axis=1) if len(used) else np.zeros((0, 2), np.int64)
        return cls(kept, TermSpans(kept, bounds), r, f, weights, lengths.astype(np.float32))


def _triples(docs: Sequence[Counter[str]], vocab: dict[str, int], first_row: int = 0
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(term ids, rows, tfs, lengths) of ``docs`` numbered from ``first_row``; ``vocab`` grows."""
    term_ids: list[int] = []
    doc_rows: list[int] = []
    tfs: list[int] = []
    lengths = np.zeros(len(docs), dtype=np.float32)
    for i, counts in enumerate(docs):
        values = counts.values()
        lengths[i] = sum(values)
        term_ids.extend([vocab.setdefault(term, len(vocab)) for term in counts])
        doc_rows.extend([first_row + i] * len(counts))
        tfs.extend(values)
    return (np.asarray(term_ids, dtype=np.int64), np.asarray(doc_rows, dtype=np.int64),
            np.asarray(tfs, dtype=np.float32), lengths)


def _documents(rows: Iterable[dict[str, Any]], fields: Sequence[str]
               ) -> tuple[list[int], dict[str, list[Counter[str]]]]:
    ids: list[int] = []
    docs: dict[str, list[Counter[str]]] = {f: [] for f in fields}
    for row in rows:
        ids.append(int(row["id"]))
        per_field = {f: term_counts(field_text(row, FIELDS[f])) for f in fields
                     if f != "all" and f not in UNIT_FIELDS}
        for f in fields:
            if f in UNIT_FIELDS:
                docs[f].append(unit_counts(field_items(row, FIELDS[f])))
                continue
            if f != "all":
                docs[f].append(per_field[f])
                continue
            total: Counter[str] = Counter()
            for counts in per_field.values():
                total.update(counts)
            docs[f].append(total if per_field else term_counts(field_text(row, FIELDS[f])))
    return ids, docs


class LexicalIndex:
    """BM25 postings of every field for the adapters ``ids`` (row i of a score vector = ``ids[i]``).

    ``keys`` holds one content key per document (see :func:`doc_keys`): :meth:`updated` re-reads only
    the documents whose key changed, so an update costs the changed cards plus a vectorised re-weighting.
    """

    def __init__(self, ids: np.ndarray, fields: dict[str, FieldPostings], fingerprint: str = "",
                 keys: np.ndarray | None = None) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self.fields = fields
        self.fingerprint = fingerprint
        self.keys = keys if keys is not None else np.zeros(len(self.ids), dtype=np.int64)
        self._row_of: dict[int, int] | None = None
        self._rows_for: IdRows | None = None

    @property
    def row_of(self) -> dict[int, int]:
        """Adapter id → document row (built on first use)."""
        if self._row_of is None:
            self._row_of = dict(zip(self.ids.tolist(), range(len(self.ids)), strict=True))
        return self._row_of

    def rows_for(self, ids: np.ndarray) -> np.ndarray:
        """Document row of each adapter id (-1: not in the index), vectorised; agrees with :attr:`row_of`."""
        if self._rows_for is None:
            self._rows_for = IdRows(self.ids)
        return self._rows_for(ids)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, rows: Iterable[dict[str, Any]], fingerprint: str = "", keys: np.ndarray | None = None,
              fields: Sequence[str] = tuple(FIELDS)) -> LexicalIndex:
        ids, docs = _documents(rows, fields)
        postings = {}
        for f, d in docs.items():
            vocab: dict[str, int] = {}
            t, r, tf, lengths = _triples(d, vocab)
            postings[f] = FieldPostings.from_triples(list(vocab), t, r, tf, lengths)
        return cls(np.array(ids, dtype=np.int64), postings, fingerprint, keys)

    def updated(self, ids: np.ndarray, keys: np.ndarray, fetch: Any, fingerprint: str) -> LexicalIndex:
        """This index brought up to (``ids``, ``keys``): documents whose key is unchanged keep their
        postings; ``fetch(changed_ids)`` yields the catalog rows of the others."""
        old_row = {int(i): r for r, i in enumerate(self.ids)}
        keep_new, keep_old, changed = [], [], []
        for new_r, (i, k) in enumerate(zip(ids.tolist(), keys.tolist(), strict=True)):
            r = old_row.get(i)
            if r is not None and int(self.keys[r]) == k:
                keep_new.append(new_r)
                keep_old.append(r)
            else:
                changed.append(i)
        fresh_ids, docs = _documents(fetch(changed), list(self.fields))
        new_row_of = {i: r for r, i in enumerate(ids.tolist())}
        remap = np.full(len(self.ids), -1, dtype=np.int64)
        remap[np.asarray(keep_old, dtype=np.int64)] = np.asarray(keep_new, dtype=np.int64)
        fields = {}
        for name, fp in self.fields.items():
            t_old, r_old, tf_old = fp.triples()
            kept = remap[r_old] >= 0
            vocab = {term: n for n, term in enumerate(fp.terms)}
            t_new, r_new, tf_new, len_new = _triples(docs[name], vocab)
            lengths = np.zeros(len(ids), dtype=np.float32)
            lengths[np.asarray(keep_new, dtype=np.int64)] = fp.lengths[np.asarray(keep_old, dtype=np.int64)]
            fresh_rows = np.array([new_row_of[i] for i in fresh_ids], dtype=np.int64)
            if len(fresh_rows):
                lengths[fresh_rows] = len_new
            fields[name] = FieldPostings.from_triples(
                list(vocab), np.concatenate([t_old[kept], t_new]),
                np.concatenate([remap[r_old[kept]], fresh_rows[r_new] if len(r_new) else r_new]),
                np.concatenate([tf_old[kept], tf_new]), lengths)
        return LexicalIndex(ids, fields, fingerprint, keys)

    def scores(self, field: str, terms: Iterable[str]) -> np.ndarray:
        return self.fields[field].scores(terms, len(self.ids))

    def doc_freq(self, term: str, field: str = "all") -> int:
        return self.fields[field].df(term)

    # -- persistence -----------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write atomically (temp file + rename) as one ``.npz``."""
        arrays: dict[str, np.ndarray] = {"ids": self.ids, "keys": self.keys}
        meta: dict[str, Any] = {"format": FORMAT, "fingerprint": self.fingerprint, "fields": {}}
        for name, fp in self.fields.items():
            arrays[f"{name}.rows"] = fp.rows
            arrays[f"{name}.tf"] = fp.tf
            arrays[f"{name}.weights"] = fp.weights
            arrays[f"{name}.bounds"] = fp.offsets.bounds
            arrays[f"{name}.lengths"] = fp.lengths
            meta["fields"][name] = fp.terms
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        save_npz(path, arrays)

    @classmethod
    def load(cls, path: Path) -> LexicalIndex | None:
        """The saved index, or None when missing, of another format or unreadable."""
        try:
            data = open_npz(path)  # memory-mapped: a query reads only its terms' postings
            meta = json.loads(bytes(data["meta"]).decode())
            if meta.get("format") != FORMAT:
                return None
            fields = {}
            for name, terms in meta["fields"].items():
                spans = TermSpans(terms, data[f"{name}.bounds"])
                fields[name] = FieldPostings(terms, spans, data[f"{name}.rows"], data[f"{name}.tf"],
                                             data[f"{name}.weights"], data[f"{name}.lengths"])
            return cls(data["ids"], fields, meta.get("fingerprint", ""), data["keys"])
        except (OSError, ValueError, KeyError, EOFError) as exc:
            if Path(path).exists():
                log.warning("lexical index %s unreadable (%s); rebuilding it", path, exc)
            return None


SELECT_COLUMNS = ("id", *dict.fromkeys(c for cols in FIELDS.values() for c in cols))


def fingerprint(conn: Any) -> str:
    """A key that changes whenever a field's text can: the catalog's change counter (schema 3, one
    row), else a digest of (id, card hash, name, alias) of every adapter computed inside SQLite."""
    from stylus_ext.catalog.db import generation_key

    key = generation_key(conn, "text_generation")
    if key is not None:
        return f"generation:{key}"
    row = conn.execute(
        "select group_concat(k, char(10)) from (select id || char(9) || coalesce(card_hash, '') || char(9) || "
        "name || char(9) || coalesce(alias, '') as k from adapters order by id)").fetchone()
    return hashlib.sha1((row[0] or "").encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()


def doc_keys(conn: Any) -> tuple[np.ndarray, np.ndarray]:
    """(ids, content keys) of every adapter: a key changes whenever the adapter's text can."""
    ids, keys = [], []
    for aid, card_hash, name, alias in conn.execute(
            "select id, coalesce(card_hash, ''), name, coalesce(alias, '') from adapters order by id"):
        ids.append(aid)
        digest = hashlib.blake2b(f"{card_hash}\t{name}\t{alias}".encode("utf-8", "surrogatepass"), digest_size=8)
        keys.append(int.from_bytes(digest.digest(), "little", signed=True))
    return np.array(ids, dtype=np.int64), np.array(keys, dtype=np.int64)


def index_path(catalog_path: str | Path) -> Path:
    p = Path(catalog_path)
    return p.with_name(p.name + ".bm25.npz")


def _fetcher(conn: Any) -> Any:
    def fetch(ids: Sequence[int]) -> Iterable[dict[str, Any]]:
        for start in range(0, len(ids), 500):
            chunk = list(ids[start:start + 500])
            cur = conn.execute(f"select {', '.join(SELECT_COLUMNS)} from adapters where id in "
                               f"({','.join('?' * len(chunk))}) order by id", chunk)
            names = [d[0] for d in cur.description]
            yield from (dict(zip(names, r, strict=True)) for r in cur)
    return fetch


def load_or_build(catalog: Any, *, previous: LexicalIndex | None = None, save: bool = True) -> LexicalIndex:
    """The catalog's lexical index, current: ``previous`` or the saved file when nothing changed,
    updated incrementally when some cards changed (at most half), rebuilt otherwise."""
    conn = catalog.db.conn
    fp = fingerprint(conn)
    path = index_path(catalog.path) if getattr(catalog, "path", None) else None
    base = previous if previous is not None else (LexicalIndex.load(path) if path is not None else None)
    if base is not None and base.fingerprint == fp:
        return base
    ids, keys = doc_keys(conn)
    fetch = _fetcher(conn)
    unchanged = np.isin(keys, base.keys).sum() if base is not None else 0
    if base is not None and unchanged >= len(ids) / 2:
        index = base.updated(ids, keys, fetch, fp)
    else:
        index = LexicalIndex.build(fetch(ids.tolist()), fp, keys)
    if save and path is not None:
        try:
            index.save(path)
        except OSError as exc:  # read-only folder, full disk: search still works from memory
            log.warning("could not save the lexical index next to the catalog (%s)", exc)
    return index
