"""The query map: a fitted linear map of prompt embeddings into the cards' embedding space.

A prompt ("1girl, solo, looking at viewer, ...") and the card of the adapter it was made with ("A
LoRA of ... trained on ...") are far apart for a sentence encoder. ``benchmarks/fit_query_map.py``
fits a matrix ``W`` (near the identity) on real Civitai prompts → their cards; the dense search then
compares ``normalise(q @ W)`` with the cards' unchanged vectors, so nothing is re-embedded and every
index kind serves it. The map is tied to the encoder it was fitted for (``encoder``, an encoder
identity): with any other encoder the prompt's own vector is used. A missing or malformed file means
no map (told once), never a failed search.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

log = logging.getLogger("stylus")

PATH = Path(__file__).with_name("data") / "query_map.npz"


@dataclass(frozen=True)
class QueryMap:
    matrix: np.ndarray  # (d, d) float32
    encoder: str
    note: str

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        """Mapped, L2-normalised rows (a 1-D vector gives a 1-D vector); a zero row stays zero."""
        mapped = np.asarray(vectors, dtype=np.float32) @ self.matrix
        norm = np.linalg.norm(mapped, axis=-1, keepdims=True)
        return np.divide(mapped, norm, out=np.zeros_like(mapped), where=norm > 0)


def save(path: Path, matrix: np.ndarray, encoder: str, note: str) -> None:
    """Write a map (float16: the fit's precision is far coarser) for ``encoder``."""
    np.savez_compressed(path, matrix=np.asarray(matrix, dtype=np.float16), encoder=np.array(encoder),
                        note=np.array(note))


def load(path: Path) -> QueryMap:
    """Read a map file; ValueError when it is not a finite square matrix with an encoder name."""
    try:
        with np.load(path, allow_pickle=False) as data:
            matrix = np.asarray(data["matrix"], dtype=np.float32)
            encoder, note = str(data["encoder"]), str(data["note"]) if "note" in data else ""
    except (OSError, KeyError, ValueError, EOFError) as exc:
        raise ValueError(f"unreadable query map {path}: {exc}") from exc
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or not np.isfinite(matrix).all():
        raise ValueError(f"query map {path} is not a finite square matrix (shape {matrix.shape})")
    return QueryMap(matrix, encoder, note)


@cache
def for_encoder(identity: str, dimension: int, path: Path = PATH) -> QueryMap | None:
    """The shipped map when it was fitted for this encoder identity and dimension, else None."""
    if not path.is_file():
        return None
    try:
        qmap = load(path)
    except ValueError as exc:
        log.warning("Stylus: %s; dense search uses the prompt's own embedding", exc)
        return None
    if qmap.encoder != identity or qmap.matrix.shape[0] != dimension:
        return None
    return qmap
