"""``register_commands``: a plugin package adds a ``stylus`` sub-command whose flags are generated from
its declared options; the built-in ``civitai`` package adds ``sync``, ``match`` and ``download`` so."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from helpers_backends import ROOT, load_plugin

from stylus_ext.cli import build_parser
from stylus_ext.cli.common import CliContext
from stylus_ext.plugins import PluginManager

INIT = """
from stylus_ext import sdk

from .run import run

STYLUS_API = (1, 2)

TALLY = sdk.Command(
    "tally", "count things", run,
    arguments=(sdk.Option("things", str, (), "what to count"),),
    options=(sdk.Option("times", int, 1, "repeat"), sdk.Option("loud", bool, False, "shout"),
             sdk.Option("tag", str, None, "a tag (repeatable)"), sdk.Option("out_dir", str, None, "where")),
    repeatable=("things", "tag"), required=("out_dir",))


@sdk.hookimpl
def register_commands(register):
    register(TALLY)
    register(sdk.Command("search", "a name the core already has", run))
    register(sdk.Command("leaky", "a secret flag", run, options=(sdk.Option("key", str, None, "k", secret=True),)))
    register(sdk.Command("after", "registered after two refusals", run))
"""
RUN = """
SEEN = []


def run(ctx):
    SEEN.append(dict(ctx.values))
    try:
        ctx.operation("no-such-operation")
    except LookupError as exc:
        SEEN.append(str(exc))
    ctx.echo("tallied")
    return 3
"""

LEGACY = """
from stylus_ext import sdk


@sdk.hookimpl
def register_commands(subparsers):
    p = subparsers.add_parser("legacy-hello", help="argparse itself")
    p.add_argument("--who", default="you")
    p.set_defaults(func=lambda args, ctx: print(f"hello {args.who}") or 5)
"""


@pytest.fixture
def ctx(tmp_path: Path) -> CliContext:
    package = tmp_path / "plugins" / "tally"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(INIT), encoding="utf-8")
    (package / "run.py").write_text(textwrap.dedent(RUN), encoding="utf-8")
    (tmp_path / "plugins" / "legacy.py").write_text(textwrap.dedent(LEGACY), encoding="utf-8")
    manager = PluginManager(user_dir=tmp_path / "plugins", entry_points_enabled=False)
    assert {i.name: i.error for i in manager.infos}["tally"] == ""
    return CliContext(catalog_path=str(tmp_path / "catalog.db"), _plugins=manager)


def test_a_package_plugin_adds_a_command_with_flags_from_its_options(ctx, capsys):
    parser = build_parser(ctx)
    args = parser.parse_args(["tally", "a", "b", "--times", "4", "--loud", "--tag", "x", "--tag", "y",
                              "--out-dir", "/tmp/o"])
    assert args.func(args, ctx) == 3
    module = sys.modules["stylus_ext_user_plugins_tally.run"]  # the package's own module, imported relatively

    values, problem = module.SEEN
    assert values == {"things": ["a", "b"], "times": 4, "loud": True, "tag": ["x", "y"], "out_dir": "/tmp/o"}
    assert "no catalog operation 'no-such-operation'" in problem and "civitai.sync" in problem
    assert capsys.readouterr().out == "tallied\n"
    module.SEEN.clear()
    args = parser.parse_args(["tally", "a", "--out-dir", "o"])  # not given: the declared defaults
    args.func(args, ctx)
    assert module.SEEN[0] == {"things": ["a"], "times": 1, "loud": False, "tag": None, "out_dir": "o"}


def test_generated_flags_check_their_values(ctx, capsys):
    parser = build_parser(ctx)
    for argv, why in ((["tally", "a", "--times", "many", "--out-dir", "o"], "--times"),
                      (["tally", "a"], "--out-dir"), (["tally", "--out-dir", "o"], "THINGS")):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
        assert why in capsys.readouterr().err


def test_a_taken_name_or_a_secret_flag_is_refused_and_the_rest_stays(ctx, caplog):
    parser = build_parser(ctx)
    args = parser.parse_args(["search", "a castle"])
    assert args.func.__module__ == "stylus_ext.cli.search"
    assert "plugin tally: command 'search' exists already; refused" in caplog.text
    assert "option 'key' is secret" in caplog.text
    sub = next(a for a in parser._actions if a.dest == "command").choices
    assert "leaky" not in sub and "after" in sub


def test_the_civitai_package_adds_its_commands_with_flags_from_declared_options():
    commands = load_plugin("civitai").COMMANDS
    assert [c.name for c in commands] == ["sync", "match", "download"]
    parser = build_parser(CliContext())
    sub = next(a for a in parser._actions if a.dest == "command").choices
    for command in commands:
        flags = {s for a in sub[command.name]._actions for s in a.option_strings}
        assert {"--" + o.name.replace("_", "-") for o in command.options} <= flags
    sync = sub["sync"].parse_args(["civitai", "--tag", "a", "--tag", "b", "--limit", "5", "--delay", "0.1"])
    assert (sync.tag, sync.limit, sync.delay, sync.nsfw) == (["a", "b"], 5, 0.1, None)


def test_the_civitai_package_loads_as_one_builtin_plugin():
    manager = PluginManager(user_dir=ROOT / "no-such-folder", entry_points_enabled=False)
    info = {i.name: i for i in manager.infos}["civitai"]
    assert info.error == "" and info.location.endswith("civitai")
    assert info.backends == {"source": ["civitai", "civitai-json"]}
    assert "register_commands" in info.hooks


def test_a_hook_taking_subparsers_adds_an_argparse_command(ctx, capsys):
    args = build_parser(ctx).parse_args(["legacy-hello", "--who", "me"])
    assert args.func(args, ctx) == 5 and capsys.readouterr().out == "hello me\n"
