"""Civitai JSON → adapter cards for adapters that are not installed.

Accepted shapes: a raw ``/api/v1/models`` item (one card per ``modelVersions[]`` entry), a
``/models`` page (``{"items": [...]}``), a model-version object (as in ``.civitai.info`` or
``/model-versions/{id}``), a list of any of these, and JSONL files of them. Non-LoRA types
(checkpoints, embeddings, ...) are skipped. :func:`civitai_facts` is shared with installed files,
whose ``.civitai.info`` sidecar holds a model-version object.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from stylus_ext.sdk.basemodels import family_from_raw
from stylus_ext.sdk.cards.fields import (
    MAX_DESCRIPTION,
    MAX_EXAMPLE_PROMPTS,
    MAX_PROMPT_CHARS,
    as_dict,
    as_float,
    as_int,
    as_list,
    as_str,
    clean_trigger_words,
    html_to_text,
    name_problem,
    unique,
)
from stylus_ext.sdk.cards.fileio import display, is_regular, loads, open_regular, storable
from stylus_ext.sdk.records import AdapterCard

LORA_TYPES = {"lora", "locon", "dora", "lycoris", "loha", "lokr"}

#: Largest card file read (a /models page of 100 items with images is a few MB).
MAX_CARD_FILE_BYTES = 256 * 1024 * 1024
CARD_SUFFIXES = (".json", ".info", ".jsonl")


def _is_version(obj: dict[str, Any]) -> bool:
    return "id" in obj and any(k in obj for k in ("modelId", "baseModel", "files", "trainedWords", "downloadUrl"))


#: How deep accepted shapes nest (a page of items of versions); deeper lists are not Civitai JSON.
MAX_SHAPE_DEPTH = 4
#: What a malformed item raises inside the derivation; anything else is a bug and propagates.
ITEM_ERRORS = (ValueError, TypeError, KeyError, AttributeError, RecursionError, OverflowError)


def cards_from_civitai_json(obj: Any, *, source: str = "civitai-json", warn: Callable[[str], None] | None = None,
                            _depth: int = 0) -> list[AdapterCard]:
    """Adapter cards from any accepted Civitai JSON shape (see module docstring); unknown → ``[]``.

    One bad item (nested 700 deep, ``"id": "²"``) is skipped and named through ``warn(message)``;
    the other items are kept."""
    if _depth > MAX_SHAPE_DEPTH:
        if warn:
            warn(f"JSON nested more than {MAX_SHAPE_DEPTH} levels deep; skipped")
        return []
    if isinstance(obj, list):
        out: list[AdapterCard] = []
        for number, item in enumerate(obj, 1):
            inner = None if warn is None else _prefixed(warn, f"item {number}" if len(obj) > 1 else "")
            out.extend(cards_from_civitai_json(item, source=source, warn=inner, _depth=_depth + 1))
        return out
    if not isinstance(obj, dict) or not obj:
        return []
    try:
        return _cards_from_object(obj, source, warn, _depth)
    except ITEM_ERRORS as exc:
        if warn:
            label = f"model {obj.get('id')!r}" if isinstance(obj.get("id"), (int, str)) else "an item"
            warn(f"{label[:60]} skipped: {type(exc).__name__}: {str(exc)[:120]}")
        return []


def _prefixed(warn: Callable[[str], None], where: str) -> Callable[[str], None]:
    return (lambda message: warn(f"{where}: {message}")) if where else warn


def _cards_from_object(obj: dict[str, Any], source: str, warn: Callable[[str], None] | None,
                       depth: int) -> list[AdapterCard]:
    if isinstance(obj.get("items"), list):
        return cards_from_civitai_json(obj["items"], source=source, warn=warn, _depth=depth + 1)
    if isinstance(obj.get("modelVersions"), list):
        if not is_lora_type(as_str(obj.get("type"))):
            return []
        model = {k: v for k, v in obj.items() if k != "modelVersions"}
        out = []
        for number, version in enumerate(obj["modelVersions"], 1):
            if not isinstance(version, dict):
                continue
            if as_int(version.get("id")) is None:
                if warn and "id" in version:
                    warn(f"version {number}: id {str(version.get('id'))[:40]!r} is not a usable id; skipped")
                continue
            try:
                out.append(remote_card(version, model, source=source))
            except ITEM_ERRORS as exc:
                if warn:
                    warn(f"version {number} skipped: {type(exc).__name__}: {str(exc)[:120]}")
        return out
    if isinstance(obj.get("civitai"), dict) and not _is_version(obj):  # LoRA Manager's metadata.json
        return cards_from_civitai_json(obj["civitai"], source=source, warn=warn, _depth=depth + 1)
    if _is_version(obj):
        if as_int(obj.get("id")) is None:
            if warn:
                warn(f"id {str(obj.get('id'))[:40]!r} is not a usable id; skipped")
            return []
        model = as_dict(obj.get("model"))
        if not is_lora_type(as_str(model.get("type"))):
            return []
        return [remote_card(obj, None, source=source)]
    return []


def load_json_file(path: str | Path, limit: int = MAX_CARD_FILE_BYTES) -> tuple[list[Any], str]:
    """JSON values in a file (one JSON document, or JSONL) and a problem ("" when all was read).

    A JSONL line that is not JSON is skipped and named in the problem; the other lines are kept.
    Only regular files are read (a FIFO named ``*.json`` is refused, never waited on)."""
    try:
        with open_regular(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > limit:
                return [], f"larger than {limit // (1024 * 1024)} MB; skipped"
            text = fh.read(limit + 1).decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], "not UTF-8 text"
    except OSError as exc:
        return [], f"cannot read: {exc.strerror or exc}"
    try:
        return [loads(text)], ""
    except ValueError as exc:
        first_error = str(exc)
    values, bad = [], []
    for number, raw_line in enumerate(text.splitlines(), 1):  # JSONL
        line = raw_line.strip()
        if not line:
            continue
        try:
            values.append(loads(line))
        except ValueError as exc:
            bad.append((number, str(exc)))
    if not values:
        return [], f"not valid JSON ({first_error})"
    if not bad:
        return values, ""
    lines = ", ".join(str(n) for n, _ in bad[:10]) + (" ..." if len(bad) > 10 else "")
    return values, f"line {lines}: not valid JSON ({bad[0][1]}); skipped, the other {len(values)} line(s) kept"


def iter_card_files(paths: Iterable[str | Path], warn: Any = None) -> Iterator[str]:
    """Card files under ``paths`` (files as given; folders searched recursively, sorted)."""
    def onerror(exc: OSError) -> None:
        if warn:
            warn(exc.filename, f"cannot read folder: {exc.strerror or exc}")

    for given in paths:
        path = os.path.abspath(os.fspath(given))
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path, onerror=onerror):
                dirs.sort()
                for name in sorted(files):
                    if name.lower().endswith(CARD_SUFFIXES):
                        full = os.path.join(root, name)
                        if not storable(full):
                            if warn:
                                warn(display(full), "the name is not valid UTF-8 text; rename it to import it")
                        elif is_regular(full):
                            yield full
                        elif warn:
                            warn(full, "not a regular file (a FIFO, device or socket); skipped")
        elif os.path.exists(path):
            yield path
        elif warn:
            warn(path, "no such file or folder")


# -- one model version → card fields ----------------------------------------------------------


def primary_file(version: Mapping[str, Any]) -> dict[str, Any]:
    files = [f for f in as_list(version.get("files")) if isinstance(f, dict)]
    for f in files:
        if f.get("primary") is True:
            return f
    for f in files:
        if str(f.get("name", "")).lower().endswith(".safetensors"):
            return f
    return files[0] if files else {}


def file_hashes(file: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(sha256, autov3)`` of a Civitai file entry, lowercase; AutoV3 as its 12-hex short form."""
    hashes = {str(k).lower(): v for k, v in as_dict(file.get("hashes")).items() if isinstance(v, str)}
    sha = hashes.get("sha256", "").strip().lower() or None
    v3 = hashes.get("autov3", "").strip().lower()[:12] or None
    if sha and not re.fullmatch(r"[0-9a-f]{64}", sha):
        sha = None
    if v3 and not re.fullmatch(r"[0-9a-f]{12}", v3):
        v3 = None
    return sha, v3


