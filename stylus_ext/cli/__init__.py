"""The ``stylus`` command line (also ``python -m stylus_ext``).

Global options come before the sub-command: ``stylus --catalog PATH search "a castle"``.
Each sub-command lives in its own module here exposing ``add_parser(subparsers)``; plugins add
more through the ``register_commands`` hook.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from stylus_ext import __version__
from stylus_ext.cli.common import CLI_ERRORS, CliContext, error_text
from stylus_ext.paths import default_catalog_path

#: Built-in sub-command modules, in the order ``--help`` lists them (the pipeline's order).
COMMAND_MODULES = [
    "demo", "scan", "cards", "index", "search", "compose", "controls", "info", "plugins",
]
COMMAND_MODULES += ["sync", "match", "download"]  # Civitai (stylus_ext/civitai)
COMMAND_MODULES += ["refine"]  # refiners, incl. the vision model (model backends)


def build_parser(ctx: CliContext) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stylus", description="Automatic LoRA selection for Stable Diffusion.")
    parser.add_argument("--version", action="version", version=f"stylus {__version__}")
    parser.add_argument("--catalog", metavar="PATH", default=None,
                        help=f"catalog file (env STYLUS_CATALOG; default {default_catalog_path()})")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"stylus_ext.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"stylus_ext.cli.{name}":
                raise
            continue
        module.add_parser(sub)
    ctx.register_plugin_commands(sub)
    for command in set(sub.choices.values()):  # `stylus search X --catalog F` works too (a common slip)
        with contextlib.suppress(argparse.ArgumentError):
            command.add_argument("--catalog", metavar="PATH", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    ctx = CliContext()
    parser = build_parser(ctx)
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
