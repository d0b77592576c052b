"""The vector index next to the catalog: exact NumPy search, faiss IVF where measured faster, or Annoy.

Files (``<catalog>`` is the catalog path; ``<n>`` a version number that grows with every build)::

    <catalog>.vectors.<n>.npy   float32 rows, L2-normalised (memory-mapped; also serves vectors_for)
    <catalog>.ids.<n>.npy       int64 adapter id of each row
    <catalog>.annoy.<n>         Annoy angular index over the same rows (item = row), when used
    <catalog>.faiss.<n>         faiss IVF index with 8-bit codes over the same rows, when used

A build writes ``*.tmp`` files, renames them to a NEW version and only then records that version
in the catalog's ``meta`` (key ``index``: version, kind, encoder identity, dimension, count). A
reader that has the old version open keeps working; old versions are deleted once no longer open
(Windows refuses to delete a memory-mapped file: the delete is retried after the next build).

Exact or Annoy — measured with ``benchmarks/bench_index.py`` (100,000 clustered 384-d unit vectors,
k=150, this 2-core machine shared with other jobs, so latencies are ±2x):

=================================  ========  ==========  ============  =========
index                              build s   p50 ms      recall@150    files MB
=================================  ========  ==========  ============  =========
exact NumPy (memory-mapped)        0.2       5–13        1.000         147
Annoy 10 trees, default search_k   5.7       0.5         0.77          307
Annoy 50 trees, default search_k   19        1.5         0.999         354
Annoy 100 trees, search_k 20,000   10–21     3.6         1.000         413
Annoy 100 trees, search_k 150,000  10–21     17          1.000         413
=================================  ========  ==========  ============  =========

Annoy's recall depends on the data (the foundation issue measured 0.57 at the default budget on its
vectors; these synthetic clusters are easier), exact search is always right, needs no build, half
the disk, and 5–13 ms is noise next to embedding the prompt. So exact search is used up to
:data:`EXACT_MAX` rows (1,000,000: ~1.5 GB of float32, ~50–100 ms/query), Annoy only beyond, with
:data:`ANNOY_TREES` trees and ``search_k`` = max(:data:`ANNOY_MIN_SEARCH_K`,
:data:`ANNOY_SEARCH_K_PER_RESULT` × k) (the budget that gave recall 1.000 above); results are
re-scored exactly from the stored vectors. When ``annoy`` is not importable (Windows without a
compiler) exact search is always used. ``stylus index --kind annoy|exact|faiss`` overrides the choice.

faiss (optional extra ``stylus-ext[faiss]`` = ``faiss-cpu``): from :data:`FAISS_MIN` rows the build
trains an IVF index with 8-bit codes (:func:`nlist_for` lists, ~2·√n), calibrates ``nprobe`` on the
catalogue's own vectors (the smallest count whose re-ranked top-150 reaches recall
:data:`FAISS_TARGET_RECALL` against exact, ×1.5 margin; :func:`calibrate_nprobe`), then times it
against the exact scan and keeps it only when it is at least :data:`FAISS_MIN_SPEEDUP` times faster
(``faiss_speedup`` in the meta) — so exact search stays wherever it wins, per catalogue. Queries
fetch k + :data:`FAISS_RERANK_EXTRA` candidates and re-score them exactly; filters go into the
search as a bitmap (more lists probed when they hide rows) or, when few rows are left, exactly.
The file is memory-mapped and only read at a process's second query: a one-shot CLI answer is
exact and never imports faiss. Measured crossover: see README ("Performance at scale").
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stylus_ext import ivf
from stylus_ext.catalog.db import Catalog

log = logging.getLogger("stylus")

META_KEY = "index"
EXACT_MAX = 1_000_000
ANNOY_TREES = 100
ANNOY_SEARCH_K_PER_RESULT = 200
ANNOY_MIN_SEARCH_K = 20_000
#: faiss IVF (automatic at and above FAISS_MIN rows when faiss is importable; see the module docstring).
FAISS_MIN = 50_000
FAISS_MIN_ROWS = 1_000  # below this an IVF index makes no sense even when asked for
FAISS_MIN_SPEEDUP = 2.0  # automatic choice: faiss only when measured at least this much faster than exact


class IndexMismatchError(RuntimeError):
    """The index was built with another encoder (or dimension) than the one asked for."""


def _annoy() -> Any:
    """The ``annoy`` module, or None when it is not importable."""
    try:
        import annoy
    except ImportError:
        return None
    return annoy


def _faiss() -> Any:
    """The ``faiss`` module (package ``faiss-cpu``, extra ``stylus-ext[faiss]``), or None."""
    return ivf.faiss_module()


def _load_faiss(path: Path) -> Any:
    if _faiss() is None:
        log.info("faiss is not installed; searching the index exactly")
        return None
    return ivf.load(path)


def _files(catalog_path: Path, version: int) -> dict[str, Path]:
    base = str(catalog_path)
    return {"vectors": Path(f"{base}.vectors.{version}.npy"), "ids": Path(f"{base}.ids.{version}.npy"),
            "annoy": Path(f"{base}.annoy.{version}"), "faiss": Path(f"{base}.faiss.{version}")}


def read_meta(catalog: Catalog) -> dict[str, Any] | None:
    raw = catalog.get_meta(META_KEY)
    if not raw:
        return None
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        return None
    return meta if isinstance(meta, dict) else None


class VectorIndex:
    """Nearest-neighbour search over adapter vectors (cosine similarity).

    ``query(vec, k)`` returns ``(ids, sims)``: adapter ids and cosine similarities, best first.
    ``kind`` is ``"annoy"`` or ``"exact"``; both share the memory-mapped vector matrix.
    """

    def __init__(self, ids: np.ndarray, vectors: np.ndarray, *, encoder: str, annoy_index: Any = None,
                 faiss_index: Any = None, faiss_path: Path | None = None, nprobe: int = 0, version: int = 0,
                 paths: Sequence[Path] = ()) -> None:
        if vectors.ndim != 2 or len(ids) != vectors.shape[0]:
            raise ValueError(f"index: {len(ids)} ids for vectors of shape {vectors.shape}")
        self.ids = np.asarray(ids, dtype=np.int64)
        self.vectors = vectors
        self.encoder = encoder
        self.dimension = int(vectors.shape[1])
        self.version = version
        self.paths = tuple(paths)
        self._annoy = annoy_index
        self._faiss = faiss_index
        self._faiss_path = faiss_path if faiss_index is None else None  # loaded on demand (_ensure_faiss)
        self._queries = 0
        self.nprobe = int(nprobe or ivf.FAISS_NPROBE)
        self._row: dict[int, int] | None = None

    def _ensure_faiss(self) -> Any:
        """The faiss index, read (memory-mapped) on first need; None when faiss is missing (exact)."""
        if self._faiss is None and self._faiss_path is not None:
            path, self._faiss_path = self._faiss_path, None
            self._faiss = _load_faiss(path)
        return self._faiss

    @property
    def kind(self) -> str:
        if self._ensure_faiss() is not None:
            return "faiss"
        return "annoy" if self._annoy is not None else "exact"

    @property
    def count(self) -> int:
        return int(self.ids.shape[0])

    def __len__(self) -> int:
        return self.count

    def row_of(self, adapter_id: int) -> int | None:
        if self._row is None:
            self._row = {int(a): i for i, a in enumerate(self.ids)}
        return self._row.get(int(adapter_id))

    def check_encoder(self, identity: str, dimension: int | None = None) -> None:
        """Raise :class:`IndexMismatchError` unless the index was built with this encoder."""
        if identity != self.encoder or (dimension and dimension != self.dimension):
            raise IndexMismatchError(
                f"the index was built with encoder {self.encoder!r} ({self.dimension}-d), not {identity!r}"
                + (f" ({dimension}-d)" if dimension else "")
                + "; vectors of different encoders cannot be mixed — re-index with `stylus index --encoder ...`"
            )

    def _prepare(self, vec: Any) -> np.ndarray:
        q = np.asarray(vec, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dimension:
            raise IndexMismatchError(f"query vector has {q.shape[0]} values, the index {self.dimension}")
        norm = float(np.linalg.norm(q))
        return q / norm if norm > 0 else q

    def query(self, vec: Any, k: int, *, allowed: Any = None, search_k: int | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` adapter ids and cosine similarities; ``allowed`` (adapter ids, or a row mask from
        :meth:`mask_for`) restricts them."""
        q = self._prepare(vec)
        k = max(0, min(int(k), self.count))
        if k == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        mask = self.mask_for(allowed) if allowed is not None else None
        self._queries += 1
        # A process's first query is answered exactly from the memory-mapped rows: a one-shot CLI
        # answer never pays for importing faiss (~0.25 s); later queries use it.
        if (self._queries > 1 or self._faiss is not None) and self._ensure_faiss() is not None:
            return ivf.search(self, q, k, mask, search_k)
        if self._annoy is None:
            return self._exact(q, k, mask)
        return self._approximate(q, k, mask, search_k)

    def mask_for(self, allowed: Any) -> np.ndarray:
        """Row mask for ``allowed`` adapter ids (a row mask passes through unchanged)."""
        if isinstance(allowed, np.ndarray) and allowed.dtype == bool and allowed.shape == self.ids.shape:
            return allowed
        return np.isin(self.ids, np.fromiter((int(i) for i in allowed), dtype=np.int64))

    def _exact(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        sims = self.vectors @ q
        if mask is not None:
            sims = np.where(mask, sims, -np.inf)
            k = min(k, int(mask.sum()))
            if k == 0:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        top = np.argpartition(-sims, k - 1)[:k] if k < sims.shape[0] else np.arange(sims.shape[0])
        # Stable, deterministic order: by similarity, ties by adapter id.
        order = np.lexsort((self.ids[top], -sims[top]))
        top = top[order]
        return self.ids[top].copy(), sims[top].astype(np.float32)

    def _approximate(self, q: np.ndarray, k: int, mask: np.ndarray | None, search_k: int | None
                     ) -> tuple[np.ndarray, np.ndarray]:
        want = k
        while True:
            budget = search_k or max(ANNOY_MIN_SEARCH_K, ANNOY_SEARCH_K_PER_RESULT * want)
            rows = self._annoy.get_nns_by_vector(q.tolist(), want, search_k=budget)
            rows = np.asarray(rows, dtype=np.int64)
            if mask is not None:
                rows = rows[mask[rows]]
            if len(rows) >= k or want >= self.count:
                break
            want = min(self.count, want * 4)
        rows = rows[:k]
        # Re-score exactly from the stored vectors (Annoy's distances are approximate).
        sims = self.vectors[rows] @ q if len(rows) else np.zeros(0, dtype=np.float32)
        order = np.lexsort((self.ids[rows], -sims))
        return self.ids[rows[order]].copy(), sims[order].astype(np.float32)

    def vectors_for(self, ids: Sequence[int]) -> np.ndarray:
        """Stored vectors of ``ids`` (rows in that order); zeros for ids not in the index."""
        out = np.zeros((len(ids), self.dimension), dtype=np.float32)
        for i, adapter_id in enumerate(ids):
            row = self.row_of(adapter_id)
            if row is not None:
                out[i] = self.vectors[row]
        return out

    def close(self) -> None:
        if self._annoy is not None:
            self._annoy.unload()
            self._annoy = None
        self._faiss = self._faiss_path = None
        mm = getattr(self.vectors, "_mmap", None)
        self.vectors = np.zeros((0, self.dimension), dtype=np.float32)
        self.ids = np.zeros(0, dtype=np.int64)
        if mm is not None:
            with contextlib.suppress(Exception):
                mm.close()

    def __enter__(self) -> VectorIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def choose_kind(count: int, kind: str | None) -> str:
    """``exact``, ``faiss`` or ``annoy`` for ``count`` rows (``kind`` None = automatic, else forced)."""
    if kind not in (None, "exact", "faiss", "annoy"):
        raise ValueError(f"unknown index kind {kind!r} (exact, faiss, annoy)")
    if kind == "exact":
        return "exact"
    if kind == "faiss" or (kind is None and count >= FAISS_MIN):
        if _faiss() is not None and count >= FAISS_MIN_ROWS:
            return "faiss"
        if kind == "faiss":
            log.warning("faiss is not installed (pip install faiss-cpu) or the catalog is tiny; using exact search")
            return "exact"
    if kind == "annoy" or (kind is None and count > EXACT_MAX):
        if _annoy() is not None:
            return "annoy"
        if kind == "annoy":
            log.warning("annoy is not installed; using exact search")
    return "exact"


def build_index(catalog: Catalog, ids: Sequence[int], vectors: Any, encoder: str, *,
                kind: str | None = None, n_trees: int = ANNOY_TREES, extra: dict[str, Any] | None = None
                ) -> VectorIndex:
    """Write a new index version for ``ids``/``vectors`` and make it the current one.

    ``kind``: None (automatic, see the module docstring), ``"exact"`` or ``"annoy"``. ``extra`` is
    stored in the index meta (e.g. a content digest to skip identical rebuilds).
    """
    ids_arr = np.asarray(ids, dtype=np.int64)
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != ids_arr.shape[0]:
        raise ValueError(f"build_index: {len(ids_arr)} ids for vectors of shape {matrix.shape}")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix = matrix / np.where(norms > 0, norms, 1.0)
    previous = read_meta(catalog)
    version = max(int((previous or {}).get("version", 0)), _highest_version_on_disk(catalog.path)) + 1
    files = _files(catalog.path, version)
    chosen = choose_kind(len(ids_arr), kind)
    use_annoy, nprobe = chosen == "annoy", 0
    written: list[Path] = []
    try:
        for key, array in (("vectors", matrix), ("ids", ids_arr)):
            tmp = files[key].with_name(files[key].name + ".tmp")
            with open(tmp, "wb") as fh:
                np.save(fh, array)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, files[key])
            written.append(files[key])
        if use_annoy:
            annoy = _annoy()
            forest = annoy.AnnoyIndex(matrix.shape[1], "angular")
            for row, vec in enumerate(matrix):
                forest.add_item(row, vec)
            forest.build(n_trees, -1)
            tmp = files["annoy"].with_name(files["annoy"].name + ".tmp")
            forest.save(str(tmp))
            forest.unload()
            os.replace(tmp, files["annoy"])
            written.append(files["annoy"])
        if chosen == "faiss":
            tmp = files["faiss"].with_name(files["faiss"].name + ".tmp")
            nprobe, speedup = ivf.write(matrix, tmp, auto=kind is None, min_speedup=FAISS_MIN_SPEEDUP)
            extra = {**(extra or {}), "faiss_speedup": round(speedup, 2)}
            if tmp.exists():
                os.replace(tmp, files["faiss"])
                written.append(files["faiss"])
            else:
                log.info("faiss IVF only %.1fx faster than exact here: exact search", speedup)
                chosen, nprobe = "exact", 0
    except BaseException:
        for path in (*written, *(p.with_name(p.name + ".tmp") for p in files.values())):
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    meta = {"version": version, "kind": chosen, "encoder": encoder,
            "dimension": int(matrix.shape[1]) if matrix.shape[0] else 0, "count": len(ids_arr),
            "n_trees": n_trees if use_annoy else 0, **({"nprobe": nprobe} if nprobe else {}), **(extra or {})}
    catalog.set_meta(META_KEY, json.dumps(meta, sort_keys=True))
    cleanup(catalog.path, keep=version)
    index = load_index(catalog)
    if index is None:
        raise RuntimeError("the index just written cannot be read back")
    return index


