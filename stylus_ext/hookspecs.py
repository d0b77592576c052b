"""Hook specifications: the whole plugin surface of Stylus.

Each hook hands the plugin a ``register`` callable; the plugin calls it with backend classes
(subclasses of the bases in :mod:`stylus_ext.sdk`). Users pick one encoder and one composer by
name, so registration plus selection replaces "first result wins" load-order games.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("stylus_ext")


@hookspec
def register_catalog_sources(register: Callable[[type], None]) -> None:
    """Register :class:`~stylus_ext.sdk.CatalogSource` classes (they yield adapter cards)."""


@hookspec
def register_refiners(register: Callable[[type], None]) -> None:
    """Register :class:`~stylus_ext.sdk.Refiner` classes (card → description, category, weight)."""


@hookspec
def register_encoders(register: Callable[[type], None]) -> None:
    """Register :class:`~stylus_ext.sdk.Encoder` classes (texts → normalised vectors)."""


@hookspec
def register_composers(register: Callable[[type], None]) -> None:
    """Register :class:`~stylus_ext.sdk.Composer` classes (prompt + candidates → picks)."""


@hookspec
def register_commands(subparsers: Any) -> None:
    """Add ``stylus`` sub-commands: ``subparsers`` is argparse's; set ``func=`` via set_defaults.

    The handler is called as ``func(args, ctx)`` where ``ctx`` has ``.catalog_path`` and
    ``.plugins``; it returns an exit code.
    """
