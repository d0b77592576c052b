"""tools/webui_check.py's own logic (parsing, the checks) on infotexts from the WebUI stand-in; the
script itself runs against a real WebUI, outside `make test`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

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
