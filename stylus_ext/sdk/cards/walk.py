"""Find LoRA files under folders fast: one ``os.scandir`` per folder, no reads.

Symlinked folders are followed once (loops are reported, not fatal); unreadable folders are
reported through ``warn`` and skipped, as are FIFOs, devices and sockets with a model suffix (only
regular files are read) and names that are not valid UTF-8 (SQLite cannot store them). Each file's
change stamp is the newest mtime of the file and its sidecars, so editing ``<stem>.json`` or adding
``<stem>.civitai.info`` rescans the LoRA.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from stylus_ext.sdk.cards.fileio import display, storable
from stylus_ext.sdk.cards.sidecars import ALL_SUFFIXES

MODEL_SUFFIXES = (".safetensors", ".pt", ".ckpt")

Warn = Callable[[str, str], None]
NOT_UTF8 = "the name is not valid UTF-8 text; rename the file or folder to scan it"


@dataclass(frozen=True)
class LoraFile:
    """One model file: absolute path, size, change stamp, and its folder's ``lower name → name``."""

    path: str
    size: int
    stamp: float
    siblings: dict[str, str]


def _noop(path: str, reason: str) -> None:
    pass


def walk_lora_files(roots: Iterable[str], warn: Warn = _noop, *, follow_symlinks: bool = True) -> list[LoraFile]:
    """Model files under ``roots`` (files given directly are accepted too), sorted per folder."""
    found: list[LoraFile] = []
    visited: set[tuple[int, int]] = set()
    for given in roots:
        root = os.path.abspath(os.fspath(given))
        try:
            st = os.stat(root)
        except OSError as exc:
            warn(root, f"cannot open: {exc.strerror or exc}")
            continue
        if not storable(root):
            warn(display(root), NOT_UTF8)
            continue
        if not stat.S_ISDIR(st.st_mode):
            if not stat.S_ISREG(st.st_mode):
                warn(root, "not a regular file or folder; skipped")
            elif root.lower().endswith(MODEL_SUFFIXES):
                folder = os.path.dirname(root)
                try:
                    names = os.listdir(folder)
                except OSError:
                    names = []
                siblings = {n.lower(): n for n in names}
                found.append(LoraFile(root, st.st_size, _stamp(root, st.st_mtime, siblings, folder), siblings))
            continue
        _walk(root, warn, visited, found, follow_symlinks)
    return found


def _stamp(path: str, mtime: float, siblings: dict[str, str], folder: str,
           entries: dict[str, os.DirEntry[str]] | None = None) -> float:
    stem = os.path.splitext(os.path.basename(path))[0].lower()
    stamp = mtime
    for suffix in ALL_SUFFIXES:
        real = siblings.get(stem + suffix)
        if real is None:
            continue
        try:
            entry = entries.get(real) if entries else None
            side = entry.stat().st_mtime if entry is not None else os.stat(os.path.join(folder, real)).st_mtime
        except OSError:
            continue
        stamp = max(stamp, side)
    return stamp


def _walk(folder: str, warn: Warn, visited: set[tuple[int, int]], found: list[LoraFile],
          follow_symlinks: bool) -> None:
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            st = os.stat(current)
            key = (st.st_dev, st.st_ino)
            if key in visited:
                warn(current, "symlink loop or folder linked twice; scanned once")
                continue
            visited.add(key)
            with os.scandir(current) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            warn(display(current), f"cannot read folder: {exc.strerror or exc}")
            continue
        by_name = {e.name: e for e in entries}
        siblings = {e.name.lower(): e.name for e in entries}
        subdirs: list[str] = []
        for entry in entries:
            name_l = entry.name.lower()
            try:
                if entry.is_dir(follow_symlinks=follow_symlinks):
                    if entry.name.startswith("."):
                        continue
                    if storable(entry.path):
                        subdirs.append(entry.path)
                    else:
                        warn(display(entry.path), NOT_UTF8)
                    continue
                if not name_l.endswith(MODEL_SUFFIXES):
                    continue
                if not storable(entry.path):
                    warn(display(entry.path), NOT_UTF8)
                    continue
                st = entry.stat()
                if not stat.S_ISREG(st.st_mode):
                    warn(entry.path, "not a regular file (a FIFO, device or socket); skipped")
                    continue
            except OSError as exc:
                warn(display(entry.path), f"cannot read: {exc.strerror or exc}")
                continue
            found.append(LoraFile(entry.path, st.st_size,
                                  _stamp(entry.path, st.st_mtime, siblings, current, by_name), siblings))
        stack.extend(reversed(subdirs))
