"""HTTP routes for other front ends (registered in ``on_app_started``):

- ``POST /stylus/v1/compose`` — body ``{"prompt": "...", "negative_prompt": "", "n": 1, "seed": 1,
  "seeds": [..], "mask": "paper", "max_adapters": 4, "strength": 0.8, "add_triggers": true,
  "composer": "", "base_model": "auto"}`` → the rewritten prompts (no generation):
  ``{"prompt", "concepts": [...], "images": [{"prompt", "negative_prompt", "seed", "adapters"}], "warnings"}``.
- ``GET /stylus/v1/catalog?q=&limit=`` → catalog state and adapters.

Handlers take and return plain dicts (no pydantic models: the WebUI has pydantic v1, Forge v2).
A malformed body is HTTP 400; an option with an invalid value (``"mask": "bogus"``, a NaN
strength, an unknown composer or base model) is HTTP 422 naming the field — never a silent default.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from stylus_ext.webui import controls
from stylus_ext.webui.runtime import Runtime, catalog_state

MAX_IMAGES = 64


class BadRequest(ValueError):
    """A malformed body (HTTP 400)."""

    status = 400


class InvalidField(BadRequest):
    """A field with a value it cannot take (HTTP 422, the field named)."""

    status = 422

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f'"{name}": {message}')
        self.field = name


_INVALID = object()
_INTEGERS = ("max_adapters", "mask_seed")


def _check(control: controls.Control, value: Any, composers: list[str]) -> None:
    """Raise :class:`InvalidField` unless ``value`` is one ``control`` accepts as it is."""
    shown = repr(value)[:60]
    if control.kind == "checkbox":
        ok, want = controls._bool(value, _INVALID) is not _INVALID, "true or false"  # type: ignore[arg-type]
    elif control.name in _INTEGERS or control.kind == "number":
        ok = controls._int(value, _INVALID, control) is not _INVALID  # type: ignore[arg-type]
        want = f"an integer from {control.minimum:g} to {control.maximum:g}"
    elif control.kind == "slider":
        ok = controls._float(value, _INVALID, control) is not _INVALID  # type: ignore[arg-type]
        want = f"a number from {control.minimum:g} to {control.maximum:g}"
    elif not control.choices and control.name != "composer":
        return  # free text: the reader takes it as it is
    else:
        choices = list(composers) if control.name == "composer" else list(control.choices)
        ok = (control.name == "composer" and value in ("", "default")) or \
            (bool(choices) and controls._choice(value, _INVALID, choices) is not _INVALID)  # type: ignore[arg-type]
        want = "one of " + ", ".join(repr(c) for c in (["default", *choices] if control.name == "composer"
                                                         else choices))
    if not ok:
        raise InvalidField(control.name, f"{shown} is not valid; expected {want}")


def _options(body: Mapping[str, Any], runtime: Runtime) -> controls.RunOptions:
    composers = runtime.composer_names()
    named = {}
    for control in controls.CONTROLS:
        if body.get(control.name) is not None:
            _check(control, body[control.name], composers)
            named[control.name] = body[control.name]
    return controls.read([named], runtime.default_options(), composers=composers)


def compose(body: Any, runtime: Runtime) -> dict[str, Any]:
    """``POST /stylus/v1/compose``. Raises :class:`BadRequest` (or :class:`InvalidField`) for
    invalid bodies, before any work is done."""
    if not isinstance(body, Mapping):
        raise BadRequest('body must be a JSON object like {"prompt": "..."}')
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadRequest('"prompt" must be a non-empty string')
    negative = body.get("negative_prompt", "")
    if not isinstance(negative, str):
        raise BadRequest('"negative_prompt" must be a string')
    seeds = body.get("seeds")
    if seeds is None:
        n = body.get("n", 1)
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_IMAGES:
            raise BadRequest(f'"n" must be an integer from 1 to {MAX_IMAGES}')
        seed = body.get("seed", -1)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise BadRequest('"seed" must be an integer (-1: random)')
        if seed < 0:
            seed = random.randrange(2**32)
        seeds = [seed + i for i in range(n)]
    elif (not isinstance(seeds, list) or not 1 <= len(seeds) <= MAX_IMAGES
          or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds)):
        raise BadRequest(f'"seeds" must be a list of 1 to {MAX_IMAGES} integers')
    options = _options(body, runtime)
    result = runtime.plan_images([prompt] * len(seeds), [negative] * len(seeds), seeds, options)
    selection = result.selections.get(prompt)
    if selection is not None and all(plan is not None for plan in result.plans):
        from stylus_ext.pipeline import plan_dict

        st = runtime.pipeline_settings(options)
        out = plan_dict(selection, result.plans, st)
        out["warnings"] = list(result.warnings)
    else:  # no index yet, or Stylus failed: the prompt unchanged, with the reason
        out = {"prompt": prompt, "composer": None, "concepts": [],
               "images": [{"prompt": prompt, "negative_prompt": negative, "seed": seed, "adapters": []}
                          for seed in seeds], "warnings": list(result.warnings)}
    out["options"] = controls.as_dict(options)
    return out


def catalog(runtime: Runtime, q: str = "", limit: int = 100) -> dict[str, Any]:
    """``GET /stylus/v1/catalog``."""
    from stylus_ext.webui.tab import TABLE_HEADERS, adapter_rows

    state = catalog_state(runtime.catalog_path())
    out: dict[str, Any] = {"path": state.path, "exists": state.exists, "adapters": state.adapters,
                           "installed": state.installed, "indexed": state.indexed, "index_kind": state.index_kind,
                           "encoder": state.encoder, "error": state.error, "items": []}
    if state.exists and not state.error:
        keys = [h.replace(" ", "_") for h in TABLE_HEADERS]
        rows = adapter_rows(runtime.catalog(), q, max(1, min(int(limit), 1000)))
        out["items"] = [dict(zip(keys, row, strict=True)) for row in rows]
    return out


def _error_body(exc: BadRequest) -> dict[str, Any]:
    """``{"error": ...}``, plus FastAPI's own 422 shape (``detail[].loc``) when a field is named."""
    body: dict[str, Any] = {"error": str(exc)}
    if isinstance(exc, InvalidField):
        body["field"] = exc.field
        body["detail"] = [{"loc": ["body", exc.field], "msg": str(exc), "type": "value_error"}]
    return body


def register(app: Any, runtime_factory: Any = None) -> None:
    """Add the routes to the WebUI's FastAPI ``app`` (``on_app_started(demo, app)``)."""
    from fastapi import Body
    from fastapi.responses import JSONResponse

    from stylus_ext.webui.runtime import get_runtime

    factory = runtime_factory or get_runtime

    def compose_route(body: Any = Body(...)) -> Any:  # noqa: B008 - FastAPI idiom
        try:
            return compose(body, factory())
        except BadRequest as exc:
            return JSONResponse(status_code=exc.status, content=_error_body(exc))

    def catalog_route(q: str = "", limit: int = 100) -> Any:
        return catalog(factory(), q, limit)

    app.add_api_route("/stylus/v1/compose", compose_route, methods=["POST"])
    app.add_api_route("/stylus/v1/catalog", catalog_route, methods=["GET"])
