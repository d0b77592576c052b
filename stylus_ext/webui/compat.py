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


#: Forge / Forge Neo diffusion-engine classes (``backend/diffusion_engine/*.py``) → family; Neo's
#: engines set no ``is_*`` flag beyond SD1/SDXL. Flux2 covers Klein 4B and 9B (its matched guesses).
ENGINE_FAMILIES: dict[str, str] = {
    "StableDiffusion": "SD1", "StableDiffusion2": "SD2", "StableDiffusionXL": "SDXL",
    "StableDiffusionXLRefiner": "SDXL",
    "StableDiffusion3": "SD3", "Flux": "Flux", "Chroma": "Chroma", "QwenImage": "Qwen", "ZImage": "Z-Image-type",
    "Wan": "Wan 14B-type", "Lumina2": "Lumina", "Anima": "Anima", "Flux2": "Flux.2 D",
}
#: Neo's ``huggingface_guess`` model configs that pin the variant down further.
CONFIG_FAMILIES: dict[str, str] = {"Flux2K4B": "Flux.2 Klein 4B-type", "Flux2K9B": "Flux.2 Klein 9B-type"}


def model_family(model: Any) -> str | None:
    """Family of a loaded model object: A1111's ``is_*`` flags, then Forge / Neo engine classes."""
    for attr, family in (("is_sdxl", "SDXL"), ("is_sd3", "SD3"), ("is_sd2", "SD2"), ("is_sd1", "SD1")):
        if getattr(model, attr, False) is True:
            return family
    config = type(getattr(model, "model_config", None)).__name__
    if config in CONFIG_FAMILIES:
        return CONFIG_FAMILIES[config]
    for cls in type(model).__mro__:
        if cls.__name__ in ENGINE_FAMILIES:
            return ENGINE_FAMILIES[cls.__name__]
    if getattr(model, "is_flux", False) is True or "flux" in type(model).__name__.lower():
        return "Flux"
    return None


_header_cache: dict[tuple[str, float], str | None] = {}


def _selected_checkpoint(sd_models: Any) -> Any | None:
    """The checkpoint the WebUI loads next: the saved selection, else (a fresh install has no
    ``sd_model_checkpoint`` yet, or the saved one is gone) the first of ``checkpoints_list``, as
    ``sd_models.select_checkpoint`` does — without calling it (it prints, and raises in A1111)."""
    title = opts_data().get("sd_model_checkpoint")
    finder = getattr(sd_models, "get_closet_checkpoint_match", None)
    info = finder(title) if title and finder is not None else None
    listed = getattr(sd_models, "checkpoints_list", None)
    if info is None and isinstance(listed, dict) and listed:
        info = next(iter(listed.values()))
    return info


def selected_checkpoint_family() -> str | None:
    """Family of the checkpoint selected in the UI but not loaded yet (Forge loads lazily), from its
    safetensors header — never by loading it. None when unknown."""
    sd_models = _sd_models()
    if sd_models is None:
        return None
    try:
        info = _selected_checkpoint(sd_models)
        if info is None:
            return None
        filename = str(getattr(info, "filename", "") or "")
        key = (filename, os.path.getmtime(filename))
    except Exception:  # noqa: BLE001 - a missing file or an odd WebUI: just unknown
        return None
    if key not in _header_cache:
        from stylus_ext.sdk.cards.families import checkpoint_family

        _header_cache[key] = checkpoint_family(filename)
    return _header_cache[key]


def _sd_models() -> Any | None:
    try:
        from modules import sd_models
    except ImportError:
        return None
    return sd_models


def checkpoint_family() -> str | None:
    """Family of the loaded checkpoint, else of the selected one (its header), else None.

    Reads ``sd_models.model_data.sd_model``: ``shared.sd_model`` would load a model when none is.
    Before Forge's first (lazy) load that is a ``FakeInitialModel`` placeholder, which has no family.
    """
    sd_models = _sd_models()
    if sd_models is None:
        return None
    model = getattr(getattr(sd_models, "model_data", None), "sd_model", None)
    family = model_family(model) if model is not None else None
    return family or selected_checkpoint_family()


def webui_root() -> str:
    """The WebUI's data folder (``--data-dir``, default the WebUI folder), else the working folder."""
    for module in ("modules.paths_internal", "modules.paths"):
        value = getattr(sys.modules.get(module), "data_path", None)
        if isinstance(value, str) and value:
            return value
    value = getattr(getattr(shared(), "cmd_opts", None), "data_dir", None)
    return value if isinstance(value, str) and value else os.getcwd()


def root_key(root: str | None = None) -> str:
    """``<folder name>-<8 hex>``: a stable, readable key for one WebUI installation."""
    import hashlib
    import re

    path = os.path.normcase(os.path.abspath(root or webui_root()))
    name = re.sub(r"[^\w.-]+", "_", os.path.basename(path.rstrip(os.sep)) or "webui")[:40]
    return f"{name}-{hashlib.sha1(path.encode('utf-8')).hexdigest()[:8]}"


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
