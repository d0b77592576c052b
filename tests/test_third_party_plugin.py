"""The test suite still passes with a third-party plugin installed (issue 11's measure of done).

A tiny distribution is installed into a temporary ``site`` folder as pip would leave it (the module,
``METADATA`` and ``entry_points.txt`` in a ``.dist-info``), so the real plugin manager finds it
through the ``stylus_ext`` entry point. Then the plugin listing (``stylus plugins``) and the tests
that list backends (``test_plugins.py``, the CLI's composer choices, the compose contract) run with
it present: a test asserting the exact list of backends would fail here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from stylus_ext import plugins as plugins_module
from stylus_ext.cli import main

ROOT = Path(__file__).resolve().parents[1]
MODULE = "stylus_tp_shout"
PLUGIN = """
from stylus_ext import sdk

STYLUS_API = (1, 1)


class Shout(sdk.Composer):
    name = "tp-shout"
    env_prefix = "TP_SHOUT"
    options = (sdk.Option("volume", int, 3, "How loud."),)

    def compose(self, request):
        return sdk.Composition(notes=("shouted",))


@sdk.hookimpl
def register_composers(register):
    register(Shout)
"""
#: The tests whose logic lists plugins or backends, run again with the plugin installed.
LISTING_TESTS = ("tests/test_plugins.py", "tests/test_cli_robustness.py", "tests/test_compose_contract.py")


def install(site: Path) -> Path:
    """``pip install stylus-tp-shout`` into ``site``: the module and its dist-info with the entry point."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{MODULE}.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    dist = site / "stylus_tp_shout-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: stylus-tp-shout\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text(f"[stylus_ext]\ntp_shout = {MODULE}\n")
    (dist / "RECORD").write_text("")
    return site


def _env(site: Path, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["STYLUS_PLUGINS_DIR"] = str(tmp_path / "no-user-plugins")
    env.pop("STYLUS_DISABLE_PLUGINS", None)
    return env


def test_the_plugin_listing_shows_it_beside_every_builtin(tmp_path, monkeypatch, capsys):
    builtin = plugins_module.PluginManager(user_dir=tmp_path / "none", environ={})
    site = install(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    monkeypatch.setenv("STYLUS_PLUGINS_DIR", str(tmp_path / "none"))
    monkeypatch.delenv("STYLUS_DISABLE_PLUGINS", raising=False)
    monkeypatch.setattr(plugins_module, "_default", None)  # `stylus plugins` builds the real manager
    assert main(["plugins", "--json"]) == 0
    infos = {i["name"]: i for i in json.loads(capsys.readouterr().out)}
    assert infos["tp_shout"]["origin"] == "entrypoint" and not infos["tp_shout"]["error"]
    assert infos["tp_shout"]["backends"] == {"composer": ["tp-shout"]}
    pm = plugins_module.get_plugins()
    for kind in ("composer", "encoder", "refiner", "source"):
        assert set(builtin.names(kind)) <= set(pm.names(kind)), f"a {kind} went missing"
    assert set(pm.names("composer")) - set(builtin.names("composer")) >= {"tp-shout"}
    assert not [i.name for i in pm.errors if i.name == "tp_shout" or i.origin == "builtin"]
    assert pm.create("composer", "tp-shout", volume="5").config == {"volume": 5}


def test_the_backend_listing_tests_pass_with_it_installed(tmp_path):
    env = _env(install(tmp_path / "site"), tmp_path)
    code = "from stylus_ext.plugins import PluginManager; print(PluginManager().names('composer'))"
    probe = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=120)
    assert probe.returncode == 0 and "tp-shout" in probe.stdout, probe.stderr  # it is really installed
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *LISTING_TESTS],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    tail = (run.stdout + run.stderr)[-3000:]
    assert run.returncode == 0, tail
    assert " passed" in tail and " failed" not in tail
