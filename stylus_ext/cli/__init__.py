"""The ``stylus`` command line (also ``python -m stylus_ext``).

Global options come before the sub-command: ``stylus --catalog PATH search "a castle"``.
Each sub-command lives in its own module here exposing ``add_parser(subparsers)``; plugins add
more through the ``register_commands`` hook (the Civitai commands ``sync``, ``match`` and ``download``
are the built-in ``civitai`` plugin's, see :mod:`stylus_ext.cli.plugin_commands`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from stylus_ext import __version__
from stylus_ext.cli.common import CLI_ERRORS, CliContext, error_text
from stylus_ext.paths import default_catalog_path

#: Built-in sub-command modules, in the order ``--help`` lists them (the pipeline's order).
COMMAND_MODULES = [
    "demo", "scan", "cards", "index", "search", "compose", "controls", "info", "plugins",
]
COMMAND_MODULES += ["refine"]  # refiners, incl. the vision model (model backends)


def requested_command(argv: Sequence[str]) -> str | None:
    """The built-in command ``argv`` names (the first word that is not an option or its value)."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word == "--catalog":
            skip = True
        elif not word.startswith("-"):
            return word if word in COMMAND_MODULES else None
        elif word in ("-h", "--help"):
            return None
    return None


def _add_commands(sub: Any, names: Sequence[str]) -> None:
    for name in names:
        try:
            module = importlib.import_module(f"stylus_ext.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"stylus_ext.cli.{name}":
                raise
            continue
        module.add_parser(sub)


def build_parser(ctx: CliContext, argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The full parser; with ``argv`` naming a built-in command, only that command's module is
    imported (a cold ``stylus compose`` does not import the other commands' dependencies)."""
    parser = argparse.ArgumentParser(prog="stylus", description="Automatic LoRA selection for Stable Diffusion.")
    parser.add_argument("--version", action="version", version=f"stylus {__version__}")
    parser.add_argument("--catalog", metavar="PATH", default=None,
                        help=f"catalog file (env STYLUS_CATALOG; default {default_catalog_path()})")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = requested_command(argv) if argv is not None else None
    _add_commands(sub, [wanted] if wanted else COMMAND_MODULES)
    if wanted and wanted not in sub.choices:  # a module whose commands have other names: list them all
        _add_commands(sub, [n for n in COMMAND_MODULES if n != wanted])
    ctx.register_plugin_commands(sub)
    for command in set(sub.choices.values()):  # `stylus search X --catalog F` works too (a common slip)
        with contextlib.suppress(argparse.ArgumentError):
            command.add_argument("--catalog", metavar="PATH", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    ctx = CliContext()
    parser = build_parser(ctx, sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2),
                        format="stylus: %(levelname)s: %(message)s", stream=sys.stderr)
    ctx.catalog_path = os.path.expanduser(args.catalog) if args.catalog else str(default_catalog_path())
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args, ctx) or 0)
    except KeyboardInterrupt:
        print("stylus: interrupted; work done so far is saved and the next run resumes it", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `stylus compose --input big.txt | head`: the reader left; stop quietly
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except CLI_ERRORS as exc:  # incl. a damaged/full/read-only catalog (sqlite3.Error): one line, data intact
        if args.verbose > 1:
            raise
        print(f"stylus: error: {error_text(exc, ctx.catalog_path)}", file=sys.stderr)
        return 1
