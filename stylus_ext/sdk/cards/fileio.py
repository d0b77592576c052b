"""Hostile-folder-safe file access: regular files only, names SQLite can store, JSON that never raises.

- :func:`open_regular` opens without blocking (a FIFO or device named ``*.safetensors`` would hang a
  plain ``open``) and refuses anything that is not a regular file.
- :func:`storable` tells whether a path can be stored (SQLite binds UTF-8; a file name that is not
  valid UTF-8 arrives from the OS as lone surrogates); :func:`display` shows any path safely.
- :func:`loads` parses JSON with integers beyond SQLite's 64-bit range turned into ``None`` and every
  parser failure (too deep, a 5,000-digit number, bad syntax) raised as :class:`ValueError`.
"""

from __future__ import annotations

import json
import os
import stat
from typing import IO, Any

#: SQLite INTEGER range (64-bit signed); larger ids and counts are not stored.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def open_regular(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open ``path`` for binary reading; ``OSError`` unless it is a regular file (never blocks)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(f"not a regular file ({_kind(mode)}); skipped")
        if getattr(os, "O_NONBLOCK", 0):  # POSIX: reads of the regular file block as usual
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a file"


def is_regular(path: str | os.PathLike[str]) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def storable(path: str) -> bool:
    """True when ``path`` is valid UTF-8 text (a name from a non-UTF-8 file system is not)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in path


def display(path: str) -> str:
    """``path`` with undecodable bytes shown as ``\\xNN`` (storable and printable)."""
    if storable(path):
        return path
    return os.fsencode(path).decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")


def _int(text: str) -> int | None:
    if len(text) > 20:
        return None
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else None


def _constant(name: str) -> None:
    return None  # NaN / Infinity are not numbers a card can use


def loads(text: str | bytes) -> Any:
    """``json.loads`` that only ever raises ``ValueError`` (see the module docstring)."""
    try:
        return json.loads(text, parse_int=_int, parse_constant=_constant)
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(exc.msg) from exc
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(str(exc).split("\n")[0] or type(exc).__name__) from exc


def fits_int64(value: int) -> bool:
    return INT64_MIN <= value <= INT64_MAX
