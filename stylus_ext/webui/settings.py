"""The "Stylus" section of the WebUI's Settings tab, and reading it back.

Settings live in the WebUI's ``config.json`` — stored in plain text, returned by
``/sdapi/v1/options`` and pasted into bug reports — so secret backend options (API keys) are never
settings: they come from ``STYLUS_<PREFIX>_<NAME>`` or an owner-only key file (see
:func:`stylus_ext.sdk.read_secret`); the section only shows whether each key is set.
Backend options are derived from the backends' declared :class:`~stylus_ext.sdk.Option` lists.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from stylus_ext import sdk
from stylus_ext.webui.controls import BASE_MODELS, MASKS

#: Settings sections (the WebUI lists each as its own page in the Settings tab).
SECTION = ("stylus", "Stylus")
SECTIONS = {
    "catalog": ("stylus", "Stylus: your LoRAs"),
    "choice": ("stylus_choice", "Stylus: choosing adapters"),
    "prompt": ("stylus_prompt", "Stylus: what goes into the prompt"),
    "backends": ("stylus_backends", "Stylus: composers and encoders"),
}
PREFIX = "stylus_"


@dataclass(frozen=True)
class Setting:
    key: str  # without PREFIX
    default: Any
    label: str
    kind: str = "text"  # text | checkbox | dropdown | slider | number
    choices: tuple[Any, ...] = ()
    minimum: float = 0.0
    maximum: float = 1.0
    step: float = 1.0
    group: str = "backends"  # a key of SECTIONS


BASE_SETTINGS: tuple[Setting, ...] = (
    Setting("catalog_path", "", "Catalog file (leave empty: one catalog for this WebUI, kept outside the "
            "extension folder)", group="catalog"),
    Setting("lora_dirs", "", "More LoRA folders to include (separate with ';'; the WebUI's own folder is always "
            "used)", group="catalog"),
    Setting("auto_refresh", True, "Update the catalog by itself when LoRA files are added or changed", "checkbox",
            group="catalog"),
    Setting("encoder", "transformers", "Text model used to match prompts with adapters", "dropdown",
            group="backends"),
    Setting("composer", "offline", "Who picks the adapters (offline = built in, no server needed)", "dropdown",
            group="choice"),
    Setting("mask", "paper", "How images of one batch vary their adapters", "dropdown", MASKS, group="choice"),
    Setting("allow_empty_mask", False, "An image may get no adapter at all", "checkbox", group="choice"),
    Setting("max_adapters", 4, "Most adapters per prompt", "slider", minimum=0, maximum=8, step=1, group="choice"),
    Setting("strength", 0.8, "Adapter strength", "slider", minimum=0.0, maximum=2.0, step=0.05, group="prompt"),
    Setting("add_triggers", True, "Add each adapter's trigger words to the prompt", "checkbox", group="prompt"),
    Setting("add_negative", True, "Add each adapter's negative words to the negative prompt", "checkbox",
            group="prompt"),
    Setting("allow_characters", True, "Use character and celebrity adapters when the prompt names them",
            "checkbox", group="choice"),
    Setting("allow_nsfw", False, "Allow adult (NSFW) adapters", "checkbox", group="choice"),
    Setting("time_budget_s", 20.0, "Seconds to wait for the composer before the built-in one answers", "slider",
            minimum=1, maximum=120, step=1, group="choice"),
    Setting("top_k", 150, "Adapters considered per prompt (more: slower, rarely better)", "slider", minimum=10,
            maximum=500, step=10, group="choice"),
)

ALLOWED_BASE_MODELS = BASE_MODELS

#: Name patterns of numeric backend options and the slider that fits them (else a number box).
_SLIDERS: tuple[tuple[str, float, float, float], ...] = (
    ("timeout", 1, 300, 1), ("retries", 0, 10, 1), ("batch_size", 1, 256, 1), ("temperature", 0, 2, 0.05),
    ("per_concept", 0, 3, 1), ("max_", 0, 10, 1),
)


def _slider_for(name: str, typ: type, default: Any) -> tuple[float, float, float] | None:
    for part, lo, hi, step in _SLIDERS:
        if part in name and lo <= float(default) <= hi:
            return lo, hi, step
    if typ is float and 0.0 <= float(default) <= 1.0:
        return 0.0, 1.0, 0.01
    return None


def backend_settings(plugins: Any, kind: str) -> list[Setting]:
    """One setting per non-secret option of every backend of ``kind`` (``stylus_<kind>_<name>_<opt>``),
    labelled "<name> <kind>: <what it does>", a slider where the option's range is clear."""
    out: list[Setting] = []
    for name in plugins.names(kind):
        cls = plugins.backend_class(kind, name)
        for opt in getattr(cls, "options", ()):
            if opt.secret:
                continue
            key = f"{kind}_{name}_{opt.name}".replace("-", "_")
            text = (opt.help or opt.name.replace("_", " ")).rstrip(".")
            label = f"{name} {kind}: {text[:1].upper()}{text[1:]}"
            slider = _slider_for(opt.name, opt.type, opt.default) if opt.type in (int, float) and \
                opt.default is not None and not isinstance(opt.default, bool) else None
            if opt.choices:
                out.append(Setting(key, opt.default, label, "dropdown", tuple(opt.choices)))
            elif opt.type is bool:
                out.append(Setting(key, bool(opt.default), label, "checkbox"))
            elif slider is not None:
                out.append(Setting(key, opt.default, label, "slider", minimum=slider[0], maximum=slider[1],
                                   step=slider[2]))
            elif opt.type in (int, float) and opt.default is not None:
                out.append(Setting(key, opt.default, label, "number"))
            elif opt.type in (int, float):  # no default: empty means "the backend decides" (0 would not)
                out.append(Setting(key, "", f"{label} (empty: automatic)"))
            else:
                out.append(Setting(key, "" if opt.default is None else str(opt.default), label))
    return out


