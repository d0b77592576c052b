"""Reading the WebUI's state without ever requiring it (and never triggering a model load)."""

from __future__ import annotations

import os
import sys
from typing import Any


def shared() -> Any | None:
    try:
        from modules import shared as webui_shared
    except ImportError:
        return None
    return webui_shared


def opts_data() -> dict[str, Any]:
    """``shared.opts.data`` (settings as saved), or ``{}`` outside the WebUI."""
    s = shared()
    data = getattr(getattr(s, "opts", None), "data", None)
    return data if isinstance(data, dict) else {}


def networks() -> Any | None:
    """The built-in Lora extension's ``networks`` module (same name in Forge), if loaded."""
    module = sys.modules.get("networks")
    if module is not None:
        return module
    try:
        import networks as webui_networks  # type: ignore[import-not-found]
    except ImportError:
        return None
    return webui_networks


def checkpoint_family() -> str | None:
    """Family of the loaded checkpoint (``SD1``/``SD2``/``SDXL``/``SD3``), or None.

    Reads ``sd_models.model_data.sd_model``: ``shared.sd_model`` would load a model when none is.
    """
    try:
        from modules import sd_models
    except ImportError:
        return None
    model = getattr(getattr(sd_models, "model_data", None), "sd_model", None)
    if model is None:
        return None
    for attr, family in (("is_sdxl", "SDXL"), ("is_sd3", "SD3"), ("is_sd2", "SD2"), ("is_sd1", "SD1")):
        if getattr(model, attr, False) is True:
            return family
    if getattr(model, "is_flux", False) is True or "flux" in type(model).__name__.lower():
        return "Flux"
    return None


def lora_folders(extra: str = "") -> list[str]:
    """The WebUI's LoRA folders (``--lora-dir``, the LyCORIS back-compat folder) plus ``extra`` (``;``-separated)."""
    folders: list[str] = []
    s = shared()
    cmd_opts = getattr(s, "cmd_opts", None)
    for attr in ("lora_dir", "lyco_dir_backcompat", "lyco_dir"):
        value = getattr(cmd_opts, attr, None)
        if isinstance(value, str) and value and os.path.isdir(value):
            folders.append(value)
    folders += [p.strip() for p in (extra or "").split(";") if p.strip() and os.path.isdir(p.strip())]
    seen: set[str] = set()
    out = []
    for folder in folders:
        key = os.path.normcase(os.path.abspath(folder))
        if key not in seen:
            seen.add(key)
            out.append(folder)
    return out


def print_warning(text: str) -> None:
    print(f"[Stylus] {text}", file=sys.stderr)
