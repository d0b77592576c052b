"""The conformance kit (stylus_ext.sdk.testing) on the built-ins, the example plugin and broken backends;
``stylus refine --refiner vision`` with its cost guard against a real HTTP server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers_backends import ROOT, clear_llm_env, load_plugin
from openai_server import OpenAIServer, Reply

from stylus_ext import sdk
from stylus_ext.plugins import PluginManager, plugin_paths
from stylus_ext.sdk import testing

EXAMPLE = ROOT / "examples" / "stylus-example-plugin"
BUILTINS = sorted(p.stem for p in plugin_paths(ROOT / "plugins"))  # files and packages (plugins/civitai/)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    clear_llm_env(monkeypatch, tmp_path)


@pytest.fixture
def server():
    with OpenAIServer() as srv:
        yield srv


@pytest.mark.parametrize("stem", BUILTINS)
def test_every_builtin_plugin_passes_the_static_checks(stem):
    found = testing.check_plugin(load_plugin(stem))
    assert any(found.values())


def test_builtin_offline_backends_pass_the_runtime_checks(plugins):
    testing.check_composer(plugins.backend_class("composer", "offline"))
    testing.check_refiner(plugins.backend_class("refiner", "offline"))


def test_builtin_transformers_encoder_passes(encoder):
    testing.check_encoder(encoder)


def test_builtin_http_backends_pass_against_a_server(server):
    server.chat_default = json.dumps({"concepts": [{"concept": "snow", "picks": [{"n": 2, "reason": "snowy"}]}],
                                      "category": "background", "description": "Snowy fields.", "weight": 0.6})
    comp = testing.check_composer(load_plugin("openai_composer").OpenAIComposer, base_url=server.url)
    assert comp.requests_sent >= 3  # it really asked the server (the empty request needs no call)
    testing.check_refiner(load_plugin("vision_refiner").VisionRefiner, base_url=server.url)
    testing.check_encoder(load_plugin("openai_embeddings").OpenAIEmbeddings, base_url=server.url)


def test_builtin_local_source_passes_on_the_sample_folder(plugins, sample_folder):
    cards = testing.check_source(plugins.backend_class("source", "local"), paths=[str(sample_folder)])
    assert cards


def test_the_kit_catches_broken_backends():
    class NoName(sdk.Composer):
        pass

    class Liar(sdk.Composer):
        name = "liar"

        def compose(self, request):
            return sdk.Composition((sdk.ConceptPicks("x", (sdk.Pick(999),)),))

    class Repeats(sdk.Composer):
        name = "repeats"

        def compose(self, request):
            picks = tuple(sdk.Pick(c.adapter.id) for c in request.candidates[:1]) * 2
            return sdk.Composition((sdk.ConceptPicks("x", picks),))

    class BadRefiner(sdk.Refiner):
        name = "bad"

        def refine(self, card):
            return sdk.Refinement(description="d", category="weird")

    class Unnormalised(sdk.Encoder):
        name = "raw"
        dimension = 2

        def encode(self, texts):
            import numpy as np

            return np.ones((len(texts), 2), dtype=np.float32)

    class SecretDefault(sdk.Composer):
        name = "leaky"
        env_prefix = "LEAKY"
        options = (sdk.Option("api_key", str, "sk-default", "key", secret=True),)

    for cls, check, match in [
        (NoName, testing.check_composer, "name"), (Liar, testing.check_composer, "not a candidate"),
        (Repeats, testing.check_composer, "twice"), (BadRefiner, testing.check_refiner, "CATEGORIES"),
        (Unnormalised, testing.check_encoder, "L2"), (SecretDefault, testing.check_composer, "secret"),
    ]:
        with pytest.raises(AssertionError, match=match):
            check(cls)


# -- the example plugin package ----------------------------------------------------------------


def test_example_plugin_loads_from_the_user_folder_and_runs(tmp_path):
    pm = PluginManager(builtin_dir=tmp_path / "none", user_dir=EXAMPLE, entry_points_enabled=False)
    assert pm.names("composer") == ["title-match"] and not pm.errors
    composer = testing.check_composer(pm.backend_class("composer", "title-match"))
    req = testing.sample_request("a corgi playing in the snow")
    picked = [p.adapter_id for c in composer.compose(req).concepts for p in c.picks]
    assert picked == [3]  # "Corgi" — "Snowy Landscape" is not spelled out in the prompt


def test_example_plugin_entry_point_is_declared_and_loads(tmp_path, monkeypatch):
    text = (EXAMPLE / "pyproject.toml").read_text()
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    meta = tomllib.loads(text)
    eps = meta["project"]["entry-points"]["stylus_ext"]
    # an installed distribution, as pip would leave it: metadata + entry_points.txt + the module
    site = tmp_path / "site"
    dist = site / "stylus_example_plugin-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: stylus-example-plugin\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[stylus_ext]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()))
    (site / "stylus_example_plugin.py").write_text((EXAMPLE / "stylus_example_plugin.py").read_text())
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "stylus_example_plugin", raising=False)
    pm = PluginManager(builtin_dir=tmp_path / "none", user_dir=tmp_path / "none")
    info = next(i for i in pm.infos if i.name == "title_match")
    assert info.origin == "entrypoint" and info.backends == {"composer": ["title-match"]} and not info.error


# -- stylus refine --refiner vision ------------------------------------------------------------


def _catalog_with(tmp_path: Path, n: int) -> Path:
    from stylus_ext.catalog.db import Catalog

    path = tmp_path / "cat.db"
    cat = Catalog(path)
    for i in range(n):
        cat.insert_card(sdk.AdapterCard(source="test", name=f"a{i}", title=f"Adapter {i}", description=f"thing {i}",
                                        example_prompts=(f"thing {i}\nNegative prompt: NEGATIVE{i}",)))
    cat.close()
    return path


def test_refine_cli_cost_guard_limit_and_resume(server, tmp_path, monkeypatch, capsys):
    from stylus_ext.catalog.db import Catalog
    from stylus_ext.cli import main

    monkeypatch.setenv("STYLUS_VLM_BASE_URL", server.url)
    server.chat_default = json.dumps({"category": "object", "description": "A thing.", "weight": 0.7})
    db = _catalog_with(tmp_path, 103)
    monkeypatch.setattr(sys, "stdin", open("/dev/null"))  # noqa: SIM115 - nobody to answer the prompt
    assert main(["--catalog", str(db), "refine", "--refiner", "vision"]) == 2
    assert "--limit" in capsys.readouterr().err and not server.requests  # nothing was sent
    assert main(["--catalog", str(db), "refine", "--refiner", "vision", "--limit", "5",
                 "--refiner-option", "concurrency=3"]) == 0
    assert len(server.of("chat")) == 5 and "5 refined" in capsys.readouterr().out
    server.script("chat", Reply.error(500, "no"))
    assert main(["--catalog", str(db), "refine", "--refiner", "vision", "--yes",
                 "--refiner-option", "max_retries=0"]) == 1  # one failure recorded, the rest done
    assert len(server.of("chat")) == 5 + 98
    cat = Catalog(db)
    rows = list(cat.db.execute("select count(*), sum(error is not null) from refinements where refiner='vision@1'"))
    assert rows == [(103, 1)] and cat.get_meta("refiner") == "vision@1"
    cat.close()
    assert all("NEGATIVE" not in r.raw.decode() for r in server.requests)
    # resumable: only the failed card is asked again
    assert main(["--catalog", str(db), "refine", "--refiner", "vision"]) == 0
    assert len(server.of("chat")) == 104
    assert main(["--catalog", str(db), "refine", "--refiner", "vision", "--refiner-option", "oops"]) == 1
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["--catalog", str(db), "refine", "--refiner", "vision", "--refiner-option", "api_key=sk-x"]) == 1
    assert "STYLUS_VLM_API_KEY" in capsys.readouterr().err


def test_the_tutorial_example_code_runs():
    import re
    import types

    text = (ROOT / "docs" / "plugins.md").read_text()
    block = re.search(r"The whole example.*?```python\n(.*?)```", text, re.S).group(1)
    module = types.ModuleType("tutorial_example")
    exec(compile(block, "docs/plugins.md", "exec"), module.__dict__)
    found = testing.check_plugin(module, run=True)
    assert [c.name for c in found["register_composers"]] == ["title-match"]


def test_the_kit_reports_a_misspelled_hook():
    import types

    module = types.ModuleType("typo_plugin")

    @sdk.hookimpl
    def register_composer(register):  # missing "s"
        pass

    module.register_composer = register_composer
    module.register_helper_not_a_hook = lambda: None  # not marked: not a hook, not reported
    with pytest.raises(AssertionError, match=r"unknown hook\(s\) \['register_composer'\]"):
        testing.check_plugin(module)
