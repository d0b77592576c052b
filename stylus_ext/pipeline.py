"""The whole Stylus pipeline behind one object: retrieve → compose (validated) → mask → rewrite.

    stylus = Stylus(catalog, settings=StylusSettings(mask="paper"))
    selection = stylus.select("a castle, studio ghibli style")       # cached per prompt + settings
    images = stylus.images(selection, seeds=[11, 12, 13], negative_prompt="blurry")
    plan = stylus.plan("a castle, studio ghibli style", seeds=[11, 12, 13])  # both steps, JSON-able

- ``retrieve`` asks :class:`stylus_ext.retrieve.Retriever` for the top ``top_k`` candidates (base
  model and ``installed_only`` filters applied there) and adds pinned adapters it did not return.
- ``select`` runs the chosen composer through :func:`stylus_ext.compose.run_composer` (time budget,
  validation, caps, fallback to ``offline``); the result is cached per (prompt, settings).
- ``images`` draws each image's mask from that image's seed (:mod:`stylus_ext.mask`) and rewrites
  its prompt (:mod:`stylus_ext.rewrite`): an image is reproducible alone.
- ``plan`` is the JSON ``stylus compose --json`` prints; the CLI covers the whole catalogue and marks
  adapters that are not installed (``"installed": false``); the WebUI sets ``installed_only=True``.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stylus_ext import sdk
from stylus_ext.compose import run_composer, tell_once
from stylus_ext.mask import adapter_weight, draw_mask
from stylus_ext.rewrite import TagSpec, rewrite

CACHE_SIZE = 256


@dataclass(frozen=True)
class StylusSettings:
    """Everything a user can set for one run (CLI flags, WebUI controls and settings map here)."""

    top_k: int = 150
    composer: str = "offline"
    composer_options: dict[str, Any] = field(default_factory=dict)
    encoder: str | None = None  # None: the encoder the index was built with
    max_adapters: int = 4
    strength: float = 0.8
    mask: str = "paper"  # paper | subsets | all | none
    allow_empty_mask: bool = False
    add_triggers: bool = True  # explicit activation text of kept adapters
    add_trained_words: bool = False  # Civitai trained words (short ones only)
    add_negative: bool = True
    debias: str = ""
    emphasize_unmatched: bool = False
    base_model: str | None = None
    installed_only: bool = False
    allow_nsfw: bool = False
    allow_characters: bool = True  # character/celebrity adapters only when the prompt names them
    time_budget_s: float = 20.0
    #: A prompt that already carries ``<lora:...>`` tags of catalogue adapters (written by the user, or
    #: pasted back from an image's metadata) is taken as composed: nothing is added, so re-running a
    #: pasted-back prompt reproduces it. True: compose around those tags (their adapters excluded).
    compose_tagged: bool = False


@dataclass(frozen=True)
class Chosen:
    """A validated pick: the adapter, its concept and the reason."""

    adapter: sdk.Adapter
    concept: str
    reason: str


@dataclass(frozen=True)
class Selection:
    """A validated composition for one prompt (concepts without adapters included, with ``()``)."""

    prompt: str
    concepts: tuple[tuple[str, tuple[Chosen, ...]], ...]
    composer: str
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    fell_back: bool = False

    @property
    def chosen(self) -> tuple[Chosen, ...]:
        return tuple(c for _, picks in self.concepts for c in picks)


@dataclass(frozen=True)
class AppliedAdapter:
    id: int
    name: str
    weight: float
    concept: str


@dataclass(frozen=True)
class ImagePlan:
    """One image: its rewritten prompts and the adapters that are active for it."""

    prompt: str
    negative_prompt: str
    seed: int
    adapters: tuple[AppliedAdapter, ...]
    skipped: tuple[str, ...] = ()


class Stylus:
    """Facade over a catalog: see the module docstring. Thread-safe for concurrent ``select`` calls."""

    def __init__(self, catalog: Any, plugins: Any = None, settings: StylusSettings | None = None, *,
                 retriever: Any = None) -> None:
        """``retriever`` shares one :class:`~stylus_ext.retrieve.Retriever` (one encoder load) between
        pipelines with different settings over the same catalog."""
        if isinstance(catalog, (str, Path)):
            from stylus_ext.catalog.db import Catalog

            catalog = Catalog(catalog, create=False)
        self.catalog = catalog
        if plugins is None:
            from stylus_ext.plugins import get_plugins

            plugins = get_plugins()
        self.plugins = plugins
        self.settings = settings or StylusSettings()
        self._retriever: Any = retriever
        self._lock = threading.RLock()
        self._cache: OrderedDict[tuple[str, str], Selection] = OrderedDict()

    # -- retrieval -------------------------------------------------------------------------

    @property
    def retriever(self) -> Any:
        with self._lock:
            if self._retriever is None:
                from stylus_ext.retrieve import Retriever

                encoder = self.plugins.create("encoder", self.settings.encoder) if self.settings.encoder else None
                self._retriever = Retriever(self.catalog, encoder=encoder, plugins=self.plugins)
            return self._retriever

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode concept texts with the retriever's encoder (cached per text by the retriever)."""
        return np.asarray(self.retriever.encode(list(texts)), dtype=np.float32)

    def _prefetch(self, prompt: str) -> None:
        """Embed the prompt and its concepts in one encoder call, cached per text by the retriever.

        The search and the composer then find their vectors cached; one packed forward pass over a
        prompt and its concepts costs about what the prompt alone does. A failure here is left to the
        search to report."""
        retriever = self.retriever
        if getattr(retriever, "index", None) is None or getattr(retriever, "encoder", None) is None:
            return
        from stylus_ext.lexical import clean_prompt

        texts = [clean_prompt(prompt), *(c.text for c in sdk.parse_prompt(prompt).topical)]
        try:
            retriever.encode([t for t in dict.fromkeys(texts) if re.search(r"\w", t)])
        except Exception:  # noqa: BLE001 - the search encodes again and reports
            pass

    def retrieve(self, prompt: str) -> list[sdk.Candidate]:
        """Top ``top_k`` candidates (filters applied; pinned adapters always included)."""
        s = self.settings
        return list(self.retriever.search(prompt, k=s.top_k, base_model=s.base_model,
                                          installed_only=s.installed_only))

    def _vectors(self, candidates: Sequence[sdk.Candidate]) -> np.ndarray | None:
        if not candidates:
            return None
        try:
            vecs = np.asarray(self.retriever.vectors_for([c.adapter.id for c in candidates]), dtype=np.float32)
        except Exception as exc:  # noqa: BLE001 - the composer can still work on words
            tell_once(f"adapter vectors unavailable ({exc}); composing on word evidence only")
            return None
        return vecs if vecs.ndim == 2 and vecs.shape[1] and len(vecs) == len(candidates) else None

    # -- composition -----------------------------------------------------------------------

    def request(self, prompt: str, candidates: Sequence[sdk.Candidate]) -> sdk.ComposeRequest:
        s = self.settings
        vectors = self._vectors(candidates)
        count, size = self.retriever.word_counter()
        return sdk.ComposeRequest(
            prompt=prompt, candidates=tuple(candidates), candidate_vectors=vectors,
            encode=self._encode if vectors is not None else None, max_adapters=s.max_adapters, allow_nsfw=s.allow_nsfw,
            allow_characters=s.allow_characters, base_model=s.base_model, time_budget_s=s.time_budget_s,
            adapters_with=count, catalog_size=size)

    def tagged_adapters(self, prompt: str) -> list[str]:
        """Names in the prompt's ``<lora:...>``-style tags that are adapters of this catalogue."""
        names = sdk.parse_prompt(prompt).excluded_names
        if not names:
            return []
        marks = ",".join("?" * len(names))
        rows = self.catalog.db.execute(
            f"select distinct lower(name), lower(coalesce(alias, '')) from adapters "
            f"where lower(name) in ({marks}) or lower(alias) in ({marks})", [*names, *names]).fetchall()
        known = {n for row in rows for n in row if n}
        return [n for n in names if n in known]

    def select(self, prompt: str) -> Selection:
        """Retrieve and compose for ``prompt`` (cached per prompt and settings)."""
        with sdk.single_blas_thread():  # the composer's worker thread shares the limit
            return self._select(prompt)

    def _select(self, prompt: str) -> Selection:
        key = (prompt, repr(self.settings))
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        s = self.settings
        tagged = [] if s.compose_tagged else self.tagged_adapters(prompt)
        if tagged:
            note = (f"the prompt already carries adapter tags ({', '.join(tagged[:3])}): taken as composed, "
                    f"nothing added")
            selection = Selection(prompt, (), "none", (), (note,))
            with self._lock:
                self._cache[key] = selection
            return selection
        self._prefetch(prompt)
        candidates = self.retrieve(prompt)
        request = self.request(prompt, candidates)
        result = run_composer(request, s.composer, plugins=self.plugins, options=s.composer_options,
                              time_budget_s=s.time_budget_s)
        by_id = {c.adapter.id: c.adapter for c in candidates}
        concepts = []
        for cp in result.composition.concepts:
            picks = tuple(Chosen(by_id[p.adapter_id], cp.concept, p.reason) for p in cp.picks)
            concepts.append((cp.concept, picks))
        warnings = tuple(result.warnings)
        if getattr(self.retriever, "index", True) is None:
            warnings += ("the catalog has no vector index yet (run `stylus index`): composed on word evidence only",)
        selection = Selection(prompt, tuple(concepts), result.composer, warnings,
                              tuple(result.composition.notes), result.fell_back)
        with self._lock:
            self._cache[key] = selection
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return selection

    # -- images ----------------------------------------------------------------------------

    def images(self, selection: Selection, seeds: Sequence[int], negative_prompt: str = "") -> list[ImagePlan]:
        s = self.settings
        sizes = [len(picks) for _, picks in selection.concepts]
        unmatched = [c for c, picks in selection.concepts if not picks and c != "pinned"] \
            if s.emphasize_unmatched else []
        plans = []
        for seed in seeds:
            mask = draw_mask(sizes, s.mask, int(seed), allow_empty=s.allow_empty_mask)
            applied: list[AppliedAdapter] = []
            specs: list[TagSpec] = []
            for (concept, picks), bits in zip(selection.concepts, mask, strict=True):
                kept = [c for c, on in zip(picks, bits, strict=True) if on]
                for c in kept:
                    a = c.adapter
                    w = adapter_weight(a.effective_weight, s.strength, len(kept))
                    applied.append(AppliedAdapter(a.id, a.name, w, concept))
                    specs.append(TagSpec(a.name, w, a.card.activation_text, tuple(a.card.trigger_words),
                                         a.card.negative_text, a.card.name_problem))
            out = rewrite(selection.prompt, specs, negative_prompt=negative_prompt, add_triggers=s.add_triggers,
                          add_trained_words=s.add_trained_words, add_negative=s.add_negative, debias=s.debias,
                          emphasize=unmatched)
            for line in out.skipped:
                tell_once(f"adapter {line}")
            applied = [a for a in applied if a.name not in out.skipped_names]
            plans.append(ImagePlan(out.prompt, out.negative_prompt, int(seed), tuple(applied), tuple(out.skipped)))
        return plans

    def plan(self, prompt: str, seeds: Sequence[int], negative_prompt: str = "") -> dict[str, Any]:
        """JSON-able: {"prompt", "concepts": [...], "images": [...]}."""
        selection = self.select(prompt)
        return plan_dict(selection, self.images(selection, seeds, negative_prompt), self.settings)


def _adapter_entry(a: sdk.Adapter, weight: float, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": a.id, "name": a.name, "title": a.title, "weight": weight,
                             "installed": a.installed, **extra}
    if a.card.civitai_model_id is not None:
        entry["civitai_model_id"] = a.card.civitai_model_id
    return entry


def plan_dict(selection: Selection, images: Sequence[ImagePlan], settings: StylusSettings) -> dict[str, Any]:
    by_id = {c.adapter.id: c.adapter for c in selection.chosen}
    concepts = []
    for concept, picks in selection.concepts:
        n = len(picks)
        concepts.append({"concept": concept, "adapters": [
            _adapter_entry(c.adapter, adapter_weight(c.adapter.effective_weight, settings.strength, n),
                           reason=c.reason) for c in picks]})
    out_images = []
    for im in images:
        out_images.append({"prompt": im.prompt, "negative_prompt": im.negative_prompt, "seed": im.seed,
                           "adapters": [_adapter_entry(by_id[a.id], a.weight, concept=a.concept)
                                        for a in im.adapters if a.id in by_id]})
    return {"prompt": selection.prompt, "composer": selection.composer, "concepts": concepts,
            "images": out_images, "warnings": list(selection.warnings), "notes": list(selection.notes)}
