"""``sdk.sibling_module``: a path-loaded plugin's private helper module, imported once."""

from __future__ import annotations

import sys

import pytest

from stylus_ext import sdk


def test_a_helper_beside_a_plugin_is_imported_once(tmp_path):
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text("", encoding="utf-8")
    (tmp_path / "_my_words.py").write_text("LOADS = []\nLOADS.append(1)\nWORDS = {'castle'}\n", encoding="utf-8")
    try:
        first = sdk.sibling_module(plugin, "_my_words")
        again = sdk.sibling_module(str(plugin), "_my_words")
        assert first is again and {"castle"} == first.WORDS and first.LOADS == [1]
        assert first.__name__ == "stylus_plugin_helper_my_words"
    finally:
        sys.modules.pop("stylus_plugin_helper_my_words", None)


def test_a_missing_or_broken_helper_raises_and_is_not_cached(tmp_path):
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text("", encoding="utf-8")
    with pytest.raises((ImportError, FileNotFoundError)):
        sdk.sibling_module(plugin, "_absent")
    (tmp_path / "_broken.py").write_text("raise ValueError('bad helper')\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad helper"):
        sdk.sibling_module(plugin, "_broken")
    assert "stylus_plugin_helper_broken" not in sys.modules
