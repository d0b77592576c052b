"""Gradio controls of the Script (works on gradio 3.41 and 4.x: no ``.style()``, no ``gr.Box``).

``build()`` returns the components whose values become the script's ``*args``, in
:data:`~stylus_ext.webui.controls.CONTROLS` order (prefixed by the "enabled" checkbox for the
always-on variant). It has no side effects: the WebUI calls ``ui()`` several times.
"""

from __future__ import annotations

import html
from typing import Any

from stylus_ext.webui import controls


def build(script: Any, is_img2img: bool, *, always_on: bool) -> list[Any]:
    import gradio as gr

    from stylus_ext.webui.runtime import get_runtime

    rt = get_runtime()
    try:
        defaults = rt.default_options()
        composers = rt.composer_names()
    except Exception:  # noqa: BLE001 - the UI must build even when settings/plugins are broken
        defaults, composers = controls.RunOptions(), []
    out: list[Any] = []
    if always_on:
        try:
            from modules.ui_components import InputAccordion

            accordion = InputAccordion(False, label="Stylus (automatic LoRAs)", elem_id=script.elem_id("enabled"))
            out.append(accordion)
            ctx: Any = accordion
        except ImportError:
            ctx = gr.Accordion("Stylus (automatic LoRAs)", open=False)
            with ctx:
                out.append(gr.Checkbox(label="Enable Stylus", value=False, elem_id=script.elem_id("enabled")))
    else:
        ctx = gr.Group()
    with ctx:
        values = controls.as_dict(defaults)
        with gr.Row():
            for c in controls.CONTROLS[:3]:
                out.append(_component(gr, script, c, values[c.name], composers))
        with gr.Row():
            for c in controls.CONTROLS[3:]:
                out.append(_component(gr, script, c, values[c.name], composers))
        with gr.Row():
            preview = gr.Button("Preview (no generation)", elem_id=script.elem_id("preview"))
        info = gr.HTML(elem_id=script.elem_id("preview_html"))
    prompt = getattr(script, "stylus_prompt_component", None)
    if prompt is not None:
        args = out[1:] if always_on else out
        preview.click(fn=lambda text, *vals: preview_html(text, list(vals)), inputs=[prompt, *args],
                      outputs=[info], show_progress="hidden")
    return out


def _component(gr: Any, script: Any, c: controls.Control, value: Any, composers: list[str]) -> Any:
    elem_id = script.elem_id(c.name)
    if c.kind == "checkbox":
        return gr.Checkbox(label=c.label, value=bool(value), elem_id=elem_id)
    if c.kind == "number":
        return gr.Number(label=c.label, value=value, precision=0, elem_id=elem_id)
    if c.kind == "slider":
        return gr.Slider(label=c.label, minimum=c.minimum, maximum=c.maximum, step=c.step, value=value,
                         elem_id=elem_id)
    choices = ["default", *composers] if c.name == "composer" else list(c.choices)
    return gr.Dropdown(label=c.label, choices=choices, value=value or choices[0], elem_id=elem_id)


def preview_html(prompt: str, values: list[Any]) -> str:
    """Concepts, chosen adapters and reasons for ``prompt`` with the given control values."""
    from stylus_ext.webui.runtime import get_runtime
    from stylus_ext.webui.tab import playground

    rt = get_runtime()
    options = controls.read(values, rt.default_options(), composers=rt.composer_names())
    try:
        return playground(prompt, options, rt)
    except Exception as exc:  # noqa: BLE001 - a preview error is shown, never raised
        return f"<p>Stylus preview failed: {html.escape(str(exc))}</p>"
