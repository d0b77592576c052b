"""Shared CLI plumbing: the context handed to every command, prompt input and JSON output."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from stylus_ext.catalog.db import Catalog

log = logging.getLogger("stylus")


@dataclass
class CliContext:
    """What a command handler ``func(args, ctx)`` gets: the catalog path and the plugins."""

    catalog_path: str = ""
    _plugins: Any = field(default=None, repr=False)

    @property
    def plugins(self) -> Any:
        if self._plugins is None:
            from stylus_ext.plugins import get_plugins

            self._plugins = get_plugins()
        return self._plugins

    def catalog(self, *, create: bool = True) -> Catalog:
        return Catalog(self.catalog_path, create=create)

    def register_plugin_commands(self, subparsers: Any) -> None:
        for impl in self.plugins.pm.hook.register_commands.get_hookimpls():
            try:
                impl.function(subparsers=subparsers)
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the CLI
                log.warning("plugin %s could not add its commands: %s", impl.plugin_name, exc)


def add_prompt_arguments(parser: argparse.ArgumentParser) -> None:
    """``PROMPT`` or ``--input FILE`` (one prompt per line, or JSONL with a ``prompt`` field)."""
    parser.add_argument("prompt", nargs="?", help="the prompt (or use --input)")
    parser.add_argument("--input", metavar="FILE", help="prompts, one per line or JSONL with a 'prompt' field; "
                        "'-' reads standard input; output is JSONL")


def iter_prompts(args: argparse.Namespace) -> Iterator[str]:
    if args.input:
        stream: IO[str] = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")  # noqa: SIM115
        with stream:
            for number, raw in enumerate(stream, 1):
                line = raw.strip()
                if not line:
                    continue
                if line.startswith("{"):
                    try:
                        prompt = json.loads(line)["prompt"]
                    except (json.JSONDecodeError, KeyError, TypeError):
                        log.warning("%s:%d: not a JSON object with a 'prompt' field; skipped", args.input, number)
                        continue
                    yield str(prompt)
                else:
                    yield line
    elif args.prompt:
        yield args.prompt
    else:
        raise ValueError("give a PROMPT or --input FILE")


def dumps(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no timings): the same input gives byte-identical output."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)