def _versions_on_disk(catalog_path: Path) -> dict[int, list[Path]]:
    pattern = re.compile(re.escape(catalog_path.name) + r"\.(?:vectors|ids|annoy|faiss)\.(\d+)(?:\.npy)?(?:\.tmp)?$")
    found: dict[int, list[Path]] = {}
    try:
        entries = list(catalog_path.parent.iterdir())
    except OSError:
        return found
    for path in entries:
        m = pattern.match(path.name)
        if m:
            found.setdefault(int(m.group(1)), []).append(path)
    return found


def _highest_version_on_disk(catalog_path: Path) -> int:
    return max(_versions_on_disk(catalog_path), default=0)


def cleanup(catalog_path: Path, keep: int) -> int:
    """Delete index files of versions other than ``keep``; files still open on Windows stay."""
    removed = 0
    for version, paths in _versions_on_disk(catalog_path).items():
        if version == keep:
            continue
        for path in paths:
            try:
                path.unlink()
                removed += 1
            except OSError:  # mapped by a reader (Windows): retried after the next build
                pass
    return removed


def load_index(catalog: Catalog, *, encoder: str | None = None, dimension: int | None = None
               ) -> VectorIndex | None:
    """The current index of ``catalog`` (memory-mapped), or None when there is none (run ``stylus index``).

    With ``encoder``, refuse (:class:`IndexMismatchError`) an index built with another encoder.
    """
    meta = read_meta(catalog)
    if not meta:
        return None
    version = int(meta.get("version", 0))
    files = _files(catalog.path, version)
    try:
        vectors = np.load(files["vectors"], mmap_mode="r") if int(meta.get("count", 0)) else np.zeros(
            (0, int(meta.get("dimension") or 1)), dtype=np.float32)
        ids = np.load(files["ids"])
    except (OSError, ValueError) as exc:
        log.warning("index files of version %s are missing or damaged (%s); run `stylus index`", version, exc)
        return None
    annoy_index = None
    if meta.get("kind") == "annoy":
        annoy = _annoy()
        if annoy is None:
            log.info("annoy is not installed; searching the index exactly")
        else:
            annoy_index = annoy.AnnoyIndex(vectors.shape[1], "angular")
            try:
                annoy_index.load(str(files["annoy"]))
            except OSError as exc:
                log.warning("annoy index unreadable (%s); searching exactly", exc)
                annoy_index = None
    index = VectorIndex(ids, vectors, encoder=str(meta.get("encoder", "")), annoy_index=annoy_index,
                        faiss_path=files["faiss"] if meta.get("kind") == "faiss" else None,
                        nprobe=int(meta.get("nprobe") or 0), version=version,
                        paths=tuple(p for p in files.values() if p.exists()))
    if encoder is not None:
        index.check_encoder(encoder, dimension)
    return index
