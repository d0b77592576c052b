"""Where a plugin keeps its files: the per-user data folder (caches) and owner-only key files."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``STYLUS_HOME``, else the platform's per-user data folder + ``/stylus`` (outside any WebUI
    extension folder, so updates and re-installs of the extension never lose it)."""
    environ = os.environ if environ is None else environ
    if environ.get("STYLUS_HOME"):
        return Path(environ["STYLUS_HOME"]).expanduser()  # a quoted "~/..." in a launcher script
    if sys.platform == "win32":
        base = Path(environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "stylus"


def secrets_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Folder of owner-only key files (``STYLUS_SECRETS_DIR``, default ``~/.config/stylus/keys``)."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("STYLUS_SECRETS_DIR") or Path.home() / ".config" / "stylus" / "keys")


def read_secret(env_var: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A secret from the key file ``<secrets_dir>/<ENV_VAR>``, only when owner-only (0600/0400).

    A key file readable by group or others is refused (and ignored), as ssh does.
    """
    path = secrets_dir(environ) / env_var
    try:
        st = path.stat()
    except OSError:
        return None
    if os.name != "nt" and st.st_mode & 0o077:
        logging.getLogger("stylus").warning(
            "ignoring key file %s: it must be readable by its owner only (chmod 600)", path
        )
        return None
    text = path.read_text(encoding="utf-8").strip()
    return text or None


def sibling_module(plugin_file: str | Path, stem: str) -> ModuleType:
    """The helper module ``<stem>.py`` beside a plugin file, imported once (as
    ``stylus_plugin_helper_<stem>``): plugins loaded by path are not packages, so they cannot use a
    relative import for a private module of their own."""
    name = f"stylus_plugin_helper_{stem.strip('_')}"
    if name not in sys.modules:
        path = Path(plugin_file).with_name(f"{stem}.py")
        exec_spec(name, importlib.util.spec_from_file_location(name, path), path)
    return sys.modules[name]


def exec_spec(name: str, spec: Any, path: Path) -> ModuleType:
    """Import ``spec`` as module ``name`` (registered before it runs, so it may import itself; removed
    again when it raises)."""
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
