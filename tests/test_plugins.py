"""The plugin manager: built-ins by path, entry points, user files, isolation, disabling, unique
backend names, the kit's contract and the API version. Every manager here is built on temporary
folders with entry points off (unless a test adds its own), so installed third-party plugins never
change what these tests see."""

from __future__ import annotations

import ast
import re
import sys
import textwrap
import types
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
    assert info.origin == "entrypoint" and not info.error and info.backends == {"composer": ["echo"]}
    assert pm.backend_class("composer", "echo").__module__ == "stylus_ep_demo"  # other installed plugins may add more


def test_unknown_backend_name_lists_available(tmp_path):
    write(tmp_path / "user", "echo_plugin", GOOD)
    with pytest.raises(LookupError, match="available: echo"):
        manager(tmp_path).create("composer", "nope")


def _is_public_sdk(module: str) -> bool:
    """``stylus_ext.sdk`` or one of its public submodules/names (never a ``_private`` one)."""
    parts = module.split(".")
    return parts[:2] == ["stylus_ext", "sdk"] and not any(p.startswith("_") for p in parts[2:])


def test_builtin_plugins_import_only_the_public_sdk():
    """Built-ins are written as third parties would: `stylus_ext.sdk` (and its public submodules) is
    all of Stylus they may import; relative imports inside a plugin package are their own code."""
    files = sorted(builtin_plugins_dir().rglob("*.py"))
    assert files, "no built-in plugins found"
    reaching: dict[str, set[str]] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            bad = {n for n in names if (n == "stylus_ext" or n.startswith("stylus_ext.")) and not _is_public_sdk(n)}
            if bad:
                reaching.setdefault(path.relative_to(builtin_plugins_dir()).as_posix(), set()).update(bad)
    assert reaching == {}


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


# -- backend names are unique: the first registration wins, the later one is refused ------------

def _named_composer(name: str) -> str:
    return GOOD.replace('name = "echo"', f'name = "{name}"').replace('"ECHO"', '"X"')


def test_a_user_plugin_cannot_replace_a_builtin_backend(tmp_path):
    write(tmp_path / "builtin", "offline_composer", _named_composer("offline"))
    write(tmp_path / "user", "my_offline", _named_composer("offline").replace("Composition()",
                                                                               "Composition(notes=('user',))"))
    pm = manager(tmp_path)
    assert pm.names("composer") == ["offline"]
    assert pm.backend_class("composer", "offline").__module__.startswith("stylus_ext_builtin_plugins")
    error = {i.name: i.error for i in pm.errors}["my_offline"]
    assert error == ("composer 'offline' refused: the name is taken by the builtin plugin 'offline_composer' "
                     "(backend names must be unique; rename this one)")
    assert next(i for i in pm.infos if i.name == "my_offline").backends == {}


def test_between_third_parties_the_earlier_in_load_order_keeps_the_name(tmp_path, monkeypatch):
    site = tmp_path / "site"
    write(site, "zz_ep_module", _named_composer("shared"))
    dist = site / "zz_ep-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: zz-ep\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[stylus_ext]\nzz_ep = zz_ep_module\n")
    monkeypatch.syspath_prepend(str(site))
    write(tmp_path / "user", "a_user", _named_composer("shared"))  # sorts first, but user files load last
    write(tmp_path / "user", "b_user", _named_composer("shared") + "\nclass Other(Echo):\n    name = 'other'\n"
          "\n@sdk.hookimpl\ndef register_encoders(register):\n    pass\n")
    pm = manager(tmp_path, entry_points_enabled=True)
    owner = pm.backend_class("composer", "shared")
    assert owner.__module__ == "zz_ep_module"  # entry points load before the user folder
    errors = {i.name: i.error for i in pm.errors}
    assert "taken by the entrypoint plugin 'zz_ep'" in errors["a_user"]
    assert "taken by the entrypoint plugin 'zz_ep'" in errors["b_user"]


def test_one_plugin_registering_a_name_twice_keeps_the_first(tmp_path):
    write(tmp_path / "user", "twice", GOOD.replace("register(Echo)", "register(Echo)\n    register(Echo2)")
          + "\nclass Echo2(Echo):\n    pass\n")
    pm = manager(tmp_path)
    assert pm.backend_class("composer", "echo").__name__ == "Echo"
    assert "composer 'echo' refused: the name is taken by the user plugin 'twice'" in pm.errors[0].error


