"""Where Stylus keeps its files: a per-user data folder, outside any WebUI extension folder
(so updates and re-installs of the extension never lose the catalog)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``STYLUS_HOME``, else the platform's per-user data folder + ``/stylus``."""
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


def default_catalog_path(environ: Mapping[str, str] | None = None) -> Path:
    """``STYLUS_CATALOG``, else ``<data dir>/catalog.db``."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("STYLUS_CATALOG") or data_dir(environ) / "catalog.db").expanduser()
