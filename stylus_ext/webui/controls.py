"""The Script's controls, in the order ``ui()`` returns them (= the API's ``script_args``), and
a tolerant reader for the values the WebUI passes to ``run()``/``process()``.

API callers often send ``script_args: []`` or a short list; the WebUI then hands the script fewer
values (or, because it splices the list in, values that belong to the next script). Every value is
therefore checked against its control's type and choices; anything missing or implausible takes
the default. A single JSON object (``script_args: [{"mask": "all", "max_adapters": 2}]``) is
accepted too, by control name.

API ``script_args`` for ``script_name: "stylus"`` (all optional, in this order):

=====  ================  ======================================================  ==========
pos    name              values                                                  default
=====  ================  ======================================================  ==========
0      mask              "paper" | "subsets" | "all" | "none"                    setting
1      max_adapters      0–8                                                     setting (4)
2      strength          0.0–2.0                                                 setting (0.8)
3      add_triggers      true | false                                            setting
4      composer          "" / "default" or a composer name                       setting
5      base_model        "auto" (loaded checkpoint) | "any" | SD1, SDXL, ...     "auto"
6      mask_seed         -1 (each batch draws its set) or the seed to draw from  -1
=====  ================  ======================================================  ==========

Only adapters installed in this WebUI's LoRA folders are ever tagged (downloads are the CLI's
``stylus download``). An unknown composer name is kept in ``extra["unknown_composer"]`` so the
runtime can say so, instead of being silently replaced.

``alwayson_scripts: {"stylus (always on)": {"args": [true, ...same order...]}}`` — the first value
switches it on (off by default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from stylus_ext.sdk import basemodels

MASKS = ("paper", "subsets", "all", "none")
#: "auto" (the checkpoint's family), "any" (no filter), then every family of Civitai's table.
BASE_MODELS = ("auto", "any", *basemodels.known_families(include_generic=False))


@dataclass(frozen=True)
class Control:
    name: str
    label: str
    kind: str  # "dropdown" | "slider" | "checkbox"
    choices: tuple[Any, ...] = ()
    minimum: float = 0.0
    maximum: float = 1.0
    step: float = 1.0
    info: str = ""


CONTROLS: tuple[Control, ...] = (
    Control("mask", "Per-image adapter sets (masking)", "dropdown", MASKS,
            info="paper: per concept one adapter, all or none — each image draws its own set; "
                 "subsets: every subset; all: every image gets all chosen adapters; none: no adapters"),
    Control("max_adapters", "Max adapters per prompt", "slider", minimum=0, maximum=8, step=1),
    Control("strength", "Strength", "slider", minimum=0.0, maximum=2.0, step=0.05),
    Control("add_triggers", "Add trigger words / activation text", "checkbox"),
    Control("composer", "Composer", "dropdown", info="Default: the one chosen in Settings → Stylus"),
    Control("base_model", "Base model filter", "dropdown", BASE_MODELS,
            info="auto: the loaded checkpoint's family"),
    Control("mask_seed", "Adapter-set seed (-1: from each batch's first image)", "number", minimum=-1,
            maximum=2**32 - 1, info="set by pasting an image's parameters back, so it regenerates alone "
                                    "with the adapters it had"),
)


@dataclass(frozen=True)
class RunOptions:
    """What one generation asks of Stylus (controls; unset values come from the settings)."""

    enabled: bool = True
    mask: str = "paper"
    max_adapters: int = 4
    strength: float = 0.8
    add_triggers: bool = True
    composer: str = ""  # "" = the settings' default composer
    base_model: str = "auto"
    mask_seed: int = -1
    variant: str = "dropdown"
    extra: dict[str, Any] = field(default_factory=dict)


def defaults(settings: Mapping[str, Any] | None = None) -> RunOptions:
    """Control defaults, taken from the Stylus settings when given."""
    s = settings or {}
    base = RunOptions()
    return replace(
        base,
        mask=s.get("mask", base.mask) if s.get("mask") in MASKS else base.mask,
        max_adapters=_int(s.get("max_adapters"), base.max_adapters, CONTROLS[1]),
        strength=_float(s.get("strength"), base.strength, CONTROLS[2]),
        add_triggers=s.get("add_triggers", base.add_triggers) if isinstance(s.get("add_triggers"), bool)
        else base.add_triggers,
        composer="",
    )


def _number(value: Any, control: Control) -> float | None:
    """``value`` as a number within the control's range, else None (bools and junk are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if control.minimum <= number <= control.maximum else None


def _int(value: Any, default: int, control: Control) -> int:
    number = _number(value, control)
    return int(number) if number is not None and number == int(number) else default


def _float(value: Any, default: float, control: Control) -> float:
    number = _number(value, control)
    return default if number is None else number


def _bool(value: Any, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return default


def _choice(value: Any, default: str, choices: Sequence[str]) -> str:
    if not isinstance(value, str):
        return default
    if not choices:
        return value.strip()
    for choice in choices:
        if value.strip().lower() == choice.lower():
            return choice
    return default


def read(args: Sequence[Any], base: RunOptions, *, composers: Sequence[str] = (),
         with_enabled: bool = False) -> RunOptions:
    """Options from the values the WebUI passes (positional, possibly short or shifted)."""
    args = list(args or ())
    if with_enabled:
        enabled = _bool(args[0], False) if args else False
        args = args[1:]
        base = replace(base, enabled=enabled, variant="always-on")
    if args and isinstance(args[0], Mapping):
        named = dict(args[0])
        if with_enabled is False and "enabled" in named:
            named.pop("enabled")
        values = [named.get(c.name) for c in CONTROLS]
        if with_enabled and "enabled" in named:
            base = replace(base, enabled=_bool(named["enabled"], base.enabled))
    else:
        values = args[:len(CONTROLS)] + [None] * (len(CONTROLS) - len(args))
    out: dict[str, Any] = {}
    extra: dict[str, Any] = dict(base.extra)
    for control, value in zip(CONTROLS, values, strict=True):
        current = getattr(base, control.name)
        if value is None:
            out[control.name] = current
        elif control.kind == "checkbox":
            out[control.name] = _bool(value, current)
        elif control.name in ("max_adapters", "mask_seed"):
            out[control.name] = _int(value, current, control)
        elif control.kind == "slider":
            out[control.name] = _float(value, current, control)
        elif control.name == "composer":
            out[control.name] = "" if value in ("", "default") else _choice(value, current, composers)
            if isinstance(value, str) and value.strip() and value not in ("", "default") and composers \
                    and out[control.name] != value.strip() and value.strip().lower() not in map(str.lower, composers):
                extra["unknown_composer"] = value.strip()
        else:
            out[control.name] = _choice(value, current, control.choices)
    return replace(base, **out, extra=extra)


def as_dict(options: RunOptions) -> dict[str, Any]:
    return {f.name: getattr(options, f.name) for f in fields(options) if f.name != "extra"}
