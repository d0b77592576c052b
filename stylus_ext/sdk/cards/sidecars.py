"""Files beside a LoRA: ``<stem>.json`` (WebUI user metadata), ``<stem>.civitai.info`` (Civitai
Helper), ``<stem>.metadata.json`` (ComfyUI LoRA Manager), ``<stem>.txt`` / ``<stem>.description.txt``
and a preview image. Reads are size-capped; broken JSON or wrong types give a one-line problem and
are otherwise ignored.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stylus_ext.sdk.cards.fileio import loads, open_regular

#: Largest sidecar JSON we read (real ones are a few KB; Civitai infos with many images ~200 KB).
MAX_JSON_BYTES = 8 * 1024 * 1024
#: Largest free-text description we read.
MAX_TEXT_BYTES = 256 * 1024

JSON_SUFFIXES = (".json", ".civitai.info", ".metadata.json")
TEXT_SUFFIXES = (".description.txt", ".txt")
PREVIEW_SUFFIXES = (".preview.png", ".png", ".preview.jpg", ".jpg", ".preview.jpeg", ".jpeg",
                    ".preview.webp", ".webp")
ALL_SUFFIXES = (*JSON_SUFFIXES, *TEXT_SUFFIXES, *PREVIEW_SUFFIXES)


@dataclass
class Sidecars:
    """Parsed sidecars of one LoRA; a missing or broken file is an empty dict / string."""

    user: dict[str, Any] = field(default_factory=dict)
    civitai: dict[str, Any] = field(default_factory=dict)
    manager: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    preview_path: str | None = None
    problems: list[str] = field(default_factory=list)


def sidecar_paths(model_path: str, siblings: Iterable[str] | None = None) -> dict[str, str]:
    """``suffix → path`` of the sidecars that exist for ``model_path``.

    ``siblings`` (names in the same folder, e.g. from the scan's directory listing) avoids one
    ``stat`` per candidate; names match case-insensitively, as on Windows.
    """
    folder, filename = os.path.split(model_path)
    stem = os.path.splitext(filename)[0]
    if siblings is None:
        try:
            siblings = os.listdir(folder or ".")
        except OSError:
            siblings = ()
    lower: Mapping[str, str] = siblings if isinstance(siblings, Mapping) else {n.lower(): n for n in siblings}
    found: dict[str, str] = {}
    stem_l = stem.lower()
    for suffix in ALL_SUFFIXES:
        real = lower.get(stem_l + suffix)
        if real is not None:
            found[suffix] = os.path.join(folder, real)
    return found


def read_capped(path: str, limit: int) -> tuple[bytes | None, str]:
    """Bytes of ``path`` if at most ``limit`` long, else ``(None, reason)``."""
    try:
        with open_regular(path) as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        return None, f"cannot read {os.path.basename(path)}: {exc.strerror or exc}"
    if len(data) > limit:
        return None, f"{os.path.basename(path)} is larger than {limit // 1024} KB; ignored"
    return data, ""


def read_json_object(path: str, limit: int | None = None) -> tuple[dict[str, Any], str]:
    """A JSON object from ``path`` (``{}`` plus a reason when absent, huge, broken or not an object)."""
    data, problem = read_capped(path, limit or MAX_JSON_BYTES)
    if data is None:
        return {}, problem
    name = os.path.basename(path)
    try:
        obj = loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return {}, f"{name} is not UTF-8; ignored"
    except ValueError as exc:
        return {}, f"{name} is not valid JSON ({exc}); ignored"
    if not isinstance(obj, dict):
        return {}, f"{name} holds a JSON {type(obj).__name__}, not an object; ignored"
    return obj, ""


def read_text(path: str, limit: int | None = None) -> tuple[str, str]:
    data, problem = read_capped(path, limit or MAX_TEXT_BYTES)
    if data is None:
        return "", problem
    return data.decode("utf-8", errors="replace").strip(), ""


def read_sidecars(model_path: str, siblings: Iterable[str] | None = None) -> Sidecars:
    """Read every sidecar of ``model_path`` (see the module docstring)."""
    paths = sidecar_paths(model_path, siblings)
    out = Sidecars()
    for suffix, attr in ((".json", "user"), (".civitai.info", "civitai"), (".metadata.json", "manager")):
        if suffix in paths:
            obj, problem = read_json_object(paths[suffix])
            setattr(out, attr, obj)
            if problem:
                out.problems.append(problem)
    texts = []
    for suffix in TEXT_SUFFIXES:
        if suffix in paths:
            text, problem = read_text(paths[suffix])
            if problem:
                out.problems.append(problem)
            elif text:
                texts.append(text)
    out.text = "\n\n".join(texts)
    out.preview_path = next((paths[s] for s in PREVIEW_SUFFIXES if s in paths), None)
    return out
