"""Stylus in the images' infotext, and pasting it back.

Each image records ``Stylus: concept → adapter:weight; ...`` (or ``none``), ``Stylus settings:
mask=...;max=...;strength=...;triggers=...;composer=...;base=...`` and ``Stylus seed`` (the seed
its adapter mask was drawn from). No secrets: composer options are not recorded.

Each image also records ``Stylus added`` (exactly the text the rewrite appended to its prompt) and
``Stylus added negative``. Pasting an image's parameters back restores the Stylus controls (the
"Script" dropdown from ``Script: Stylus``, the adapter-set seed from ``Stylus seed``) and strips
exactly that appended text, so the user's prompt comes back byte for byte and generating again
re-applies the adapters once instead of duplicating them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from stylus_ext.webui import controls, tags

RECORD = "Stylus"
SETTINGS = "Stylus settings"
SEED = "Stylus seed"
ADDED = "Stylus added"
ADDED_NEGATIVE = "Stylus added negative"
_KEYS = {"mask": "mask", "max": "max_adapters", "strength": "strength", "triggers": "add_triggers",
         "composer": "composer", "base": "base_model"}


def parse_settings(text: Any) -> dict[str, Any]:
    """``mask=paper;max=4;...`` → control values (unknown or malformed parts are ignored)."""
    if not isinstance(text, str):
        return {}
    raw: dict[str, Any] = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip() in _KEYS:
            raw[_KEYS[key.strip()]] = value.strip()
    if "add_triggers" in raw:
        raw["add_triggers"] = raw["add_triggers"] in ("1", "true", "True")
    if raw.get("composer") == "default":
        raw["composer"] = ""
    values = [raw.get(c.name) for c in controls.CONTROLS]
    base = controls.RunOptions(composer="\0")
    options = controls.read(values, base)
    out = {}
    for c in controls.CONTROLS:
        if c.name in raw:
            value = getattr(options, c.name)
            if value != getattr(base, c.name) or str(raw[c.name]) == str(value):
                out[c.name] = value
    if raw.get("composer") == "":
        out["composer"] = ""
    return out


def parse_record(text: Any) -> list[tuple[str, str, float | None]]:
    """``concept → name:weight; ...`` → ``[(concept, name, weight)]`` (``none`` → ``[]``)."""
    if not isinstance(text, str) or text.strip() in ("", "none"):
        return []
    out = []
    for part in text.split("; "):
        concept, sep, rest = part.rpartition(" → ")
        if not sep:
            continue
        name, _, weight = rest.rpartition(":")
        try:
            w: float | None = float(weight)
        except ValueError:
            name, w = rest, None
        if name:
            out.append((concept.strip(), name, w))
    return out


def fields(components: list[Any], *, always_on: bool) -> list[tuple[Any, Any]]:
    """``infotext_fields`` for ``ui()``'s components (``(component, key or callable)``)."""
    out: list[tuple[Any, Any]] = []
    rest = components
    if always_on:
        out.append((components[0], _enabled_from))
        rest = components[1:]
    for component, control in zip(rest, controls.CONTROLS, strict=False):
        out.append((component, _value_from(control.name)))
    return out


def _enabled_from(params: Mapping[str, Any]) -> bool | None:
    if SETTINGS not in params:
        return None
    return params.get("Script") != "Stylus"


def _mask_seed_from(params: Mapping[str, Any]) -> int | None:
    """The image's ``Stylus seed`` when it differs from its own seed (its batch's set was drawn from
    another image's seed): regenerating it alone then gives the same adapters. Else -1."""
    if SETTINGS not in params:
        return None
    try:
        stylus_seed, seed = int(params.get(SEED)), int(params.get("Seed"))
    except (TypeError, ValueError):
        return -1
    return stylus_seed if stylus_seed != seed else -1


def _value_from(name: str) -> Callable[[Mapping[str, Any]], Any]:
    if name == "mask_seed":
        return _mask_seed_from

    def get(params: Mapping[str, Any]) -> Any:
        value = parse_settings(params.get(SETTINGS)).get(name)
        if name == "composer" and value == "":
            return "default"
        return value

    return get


def _strip_suffix(text: str, suffix: Any) -> str | None:
    """``text`` without ``suffix`` when it ends with it (None otherwise)."""
    if isinstance(suffix, str) and suffix and text.endswith(suffix):
        return text[: -len(suffix)]
    return None


def on_infotext_pasted(infotext: str, params: dict[str, Any]) -> None:
    """Remove exactly what Stylus appended (recorded per image in ``Stylus added`` / ``Stylus added
    negative``) from the pasted prompts, so the user's own words come back byte for byte and
    generating again adds the adapters once. Records without those fields (older images) lose only
    Stylus's ``<lora:...>`` tags: a word the user typed is never removed."""
    names = [name for _, name, _ in parse_record(params.get(RECORD))]
    for key in ("Prompt", "Hires prompt"):
        text = params.get(key)
        if not isinstance(text, str):
            continue
        stripped = _strip_suffix(text, params.get(ADDED))
        params[key] = stripped if stripped is not None else tags.strip_loras(text, names) if names else text
    for key in ("Negative prompt", "Hires negative prompt"):
        text = params.get(key)
        stripped = _strip_suffix(text, params.get(ADDED_NEGATIVE)) if isinstance(text, str) else None
        if stripped is not None:
            params[key] = stripped
