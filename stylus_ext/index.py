"""The vector index next to the catalog: exact NumPy search, a projected or faiss IVF index where
measured faster, or Annoy.

Files (``<catalog>`` is the catalog path; ``<n>`` a version number that grows with every build)::

    <catalog>.vectors.<n>.npy   float32 rows, L2-normalised (memory-mapped; also serves vectors_for)
    <catalog>.ids.<n>.npy       int64 adapter id of each row
    <catalog>.annoy.<n>         Annoy angular index over the same rows (item = row), when used
    <catalog>.faiss.<n>         faiss IVF index with 8-bit codes over the same rows, when used
    <catalog>.proj.<n>.npy      the rows projected on their main directions (projected index, when used)
    <catalog>.basis.<n>.npy     those directions (dimension × d)

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
:data:`ANNOY_TREES` trees and ``search_k`` = max(``ANNOY_MIN_SEARCH_K``,
``ANNOY_SEARCH_K_PER_RESULT`` × k) (the budget that gave recall 1.000 above); results are re-scored
exactly from the stored vectors (:mod:`stylus_ext.vector_search` answers the queries). When ``annoy``
is not importable (Windows without a compiler) exact search is always used. ``stylus index --kind
annoy|exact|faiss`` overrides the choice.

faiss (optional extra ``stylus-ext[faiss]`` = ``faiss-cpu``): from :data:`APPROX_MIN` rows the build
trains an IVF index with 8-bit codes (:func:`nlist_for` lists, ~2·√n), calibrates ``nprobe`` on the
catalogue's own vectors (the smallest count whose re-ranked top-150 reaches recall
:data:`FAISS_TARGET_RECALL` against exact, ×1.5 margin; :func:`calibrate_nprobe`), then times it
against the exact scan and keeps it only when it is at least :data:`FAISS_MIN_SPEEDUP` times faster
(``faiss_speedup`` in the meta) — so exact search stays wherever it wins, per catalogue. Queries
fetch k + :data:`FAISS_RERANK_EXTRA` candidates and re-score them exactly; filters go into the
search as a bitmap (more lists probed when they hide rows) or, when few rows are left, exactly.
The file is memory-mapped and only read at a process's second query: a one-shot CLI answer is
exact and never imports faiss.

Projected (:mod:`stylus_ext.projected`, NumPy only, so it needs no extra): from :data:`APPROX_MIN`
rows the build also calibrates a PCA projection of the rows (width and re-scored pool per catalogue,
recall target 0.995 on noisy probe queries) and times it against the exact scan. Of the projected
and the faiss index, the build keeps the one measured faster, provided it beats exact search by
:data:`PROJECTED_MIN_SPEEDUP` (projected) or :data:`FAISS_MIN_SPEEDUP` (faiss); else exact search
stays. A rebuild whose row count is within :data:`REUSE_SHARE` of the count the projection was
calibrated on keeps its basis and pool (re-projecting the rows only), so incremental updates stay
incremental. Measured crossover: see README ("Performance at scale").
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

from stylus_ext import ivf, projected
from stylus_ext.catalog.db import Catalog
from stylus_ext.vector_search import IndexMismatchError, VectorIndex

__all__ = ["IndexMismatchError", "VectorIndex", "build_index", "choose_kind", "cleanup", "load_index", "read_meta"]

log = logging.getLogger("stylus")

META_KEY = "index"
EXACT_MAX = 1_000_000
ANNOY_TREES = 100
#: Projected and faiss IVF indexes (automatic at and above APPROX_MIN rows; see the module docstring).
APPROX_MIN = 50_000  # the automatic choice considers the projected and faiss indexes from here
FAISS_MIN_ROWS = 1_000  # below this an IVF index makes no sense even when asked for
FAISS_MIN_SPEEDUP = 2.0  # automatic choice: faiss only when measured at least this much faster than exact
PROJECTED_MIN_SPEEDUP = 1.5  # automatic choice: the projected index only when this much faster than exact
REUSE_SHARE = 0.1  # a rebuild whose row count moved by at most this share keeps the projection's basis
KINDS = ("exact", "projected", "faiss", "annoy")


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


def _files(catalog_path: Path, version: int) -> dict[str, Path]:
    base = str(catalog_path)
    return {"vectors": Path(f"{base}.vectors.{version}.npy"), "ids": Path(f"{base}.ids.{version}.npy"),
            "annoy": Path(f"{base}.annoy.{version}"), "faiss": Path(f"{base}.faiss.{version}"),
            "proj": Path(f"{base}.proj.{version}.npy"), "basis": Path(f"{base}.basis.{version}.npy"),
            "examples": Path(f"{base}.examples.{version}.npy"), "exrows": Path(f"{base}.exrows.{version}.npy")}


def read_meta(catalog: Catalog) -> dict[str, Any] | None:
    raw = catalog.get_meta(META_KEY)
    if not raw:
        return None
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        return None
    return meta if isinstance(meta, dict) else None


def choose_kind(count: int, kind: str | None) -> str:
    """``exact``, ``projected``, ``faiss`` or ``annoy`` for ``count`` rows (``kind`` None = automatic,
    else forced). Automatic from :data:`APPROX_MIN` rows: ``faiss`` when importable, else ``projected``
    (the build then measures both and keeps the faster, or exact)."""
    if kind not in (None, *KINDS):
        raise ValueError(f"unknown index kind {kind!r} ({', '.join(KINDS)})")
    if kind == "exact":
        return "exact"
    if kind == "projected":
        return "projected" if count >= FAISS_MIN_ROWS else "exact"
    if kind == "faiss" or (kind is None and count >= APPROX_MIN):
        if _faiss() is not None and count >= FAISS_MIN_ROWS:
            return "faiss"
        if kind == "faiss":
            log.warning("faiss is not installed (pip install faiss-cpu) or the catalog is tiny; using exact search")
            return "exact"
        if count <= EXACT_MAX:
            return "projected"
    if kind == "annoy" or (kind is None and count > EXACT_MAX):
        if _annoy() is not None:
            return "annoy"
        if kind == "annoy":
            log.warning("annoy is not installed; using exact search")
    return "exact"


def build_index(catalog: Catalog, ids: Sequence[int], vectors: Any, encoder: str, *,
                kind: str | None = None, n_trees: int = ANNOY_TREES, extra: dict[str, Any] | None = None,
                examples: Sequence[Any] | None = None) -> VectorIndex:
    """Write a new index version for ``ids``/``vectors`` and make it the current one.

    ``kind``: None (automatic, see the module docstring) or one of :data:`KINDS`. ``extra`` is
    stored in the index meta (e.g. a content digest to skip identical rebuilds). ``examples``: per
    id, the vectors of its example prompts (``k × dimension``, ``k`` may be 0), stored normalised as
    float32 rows with each adapter's row range (:meth:`VectorIndex.example_similarity` reads them).
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
    use_annoy = chosen == "annoy"
    written: list[Path] = []
    example_arrays = _example_arrays(examples, len(ids_arr), matrix.shape[1])
    try:
        named = dict(zip(("examples", "exrows"), example_arrays, strict=False))  # none: no files
        for key, array in (("vectors", matrix), ("ids", ids_arr), *named.items()):
            _write_array(files[key], array)
            written.append(files[key])
        if use_annoy:
            _write_annoy(matrix, files["annoy"], n_trees)
            written.append(files["annoy"])
        reuse = (_reusable_basis(catalog.path, previous, matrix)
                 if chosen in ("projected", "faiss") and kind in (None, "projected") else None)
        if reuse is not None:
            chosen, measured = _write_reused_projection(matrix, files, reuse, previous or {}, written)
        else:
            chosen, measured = _write_approximate(matrix, files, chosen, auto=kind is None, written=written)
        extra = {**(extra or {}), **measured}
    except BaseException:
        for path in (*written, *(p.with_name(p.name + ".tmp") for p in files.values())):
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    meta = {"version": version, "kind": chosen, "encoder": encoder,
            "dimension": int(matrix.shape[1]) if matrix.shape[0] else 0, "count": len(ids_arr),
            "n_trees": n_trees if use_annoy else 0,
            "examples": int(example_arrays[0].shape[0]) if example_arrays else 0, **(extra or {})}
    catalog.set_meta(META_KEY, json.dumps(meta, sort_keys=True))
    cleanup(catalog.path, keep=version)
    index = load_index(catalog)
    if index is None:
        raise RuntimeError("the index just written cannot be read back")
    return index


