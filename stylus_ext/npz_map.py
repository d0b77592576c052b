"""The arrays of an uncompressed ``.npz`` (what ``np.savez`` writes), memory-mapped where that is safe.

``np.load`` of an ``.npz`` reads every member through the zip stream, checksum included, before the
first query can use one: 0.4-0.5 s for the 190 MB lexical index of 100K cards. Here each member's
``.npy`` payload is located once and memory-mapped, so a process reads only the pages its queries
touch. On Windows a mapped file cannot be replaced (the index is rewritten with an atomic rename
while a WebUI may hold it), so there the payloads are read straight into memory instead — still
without the zip stream.
"""

from __future__ import annotations

import os
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # zip local file header (30 bytes)


def _payload(fh: BinaryIO, info: zipfile.ZipInfo) -> tuple[int, tuple[int, ...], bool, np.dtype]:
    """(offset of the array data, shape, Fortran order, dtype) of one stored ``.npy`` member."""
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"{info.filename} is compressed")
    fh.seek(info.header_offset)
    head = _LOCAL_HEADER.unpack(fh.read(_LOCAL_HEADER.size))
    if head[0] != b"PK\x03\x04":
        raise ValueError(f"{info.filename}: bad zip entry")
    fh.seek(info.header_offset + _LOCAL_HEADER.size + head[-2] + head[-1])
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise ValueError(f"{info.filename}: .npy format {version}")
    if dtype.hasobject:
        raise ValueError(f"{info.filename}: object arrays are not read")
    return fh.tell(), shape, fortran, dtype


def open_npz(path: str | Path, *, mmap: bool | None = None) -> dict[str, np.ndarray]:
    """Every array of ``path`` by member name (without ``.npy``); read-only. ``mmap`` None: map
    except on Windows. Raises ValueError for a file that is not such an archive."""
    use_map = os.name != "nt" if mmap is None else mmap
    out: dict[str, np.ndarray] = {}
    try:
        with open(path, "rb") as fh, zipfile.ZipFile(fh) as archive:
            size = os.fstat(fh.fileno()).st_size
            for info in archive.infolist():
                offset, shape, fortran, dtype = _payload(fh, info)
                count = int(np.prod(shape, dtype=np.int64))
                if offset + count * dtype.itemsize > size:
                    raise ValueError(f"{info.filename}: truncated")
                order = "F" if fortran else "C"
                name = info.filename.removesuffix(".npy")
                if use_map and count:
                    out[name] = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)
                else:
                    fh.seek(offset)
                    data = np.fromfile(fh, dtype=dtype, count=count)
                    out[name] = data.reshape(shape, order=order)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"not an .npz archive ({exc})") from exc
    return out


def save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as one uncompressed ``.npz`` atomically (temp file beside it + rename): a
    reader sees the old file or the new one, never half of one. Raises OSError (nothing is left)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
