"""The settings page (sections, plain labels, sliders) and the adapter table's click-to-pin/ban."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from webui_stub import WebUI, webui  # noqa: F401 - fixture

from stylus_ext.catalog.db import Catalog
from stylus_ext.webui import runtime, settings, tab

pytestmark = pytest.mark.a1111


def test_settings_are_grouped_with_plain_labels_and_sliders(webui: WebUI, plugins: Any) -> None:  # noqa: F811
    settings.register(webui.shared, plugins, webui.gradio)
    webui.shared.opts.reorder()
    labels = webui.shared.opts.data_labels
    sections = {info.section for info in labels.values()}
    assert len(sections) >= 4, "not one long list"
    assert {webui.options.categories.label_of(info) for info in labels.values()} == {"Stylus"}, \
        "under a 'Stylus' heading, not 'Uncategorized'"
    for key in ("stylus_lora_dirs", "stylus_mask", "stylus_strength", "stylus_time_budget_s"):
        assert labels[key].section != labels["stylus_encoder"].section or key == "stylus_encoder"
    for key, info in labels.items():
        if key == "stylus_api_keys":
            continue
        if key.removeprefix("stylus_") in {b.key for b in settings.BASE_SETTINGS}:
            assert not re.search(r"[A-Za-z]_[A-Za-z]", info.label), f"an identifier in {info.label!r}"
        assert not re.search(r"(Composer|Encoder) '", info.label), f"developer wording in {info.label!r}"
    margin = labels["stylus_composer_offline_margin"]
    assert margin.component is webui.gradio.Slider and margin.component_args["maximum"] == 1.0
    retries = [k for k in labels if k.endswith("_max_retries")]
    assert retries and all(labels[k].component is webui.gradio.Slider for k in retries)


@pytest.fixture
def catalog(sample_catalog: Path) -> Catalog:
    c = Catalog(sample_catalog)
    yield c
    c.close()


def test_a_click_on_the_pinned_or_banned_cell_switches_it(catalog: Catalog) -> None:
    rows = tab.adapter_rows(catalog)
    row = next(i for i, r in enumerate(rows) if r[1] == "FluffyCat")
    aid = rows[row][0]
    pinned_col, banned_col = tab.TABLE_HEADERS.index("pinned"), tab.TABLE_HEADERS.index("banned")
    msg, got, pinned, banned, _ = tab.click_cell(catalog, tab.table_value(rows), row, pinned_col)
    assert got == aid and pinned and not banned and catalog.get(aid).pinned, msg
    tab.click_cell(catalog, rows, row, banned_col)
    assert catalog.get(aid).banned and catalog.get(aid).pinned
    tab.click_cell(catalog, rows, row, pinned_col)
    assert not catalog.get(aid).pinned
    msg, got, *_ = tab.click_cell(catalog, rows, row, tab.TABLE_HEADERS.index("name"))
    assert got == aid and "Selected FluffyCat" in msg and catalog.get(aid).banned, "a name click only selects"
    assert tab.click_cell(catalog, rows, 10_000, 0)[1] is None


def test_the_table_is_wired_to_clicks(webui: WebUI, sample_catalog: Path, plugins: Any,  # noqa: F811
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    gr = sys.modules["gradio"]
    made: list[Any] = []
    base = gr.Dataframe

    def record(*args: Any, **kwargs: Any) -> Any:
        made.append(base(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(gr, "Dataframe", record)
    webui.shared.opts.data.update({"stylus_catalog_path": str(sample_catalog), "stylus_auto_refresh": False})
    runtime.set_runtime(runtime.Runtime(plugins=lambda: plugins))
    tab.build()
    [table] = made
    [(_, event)] = [e for e in table.events if e[0] == "select"]
    assert event["fn"].__annotations__["evt"] is gr.SelectData, "gradio injects the clicked cell"
    rows = tab.adapter_rows(runtime.get_runtime().catalog())
    row = next(i for i, r in enumerate(rows) if r[1] == "FluffyCat")
    out = event["fn"](rows, "", gr.SelectData(index=(row, tab.TABLE_HEADERS.index("banned"))))
    assert runtime.get_runtime().catalog().get(rows[row][0]).banned, out[0]
