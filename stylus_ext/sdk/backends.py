"""Backend base classes: a ``name``, declared options, and ONE method to implement each."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from stylus_ext.sdk.options import Option, resolve_options
from stylus_ext.sdk.records import AdapterCard, ComposeRequest, Composition, Refinement, SourceContext


class Backend:
    """Base of every backend: a ``name``, declared ``options`` and an env prefix.

    The host instantiates ``cls(**values)`` with explicit option values; anything not given comes
    from ``STYLUS_<env_prefix>_<NAME>`` or the declared default. Read values from ``self.config``.
    Import heavy libraries lazily inside methods, not at module level.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()
    env_prefix: ClassVar[str] = ""

    def __init__(self, **values: Any) -> None:
        self.config: dict[str, Any] = resolve_options(self.options, self.env_prefix, values)

    def close(self) -> None:
        """Release resources (models, sessions). Called when the host unloads the backend."""


class CatalogSource(Backend):
    """Yields adapter cards. ``kind`` is ``"files"`` (scans folders) or ``"cards"`` (imports)."""

    kind: ClassVar[str] = "files"

    def cards(self, ctx: SourceContext) -> Iterator[AdapterCard]:
        raise NotImplementedError


class Refiner(Backend):
    """Card → description, category, weight. ``version`` is a string: bump it when the output changes."""

    version: ClassVar[str] = "1"

    def refine(self, card: AdapterCard) -> Refinement:
        raise NotImplementedError


class Encoder(Backend):
    """Texts → L2-normalised float32 vectors (``len(texts) × dimension`` array-like)."""

    dimension: ClassVar[int] = 0

    def encode(self, texts: Sequence[str]) -> Any:
        raise NotImplementedError

    @property
    def identity(self) -> str:
        """Recorded with the index; vectors of different identities are never mixed."""
        model = self.config.get("model", "")
        return f"{self.name}:{model}" if model else self.name


class Composer(Backend):
    """Prompt + candidates → concepts with picked adapters (catalog ids) and reasons."""

    def compose(self, request: ComposeRequest) -> Composition:
        raise NotImplementedError
