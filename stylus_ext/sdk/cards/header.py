"""Read a ``.safetensors`` header without torch: 8-byte little-endian length, then UTF-8 JSON.

Hostile or broken files (truncated, a length of 2**63, invalid UTF-8 or JSON, a non-object
``__metadata__``) give no metadata and a one-line reason — never an exception.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

from stylus_ext.sdk.cards.fileio import loads, open_regular

#: The safetensors library refuses headers above 100 MB; so do we.
MAX_HEADER_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class Header:
    """What a header gave: ``metadata`` (string values only), a digest of the header bytes (cheap
    rename detection), where the tensor payload starts, and ``problem`` ("" when all was fine)."""

    metadata: dict[str, str] = field(default_factory=dict)
    header_sha: str | None = None
    payload_offset: int | None = None
    problem: str = ""


def read_header(path: str | Path, *, size: int | None = None, max_bytes: int = MAX_HEADER_BYTES) -> Header:
    """Parse the header of ``path``; any failure is reported in :attr:`Header.problem`."""
    try:
        with open_regular(path) as fh:
            if size is None:
                fh.seek(0, 2)
                size = fh.tell()
                fh.seek(0)
            head = fh.read(8)
            if len(head) < 8:
                return Header(problem=f"not a safetensors file: only {len(head)} bytes")
            (length,) = struct.unpack("<Q", head)
            if length > max_bytes:
                return Header(problem=f"header length {length} exceeds the {max_bytes // (1024 * 1024)} MB cap")
            if length < 2:
                return Header(problem=f"header length {length} is too small")
            if 8 + length > size:
                return Header(problem=f"truncated: header claims {length} bytes but the file has {size - 8}")
            raw = fh.read(length)
    except OSError as exc:
        return Header(problem=f"cannot read: {exc.strerror or exc}")
    if len(raw) < length:
        return Header(problem="truncated while reading the header")
    digest = hashlib.sha256(raw).hexdigest()[:24]
    base = {"header_sha": digest, "payload_offset": 8 + length}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Header(**base, problem=f"header is not valid UTF-8 (byte {exc.start})")
    try:
        obj = loads(text)
    except ValueError as exc:
        return Header(**base, problem=f"header is not valid JSON ({exc})")
    if not isinstance(obj, dict):
        return Header(**base, problem=f"header is a JSON {type(obj).__name__}, not an object")
    meta = obj.get("__metadata__")
    if meta is None:
        return Header(**base)
    if not isinstance(meta, dict):
        return Header(**base, problem=f"__metadata__ is a JSON {type(meta).__name__}, not an object")
    clean: dict[str, str] = {}
    for key, value in meta.items():
        if isinstance(value, str):
            clean[str(key)] = value
        elif value is not None:
            # The format says strings only; tolerate numbers/objects from sloppy writers.
            try:
                clean[str(key)] = json.dumps(value, ensure_ascii=False)
            except (ValueError, RecursionError):
                continue
    return Header(metadata=clean, **base)
