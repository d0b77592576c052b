"""The plugin protocol: the ``stylus_ext`` hook marker, the hooks Stylus calls, and the API version.

Each ``register_*`` hook hands the plugin a ``register`` callable; the plugin calls it with backend
classes (subclasses of the bases in :mod:`stylus_ext.sdk.backends`). Users pick one encoder and one
composer by name, so registration plus selection replaces "first result wins" load-order games.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy

from stylus_ext.sdk.options import Option

PROJECT = "stylus_ext"
hookimpl = pluggy.HookimplMarker(PROJECT)
hookspec = pluggy.HookspecMarker(PROJECT)

#: ``(major, minor)`` of the plugin API. A minor bump only adds names; a major bump changes or removes
#: some. A plugin declares the version it was written for as ``STYLUS_API = (1, 0)`` in its module.
API_VERSION: tuple[int, int] = (1, 10)

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


@dataclass(frozen=True)
class Command:
    """A ``stylus`` sub-command a plugin adds through :func:`register_commands`.

    Flags come from the declared options: ``Option("max_size_mb", float, ...)`` is ``--max-size-mb``
    (a ``bool`` option is a switch). ``arguments`` are positional; a name in ``repeatable`` takes
    several values (a positional: one or more; a flag: given again and again), a name in ``required``
    must be given. ``run(ctx)`` returns the exit code; ``ctx.values`` holds every option's value (the
    declared default when not given).
    """

    name: str
    help: str
    run: Callable[[CommandContext], int]
    options: tuple[Option, ...] = ()
    arguments: tuple[Option, ...] = ()
    repeatable: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    description: str = ""


@dataclass
class CommandContext:
    """What a plugin command's ``run`` gets from the host.

    ``values``: option name → value. ``catalog(create=True)`` opens the catalog (close it when done).
    ``create(kind, name, **options)``: a registered backend (``"source"``, ``"refiner"`` ...).
    ``operation(name)``: one of the host's catalog operations (``operations`` lists them; see
    docs/plugins.md). ``progress``: whether to draw progress bars. ``echo``/``warn``: a line on
    standard output / standard error.
    """

    values: dict[str, Any]
    catalog: Callable[..., Any]
    create: Callable[..., Any]
    operations: Mapping[str, Callable[[], Callable[..., Any]]] = field(default_factory=dict)
    progress: bool = False

    def operation(self, name: str) -> Callable[..., Any]:
        if name not in self.operations:
            known = ", ".join(sorted(self.operations)) or "none"
            raise LookupError(f"this Stylus has no catalog operation {name!r} (available: {known})")
        return self.operations[name]()

    def echo(self, text: str) -> None:
        print(text, flush=True)

    def warn(self, text: str) -> None:
        print(f"stylus: {text}", file=sys.stderr, flush=True)


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
def register_commands(register: Callable[[Command], None], subparsers: Any) -> None:
    """Add ``stylus`` sub-commands: call ``register(sdk.Command(...))`` (flags generated from the
    command's declared options; ``run(ctx: sdk.CommandContext) -> int``). ``subparsers`` (argparse's)
    is for commands that need argparse itself: set ``func=`` via set_defaults, called as
    ``func(args, ctx)`` with ``ctx.catalog_path``, ``ctx.catalog()`` and ``ctx.plugins``.
    """
