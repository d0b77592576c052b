"""Stylus for the AUTOMATIC1111 / Forge WebUI: all code lives in the ``stylus_ext`` package."""

from modules import script_callbacks

from stylus_ext.webui.callbacks import register
from stylus_ext.webui.script import StylusAlwaysOnScript, StylusCompanion, StylusScript

register(script_callbacks)

__all__ = ["StylusAlwaysOnScript", "StylusCompanion", "StylusScript"]
