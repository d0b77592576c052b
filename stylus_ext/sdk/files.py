"""Where a plugin keeps its files: the per-user data folder (caches) and owner-only key files."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path


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
