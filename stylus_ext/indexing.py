"""``stylus index``: refine → embed → build the vector index (and the lexical FTS table).

The index holds one vector per adapter (its search text) and the vectors of its example prompts
(:func:`stylus_ext.embed.example_texts`), both read by the retriever.

Every step is incremental and resumable: refinements and embeddings are cached and committed in
chunks, and the index is written as a new version and switched to atomically at the end — an
interrupted run (Ctrl-C) leaves the previous index in place and the next run resumes where it
stopped. A run with nothing changed does no model work and rewrites no index file.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stylus_ext import lexical, sdk
from stylus_ext.catalog.db import Catalog
from stylus_ext.embed import embed_catalog, load_vectors, prune_embeddings, prune_example_texts
from stylus_ext.index import build_index, read_meta

log = logging.getLogger("stylus")


@dataclass
class IndexReport:
    """What :func:`index_catalog` did."""

    adapters: int = 0
    refiner: str | None = None
    refine: Any = None  # the refine step's own report, when it ran
    encoder: str = ""
    dimension: int = 0
    embedded: int = 0
    cached: int = 0
    index_kind: str = ""
    index_version: int = 0
    rebuilt: bool = False
    pruned: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        state = "rebuilt" if self.rebuilt else "unchanged"
        return (f"{self.adapters} adapters; embedded {self.embedded} new text(s), {self.cached} cached "
                f"({self.encoder}, {self.dimension}-d); index {state} "
                f"({self.index_kind}, version {self.index_version})")


def _plugins(plugins: Any) -> Any:
    if plugins is None:
        from stylus_ext.plugins import get_plugins

        plugins = get_plugins()
    return plugins


def _refine_step(catalog: Catalog, plugins: Any, refiner: Any, progress: bool, report: IndexReport) -> None:
    if refiner is None:
        return
    try:
        refine_catalog = importlib.import_module("stylus_ext.refine").refine_catalog
    except (ImportError, AttributeError):
        report.notes.append("refine step not available in this version; card descriptions used as they are")
        return
    if isinstance(refiner, str):
        try:
            refiner = plugins.create("refiner", refiner)
        except LookupError as exc:
            report.notes.append(f"refine skipped: {exc}")
            log.warning("refine skipped: %s", exc)
            return
    report.refiner = f"{refiner.name}@{refiner.version}"
    report.refine = refine_catalog(catalog, refiner, progress=progress)


def content_digest(encoder: str, pairs: list[tuple[int, str]],
                   examples: dict[int, tuple[str, ...]] | None = None) -> str:
    """What an index holds: the encoder, each adapter's search-text hash and its examples' hashes."""
    digest = hashlib.sha256(encoder.encode())
    for adapter_id, h in pairs:
        digest.update(f"{adapter_id}:{h};".encode())
    digest.update(b"examples:")
    for adapter_id in sorted(examples or {}):
        digest.update(f"{adapter_id}:{','.join(examples[adapter_id])};".encode())  # type: ignore[index]
    return digest.hexdigest()[:24]


def default_refiner(catalog: Catalog, plugins: Any) -> str | None:
    """The refiner an unattended re-index runs: the catalog's current one, else ``offline``.

    A refiner that costs money per card (``cost_guard``, e.g. ``vision``) is never run implicitly:
    ``None`` (its cached descriptions stay in use; ``stylus refine`` runs it on purpose).
    """
    current = (catalog.get_meta("refiner") or "").partition("@")[0]
    if not current:
        return "offline"
    try:
        cls = plugins.backend_class("refiner", current)
    except LookupError:
        return "offline"
    return None if getattr(cls, "cost_guard", 0) else current


EXAMPLES_META = "index_examples"


def examples_enabled(catalog: Catalog) -> bool:
    """Whether ``stylus index`` embeds example prompts for this catalog (on unless turned off)."""
    return catalog.get_meta(EXAMPLES_META, "1") != "0"


def index_catalog(catalog: Catalog, plugins: Any = None, *, refiner: str | sdk.Refiner | None = "auto",
                  encoder: str | sdk.Encoder = "transformers", progress: bool = False,
                  kind: str | None = None, force: bool = False, examples: bool | None = None) -> IndexReport:
    """Refine (when available), embed what changed, rebuild the index when its content changed.

    ``refiner``/``encoder`` are backend names (created through ``plugins``) or instances;
    ``refiner="auto"`` picks :func:`default_refiner`, ``None`` skips refining. ``kind`` forces
    ``"exact"``/``"annoy"`` (default: automatic); ``force`` rebuilds the index even when nothing changed.
    ``examples``: embed the cards' example prompts too (the ``ex_dense`` ranking feature); True/False
    is remembered in the catalog (meta ``index_examples``), None keeps the catalog's choice (default on).
    Turning them off drops their vectors; turning them back on embeds them again.
    """
    plugins = _plugins(plugins) if isinstance(refiner, str) or isinstance(encoder, str) else plugins
    if refiner == "auto":
        refiner = default_refiner(catalog, plugins)
    report = IndexReport()
    _refine_step(catalog, plugins, refiner, progress, report)
    if report.refiner is None:
        report.refiner = catalog.get_meta("refiner")

    lexical.ensure_index(catalog)

    enc: sdk.Encoder = plugins.create("encoder", encoder) if isinstance(encoder, str) else encoder
    adapters = catalog.adapters()
    report.adapters = len(adapters)
    if examples is not None:
        catalog.set_meta(EXAMPLES_META, "1" if examples else "0")
    with_examples = examples_enabled(catalog)
    embedded = embed_catalog(catalog, enc, progress=progress, adapters=adapters, examples=with_examples)
    report.encoder, report.embedded, report.cached = embedded.encoder, embedded.embedded, embedded.cached
    report.dimension = embedded.dimension or int(getattr(enc, "dimension", 0) or 0)

    pairs = sorted(embedded.hashes.items())
    digest = content_digest(embedded.encoder, pairs, embedded.examples)
    current = read_meta(catalog) or {}
    if not force and current.get("content") == digest and (kind is None or current.get("kind") == kind):
        from stylus_ext.index import load_index

        index = load_index(catalog)
        if index is not None:
            report.index_kind, report.index_version = index.kind, index.version
            index.close()
            return report

    example_hashes = [h for hs in embedded.examples.values() for h in hs]
    vectors = load_vectors(catalog, embedded.encoder, [*(h for _, h in pairs), *example_hashes])
    ids = [i for i, h in pairs if h in vectors]
    if len(ids) < len(pairs):
        report.notes.append(f"{len(pairs) - len(ids)} adapter(s) have no vector and are left out of the index")
    matrix = (np.stack([vectors[h] for i, h in pairs if h in vectors]) if ids
              else np.zeros((0, report.dimension or 1), dtype=np.float32))
    example_rows = ([np.array([vectors[h] for h in embedded.examples.get(i, ()) if h in vectors],
                              dtype=np.float32).reshape(-1, matrix.shape[1]) for i in ids]
                    if with_examples else None)
    index = build_index(catalog, ids, matrix, embedded.encoder, kind=kind, extra={"content": digest},
                        examples=example_rows)
    report.index_kind, report.index_version, report.rebuilt = index.kind, index.version, True
    index.close()
    report.pruned = prune_embeddings(catalog, embedded.encoder, {h for _, h in pairs} | set(example_hashes))
    prune_example_texts(catalog, embedded.example_sources)
    return report
