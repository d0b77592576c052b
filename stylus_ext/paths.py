"""Where Stylus keeps its files: a per-user data folder, outside any WebUI extension folder
(so updates and re-installs of the extension never lose the catalog)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from stylus_ext.sdk.files import data_dir

__all__ = ["data_dir", "default_catalog_path"]


def default_catalog_path(environ: Mapping[str, str] | None = None) -> Path:
    """``STYLUS_CATALOG``, else ``<data dir>/catalog.db``."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("STYLUS_CATALOG") or data_dir(environ) / "catalog.db").expanduser()