def _example_arrays(examples: Sequence[Any] | None, count: int, dim: int) -> tuple[np.ndarray, ...]:
    """(normalised float32 rows, row ranges ``count + 1``) of the example vectors; () when there are none.
    float32, not float16: NumPy converts float16 without SIMD, and a search's ~3,900 gathered rows
    took 3.6 ms that way against 0.4 ms (one BLAS thread, the 11.8K real catalogue)."""
    if examples is None:
        return ()
    if len(examples) != count:
        raise ValueError(f"build_index: example vectors for {len(examples)} adapters, {count} ids")
    blocks = [np.asarray(e, dtype=np.float32).reshape(-1, dim) for e in examples]
    starts = np.zeros(count + 1, dtype=np.int64)
    np.cumsum([len(b) for b in blocks], out=starts[1:])
    if not starts[-1]:
        return ()
    rows = np.concatenate(blocks)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.ascontiguousarray(rows / np.where(norms > 0, norms, 1.0), dtype=np.float32), starts


def _load_examples(files: dict[str, Path], meta: dict[str, Any], shape: tuple[int, ...]
                   ) -> tuple[np.ndarray, np.ndarray] | None:
    """The example vectors (memory-mapped) and row ranges, or None (none built, or damaged: a warning)."""
    if not int(meta.get("examples") or 0):
        return None
    try:
        rows = np.load(files["examples"], mmap_mode="r")
        starts = np.load(files["exrows"])
        if rows.ndim != 2 or rows.shape[1] != shape[1] or starts.shape != (shape[0] + 1,) \
                or starts[0] != 0 or starts[-1] != rows.shape[0] or np.any(np.diff(starts) < 0):
            raise ValueError(f"example rows of shape {rows.shape} / ranges {starts.shape} for vectors {shape}")
    except (OSError, ValueError) as exc:
        log.warning("example-prompt vectors are missing or damaged (%s); run `stylus index --force`", exc)
        return None
    return rows, starts