# -- the loader applies the kit's contract ----------------------------------------------------

BAD_BACKENDS = [  # (class body, base class, hook, the rule it breaks)
    ("class B(sdk.Refiner):\n    name = 'intversion'\n    version = 2\n", "register_refiners",
     "version 2 must be a non-empty string"),
    ("class B(sdk.CatalogSource):\n    name = 'odd'\n    kind = 'folder'\n", "register_catalog_sources",
     "kind must be one of ['files', 'cards']"),
    ("class B(sdk.Composer):\n    name = 'lower'\n    env_prefix = 'lower'\n"
     "    options = (sdk.Option('x', int, 1, 'x'),)\n", "register_composers", "env_prefix 'lower' must be UPPER_CASE"),
    ("class B(sdk.Composer):\n    pass\n", "register_composers", "name '' must be lowercase"),
    ("class B(sdk.Composer):\n    name = 'wrongdefault'\n    env_prefix = 'WD'\n"
     "    options = (sdk.Option('n', int, 'many', 'n'),)\n", "register_composers",
     "option 'n': default 'many' is not a int"),
]


@pytest.mark.parametrize("body,hook,message", BAD_BACKENDS, ids=[m[:24] for _, _, m in BAD_BACKENDS])
def test_loader_and_kit_refuse_the_same_backends_with_the_same_message(tmp_path, body, hook, message):
    from stylus_ext import testing
    from stylus_ext.plugins import _import_file

    source = f"from stylus_ext import sdk\n\n{body}\n@sdk.hookimpl\ndef {hook}(register):\n    register(B)\n"
    path = write(tmp_path / "user", "bad_plugin", source)
    pm = manager(tmp_path)
    assert not any(pm.backends.values())
    assert pm.errors[0].error.startswith(f"{hook}: refused B: {message}")
    with pytest.raises(AssertionError, match=re.escape(message)):
        testing.check_plugin(_import_file(path, "stylus_test_bad_plugin"))


def test_a_bad_class_does_not_cost_the_plugin_its_other_backends(tmp_path):
    write(tmp_path / "user", "mixed", GOOD.replace("register(Echo)", "register(object)\n    register(Echo)"))
    pm = manager(tmp_path)
    assert pm.names("composer") == ["echo"]
    assert "refused object: not an sdk.Composer subclass" in pm.errors[0].error


# -- the API version ---------------------------------------------------------------------------

def test_check_api_accepts_this_and_older_minors_of_the_same_major():
    major, minor = sdk.API_VERSION
    sdk.check_api((major, minor))
    sdk.check_api(f"{major}.0")
    sdk.check_api([major])
    with pytest.raises(ImportError, match=rf"needs Stylus plugin API {major}\.{minor + 1}; .*update Stylus"):
        sdk.check_api((major, minor + 1), "p")
    with pytest.raises(ImportError, match=r"older, incompatible API: update the plugin"):
        sdk.check_api((major - 1, 9))
    with pytest.raises(ImportError, match=r"declares STYLUS_API = 'one'; expected \(major, minor\)"):
        sdk.check_api("one")


def test_the_loader_refuses_a_plugin_written_for_another_api(tmp_path):
    major, minor = sdk.API_VERSION
    write(tmp_path / "user", "future", f"STYLUS_API = ({major}, {minor + 1})\n" + GOOD)
    write(tmp_path / "user", "current", f"STYLUS_API = ({major}, {minor})\n"
          + GOOD.replace('"echo"', '"echo2"'))
    write(tmp_path / "user", "newer_names", "from stylus_ext import sdk\nBase = sdk.Transformer\n")
    pm = manager(tmp_path)
    errors = {i.name: i.error for i in pm.errors}
    assert errors["future"] == (f"ImportError: plugin 'future' needs Stylus plugin API {major}.{minor + 1}; this "
                                f"Stylus provides {major}.{minor} (update Stylus, or use a release of the plugin "
                                "written for this API)")
    assert f"this Stylus provides plugin API {major}.{minor}" in errors["newer_names"]
    assert pm.names("composer") == ["echo2"]


def test_the_kit_checks_the_declared_api_too():
    from stylus_ext import testing

    module = types.ModuleType("future_plugin")
    module.STYLUS_API = (sdk.API_VERSION[0] + 1, 0)
    with pytest.raises(AssertionError, match="needs Stylus plugin API"):
        testing.check_plugin(module)
