"""Plugin commands (``register_commands``): an ``sdk.Command`` becomes a sub-command whose flags are
generated from its declared options, and its ``run`` gets an ``sdk.CommandContext``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from typing import Any

from stylus_ext.sdk import Option
from stylus_ext.sdk.hooks import Command, CommandContext

#: The catalog operations a plugin command can ask for (``ctx.operation(name)``): name → (module, function).
OPERATIONS: dict[str, tuple[str, str]] = {
    "index": ("stylus_ext.indexing", "index_catalog"),
    "civitai.sync": ("stylus_ext.civitai.sync", "sync_civitai"),
    "civitai.match": ("stylus_ext.civitai.match", "match_files"),
    "civitai.download": ("stylus_ext.civitai.download", "download_adapter"),
    "civitai.resolve": ("stylus_ext.civitai.download", "resolve_adapter"),
}


def _loader(module: str, name: str) -> Callable[[], Callable[..., Any]]:
    return lambda: getattr(importlib.import_module(module), name)  # imported on use: a cold start stays cold


def add_option(parser: argparse.ArgumentParser, opt: Option, *, positional: bool = False,
               repeatable: bool = False, required: bool = False) -> None:
    """One argparse argument generated from a declared option (``max_size_mb`` → ``--max-size-mb``)."""
    kwargs: dict[str, Any] = {"help": opt.help, "default": None}
    if opt.choices:
        kwargs["choices"] = list(opt.choices)
    if positional:
        parser.add_argument(opt.name, nargs="+" if repeatable else None, type=opt.parse,
                            metavar=None if opt.choices else opt.name.upper(),
                            **{k: v for k, v in kwargs.items() if k != "default"})
        return
    flag = "--" + opt.name.replace("_", "-")
    if opt.type is bool:
        parser.add_argument(flag, dest=opt.name, action="store_true", **kwargs)
    else:
        metavar = "N" if opt.type is int else opt.name.split("_")[-1].upper()
        parser.add_argument(flag, dest=opt.name, type=opt.parse, required=required, metavar=metavar,
                            action="append" if repeatable else "store", **kwargs)


def add_command(sub: Any, command: Command) -> None:
    """``command`` as a sub-command of ``sub`` (argparse's subparsers); ``ValueError`` when it cannot be one."""
    if not isinstance(command, Command):
        raise ValueError(f"{command!r} is not an sdk.Command")
    if command.name in sub.choices:
        raise ValueError(f"command {command.name!r} exists already")
    secret = [o.name for o in (*command.arguments, *command.options) if o.secret]
    if secret:
        raise ValueError(f"command {command.name!r}: option {secret[0]!r} is secret (secrets come only from "
                         "the environment or a key file, never from a flag)")
    p = sub.add_parser(command.name, help=command.help, description=command.description or command.help)
    for opt in command.arguments:
        add_option(p, opt, positional=True, repeatable=opt.name in command.repeatable)
    for opt in command.options:
        add_option(p, opt, repeatable=opt.name in command.repeatable, required=opt.name in command.required)
    p.set_defaults(func=lambda args, ctx: run_command(command, args, ctx))


def run_command(command: Command, args: argparse.Namespace, ctx: Any) -> int:
    values = {}
    for opt in (*command.arguments, *command.options):
        given = getattr(args, opt.name, None)
        values[opt.name] = opt.default if given is None else given
    operations = {name: _loader(*where) for name, where in OPERATIONS.items()}
    index = operations["index"]
    operations["index"] = lambda: lambda catalog, **kw: index()(catalog, ctx.plugins, **kw)  # with the plugins
    context = CommandContext(
        values=values, catalog=ctx.catalog, create=ctx.plugins.create,
        operations=operations, progress=sys.stderr.isatty())
    return int(command.run(context) or 0)