def _tmp(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def _write_array(path: Path, array: np.ndarray) -> None:
    """``array`` as ``.npy`` at ``path``: written to ``*.tmp``, synced, then renamed."""
    tmp = _tmp(path)
    with open(tmp, "wb") as fh:
        np.save(fh, array)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _write_annoy(matrix: np.ndarray, path: Path, n_trees: int) -> None:
    """An Annoy angular forest over the rows of ``matrix`` (item = row)."""
    forest = _annoy().AnnoyIndex(matrix.shape[1], "angular")
    for row, vec in enumerate(matrix):
        forest.add_item(row, vec)
    forest.build(n_trees, -1)
    tmp = _tmp(path)
    forest.save(str(tmp))
    forest.unload()
    os.replace(tmp, path)


def _reusable_basis(catalog_path: Path, previous: dict[str, Any] | None, matrix: np.ndarray) -> np.ndarray | None:
    """The previous version's projection basis when it can serve the new rows unchanged: that index
    was projected, of the same dimension, and the row count moved by at most :data:`REUSE_SHARE`
    (an incremental ``stylus index`` then re-projects instead of recalibrating, ~0.3 s at 100K)."""
    if not previous or previous.get("kind") != "projected" or not previous.get("projected_pool"):
        return None
    count = _calibrated_count(previous)
    if not count or abs(matrix.shape[0] - count) > REUSE_SHARE * count:  # drift measured from the calibration
        return None
    try:
        basis = np.load(_files(catalog_path, int(previous.get("version", 0)))["basis"])
    except (OSError, ValueError):
        return None
    return basis if basis.ndim == 2 and basis.shape[0] == matrix.shape[1] else None


def _write_reused_projection(matrix: np.ndarray, files: dict[str, Path], basis: np.ndarray,
                             previous: dict[str, Any], written: list[Path]) -> tuple[str, dict[str, Any]]:
    for key, array in (("proj", np.ascontiguousarray(matrix @ basis)), ("basis", basis)):
        _write_array(files[key], array)
        written.append(files[key])
    return "projected", {k: previous[k] for k in ("projected_speedup", "projected_width", "projected_pool")
                         if k in previous} | {"projected_calibrated_count": _calibrated_count(previous)}


def _calibrated_count(meta: dict[str, Any]) -> int:
    """Rows the projection in ``meta`` was calibrated on (older metas: its row count)."""
    return int(meta.get("projected_calibrated_count") or meta.get("count") or 0)


def _write_approximate(matrix: np.ndarray, files: dict[str, Path], chosen: str, *, auto: bool,
                       written: list[Path]) -> tuple[str, dict[str, Any]]:
    """Build the ``projected`` and/or ``faiss`` index ``chosen`` asks for (automatic: both, the faster
    one kept); ``(kind in use, meta entries)``. Written files are appended to ``written``."""
    if chosen not in ("projected", "faiss"):
        return chosen, {}
    meta: dict[str, Any] = {}
    gains: dict[str, float] = {}
    if chosen == "faiss":
        kept, nprobe, gains["faiss"] = _write_faiss(matrix, files["faiss"], auto=auto)
        meta.update(faiss_speedup=round(gains["faiss"], 2), nprobe=nprobe)
        if not kept:
            gains.pop("faiss")
        else:
            written.append(files["faiss"])
    if chosen == "projected" or auto:
        projection = projected.calibrate(matrix)
        if projection is not None:
            gains["projected"] = projected.speedup(matrix, projection)
            meta.update(projected_speedup=round(gains["projected"], 2), projected_width=projection.basis.shape[1],
                        projected_pool=projection.pool, projected_calibrated_count=len(matrix))
            if not auto or gains["projected"] >= PROJECTED_MIN_SPEEDUP:
                for key, array in (("proj", projection.rows), ("basis", projection.basis)):
                    _write_array(files[key], array)
                    written.append(files[key])
            else:
                gains.pop("projected")
        elif not auto:
            log.warning("no projection reaches recall %.3f on this catalogue; using exact search",
                        projected.TARGET_RECALL)
    if not gains:
        log.info("no approximate index measured faster than exact here (%s): exact search",
                 ", ".join(f"{k} {v}x" for k, v in meta.items() if k.endswith("speedup")) or "none built")
        return "exact", {k: v for k, v in meta.items() if k.endswith("speedup")}
    best = max(gains, key=gains.__getitem__)
    for loser in {"faiss", "projected"} - {best}:
        for key in (("faiss",) if loser == "faiss" else ("proj", "basis")):
            if files[key] in written:
                files[key].unlink()
                written.remove(files[key])
    return best, {k: v for k, v in meta.items() if best == "faiss" or k != "nprobe"}


def _write_faiss(matrix: np.ndarray, path: Path, *, auto: bool) -> tuple[bool, int, float]:
    """``(written, nprobe, measured speedup)`` of a faiss IVF index at ``path``; not written when the
    automatic choice found it not fast enough (exact search then)."""
    tmp = _tmp(path)
    nprobe, speedup = ivf.write(matrix, tmp, auto=auto, min_speedup=FAISS_MIN_SPEEDUP)
    if not tmp.exists():
        log.info("faiss IVF only %.1fx faster than exact here: exact search", speedup)
        return False, nprobe, speedup
    os.replace(tmp, path)
    return True, nprobe, speedup


def _versions_on_disk(catalog_path: Path) -> dict[int, list[Path]]:
    pattern = re.compile(re.escape(catalog_path.name)
                         + r"\.(?:vectors|ids|annoy|faiss|proj|basis|examples|exrows)\.(\d+)(?:\.npy)?(?:\.tmp)?$")
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


def _load_projection(files: dict[str, Path], meta: dict[str, Any], shape: tuple[int, ...]
                     ) -> projected.Projection | None:
    """The projected index's arrays (rows memory-mapped) when it is the index in use; None (exact
    search, with a warning) when its files are missing or do not fit the vectors."""
    if meta.get("kind") != "projected":
        return None
    try:
        rows = np.load(files["proj"], mmap_mode="r")
        basis = np.load(files["basis"])
        if rows.ndim != 2 or basis.shape != (shape[1], rows.shape[1]) or rows.shape[0] != shape[0]:
            raise ValueError(f"projection of shape {rows.shape} / {basis.shape} for vectors {shape}")
    except (OSError, ValueError) as exc:
        log.warning("projected index files are missing or damaged (%s); searching exactly", exc)
        return None
    return projected.Projection(np.asarray(basis, dtype=np.float32), rows, int(meta.get("projected_pool") or 0))


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
                        paths=tuple(p for p in files.values() if p.exists()),
                        projection=_load_projection(files, meta, vectors.shape),
                        examples=_load_examples(files, meta, vectors.shape))
    if encoder is not None:
        index.check_encoder(encoder, dimension)
    return index
