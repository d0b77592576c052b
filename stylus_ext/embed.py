"""Embedding the catalog: one search text per adapter, vectors cached per (encoder, text hash).

The dense search text is title + tags + the (refined) description, as in the reference code — no
trigger words: they are mostly made-up tokens (``sks``, ``ohwx style``) that pull the sentence
vector towards noise; the lexical (BM25) side of the retriever matches them instead. Tags come
before the description so that the 256-token model limit cuts the long author prose, not the tags.

Each adapter's example prompts (:func:`example_texts`: at most :data:`MAX_EXAMPLES`, read as the
retriever reads a prompt) are embedded too, one vector each, into the same cache: the retriever's
``ex_dense`` feature is a prompt's best cosine to one of them — how close it is to prompts people
really wrote with that adapter. On the real-card dev queries that alone finds the card in the top 10
for 0.48 of the queries, against 0.10 for the card text's vector (README, "Example prompts").
Which texts an adapter's example prompts give is cached in the catalog (:func:`example_hashes`), so
an unchanged catalogue is not read through the prompt grammar again.

Only texts whose hash is not cached for the encoder are embedded; vectors are committed in chunks,
so an interrupted run keeps its work and the next run resumes.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stylus_ext import lexical, sdk
from stylus_ext.catalog.db import Catalog, text_hash

log = logging.getLogger("stylus")

CHUNK = 256  # texts per encoder call and per commit
MAX_DESCRIPTION_CHARS = 1200  # ~256 tokens: the rest would be truncated by the model anyway
#: Example prompts embedded per adapter: a Civitai version shows up to about ten images; the dev
#: queries' top-10 hits by example cosine were 0.37 with one, 0.47 with four and 0.48 with eight.
MAX_EXAMPLES = 8
MAX_EXAMPLE_CHARS = 1000
#: Bump when :func:`example_texts` would return other texts for the same prompts (the cached
#: hashes in the catalog's ``example_texts`` table are keyed by it).
EXAMPLE_TEXTS_VERSION = 1


@dataclass
class EmbedReport:
    """What :func:`embed_catalog` did; ``hashes`` maps adapter id → text hash of its vector."""

    encoder: str
    dimension: int
    total: int = 0
    embedded: int = 0
    cached: int = 0
    hashes: dict[int, str] = field(default_factory=dict)
    examples: dict[int, tuple[str, ...]] = field(default_factory=dict)  # adapter id → its examples' hashes
    example_sources: set[str] = field(default_factory=set)  # cache keys of the adapters' raw example prompts


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


def search_text(adapter: sdk.Adapter) -> str:
    """The text embedded for an adapter: title, tags, then the refined description."""
    title = _clean(adapter.title)
    parts = [title] if title else []
    tags = [t for t in (_clean(t) for t in adapter.card.tags) if t]
    if tags:
        parts.append("Tags: " + ", ".join(dict.fromkeys(tags)) + ".")
    description = _clean(adapter.description)
    if description:
        if len(description) > MAX_DESCRIPTION_CHARS:
            description = description[:MAX_DESCRIPTION_CHARS].rsplit(" ", 1)[0]
        parts.append(description)
    return " ".join(parts) or _clean(adapter.name)


def example_texts(adapter: sdk.Adapter) -> tuple[str, ...]:
    """The adapter's example prompts as the retriever reads a prompt (``lexical.clean_prompt``: no
    ``<lora:>`` tags, weights or quality words), distinct, with a word, at most :data:`MAX_EXAMPLES`."""
    out: list[str] = []
    for prompt in adapter.card.example_prompts:
        text = lexical.clean_prompt(prompt)[:MAX_EXAMPLE_CHARS]
        if text not in out and re.search(r"\w", text):
            out.append(text)
            if len(out) == MAX_EXAMPLES:
                break
    return tuple(out)


def _example_source(adapter: sdk.Adapter) -> str | None:
    if not adapter.card.example_prompts:
        return None
    return text_hash(json.dumps([EXAMPLE_TEXTS_VERSION, MAX_EXAMPLES, MAX_EXAMPLE_CHARS,
                                 list(adapter.card.example_prompts)], ensure_ascii=False))


def example_hashes(catalog: Catalog, adapters: Iterable[sdk.Adapter], *,
                   need_text: Callable[[str], bool] = lambda h: False, store: bool = True,
                   sources: set[str] | None = None) -> tuple[dict[int, tuple[str, ...]], dict[str, str]]:
    """(adapter id → the hashes of its :func:`example_texts`, hash → text of each text read now);
    ``sources`` collects the cache keys of the adapters' raw prompts (what pruning keeps).

    The hashes are cached in the catalog by the raw prompts, so only new or changed example prompts
    go through the grammar; an adapter whose cached hashes include one ``need_text`` asks for (a
    vector still to embed) is read again for its texts. ``store``: write what was read to the cache."""
    known = dict(catalog.db.execute("select source, hashes from example_texts").fetchall())
    out: dict[int, tuple[str, ...]] = {}
    texts: dict[str, str] = {}
    fresh: dict[str, str] = {}
    for adapter in adapters:
        source = _example_source(adapter)
        if source is None:
            continue
        if sources is not None:
            sources.add(source)
        hashes = tuple(json.loads(known[source])) if source in known else None
        if hashes is None or any(need_text(h) for h in hashes):
            read = example_texts(adapter)
            hashes = tuple(text_hash(t) for t in read)
            texts.update(zip(hashes, read, strict=True))
            if source not in known:
                fresh[source] = known[source] = json.dumps(hashes)
        if hashes:
            out[adapter.id] = hashes
    if store and fresh:
        with catalog.db.conn:
            catalog.db.conn.executemany("insert or replace into example_texts (source, hashes) values (?, ?)",
                                        list(fresh.items()))
    return out, texts


def to_blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def from_blob(blob: bytes, dim: int) -> np.ndarray:
    vector = np.frombuffer(blob, dtype=np.float32)
    if vector.shape[0] != dim:
        raise ValueError(f"stored vector has {vector.shape[0]} values, expected {dim}")
    return vector


def cached_hashes(catalog: Catalog, encoder_identity: str) -> set[str]:
    rows = catalog.db.execute("select text_hash from embeddings where encoder = ?", [encoder_identity])
    return {r[0] for r in rows}


def load_vectors(catalog: Catalog, encoder_identity: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
    """Cached vectors by text hash (missing hashes are simply absent)."""
    wanted = list(dict.fromkeys(hashes))
    out: dict[str, np.ndarray] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        marks = ",".join("?" * len(chunk))
        rows = catalog.db.execute(
            f"select text_hash, dim, vector from embeddings where encoder = ? and text_hash in ({marks})",
            [encoder_identity, *chunk])
        for h, dim, blob in rows:
            out[h] = from_blob(blob, int(dim))
    return out


def _progress(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc="embedding", unit="text", disable=not enabled or not sys.stderr.isatty(),
                file=sys.stderr)


def embed_catalog(catalog: Catalog, encoder: sdk.Encoder, *, progress: bool = False,
                  adapters: list[sdk.Adapter] | None = None, examples: bool = True) -> EmbedReport:
    """Embed every adapter's :func:`search_text` and :func:`example_texts` not cached yet for ``encoder``
    (``examples=False``: the search texts only)."""
    identity = encoder.identity
    adapters = catalog.adapters() if adapters is None else adapters
    texts: dict[str, str] = {}
    report = EmbedReport(encoder=identity, dimension=0, total=len(adapters))
    for adapter in adapters:
        text = search_text(adapter)
        h = text_hash(text)
        report.hashes[adapter.id] = h
        texts.setdefault(h, text)
    have = cached_hashes(catalog, identity)
    example_text: dict[str, str] = {}
    if examples:
        report.examples, example_text = example_hashes(catalog, adapters, need_text=lambda h: h not in have,
                                                       sources=report.example_sources)
    every = {*texts, *(h for hashes in report.examples.values() for h in hashes)}
    report.cached = len(every & have)  # distinct texts (search texts and examples)
    texts = {**example_text, **texts}  # every example hash without a vector was read (need_text)
    todo = [(h, t) for h, t in texts.items() if h not in have]
    if todo:
        # Longest first inside each chunk is done by the encoder; sorting across chunks too keeps
        # padding low for the whole run.
        todo.sort(key=lambda item: len(item[1]), reverse=True)
        with _progress(len(todo), progress) as bar:
            for start in range(0, len(todo), CHUNK):
                chunk = todo[start:start + CHUNK]
                vectors = np.asarray(encoder.encode([t for _, t in chunk]), dtype=np.float32)
                if vectors.ndim != 2 or vectors.shape[0] != len(chunk):
                    raise RuntimeError(f"encoder {identity!r} returned {vectors.shape} for {len(chunk)} texts")
                if not np.all(np.isfinite(vectors)):
                    raise RuntimeError(f"encoder {identity!r} returned non-finite values")
                dim = int(vectors.shape[1])
                rows = [(identity, h, dim, to_blob(v)) for (h, _), v in zip(chunk, vectors, strict=True)]
                with catalog.db.conn:
                    catalog.db.conn.executemany(
                        "insert or replace into embeddings (encoder, text_hash, dim, vector) values (?, ?, ?, ?)",
                        rows)
                bar.update(len(chunk))
    report.embedded = len(todo)
    row = catalog.db.execute("select dim from embeddings where encoder = ? limit 1", [identity]).fetchone()
    report.dimension = int(row[0]) if row else 0
    return report


def prune_example_texts(catalog: Catalog, keep: set[str]) -> int:
    """Delete cached example-text hashes whose raw prompts (cache key) are not in ``keep``."""
    stale = sorted(s for (s,) in catalog.db.execute("select source from example_texts") if s not in keep)
    with catalog.db.conn:
        for start in range(0, len(stale), 500):
            chunk = stale[start:start + 500]
            catalog.db.execute(f"delete from example_texts where source in ({','.join('?' * len(chunk))})", chunk)
    return len(stale)


def prune_embeddings(catalog: Catalog, encoder_identity: str, keep: Iterable[str]) -> int:
    """Delete cached vectors of ``encoder_identity`` whose text no adapter has any more."""
    stale = cached_hashes(catalog, encoder_identity) - set(keep)
    stale_list = sorted(stale)
    with catalog.db.conn:
        for start in range(0, len(stale_list), 500):
            chunk = stale_list[start:start + 500]
            marks = ",".join("?" * len(chunk))
            catalog.db.execute(f"delete from embeddings where encoder = ? and text_hash in ({marks})",
                               [encoder_identity, *chunk])
    return len(stale_list)
