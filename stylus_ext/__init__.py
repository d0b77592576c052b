"""Stylus: automatic LoRA selection for Stable Diffusion (refine → retrieve → compose → mask).

The package is usable without the WebUI; ``stylus_ext.webui`` holds the WebUI glue and
:mod:`stylus_ext.sdk` is the plugin SDK.
"""

from stylus_ext.sdk import hookimpl

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl"]
