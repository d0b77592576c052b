"""The WebUI glue's parts: argument reading, tags, infotext, settings, API routes, LoRA source, tab."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from webui_stub import WebUI, webui  # noqa: F401

from stylus_ext.webui import api, controls, infotext, lora_source, runtime, settings, tab, tags
from stylus_ext.webui.controls import CONTROLS, RunOptions

pytestmark = pytest.mark.a1111


# -- controls -------------------------------------------------------------------------------


def test_read_positional_short_shifted_and_named() -> None:
    base = RunOptions()
    full = controls.read(["all", 2, 0.5, False, "openai", "SDXL", 1234], base, composers=["offline", "openai"])
    assert (full.mask, full.max_adapters, full.strength, full.add_triggers, full.composer, full.base_model,
            full.mask_seed) == ("all", 2, 0.5, False, "openai", "SDXL", 1234)
    assert controls.read([None] * 6 + [True], base).mask_seed == -1, "an old client's allow_downloads: ignored"
    assert controls.read([], base) == base
    assert controls.read(["subsets"], base).mask == "subsets"
    # values that belong to another script (the API splice shifts them in): implausible → defaults
    shifted = controls.read([True, "DPM++ 2M", 512, -3.0, None, 7], base, composers=["offline"])
    assert shifted == base
    named = controls.read([{"mask": "none", "max_adapters": "3", "strength": 9, "bogus": 1}], base)
    assert (named.mask, named.max_adapters, named.strength) == ("none", 3, base.strength)
    on = controls.read([True, "all"], base, with_enabled=True)
    assert on.enabled and on.mask == "all" and on.variant == "always-on"
    assert not controls.read([], base, with_enabled=True).enabled, "always-on is off unless switched on"


def test_defaults_follow_settings() -> None:
    d = controls.defaults({"mask": "subsets", "max_adapters": 2, "strength": 1.2, "add_triggers": False})
    assert (d.mask, d.max_adapters, d.strength, d.add_triggers) == ("subsets", 2, 1.2, False)
    assert controls.defaults({"mask": "weird", "max_adapters": 99}) == RunOptions()


# -- tags and infotext ----------------------------------------------------------------------


def test_tags() -> None:
    p = "a cat, <lora:FluffyCat:0.6> <lyco:x:1:0.5> <hypernet:h:1>"
    assert tags.lora_tags(p) == (("FluffyCat", "0.6"), ("x", "1:0.5"))
    assert tags.strip_loras(p, ["FluffyCat", "x"]) == "a cat, <hypernet:h:1>"
    assert tags.add_missing("a cat", ["<lora:a:1>", "<lora:a:2>"]) == "a cat <lora:a:1>"
    assert tags.add_missing("a <lora:a:0.3>", ["<lora:a:1>"]) == "a <lora:a:0.3>"


def test_infotext_settings_round_trip_and_garbage() -> None:
    text = "mask=subsets;max=2;strength=0.45;triggers=0;composer=openai;base=SD1"
    assert infotext.parse_settings(text) == {"mask": "subsets", "max_adapters": 2, "strength": 0.45,
                                             "add_triggers": False, "composer": "openai", "base_model": "SD1"}
    assert infotext.parse_settings("mask=<script>;max=-1;;=;strength=abc") == {}
    assert infotext.parse_settings(None) == {}
    assert infotext.parse_record("none") == []
    assert infotext.parse_record("a → b:0.5; weird; c → d") == [("a", "b", 0.5), ("c", "d", None)]


def test_paste_callback_strips_only_stylus_tags() -> None:
    params = {"Stylus": "castle → medieval_castle:0.64", "Prompt": "a castle <lora:mine:1> <lora:medieval_castle:0.64>",
              "Hires prompt": "x <lora:medieval_castle:0.3>"}
    infotext.on_infotext_pasted("", params)  # an older record (no "Stylus added"): only Stylus's tags go
    assert params["Prompt"] == "a castle <lora:mine:1>" and params["Hires prompt"] == "x"
    untouched = {"Prompt": "a <lora:medieval_castle:1>"}
    infotext.on_infotext_pasted("", untouched)
    assert untouched["Prompt"] == "a <lora:medieval_castle:1>"
    exact = {"Stylus": "castle → medieval_castle:0.64", "Prompt": "an origami castle, origami, castle <lora:c:0.6>",
             "Stylus added": ", castle <lora:c:0.6>", "Negative prompt": "blurry, lowres",
             "Stylus added negative": ", lowres"}
    infotext.on_infotext_pasted("", exact)
    assert exact["Prompt"] == "an origami castle, origami" and exact["Negative prompt"] == "blurry"


# -- settings -------------------------------------------------------------------------------


def test_settings_section_has_no_secrets(webui: WebUI, plugins: Any, tmp_path: Path,  # noqa: F811
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    settings.register(webui.shared, plugins, webui.gradio)
    webui.shared.opts.reorder()
    labels = webui.shared.opts.data_labels
    keys = set(labels)
    assert {"stylus_catalog_path", "stylus_lora_dirs", "stylus_encoder", "stylus_composer", "stylus_mask",
            "stylus_strength", "stylus_allow_nsfw", "stylus_allow_characters", "stylus_time_budget_s"} <= keys
    assert all(info.section in settings.SECTIONS.values() for info in labels.values())
    for kind in ("composer", "encoder"):
        for name in plugins.names(kind):
            for opt in plugins.backend_class(kind, name).options:
                key = f"stylus_{kind}_{name}_{opt.name}".replace("-", "_")
                assert (key in keys) != opt.secret, key
    composers = labels["stylus_composer"].component_args["choices"]
    assert "offline" in composers
    # secret status: shown, never the value
    rows = settings.secret_status(plugins, environ={})
    assert rows, "the HTTP backends declare API keys"
    if rows:
        _backend, var, is_set = rows[0]
        assert not is_set
        keydir = tmp_path / "keys"
        keydir.mkdir()
        (keydir / var).write_text("sk-very-secret")
        os.chmod(keydir / var, stat.S_IRUSR | stat.S_IWUSR)
        env = {"STYLUS_SECRETS_DIR": str(keydir)}
        assert dict(((v, s) for _, v, s in settings.secret_status(plugins, environ=env)))[var]
        monkeypatch.setenv(var, "sk-very-secret")
        assert "sk-very-secret" not in settings.secrets_html(plugins)
        assert "sk-very-secret" not in json.dumps(webui.shared.opts.data, default=str)


def test_backend_options_from_settings(plugins: Any) -> None:
    values = settings.current({"stylus_composer": "offline"}, plugins)
    assert values["composer"] == "offline" and values["mask"] == "paper"
    name = next((n for n in plugins.names("composer") if any(not o.secret and o.type is float
                                                            for o in plugins.backend_class("composer", n).options)),
                None)
    if name:
        opt = next(o for o in plugins.backend_class("composer", name).options if not o.secret and o.type is float)
        key = f"composer_{name}_{opt.name}".replace("-", "_")
        assert settings.backend_options({key: "0.123"}, plugins, "composer", name) == {opt.name: 0.123}
        assert settings.backend_options({key: "not a number"}, plugins, "composer", name) == {}


# -- runtime, API and tab on the real sample catalog ----------------------------------------


@pytest.fixture
def rt(sample_catalog: Path, plugins: Any) -> runtime.Runtime:
    data = {"stylus_catalog_path": str(sample_catalog), "stylus_auto_refresh": False,
            "stylus_composer_offline_keep": "0"}  # keep every pick: glue tests, not the composer's calibration
    r = runtime.Runtime(opts=lambda: data, plugins=lambda: plugins)
    r.data = data  # type: ignore[attr-defined]
    yield r
    r.close()


def test_api_compose_and_errors(rt: runtime.Runtime) -> None:
    out = api.compose({"prompt": "a castle on a hill, studio ghibli style, watercolor", "seeds": [1, 2, 3],
                       "mask": "all", "base_model": "SD1"}, rt)
    names = {a["name"] for c in out["concepts"] for a in c["adapters"]}
    assert {"medieval_castle", "GhibliBG"} <= names
    assert [im["seed"] for im in out["images"]] == [1, 2, 3]
    assert all("<lora:medieval_castle:" in im["prompt"] for im in out["images"])
    assert out["options"]["mask"] == "all"
    json.dumps(out)  # plain JSON
    for bad in (None, [], {"prompt": ""}, {"prompt": "x", "n": 0}, {"prompt": "x", "seeds": ["a"]},
                {"prompt": "x", "seed": True}, {"prompt": "x", "negative_prompt": 3}):
        with pytest.raises(api.BadRequest):
            api.compose(bad, rt)


def test_api_catalog_and_routes(rt: runtime.Runtime) -> None:
    out = api.catalog(rt, q="castle", limit=5)
    assert out["exists"] and out["indexed"] > 0 and out["adapters"] >= out["installed"] > 0
    assert out["items"] and all("castle" in json.dumps(i).lower() for i in out["items"])

    class App:
        def __init__(self) -> None:
            self.routes: dict[tuple[str, str], Any] = {}

        def add_api_route(self, path: str, fn: Any, methods: list[str]) -> None:
            for m in methods:
                self.routes[(m, path)] = fn

    import sys
    import types

    class JSONResponse:
        def __init__(self, status_code: int, content: Any) -> None:
            self.status_code, self.content = status_code, content

    fastapi = types.ModuleType("fastapi")
    fastapi.Body = lambda default=None, **kw: default  # type: ignore[attr-defined]
    responses = types.ModuleType("fastapi.responses")
    responses.JSONResponse = JSONResponse  # type: ignore[attr-defined]
    saved = {k: sys.modules.get(k) for k in ("fastapi", "fastapi.responses")}
    sys.modules.update({"fastapi": fastapi, "fastapi.responses": responses})
    try:
        app = App()
        api.register(app, lambda: rt)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    assert set(app.routes) == {("POST", "/stylus/v1/compose"), ("GET", "/stylus/v1/catalog")}
    bad = app.routes[("POST", "/stylus/v1/compose")]({"prompt": 3})
    assert bad.status_code == 400 and "prompt" in bad.content["error"]
    good = app.routes[("POST", "/stylus/v1/compose")]({"prompt": "a cat", "n": 2, "seed": 1})
    assert len(good["images"]) == 2
    assert app.routes[("GET", "/stylus/v1/catalog")](q="", limit=3)["items"]


def test_api_without_index_returns_prompt_and_reason(tmp_path: Path, plugins: Any) -> None:
    r = runtime.Runtime(opts=lambda: {"stylus_catalog_path": str(tmp_path / "x.db")}, plugins=lambda: plugins)
    out = api.compose({"prompt": "a cat", "n": 2, "seed": 5}, r)
    assert [i["prompt"] for i in out["images"]] == ["a cat", "a cat"] and "no catalog yet" in out["warnings"][0]


def test_runtime_reports_broken_catalog(tmp_path: Path, plugins: Any) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite at all" * 100)
    r = runtime.Runtime(opts=lambda: {"stylus_catalog_path": str(bad)}, plugins=lambda: plugins)
    started: list[str] = []
    r.on_missing_index = started.append
    result = r.plan_images(["a cat"], [""], [1], RunOptions())
    assert result.plans == [None] and "catalog unusable" in result.warnings[0]
    # a background refresh cannot repair an unreadable file: no false promise, no futile retry per image
    assert "background" not in result.warnings[0] and "move or delete" in result.warnings[0]
    assert started == [] and bad.read_bytes().startswith(b"this is not sqlite"), "nothing lost"


def test_tab_functions(rt: runtime.Runtime) -> None:
    text = tab.status_markdown(rt)
    assert "By base model" in text and "SD1" in text
    rows = tab.adapter_rows(rt.catalog(), "fluffy")
    assert rows and rows[0][1] == "FluffyCat"
    aid = rows[0][0]
    assert "banned=True" in tab.set_controls(rt.catalog(), aid, False, True, "0.5")
    assert tab.adapter_rows(rt.catalog(), "fluffy")[0][6] is True
    assert "number" in tab.set_controls(rt.catalog(), aid, False, True, "lots")
    assert "No adapter" in tab.set_controls(rt.catalog(), 99999, False, False, "")
    rt.invalidate()
    html = tab.playground("a cat", RunOptions(base_model="SD1"), rt)
    assert "FluffyCat" not in html.split("Concepts and selections")[1].split("Top candidates")[0], \
        "a banned adapter is never selected"
    html = tab.playground("a castle on a hill, studio ghibli style", RunOptions(base_model="SD1"), rt)
    assert "medieval_castle" in html and "seed 1" in html


# -- LoRA source ----------------------------------------------------------------------------


def test_reconcile_uses_names_the_webui_resolves(webui: WebUI, sample_catalog: Path) -> None:  # noqa: F811
    from stylus_ext.catalog.db import Catalog

    catalog = Catalog(sample_catalog)
    ghibli = next(a for a in catalog.adapters() if a.name == "GhibliBG")
    castle = next(a for a in catalog.adapters() if a.name == "medieval_castle")
    webui.add_lora(Path(ghibli.card.path).stem, ghibli.card.path, alias="GhibliBG")
    webui.add_lora("other_file", "/elsewhere/other_file.safetensors", alias="GhibliBG")  # duplicate alias
    webui.add_lora(Path(castle.card.path).stem, castle.card.path, hash="ab" * 32)
    assert lora_source.reconcile(catalog, webui.networks) == 2
    assert catalog.get(ghibli.id).name == Path(ghibli.card.path).stem, "forbidden alias → file stem"
    assert catalog.get(castle.id).card.autov3 == "ab" * 32
    catalog.close()


def test_refresher_scans_in_background(webui: WebUI, sample_folder: Path, tmp_path: Path,  # noqa: F811
                                       plugins: Any, encoder: Any) -> None:
    folder = tmp_path / "Lora"
    shutil.copytree(sample_folder, folder)
    webui.shared.cmd_opts.lora_dir = str(folder)
    data = {"stylus_catalog_path": str(tmp_path / "cat.db")}

    class Shared:
        def __getattr__(self, name: str) -> Any:
            return getattr(plugins, name)

        def create(self, kind: str, name: str, **kw: Any) -> Any:
            return encoder if kind == "encoder" and not kw else plugins.create(kind, name, **kw)

    r = runtime.Runtime(opts=lambda: data, plugins=Shared)
    refresher = lora_source.Refresher(r)
    assert refresher.start("test") and not refresher.start("again"), "one refresh at a time"
    refresher.join(120)
    assert refresher.status.startswith("done"), refresher.status
    state = r.state()
    assert state.ready and state.installed > 20
    assert not refresher.maybe_refresh(), "nothing changed"
    refresher._last_check = 0.0
    next(folder.rglob("fluffy_cat.safetensors")).unlink()
    assert refresher.maybe_refresh(), "a removed LoRA triggers a refresh"
    refresher.join(120)
    assert r.state().installed == state.installed - 1


def test_checkpoint_family_never_loads_a_model(webui: WebUI) -> None:  # noqa: F811
    from stylus_ext.webui import compat

    assert compat.checkpoint_family() is None
    webui.set_family("SDXL")
    assert compat.checkpoint_family() == "SDXL"
    assert not hasattr(webui.shared, "sd_model_loads")


def test_ui_builds_without_side_effects(webui: WebUI, sample_catalog: Path, plugins: Any) -> None:  # noqa: F811
    runtime.set_runtime(runtime.Runtime(opts=lambda: {"stylus_catalog_path": str(sample_catalog),
                                                      "stylus_mask": "subsets"}, plugins=lambda: plugins))
    first = webui.runner()
    second = webui.runner(is_img2img=True)
    d1 = first.script("Stylus").api_info["args"]
    d2 = second.script("Stylus").api_info["args"]
    assert d1 == d2 and d1[0]["value"] == "subsets", "defaults come from the settings"
    assert len(d1) == len(CONTROLS)
    assert not Path(sample_catalog).with_name("index").exists()


def test_encoder_settings_reach_the_encoder_without_touching_the_environment(plugins: Any,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STYLUS_ENCODER_BATCH_SIZE", raising=False)
    monkeypatch.setattr(runtime, "_USER_ENV", frozenset())
    before = dict(os.environ)
    r = runtime.Runtime(opts=lambda: {"stylus_encoder_transformers_batch_size": 8}, plugins=lambda: plugins)
    assert r.encoder_options() == ("transformers", {"batch_size": 8})
    assert r.encoder().config["batch_size"] == 8
    assert dict(os.environ) == before, "a threaded server must not share settings through os.environ"
    assert plugins.create("encoder", "transformers").config["batch_size"] != 8
    # a variable the user set before starting the WebUI wins over the setting
    monkeypatch.setattr(runtime, "_USER_ENV", frozenset({"STYLUS_ENCODER_BATCH_SIZE"}))
    assert runtime.Runtime(opts=lambda: {"stylus_encoder_transformers_batch_size": 8},
                           plugins=lambda: plugins).encoder_options() == ("transformers", {})


def test_callbacks_build_tab_settings_and_routes(webui: WebUI, sample_catalog: Path, plugins: Any,  # noqa: F811
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    from stylus_ext.webui import callbacks

    data = {"stylus_catalog_path": str(sample_catalog), "stylus_auto_refresh": False}
    webui.shared.opts.data.update(data)
    runtime.set_runtime(runtime.Runtime(plugins=lambda: plugins))
    callbacks.on_ui_settings()
    webui.shared.opts.reorder()
    assert "stylus_mask" in webui.shared.opts.data_labels
    [(_blocks, title, elem_id)] = callbacks.on_ui_tabs()
    assert (title, elem_id) == ("Stylus", "stylus")
    fastapi = types.ModuleType("fastapi")
    fastapi.Body = lambda default=None, **kw: default  # type: ignore[attr-defined]
    responses = types.ModuleType("fastapi.responses")
    responses.JSONResponse = dict  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fastapi", fastapi)
    monkeypatch.setitem(sys.modules, "fastapi.responses", responses)
    routes: list[str] = []
    app = types.SimpleNamespace(add_api_route=lambda path, fn, methods: routes.append(f"{methods[0]} {path}"))
    callbacks.on_app_started(None, app)
    assert routes == ["POST /stylus/v1/compose", "GET /stylus/v1/catalog"]
    assert runtime.get_runtime().on_missing_index is not None


def test_tab_table_keeps_headers_and_loads_fresh(webui: WebUI, sample_catalog: Path, plugins: Any,  # noqa: F811
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The adapter table shows its column names (also for an empty result) and, like the status, is
    filled when the page loads — not frozen at UI build time, which comes before the first refresh."""
    import sys

    gr = sys.modules["gradio"]
    made: dict[str, list[Any]] = {}
    for name in ("Dataframe", "Markdown", "Textbox"):
        base = getattr(gr, name)

        def record(*args: Any, _base: Any = base, _name: str = name, **kwargs: Any) -> Any:
            component = _base(*args, **kwargs)
            made.setdefault(_name, []).append(component)
            return component

        monkeypatch.setattr(gr, name, record)
    webui.shared.opts.data.update({"stylus_catalog_path": str(sample_catalog), "stylus_auto_refresh": False})
    runtime.set_runtime(runtime.Runtime(plugins=lambda: plugins))
    tab.build()
    [table] = made["Dataframe"]
    value = table.value() if callable(table.value) else table.value
    assert isinstance(value, dict) and value["headers"] == tab.TABLE_HEADERS, value
    assert "FluffyCat" in [row[1] for row in value["data"]], "the table is filled on load"
    search = next(t for t in made["Textbox"] if t.label == "Search")
    [(_, event)] = [e for e in search.events if e[0] == "click"]
    empty = event["fn"]("no adapter is called like this")
    assert empty["headers"] == tab.TABLE_HEADERS, "an empty result keeps the column names"
    status = made["Markdown"][0]
    assert callable(status.value) and "By base model" in status.value()


def test_tab_refresh_streams_progress_then_the_final_status(rt: runtime.Runtime) -> None:
    class SlowRefresher:
        polls = 0
        status = "idle"

        def start(self, reason: str, *, force: bool = False) -> bool:
            self.status = "scanning 1 folder(s)"
            return True

        @property
        def running(self) -> bool:
            self.polls += 1
            if self.polls == 3:
                self.status = "indexing"
            if self.polls > 4:
                self.status = "done: 3 added"
            return self.polls <= 4

    steps = list(tab.refresh_progress(rt, SlowRefresher(), interval=0.0))
    assert len(steps) == 5
    assert all(s.startswith("⏳ **Refreshing**") for s in steps[:4])
    assert "scanning" in steps[0] and "indexing" in steps[2]
    assert "done: 3 added" in steps[-1] and not steps[-1].startswith("⏳")
