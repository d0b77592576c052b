"""Whether an installed adapter file can be loaded at all.

Two views of the same rule — "a file the WebUI cannot read is never a candidate and never gets a
tag": :func:`fatal_problem` / :data:`READABLE_SQL` read the problems the scan recorded (the
header reasons of :mod:`stylus_ext.sdk.cards.header`, and ``cannot read:`` from the reader), and
:func:`check_file` looks at the file itself right before a tag is written (it may have been
replaced or truncated since the scan). Sidecar problems (a bad ``.json`` beside the file) are not
fatal: the weights still load.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable
from typing import BinaryIO

from stylus_ext.sdk.cards.header import MAX_HEADER_BYTES

#: Starts of the reasons :func:`stylus_ext.sdk.cards.header.read_header` and the reader give for a
#: weights file that cannot be loaded (kept in step by tests/test_webui_truth.py).
FATAL_PREFIXES: tuple[str, ...] = (
    "not a safetensors file", "header length", "truncated", "cannot read:", "header is not valid",
    "header is a JSON", "__metadata__ is a JSON", "tensor data",
)

#: SQL condition on the ``adapters`` table: the row is not an installed file with a fatal problem.
READABLE_SQL = ("(adapters.path is null or not ("
                + " or ".join(f"coalesce(adapters.problems, '') like '%\"{p}%'" for p in FATAL_PREFIXES) + "))")


def fatal_problem(problems: Iterable[str] | str | None) -> str:
    """The first recorded problem that makes the file unloadable ("" when none)."""
    if isinstance(problems, str):
        try:
            problems = json.loads(problems) if problems.strip().startswith("[") else [problems]
        except ValueError:
            problems = [problems]
    for reason in problems or ():
        if isinstance(reason, str) and reason.startswith(FATAL_PREFIXES):
            return reason
    return ""


def _check_safetensors(fh: BinaryIO, size: int) -> str:
    head = fh.read(8)
    if len(head) < 8:
        return f"not a safetensors file: only {len(head)} bytes"
    (length,) = struct.unpack("<Q", head)
    if length < 2 or length > MAX_HEADER_BYTES or 8 + length > size:
        return f"header length {length} does not fit a {size}-byte file"
    try:
        obj = json.loads(fh.read(length).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "header is not valid JSON"
    if not isinstance(obj, dict):
        return "header is a JSON value, not an object"
    end = 0
    for key, entry in obj.items():
        if key == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            return f"tensor data of {key!r} has no valid offsets"
        end = max(end, offsets[1])
    if 8 + length + end != size:
        return f"tensor data ends at byte {8 + length + end} but the file has {size} bytes (truncated?)"
    return ""


def check_file(path: str | os.PathLike[str]) -> str:
    """"" when ``path`` looks loadable; else a one-line reason (missing, unreadable, a broken
    safetensors header, tensor data that does not match the file size). Reads the header only."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            if str(path).lower().endswith(".safetensors"):
                return _check_safetensors(fh, size)
            return "" if size > 0 and fh.read(1) else "cannot read: empty file"
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
