"""Stylus: automatic LoRA selection for Stable Diffusion (refine → retrieve → compose → mask).

The package is usable without the WebUI; ``stylus_ext.webui`` holds the WebUI glue and
:mod:`stylus_ext.sdk` is the plugin SDK.
"""

from stylus_ext.sdk import hookimpl
from stylus_ext.sdk.hooks import VERSION as __version__

__all__ = ["__version__", "hookimpl"]
