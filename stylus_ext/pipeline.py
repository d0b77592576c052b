"""The whole Stylus pipeline behind one object: retrieve → compose (validated) → mask → rewrite.

CONTRACT STUB (owned by the composition work): the names and signatures below are what the CLI,
the WebUI glue and the model backends code against. Bodies are filled in by that work.

    stylus = Stylus(catalog, settings=StylusSettings(mask="paper"))
    selection = stylus.select("a castle, studio ghibli style")       # cached per prompt
    images = stylus.images(selection, seeds=[11, 12, 13], negative_prompt="blurry")
    plan = stylus.plan("a castle, studio ghibli style", seeds=[11, 12, 13])  # both steps, JSON-able
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from stylus_ext import sdk


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
    add_triggers: bool = True
    add_negative: bool = True
    debias: str = ""
    emphasize_unmatched: bool = False
    base_model: str | None = None
    installed_only: bool = False
    allow_nsfw: bool = False
    allow_characters: bool = True  # character/celebrity adapters only when the prompt names them
    time_budget_s: float = 20.0


@dataclass(frozen=True)
class Chosen:
    """A validated pick: the adapter, its concept and the reason."""

    adapter: sdk.Adapter
    concept: str
    reason: str


@dataclass(frozen=True)
class Selection:
    """A validated composition for one prompt."""

    prompt: str
    concepts: tuple[tuple[str, tuple[Chosen, ...]], ...]
    composer: str
    warnings: tuple[str, ...] = ()


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


class Stylus:
    """Facade over a catalog: see the module docstring."""

    def __init__(self, catalog: Any, plugins: Any = None, settings: StylusSettings | None = None) -> None:
        raise NotImplementedError

    def retrieve(self, prompt: str) -> list[sdk.Candidate]:
        raise NotImplementedError

    def select(self, prompt: str) -> Selection:
        raise NotImplementedError

    def images(self, selection: Selection, seeds: Sequence[int], negative_prompt: str = "") -> list[ImagePlan]:
        raise NotImplementedError

    def plan(self, prompt: str, seeds: Sequence[int], negative_prompt: str = "") -> dict[str, Any]:
        """JSON-able: {"prompt", "concepts": [...], "images": [...]} (see the composition issue)."""
        raise NotImplementedError
