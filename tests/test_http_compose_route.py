"""``POST /stylus/v1/compose``: invalid options are HTTP 422 naming the field, never silent defaults."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from stylus_ext.webui import api, runtime


class JSONResponse:  # what fastapi.responses.JSONResponse keeps (the WebUI's FastAPI is not installed here)
    def __init__(self, status_code: int, content: Any) -> None:
        self.status_code, self.content = status_code, content


@pytest.fixture
def route(tmp_path: Path, plugins: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    fastapi = types.ModuleType("fastapi")
    fastapi.Body = lambda default=None, **kw: default  # type: ignore[attr-defined]
    responses = types.ModuleType("fastapi.responses")
    responses.JSONResponse = JSONResponse  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fastapi", fastapi)
    monkeypatch.setitem(sys.modules, "fastapi.responses", responses)
    rt = runtime.Runtime(opts=lambda: {"stylus_catalog_path": str(tmp_path / "none.db")}, plugins=lambda: plugins)
    routes: dict[str, Any] = {}
    api.register(types.SimpleNamespace(add_api_route=lambda path, fn, methods: routes.__setitem__(path, fn)),
                 lambda: rt)
    yield routes["/stylus/v1/compose"]
    rt.close()


@pytest.mark.parametrize(("field", "value"), [
    ("mask", "bogus"), ("strength", float("nan")), ("strength", float("inf")), ("strength", 7),
    ("strength", True), ("composer", "nonexistent"), ("base_model", "../../etc"), ("max_adapters", 2.5),
    ("max_adapters", 99), ("add_triggers", "maybe"), ("add_triggers", 1), ("mask", ["all"]),
])
def test_invalid_options_are_422_with_the_field_named(route: Any, field: str, value: Any) -> None:
    out = route({"prompt": "a cat", field: value})
    assert isinstance(out, JSONResponse) and out.status_code == 422
    assert out.content["field"] == field and f'"{field}"' in out.content["error"]
    assert out.content["detail"][0]["loc"] == ["body", field]
    assert "expected" in out.content["error"]


def test_valid_options_still_work_and_are_normalised(route: Any) -> None:
    out = route({"prompt": "a cat", "n": 2, "seed": 3, "mask": "ALL", "strength": "0.5", "composer": "default",
                 "base_model": "sdxl", "max_adapters": 2.0, "add_triggers": "false"})
    assert not isinstance(out, JSONResponse)
    assert out["options"]["mask"] == "all" and out["options"]["strength"] == 0.5
    assert out["options"]["base_model"] == "SDXL" and out["options"]["max_adapters"] == 2
    assert out["options"]["add_triggers"] is False and out["options"]["composer"] == ""
    assert route({"prompt": "a cat", "composer": "offline", "mask": None})["options"]["composer"] == "offline"


def test_a_malformed_body_is_still_400(route: Any) -> None:
    out = route({"prompt": 3})
    assert out.status_code == 400 and "prompt" in out.content["error"] and "field" not in out.content
