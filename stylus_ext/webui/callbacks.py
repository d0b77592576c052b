"""``script_callbacks`` registrations, called from the body of ``scripts/stylus.py`` (so "Reload UI",
which clears callbacks and re-runs script files, registers them again)."""

from __future__ import annotations

from typing import Any


def on_ui_settings() -> None:
    import gradio as gr
    from modules import shared

    from stylus_ext.webui import settings
    from stylus_ext.webui.runtime import get_runtime

    try:
        plugins = get_runtime().plugins
    except Exception:  # noqa: BLE001 - the section still shows the basic settings
        plugins = None
    settings.register(shared, plugins, gr)


def on_ui_tabs() -> list[tuple[Any, str, str]]:
    from stylus_ext.webui import tab

    return tab.build()


def on_app_started(demo: Any, app: Any) -> None:
    from stylus_ext.webui import api
    from stylus_ext.webui.lora_source import get_refresher
    from stylus_ext.webui.runtime import get_runtime

    api.register(app)
    rt = get_runtime()
    refresher = get_refresher()
    rt.on_missing_index = refresher.start
    rt.refresh_error = lambda: refresher.last_error
    if rt.values().get("auto_refresh", True):
        refresher.maybe_refresh()


def on_model_loaded(sd_model: Any) -> None:
    from stylus_ext.webui.runtime import get_runtime

    get_runtime().invalidate()


def register(script_callbacks: Any) -> None:
    from stylus_ext.webui.infotext import on_infotext_pasted

    script_callbacks.on_ui_settings(on_ui_settings)
    script_callbacks.on_ui_tabs(on_ui_tabs)
    script_callbacks.on_app_started(on_app_started)
    script_callbacks.on_model_loaded(on_model_loaded)
    script_callbacks.on_infotext_pasted(on_infotext_pasted)
