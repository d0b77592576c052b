"""What a plugin author sees while debugging: a misspelled hook gets a suggestion, and
``STYLUS_TRACE_HOOKS=1`` really prints every hook call (the docs promise it)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from stylus_ext.plugins import PluginManager

TYPO = """
from stylus_ext import sdk

@sdk.hookimpl
def register_composer(register):
    pass
"""

GOOD = """
from stylus_ext import sdk

class Echo(sdk.Composer):
    name = "echo"

    def compose(self, request):
        return sdk.Composition()

@sdk.hookimpl
def register_composers(register):
    register(Echo)
"""


def _manager(tmp_path: Path, environ: dict[str, str], **plugins: str) -> PluginManager:
    user = tmp_path / "user"
    user.mkdir(parents=True)
    for name, body in plugins.items():
        (user / f"{name}.py").write_text(textwrap.dedent(body), encoding="utf-8")
    return PluginManager(builtin_dir=tmp_path / "none", user_dir=user, entry_points_enabled=False, environ=environ)


def test_misspelled_hook_suggests_the_real_one(tmp_path):
    pm = _manager(tmp_path, {}, typo=TYPO)
    info = next(i for i in pm.describe() if i["name"] == "typo")
    assert "register_composer (did you mean register_composers?)" in info["error"]


def test_trace_hooks_prints_each_registration(tmp_path, capsys):
    pm = _manager(tmp_path, {"STYLUS_TRACE_HOOKS": "1"}, echo_plugin=GOOD)
    assert pm.names("composer") == ["echo"]
    assert "stylus: hook: register_composers of echo_plugin registered ['echo']" in capsys.readouterr().err
    _manager(tmp_path / "quiet", {}, echo_plugin=GOOD)
    assert "hook:" not in capsys.readouterr().err


SOURCES = """
import json
import os
from stylus_ext import sdk

class NotesFolder(sdk.CatalogSource):
    name = "notes"
    kind = "files"

    def cards(self, ctx):
        for root in ctx.paths:
            for entry in sorted(os.scandir(root), key=lambda e: e.name):
                if entry.name.endswith(".lora"):
                    st = entry.stat()
                    if not ctx.unchanged(entry.path, st.st_size, st.st_mtime):
                        yield sdk.AdapterCard(source="notes", name=entry.name[:-5], title=entry.name[:-5].title(),
                                              path=entry.path, size=st.st_size, mtime=st.st_mtime)

class CardList(sdk.CatalogSource):
    name = "card-list"
    kind = "cards"

    def cards(self, ctx):
        for path in ctx.paths:
            with open(path, encoding="utf-8") as f:
                for title in json.load(f):
                    yield sdk.AdapterCard(source="card-list", name=title.lower().replace(" ", "_"), title=title)

@sdk.hookimpl
def register_catalog_sources(register):
    register(NotesFolder)
    register(CardList)
"""


def test_third_party_sources_run_from_the_cli(tmp_path, monkeypatch, capsys):
    from stylus_ext import plugins as plugins_module
    from stylus_ext.catalog.db import Catalog
    from stylus_ext.cli import main

    pm = _manager(tmp_path, {}, my_sources=SOURCES)
    monkeypatch.setattr(plugins_module, "get_plugins", lambda reload=False: pm)
    loras = tmp_path / "loras"
    loras.mkdir()
    (loras / "paper_cut.lora").write_bytes(b"x")
    (tmp_path / "cards.json").write_text('["Neon Noir"]', encoding="utf-8")
    db = str(tmp_path / "c.db")
    assert main(["--catalog", db, "scan", "--source", "notes", str(loras)]) == 0
    assert main(["--catalog", db, "import-cards", "--source", "card-list", str(tmp_path / "cards.json")]) == 0
    assert sorted(a.title for a in Catalog(db).adapters()) == ["Neon Noir", "Paper_Cut"]
    capsys.readouterr()
    assert main(["--catalog", db, "scan", "--source", "card-list", str(loras)]) == 1
    assert "use `stylus import-cards --source card-list`" in capsys.readouterr().err


def test_example_plugin_does_not_depend_on_an_unpublished_distribution():
    # "stylus-ext" is not on PyPI and is no installed distribution inside the WebUI (an extension
    # folder): `pip install` of a plugin that requires it fails there, or fetches a squatter's package.
    import re

    root = Path(__file__).resolve().parents[1] / "examples" / "stylus-example-plugin"
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    deps = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.M | re.S)
    assert deps is not None and "stylus" not in deps.group(1).lower()
