"""The plugin manager: built-ins by path, entry points, user files, isolation, disabling."""

from __future__ import annotations

import ast
import sys
import textwrap
from pathlib import Path

import pytest

from stylus_ext import hookspecs, sdk
from stylus_ext.plugins import PluginManager, builtin_plugins_dir

GOOD = """
from stylus_ext import sdk

class Echo(sdk.Composer):
    name = "echo"
    options = (sdk.Option("volume", int, 3, "How loud."),)
    env_prefix = "ECHO"

    def compose(self, request):
        return sdk.Composition()

@sdk.hookimpl
def register_composers(register):
    register(Echo)
"""


def write(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def manager(tmp_path: Path, **kwargs) -> PluginManager:
    kwargs.setdefault("builtin_dir", tmp_path / "builtin")
    kwargs.setdefault("user_dir", tmp_path / "user")
    kwargs.setdefault("entry_points_enabled", False)
    kwargs.setdefault("environ", {})
    return PluginManager(**kwargs)


def test_user_plugin_registers_backend(tmp_path):
    write(tmp_path / "user", "echo_plugin", GOOD)
    pm = manager(tmp_path)
    assert pm.names("composer") == ["echo"]
    info = next(i for i in pm.describe() if i["name"] == "echo_plugin")
    assert info["origin"] == "user" and info["hooks"] == ["register_composers"]
    assert info["backends"] == {"composer": ["echo"]}
    assert pm.create("composer", "echo", volume="7").config == {"volume": 7}


def test_broken_plugins_are_reported_and_skipped(tmp_path):
    write(tmp_path / "user", "a_syntax", "def broken(:\n")
    write(tmp_path / "user", "b_raises", "raise RuntimeError('boom at import')\n")
    write(tmp_path / "user", "c_bad_register", """
        from stylus_ext import sdk
        @sdk.hookimpl
        def register_composers(register):
            register(object)
    """)
    write(tmp_path / "user", "d_typo", """
        from stylus_ext import sdk
        @sdk.hookimpl
        def register_composer(register):
            pass
    """)
    write(tmp_path / "user", "e_good", GOOD)
    pm = manager(tmp_path)
    errors = {i.name: i.error for i in pm.errors}
    assert "SyntaxError" in errors["a_syntax"]
    assert "boom at import" in errors["b_raises"]
    assert "Composer subclass" in errors["c_bad_register"]
    assert "unknown hook" in errors["d_typo"]
    assert pm.names("composer") == ["echo"]  # the good one still works


def test_disable_by_name_never_imports(tmp_path):
    marker = tmp_path / "imported"
    write(tmp_path / "user", "noisy", f"open({str(marker)!r}, 'w').close()\n" + GOOD)
    pm = manager(tmp_path, environ={"STYLUS_DISABLE_PLUGINS": "noisy, other"})
    assert not marker.exists()
    assert pm.names("composer") == []
    assert [i.error for i in pm.infos if i.name == "noisy"] == ["disabled"]


def test_builtins_load_under_unique_prefix_not_as_plugins_package(tmp_path):
    write(tmp_path / "builtin", "echo_builtin", GOOD)
    pm = manager(tmp_path)
    assert pm.names("composer") == ["echo"]
    assert "stylus_ext_builtin_plugins_echo_builtin" in sys.modules
    assert "plugins" not in sys.modules or not hasattr(sys.modules["plugins"], "Echo")


def test_entry_point_plugins_are_discovered(tmp_path, monkeypatch):
    site = tmp_path / "site"
    write(site, "stylus_ep_demo", GOOD)
    dist = site / "stylus_ep_demo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: stylus-ep-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[stylus_ext]\nepdemo = stylus_ep_demo\n")
    monkeypatch.syspath_prepend(str(site))
    pm = manager(tmp_path, entry_points_enabled=True)
    info = next(i for i in pm.infos if i.name == "epdemo")
    assert info.origin == "entrypoint" and not info.error
    assert pm.names("composer") == ["echo"]


def test_unknown_backend_name_lists_available(tmp_path):
    write(tmp_path / "user", "echo_plugin", GOOD)
    with pytest.raises(LookupError, match="available: echo"):
        manager(tmp_path).create("composer", "nope")


def test_builtin_plugins_use_only_the_public_sdk():
    """Built-ins are written as third parties would: `stylus_ext.sdk` is all they may import."""
    files = sorted(builtin_plugins_dir().glob("*.py"))
    assert files, "no built-in plugins found"
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("stylus_ext"):
                ok = node.module == "stylus_ext.sdk" or (
                    node.module == "stylus_ext" and [a.name for a in node.names] == ["sdk"])
                assert ok, f"{path.name} imports {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("stylus_ext") or alias.name == "stylus_ext.sdk", \
                        f"{path.name} imports {alias.name}"


def test_every_hook_is_documented_with_its_signature():
    docs = (Path(__file__).resolve().parent.parent / "docs" / "plugins.md").read_text(encoding="utf-8")
    for name in dir(hookspecs):
        if name.startswith("register_"):
            assert f"### {name}(" in docs, f"docs/plugins.md lacks a '### {name}(...)' heading"


def test_option_resolution_order(tmp_path, monkeypatch):
    opts = (sdk.Option("model", str, "m0", "model"), sdk.Option("api_key", str, None, "key", secret=True),
            sdk.Option("temperature", float, 0.2, "t"), sdk.Option("json_mode", bool, True, "j"))
    env = {"STYLUS_LLM_MODEL": "env-model", "STYLUS_LLM_JSON_MODE": "off", "STYLUS_SECRETS_DIR": str(tmp_path)}
    assert sdk.resolve_options(opts, "LLM", {"temperature": "0.7"}, env) == {
        "model": "env-model", "api_key": None, "temperature": 0.7, "json_mode": False}
    key = tmp_path / "STYLUS_LLM_API_KEY"
    key.write_text("sk-secret\n")
    key.chmod(0o644)
    assert sdk.resolve_options(opts, "LLM", {}, env)["api_key"] is None  # group/world readable: refused
    key.chmod(0o600)
    assert sdk.resolve_options(opts, "LLM", {}, env)["api_key"] == "sk-secret"
    with pytest.raises(ValueError, match="temperature"):
        sdk.resolve_options(opts, "LLM", {"temperature": "warm"}, env)
    with pytest.raises(ValueError, match="unknown option"):
        sdk.resolve_options(opts, "LLM", {"nope": 1}, env)


def test_base_model_compatibility():
    assert sdk.compatible("Pony", "SDXL") and sdk.compatible("Illustrious", "Pony")
    assert not sdk.compatible("SD1", "SDXL") and not sdk.compatible("Flux", "SD1")
    assert sdk.compatible("unknown", "SD1") and sdk.compatible("SD1", None)
