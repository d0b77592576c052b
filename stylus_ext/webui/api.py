"""HTTP routes for other front ends (registered in ``on_app_started``):

- ``POST /stylus/v1/compose`` — body ``{"prompt": "...", "negative_prompt": "", "n": 1, "seed": 1,
  "seeds": [..], "mask": "paper", "max_adapters": 4, "strength": 0.8, "add_triggers": true,
  "composer": "", "base_model": "auto"}`` → the rewritten prompts (no generation):
  ``{"prompt", "concepts": [...], "images": [{"prompt", "negative_prompt", "seed", "adapters"}], "warnings"}``.
- ``GET /stylus/v1/catalog?q=&limit=`` → catalog state and adapters.

Handlers take and return plain dicts (no pydantic models: the WebUI has pydantic v1, Forge v2).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from stylus_ext.webui import controls
from stylus_ext.webui.runtime import Runtime, catalog_state

MAX_IMAGES = 64


class BadRequest(ValueError):
    pass


def _options(body: Mapping[str, Any], runtime: Runtime) -> controls.RunOptions:
    known = {c.name for c in controls.CONTROLS}
    named = {k: v for k, v in body.items() if k in known}
    return controls.read([named], runtime.default_options(), composers=runtime.composer_names())


def compose(body: Any, runtime: Runtime) -> dict[str, Any]:
    """``POST /stylus/v1/compose``. Raises :class:`BadRequest` for invalid bodies."""
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
            return JSONResponse(status_code=400, content={"error": str(exc)})

    def catalog_route(q: str = "", limit: int = 100) -> Any:
        return catalog(factory(), q, limit)

    app.add_api_route("/stylus/v1/compose", compose_route, methods=["POST"])
    app.add_api_route("/stylus/v1/catalog", catalog_route, methods=["GET"])