def secret_status(plugins: Any, environ: Mapping[str, str] | None = None) -> list[tuple[str, str, bool]]:
    """``(backend, env var, is set)`` for every secret option: values are never read out."""
    import os

    environ = os.environ if environ is None else environ
    rows = []
    for kind in ("composer", "encoder", "refiner", "source"):
        for name in plugins.names(kind):
            cls = plugins.backend_class(kind, name)
            for opt in getattr(cls, "options", ()):
                if opt.secret and cls.env_prefix:
                    var = opt.env_var(cls.env_prefix)
                    is_set = bool(environ.get(var)) or sdk.read_secret(var, environ) is not None
                    rows.append((f"{kind} {name}", var, is_set))
    return rows


def secrets_html(plugins: Any) -> str:
    rows = secret_status(plugins)
    if not rows:
        return "<p>No backend needs an API key.</p>"
    items = "".join(f"<li>{html.escape(b)}: <code>{html.escape(v)}</code> — {'set' if ok else 'not set'}</li>"
                    for b, v, ok in rows)
    return ("<p>API keys are never stored in the WebUI settings. Set them as environment variables, or "
            f"in owner-only key files in <code>{html.escape(str(sdk.secrets_dir()))}</code> "
            "(file name = variable name, chmod 600):</p><ul>" + items + "</ul>")


def all_settings(plugins: Any | None) -> list[Setting]:
    settings = list(BASE_SETTINGS)
    if plugins is not None:
        composers = tuple(plugins.names("composer")) or ("offline",)
        encoders = tuple(plugins.names("encoder")) or ("transformers",)
        settings = [replace(s, choices=composers) if s.key == "composer" else
                    replace(s, choices=encoders) if s.key == "encoder" else s for s in settings]
        settings += backend_settings(plugins, "composer") + backend_settings(plugins, "encoder")
    return settings


def register(shared: Any, plugins: Any | None, gr: Any) -> None:
    """``on_ui_settings`` body: add every setting to ``shared.opts`` under the Stylus section."""
    category = _category()
    for s in all_settings(plugins):
        component, args = _component(s, gr)
        try:
            info = shared.OptionInfo(s.default, s.label, component, args, section=SECTIONS[s.group],
                                     category_id=category)
        except TypeError:  # a WebUI older than 1.7: no categories
            info = shared.OptionInfo(s.default, s.label, component, args, section=SECTIONS[s.group])
        shared.opts.add_option(PREFIX + s.key, info)
    html_info = getattr(shared, "OptionHTML", None)
    if html_info is not None and plugins is not None:
        info = html_info(secrets_html(plugins))
        info.section = SECTIONS["backends"]  # OptionHTML takes no section; opts.reorder() needs one on every option
        info.category_id = category
        shared.opts.add_option(PREFIX + "api_keys", info)


def _category() -> str | None:
    """Register the "Stylus" category of the Settings page (A1111 1.7+, Forge): without one, every
    section is listed under "Uncategorized"."""
    try:
        from modules.options import categories

        categories.register_category("stylus", "Stylus")
    except (ImportError, AttributeError):
        return None
    return "stylus"


def _component(s: Setting, gr: Any) -> tuple[Any, Any]:
    if s.kind == "checkbox":
        return gr.Checkbox, None
    if s.kind == "dropdown":
        return gr.Dropdown, {"choices": list(s.choices)}
    if s.kind == "slider":
        return gr.Slider, {"minimum": s.minimum, "maximum": s.maximum, "step": s.step}
    if s.kind == "number":
        return gr.Number, None
    return gr.Textbox, None


def current(opts_data: Mapping[str, Any] | None, plugins: Any | None = None) -> dict[str, Any]:
    """The Stylus settings (without prefix), from ``shared.opts.data`` with defaults filled in."""
    data = opts_data or {}
    return {s.key: data.get(PREFIX + s.key, s.default) for s in all_settings(plugins)}


def backend_options(values: Mapping[str, Any], plugins: Any, kind: str, name: str) -> dict[str, Any]:
    """The non-default, non-secret option values of one backend, from the settings."""
    try:
        cls = plugins.backend_class(kind, name)
    except LookupError:
        return {}
    out = {}
    for opt in getattr(cls, "options", ()):
        key = f"{kind}_{name}_{opt.name}".replace("-", "_")
        if opt.secret or key not in values:
            continue
        value = values[key]
        if value in (None, "") or value == opt.default:
            continue
        try:
            out[opt.name] = opt.parse(value)
        except ValueError:
            continue
    return out


