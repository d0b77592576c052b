"""Names for downloaded files: the server's ``Content-Disposition`` name made safe for every OS and
for ``<lora:NAME>`` (no folders, no ``..``, no ``: = >`` or control characters, no Windows device
names, at most :data:`MAX_NAME_BYTES` bytes), else a safe name from the card."""

from __future__ import annotations

import os
import re
import unicodedata
from email.message import Message
from typing import Any

LORA_SUFFIXES = (".safetensors", ".pt", ".ckpt")
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
#: Longest stem written (bytes): leaves room for ``_<version id>`` and ``.civitai.info`` within 255.
MAX_NAME_BYTES = 200
_BAD_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*=,;]')


def filename_from_disposition(value: str | None) -> str | None:
    """The file name in a ``Content-Disposition`` header (``filename*=`` UTF-8 or ``filename=``)."""
    if not value:
        return None
    msg = Message()
    msg["content-disposition"] = value
    try:
        name = msg.get_filename()
    except (ValueError, TypeError, LookupError):
        return None
    return str(name) if name else None


def safe_filename(raw: str | None) -> str | None:
    """A file name that stays in its folder and works in ``<lora:NAME>`` on every OS, or ``None``."""
    if not raw:
        return None
    name = unicodedata.normalize("NFC", str(raw)).replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if ch.isprintable())
    name = _BAD_CHARS.sub("_", name).strip(" .")
    stem, suffix = os.path.splitext(name)
    stem = re.sub(r"_+", "_", stem).strip(" ._")
    if not stem or suffix.lower() not in LORA_SUFFIXES:
        return None
    if stem.split(".")[0].upper() in _WINDOWS_DEVICES:
        stem = f"_{stem}"
    stem = stem[:120]
    while len(stem.encode("utf-8")) > MAX_NAME_BYTES and stem:  # 255 bytes per name on most file systems
        stem = stem[:-1]
    stem = stem.rstrip(" ._")
    return stem + suffix.lower() if stem else None


def fallback_filename(row: dict[str, Any]) -> str:
    base = row.get("title") or row.get("name") or "lora"
    ascii_base = unicodedata.normalize("NFKD", str(base)).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", ascii_base).strip("_")[:80] or "lora"
    tag = row.get("civitai_version_id") or row["id"]
    return f"{stem}_{tag}.safetensors"
