"""tools/webui_check.py's own logic (parsing, the checks) on infotexts from the WebUI stand-in; the
script itself runs against a real WebUI, outside `make test`."""

from __future__ import annotations

import importlib.util
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from test_webui_generation import CASTLE, ui  # noqa: F401 - fixture
from webui_stub import WebUI, parse_generation_parameters, webui  # noqa: F401 - fixture

spec = importlib.util.spec_from_file_location("webui_check", Path(__file__).parent.parent / "tools" / "webui_check.py")
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)


def test_the_checks_pass_on_a_faithful_webui_and_catch_a_lie(ui: WebUI) -> None:  # noqa: F811
    runner = ui.runner()
    processed = ui.generate(runner, runner.ui_args("Stylus"), prompt=CASTLE, negative_prompt="blurry", seed=9,
                            batch_size=2, n_iter=2)
    infotexts = [im.infotext for im in processed.images]
    for text in infotexts:
        mine, theirs = tool.parse_infotext(text), parse_generation_parameters(text)
        for key in ("Prompt", "Negative prompt", "Lora hashes", "Stylus added", "Seed"):
            assert str(mine.get(key)) == str(theirs.get(key)), key
    assert tool.check_hashes(infotexts) == ""
    assert tool.check_paste_back(infotexts, CASTLE) == ""
    assert tool.check_broken(infotexts) == ""
    lie = infotexts[0].replace("Lora hashes: \"", "Lora hashes: \"someone_else: 0123456789ab, ", 1)
    assert "Lora hashes" in tool.check_hashes([lie])
    assert tool.check_broken([infotexts[0] + f" <lora:{tool.BROKEN}:1>"])


def test_vacuous_runs_and_catalog_lies_fail(ui: WebUI) -> None:  # noqa: F811
    runner = ui.runner()
    processed = ui.generate(runner, runner.ui_args("Stylus"), prompt=CASTLE, negative_prompt="blurry", seed=9,
                            batch_size=2, n_iter=2)
    infotexts = [im.infotext for im in processed.images]
    assert tool.check_any_tagged({CASTLE: infotexts}) == ""
    untagged = [tool.RE_TAG.sub("", t) for t in infotexts]
    assert "no image got a tag" in tool.check_any_tagged({CASTLE: untagged})
    figures = tool.figures(infotexts)
    assert figures["images"] == 4 and figures["tagged"] >= 1 and figures["hash_entries"] >= figures["tagged"]

    # paste-back as the WebUI parsed it (its parser and every callback): a lost word is caught
    pasted = [{**parse_generation_parameters(t), "Prompt": CASTLE} for t in infotexts]
    assert tool.check_paste_back(infotexts, CASTLE, pasted) == ""
    pasted[1]["Prompt"] = CASTLE.replace("castle", "", 1)
    assert "pasted back" in tool.check_paste_back(infotexts, CASTLE, pasted)
    assert tool.check_paste_back([], CASTLE, []) == "no images to paste back"

    good = {"name": "ok_style", "installed": True, "problem": ""}
    broken = {"name": tool.BROKEN, "installed": False, "problem": "header length 9 does not fit a 4096-byte file"}
    assert tool.check_broken(infotexts, {"adapters": 2, "installed": 1, "items": [good, broken]}) == ""
    assert "2 installed, its rows 1" in tool.check_broken(infotexts, {"adapters": 2, "installed": 2,
                                                                       "items": [good, broken]})
    assert "installed=True" in tool.check_broken(infotexts, {"adapters": 2, "installed": 2,
                                                              "items": [good, {**broken, "installed": True}]})
    assert "not in the catalog" in tool.check_broken(infotexts, {"adapters": 1, "installed": 1, "items": [good]})


class _LateRoutes(BaseHTTPRequestHandler):
    """The WebUI's own API answers at once; Stylus's route only from the ``late``-th request on."""

    late = 3
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        ready = self.path.startswith("/sdapi/") or len(type(self).seen) >= type(self).late
        body = b'{"adapters": 0}' if ready else b'{"detail": "Not Found"}'
        self.send_response(200 if ready else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_wait_lasts_until_stylus_routes_answer() -> None:
    """Seen in Forge: ``/sdapi/v1/options`` answered seconds before ``/stylus/v1/catalog`` existed."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LateRoutes)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        api = tool.Api(f"http://127.0.0.1:{server.server_address[1]}", timeout=5)
        api.wait(10, every=0.01)
        assert api.call("/stylus/v1/catalog") == {"adapters": 0}
        _LateRoutes.seen, _LateRoutes.late = [], 10**6
        with pytest.raises(SystemExit, match="HTTP 404"):
            api.wait(0.2, every=0.01)
    finally:
        server.shutdown()
        server.server_close()
