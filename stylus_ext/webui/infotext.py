"""Stylus in the images' infotext, and pasting it back.

Each image records ``Stylus: concept → adapter:weight; ...`` (or ``none``), ``Stylus settings:
mask=...;max=...;strength=...;triggers=...;composer=...;base=...`` and ``Stylus seed`` (the seed
its adapter mask was drawn from). No secrets: composer options are not recorded.

Pasting an image's parameters back restores the Stylus controls (and the "Script" dropdown, from the
``Script: Stylus`` field) and removes the ``<lora:...>`` tags Stylus added from the pasted prompt,
so generating again re-applies them once instead of duplicating them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from stylus_ext.webui import controls, tags

RECORD = "Stylus"
SETTINGS = "Stylus settings"
SEED = "Stylus seed"
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


def _value_from(name: str) -> Callable[[Mapping[str, Any]], Any]:
    def get(params: Mapping[str, Any]) -> Any:
        value = parse_settings(params.get(SETTINGS)).get(name)
        if name == "composer" and value == "":
            return "default"
        return value

    return get


def _added_texts(names: list[str]) -> tuple[list[str], list[str]]:
    """Activation and negative texts of the named adapters (from the catalog; ``[]`` when unknown)."""
    try:
        from stylus_ext.webui.runtime import get_runtime

        catalog = get_runtime().catalog()
        positive, negative = [], []
        for name in names:
            for row in catalog.rows("name = ?", [name]):
                card = catalog.row_to_card(row)
                if card.activation_text.strip():
                    positive.append(card.activation_text.strip())
                if card.negative_text.strip():
                    negative.append(card.negative_text.strip())
        return positive, negative
    except Exception:  # noqa: BLE001 - pasting must never fail
        return [], []


def remove_segment(text: str, segment: str) -> str:
    """Remove the last ``, segment`` (as appended by the rewrite) from ``text``."""
    for candidate in (f", {segment}", f" {segment}", segment):
        pos = text.rfind(candidate)
        if pos >= 0:
            end = pos + len(candidate)
            if end == len(text) or text[end] in ", <":
                return (text[:pos] + text[end:]).strip()
    return text


def on_infotext_pasted(infotext: str, params: dict[str, Any]) -> None:
    """Remove what Stylus added (its ``<lora:...>`` tags, then the adapters' activation / negative
    texts) from the pasted prompts, so generating again adds them once, not twice."""
    names = [name for _, name, _ in parse_record(params.get(RECORD))]
    if not names:
        return
    positive, negative = _added_texts(names)
    for key in ("Prompt", "Hires prompt"):
        if isinstance(params.get(key), str):
            text = tags.strip_loras(params[key], names)
            for segment in positive:
                text = remove_segment(text, segment)
            params[key] = text
    for key in ("Negative prompt", "Hires negative prompt"):
        if isinstance(params.get(key), str):
            text = params[key]
            for segment in negative:
                text = remove_segment(text, segment)
            params[key] = text
