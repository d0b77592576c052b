"""The WebUI Script classes: the "Stylus" dropdown entry, its hidden always-on companion, and the
"Stylus (always on)" accordion (off by default; combines with X/Y/Z plot and Prompts from file).

The dropdown script's ``run()`` stores the options on ``p`` and returns ``process_images(p)``;
the companion (``show`` → AlwaysVisible, ``ui`` → None, no group) plans in ``process()`` —
after prompt generators — and applies the plan in ``before_process_batch``.
"""

from __future__ import annotations

from typing import Any

from modules import processing, scripts

from stylus_ext.webui import controls, generation
from stylus_ext.webui.runtime import get_runtime

TITLE = "Stylus"
ALWAYS_ON_TITLE = "Stylus (always on)"


def _poke_refresh() -> None:
    """Start a background catalog refresh when the LoRA folders changed (cheap; never blocks)."""
    try:
        from stylus_ext.webui.lora_source import get_refresher

        get_refresher().maybe_refresh()
    except Exception:  # noqa: BLE001
        pass


def _grab_prompt(script: Any) -> None:
    """Remember the tab's prompt box (for the Preview button)."""
    if getattr(script, "_stylus_hooked", False):
        return
    script._stylus_hooked = True

    def grab(component: Any) -> None:
        script.stylus_prompt_component = component.component

    for elem_id in ("txt2img_prompt", "img2img_prompt"):
        script.on_after_component(grab, elem_id=elem_id)


class StylusScript(scripts.Script):
    """Script dropdown entry "Stylus" (API ``script_name: "stylus"``)."""

    def title(self) -> str:
        return TITLE

    def show(self, is_img2img: bool) -> bool:
        _grab_prompt(self)
        return True

    def ui(self, is_img2img: bool) -> list[Any]:
        from stylus_ext.webui import infotext, ui

        components = ui.build(self, is_img2img, always_on=False)
        self.infotext_fields = infotext.fields(components, always_on=False)
        self.paste_field_names = [name for _, name in self.infotext_fields if isinstance(name, str)]
        return components

    def run(self, p: Any, *args: Any) -> Any:
        try:
            rt = get_runtime()
            options = controls.read(args, rt.default_options(), composers=rt.composer_names())
            setattr(p, generation.REQUEST_ATTR, options)
            p.extra_generation_params["Script"] = TITLE
        except Exception as exc:  # noqa: BLE001 - never break the generation
            generation.comment(p, f"Stylus: could not read its settings ({exc}); generating as is")
        return processing.process_images(p)


class StylusCompanion(scripts.Script):
    """Hidden always-on half of the dropdown script: does the work inside ``process_images``."""

    create_group = False

    def title(self) -> str:
        return "Stylus companion"

    def show(self, is_img2img: bool) -> Any:
        return scripts.AlwaysVisible

    def ui(self, is_img2img: bool) -> None:
        return None

    def process(self, p: Any, *args: Any) -> None:
        options = getattr(p, generation.REQUEST_ATTR, None)
        if isinstance(options, controls.RunOptions) and getattr(p, generation.STATE_ATTR, None) is None:
            _poke_refresh()
            try:
                generation.prepare(p, options, get_runtime())
            except Exception as exc:  # noqa: BLE001 - never break the generation
                generation.comment(p, f"Stylus error ({type(exc).__name__}: {exc}); generated from your prompt")

    def before_process_batch(self, p: Any, *args: Any, **kwargs: Any) -> None:
        try:
            generation.apply_batch(p, kwargs.get("batch_number", getattr(p, "iteration", 0)),
                                   kwargs.get("prompts", p.prompts), get_runtime())
        except Exception as exc:  # noqa: BLE001
            generation.comment(p, f"Stylus error in batch ({type(exc).__name__}: {exc}); batch generated as is")


class StylusAlwaysOnScript(scripts.Script):
    """"Stylus (always on)": an accordion, off by default, usable with X/Y/Z and Prompts from file."""

    def title(self) -> str:
        return ALWAYS_ON_TITLE

    def show(self, is_img2img: bool) -> Any:
        _grab_prompt(self)
        return scripts.AlwaysVisible

    def ui(self, is_img2img: bool) -> list[Any]:
        from stylus_ext.webui import infotext, ui

        components = ui.build(self, is_img2img, always_on=True)
        self.infotext_fields = infotext.fields(components, always_on=True)
        self.paste_field_names = [name for _, name in self.infotext_fields if isinstance(name, str)]
        return components

    def process(self, p: Any, *args: Any) -> None:
        if getattr(p, generation.REQUEST_ATTR, None) is not None:
            return  # the dropdown script is running this generation
        try:
            rt = get_runtime()
            options = controls.read(args, rt.default_options(), composers=rt.composer_names(), with_enabled=True)
        except Exception as exc:  # noqa: BLE001
            generation.comment(p, f"Stylus: could not read its settings ({exc}); generating as is")
            return
        if options.enabled:
            setattr(p, generation.REQUEST_ATTR, options)
            _poke_refresh()
            try:
                generation.prepare(p, options, rt)
            except Exception as exc:  # noqa: BLE001 - never break the generation
                generation.comment(p, f"Stylus error ({type(exc).__name__}: {exc}); generated from your prompt")
