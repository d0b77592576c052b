"""The plugin protocol: the ``stylus_ext`` hook marker, the hooks Stylus calls, and the API version.

Each ``register_*`` hook hands the plugin a ``register`` callable; the plugin calls it with backend
classes (subclasses of the bases in :mod:`stylus_ext.sdk.backends`). Users pick one encoder and one
composer by name, so registration plus selection replaces "first result wins" load-order games.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pluggy

PROJECT = "stylus_ext"
hookimpl = pluggy.HookimplMarker(PROJECT)
hookspec = pluggy.HookspecMarker(PROJECT)

#: ``(major, minor)`` of the plugin API. A minor bump only adds names; a major bump changes or removes
#: some. A plugin declares the version it was written for as ``STYLUS_API = (1, 0)`` in its module.
API_VERSION: tuple[int, int] = (1, 1)

#: The Stylus release (``stylus_ext.__version__``).
VERSION = "0.1.0"


def check_api(required: Sequence[int] | str, plugin: str = "this plugin") -> None:
    """Raise ``ImportError`` with a clear message unless this Stylus provides API ``required``
    (``(major, minor)`` or ``"major.minor"``): same major, and a minor at least as new."""
    try:
        parts = [int(p) for p in (required.split(".") if isinstance(required, str) else required)]
        if not 1 <= len(parts) <= 2 or min(parts) < 0:
            raise ValueError
    except (TypeError, ValueError):
        raise ImportError(f"{plugin} declares STYLUS_API = {required!r}; expected (major, minor), "
                          f"e.g. {API_VERSION!r}") from None
    major, minor = parts[0], (parts[1] if len(parts) > 1 else 0)
    have = f"{API_VERSION[0]}.{API_VERSION[1]}"
    if major == API_VERSION[0] and minor <= API_VERSION[1]:
        return
    if (major, minor) > API_VERSION:
        advice = "update Stylus, or use a release of the plugin written for this API"
    else:
        advice = "the plugin was written for an older, incompatible API: update the plugin"
    raise ImportError(f"{plugin} needs Stylus plugin API {major}.{minor}; this Stylus provides {have} ({advice})")


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

    The handler is called as ``func(args, ctx)`` where ``ctx`` has ``.catalog_path``, ``.catalog()``
    (opens it) and ``.plugins``; it returns an exit code.
    """
