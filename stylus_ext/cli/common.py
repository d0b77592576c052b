"""Shared CLI plumbing: the context handed to every command, prompt input and JSON output."""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
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
        """Each plugin's ``register_commands``: ``sdk.Command``s through ``register`` (flags generated
        from their options), or argparse parsers of its own through ``subparsers``."""
        from stylus_ext.cli.plugin_commands import add_command

        for impl in self.plugins.pm.hook.register_commands.get_hookimpls():
            def register(command: Any, _plugin: str = impl.plugin_name) -> None:
                try:
                    add_command(subparsers, command)
                except ValueError as exc:  # this command is refused; the plugin's others still count
                    log.warning("plugin %s: %s; refused", _plugin, exc)

            given = {"register": register, "subparsers": subparsers}
            try:
                impl.function(**{name: given[name] for name in impl.argnames})
                getattr(self.plugins, "trace", lambda _m: None)(f"register_commands of {impl.plugin_name}")
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the CLI
                log.warning("plugin %s could not add its commands: %s", impl.plugin_name, exc)


def add_prompt_arguments(parser: argparse.ArgumentParser) -> None:
    """``PROMPT`` or ``--input FILE`` (one prompt per line, or JSONL with a ``prompt`` field)."""
    parser.add_argument("prompt", nargs="?", help="the prompt (or use --input)")
    parser.add_argument("--input", metavar="FILE", help="prompts, one per line or JSONL with a 'prompt' field; "
                        "'-' reads standard input; output is JSONL")


def iter_prompts(args: argparse.Namespace) -> Iterator[str]:
    """Prompts from ``args.prompt`` or ``--input``; a bad line is skipped with a one-line warning.

    Lines are decoded one by one (a byte that is not UTF-8 costs that line, not the file); a UTF-8
    byte-order mark is ignored; a JSON object needs a non-empty string ``prompt``.
    """
    if args.input:
        stream: IO[bytes] = sys.stdin.buffer if args.input == "-" else open(args.input, "rb")  # noqa: SIM115
        with stream:
            for number, raw in enumerate(stream, 1):
                try:
                    line = raw.decode("utf-8-sig" if number == 1 else "utf-8").strip()
                except UnicodeDecodeError as exc:
                    log.warning("%s:%d: not UTF-8 text (byte %d); skipped", args.input, number, exc.start)
                    continue
                if not line:
                    continue
                if line.startswith("{"):
                    try:
                        prompt = json.loads(line)["prompt"]
                    except (ValueError, KeyError, TypeError, RecursionError):
                        prompt = None
                    if not isinstance(prompt, str) or not prompt.strip():
                        log.warning("%s:%d: not a JSON object with a 'prompt' text; skipped", args.input, number)
                        continue
                    if not _is_text(prompt):  # "\ud800": a lone surrogate no encoder or file can take
                        log.warning("%s:%d: the prompt holds a lone surrogate (%s); skipped", args.input, number,
                                    _surrogate_escape(prompt))
                        continue
                    yield prompt
                else:
                    yield line
    elif args.prompt and args.prompt.strip():
        if not _is_text(args.prompt):
            raise ValueError("the prompt is not valid UTF-8 text (check the terminal's encoding)")
        yield args.prompt
    else:
        raise ValueError("give a PROMPT or --input FILE" if not args.prompt else "the prompt is empty")


#: Errors every command turns into one line (``stylus: error: ...``) instead of a traceback.
CLI_ERRORS: tuple[type[BaseException], ...] = (ValueError, LookupError, OSError, RuntimeError, sqlite3.Error,
                                               OverflowError)


def error_text(exc: BaseException, catalog_path: str = "") -> str:
    """One line for an error that ends a command: what happened and what to do."""
    if isinstance(exc, sqlite3.Error):
        from stylus_ext.catalog.db import describe_error

        return describe_error(exc, catalog_path or "the catalog")
    if isinstance(exc, OverflowError):
        return f"a number is too large for the catalog ({exc}); use a smaller value"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _surrogate_escape(text: str) -> str:
    bad = next((i for i, ch in enumerate(text) if 0xD800 <= ord(ch) <= 0xDFFF), 0)
    return f"character {bad + 1}: \\u{ord(text[bad]):04x}"


def base_model_arg(value: str) -> str | None:
    """``--base-model`` value → a family name (``sdxl``, ``SD 1.5``, ``Pony`` ...); ``any`` → no filter."""
    from stylus_ext.sdk import BASE_MODEL_GROUPS
    from stylus_ext.sdk.basemodels import family_from_raw

    if value.strip().lower() in ("any", "all", "none"):
        return None
    family = family_from_raw(value)
    if family is None:
        known = ", ".join(f for f in BASE_MODEL_GROUPS if f != "unknown")
        raise argparse.ArgumentTypeError(f"unknown base model {value!r} (use one of {known}, or 'any')")
    return family


def dumps(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no timings): the same input gives byte-identical output."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)


def source_class(plugins: Any, name: str, kind: str) -> type:
    """The catalog source ``name`` (a third-party one too) of ``kind`` ("files" or "cards")."""
    cls = plugins.backend_class("source", name)
    if getattr(cls, "kind", "files") != kind:
        other = "import-cards" if kind == "files" else "scan"
        raise ValueError(f"source {name!r} is a {cls.kind!r} source: use `stylus {other} --source {name}`")
    return cls