def civitai_facts(version: Mapping[str, Any], model: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Card fields from a Civitai model-version object (and its parent model object, if known)."""
    version = as_dict(version)
    model = as_dict(model) or as_dict(version.get("model"))
    images = [i for i in as_list(version.get("images")) if isinstance(i, dict)]
    if not images and model:
        images = [i for i in as_list(model.get("images")) if isinstance(i, dict)]
    prompts = []
    for image in images:
        prompt = as_str(as_dict(image.get("meta")).get("prompt"))
        if prompt:
            prompts.append(prompt[:MAX_PROMPT_CHARS])
    urls = [as_str(i.get("url")) for i in images if as_str(i.get("url"))]
    pfile = primary_file(version)
    sha, v3 = file_hashes(pfile)
    tags = [t if isinstance(t, str) else as_str(as_dict(t).get("name")) for t in as_list(model.get("tags"))]
    descriptions = [html_to_text(model.get("description")), html_to_text(version.get("description"))]
    nsfw_level = as_int(model.get("nsfwLevel")) or 0
    title = as_str(model.get("name"))
    return {
        "title": title,
        "kind": as_str(model.get("type")) or "LORA",
        "base_model_raw": as_str(version.get("baseModel")),
        "description": "\n\n".join(unique(d for d in descriptions if d)),
        "tags": unique(t for t in tags if t),
        "trigger_words_raw": [w for w in as_list(version.get("trainedWords")) if isinstance(w, str)],
        "example_prompts": unique(prompts, MAX_EXAMPLE_PROMPTS),
        "image_urls": unique(urls, MAX_EXAMPLE_PROMPTS),
        "nsfw": model.get("nsfw") is True or bool(nsfw_level & 24),
        "civitai_model_id": as_int(version.get("modelId")) or as_int(model.get("id")),
        "civitai_version_id": as_int(version.get("id")),
        "download_url": as_str(version.get("downloadUrl")) or as_str(pfile.get("downloadUrl")) or None,
        "sha256": sha,
        "autov3": v3,
        "file_size_kb": as_float(pfile.get("sizeKB")),
        "file_name": as_str(pfile.get("name")),
    }


def is_lora_type(kind: str) -> bool:
    return not kind or kind.strip().lower() in LORA_TYPES

def remote_name(facts: Mapping[str, Any], version: Mapping[str, Any]) -> str:
    """``<lora:NAME>`` a not-installed adapter will have: its primary file's stem when downloaded."""
    file_name = as_str(facts.get("file_name"))
    if file_name:
        return os.path.splitext(os.path.basename(file_name.replace("\\", "/")))[0]
    base = facts.get("title") or as_str(version.get("name")) or f"civitai_{facts.get('civitai_version_id')}"
    return re.sub(r"[^\w\-. ]+", "_", str(base)).strip(" _") or "unnamed"


def remote_card(version: Mapping[str, Any], model: Mapping[str, Any] | None = None, *,
                source: str = "civitai-json") -> AdapterCard:
    """Card of a not-installed adapter version from Civitai JSON."""
    facts = civitai_facts(version, model)
    name = remote_name(facts, version)
    family = family_from_raw(facts["base_model_raw"]) or "unknown"
    title = facts["title"] or name
    version_name = as_str(as_dict(version).get("name"))
    if version_name and facts["title"] and version_name.lower() not in facts["title"].lower():
        title = f"{facts['title']} ({version_name})"
    return AdapterCard(
        source=source, name=name, title=title, name_problem=name_problem(name), kind=facts["kind"],
        base_model=family, base_model_raw=facts["base_model_raw"],
        description=facts["description"][:MAX_DESCRIPTION], tags=facts["tags"],
        trigger_words=clean_trigger_words(facts["trigger_words_raw"]),
        example_prompts=facts["example_prompts"], image_urls=facts["image_urls"], nsfw=bool(facts["nsfw"]),
        civitai_model_id=facts["civitai_model_id"], civitai_version_id=facts["civitai_version_id"],
        download_url=facts["download_url"], sha256=facts["sha256"], autov3=facts["autov3"],
        file_size_kb=facts["file_size_kb"],
    )
