"""Derive a clean :class:`~stylus_ext.sdk.AdapterCard` from a LoRA's header and sidecars, or from
Civitai JSON: the ``<lora:NAME>`` name, title, tags, trigger words, plain-text description,
base-model family, preferred weight, example prompts, training tags, Civitai ids.
"""

from __future__ import annotations

import html
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from typing import Any, ClassVar

from stylus_ext import sdk
from stylus_ext.catalog import families
from stylus_ext.catalog.fileio import fits_int64, loads
from stylus_ext.catalog.header import Header
from stylus_ext.catalog.sidecars import Sidecars
from stylus_ext.sdk import basemodels

MAX_DESCRIPTION = 4000
MAX_EXAMPLE_PROMPTS = 20
MAX_PROMPT_CHARS = 1500
MAX_TRIGGERS = 24
LONG_TRIGGER = 100  # a "trigger word" longer than this is a whole prompt
MAX_TAG_CHARS = 40
MAX_TRAINING_TAGS = 30
LORA_TYPES = {"lora", "locon", "dora", "lycoris", "loha", "lokr"}

#: Tags that say nothing about an adapter (quality boilerplate, score tags).
NOISE_TAGS = {
    "masterpiece", "best quality", "high quality", "highest quality", "top quality", "good quality",
    "normal quality", "low quality", "worst quality", "amazing quality", "very aesthetic", "aesthetic",
    "highres", "absurdres", "ultra detailed", "ultra-detailed", "extremely detailed", "highly detailed",
    "detailed", "8k", "4k", "hdr", "uhd", "official art", "newest", "realistic", "photorealistic",
    "score_9", "score_8_up", "score_7_up", "score_6_up", "score_5_up", "score_4_up", "source_anime",
    "rating_safe", "1girl", "solo",
}


# ------------------------------------------------------------------------------------------
# Small cleaners
# ------------------------------------------------------------------------------------------


class _TextExtractor(HTMLParser):
    BLOCK: ClassVar[set[str]] = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table",
             "blockquote", "pre", "hr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_to_text(value: Any) -> str:
    """Plain text from Civitai's HTML descriptions (also fine for plain text)."""
    if not isinstance(value, str) or not value.strip():
        return ""
    if "<" in value:
        parser = _TextExtractor()
        try:
            parser.feed(value)
            parser.close()
            value = "".join(parser.parts)
        except Exception:  # noqa: BLE001 - html.parser is lenient; never fail on odd markup
            value = re.sub(r"<[^>]*>", " ", value)
    value = html.unescape(value)
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in value.splitlines()]
    text = "\n".join(line for line in lines if line)
    return text.strip()


def as_str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def as_int(value: Any) -> int | None:
    """An integer SQLite can store (64-bit), from an int, an integral float or ASCII digits; else None
    (``"²"``, ``10**30``, a 5,000-digit string)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        value = int(text) if text.isascii() and text.isdigit() and len(text) <= 20 else None
    elif isinstance(value, float):
        value = int(value) if math.isfinite(value) and value.is_integer() else None
    return value if isinstance(value, int) and fits_int64(value) else None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def unique(items: Iterable[str], limit: int | None = None) -> tuple[str, ...]:
    """Non-empty items, first occurrence wins, compared case-insensitively."""
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        key = item.strip().lower()
        if key and key not in seen:
            seen.add(key)
            out.append(item.strip())
            if limit is not None and len(out) >= limit:
                break
    return tuple(out)


def name_problem(name: str) -> str:
    """Why ``<lora:NAME>`` cannot reference ``name`` ("" when it can)."""
    if not name:
        return "empty name"
    bad = [c for c in ":=>" if c in name]
    if bad:
        return f"name contains {' '.join(repr(c) for c in bad)}, which <lora:...> cannot reference"
    if any(not c.isprintable() for c in name):
        return "name contains a line break or control character, which <lora:...> cannot reference"
    if name != name.strip():
        return "name starts or ends with a space, which <lora:...> cannot reference"
    return ""


_LORA_TAG = re.compile(r"<[^<>]*>")
_WEIGHTED = re.compile(r"^[(\[{]+(.*?)(?::\s*-?[\d.]+)?[)\]}]+$")


def _clean_tag(part: str) -> str:
    part = _LORA_TAG.sub(" ", part).strip()
    match = _WEIGHTED.match(part)
    if match:
        part = match.group(1)
    part = part.strip(" ()[]{}\t\n\"'").replace("\\(", "(").replace("\\)", ")")
    return re.sub(r"\s+", " ", part)


def clean_trigger_words(entries: Iterable[Any]) -> tuple[str, ...]:
    """Trigger words: split on commas, de-duplicated; whole prompts trimmed to their distinctive tags.

    An entry longer than ``LONG_TRIGGER`` characters is a whole example prompt pasted as a trigger:
    quality boilerplate and ``<lora:...>`` tags are dropped and only its first few tags are kept.
    """
    words: list[str] = []
    for entry in entries:
        if not isinstance(entry, str):
            continue
        long_entry = len(entry) > LONG_TRIGGER
        parts = [_clean_tag(p) for p in re.split(r"[,\n]|\bBREAK\b", entry)]
        parts = [p for p in parts if p and len(p) <= 80]
        if long_entry:
            parts = [p for p in parts if p.lower() not in NOISE_TAGS][:6]
        words.extend(parts)
    return unique(words, MAX_TRIGGERS)


def training_tags(metadata: Mapping[str, str], limit: int = MAX_TRAINING_TAGS) -> tuple[str, ...]:
    """Most frequent training-caption tags from ``ss_tag_frequency`` (sentences are dropped)."""
    raw = metadata.get("ss_tag_frequency")
    if not raw:
        return ()
    try:
        obj = loads(raw)
    except (ValueError, TypeError):
        return ()
    counts: Counter[str] = Counter()
    for dataset in as_dict(obj).values():
        for raw_tag, count in as_dict(dataset).items():
            tag = _clean_tag(str(raw_tag))
            number = as_int(count) or 0
            if not tag or len(tag) > MAX_TAG_CHARS or len(tag.split()) > 5 or number <= 0:
                continue  # caption sentences are not tags
            counts[tag.lower()] += number
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(tag for tag, _ in ranked[:limit])


# ------------------------------------------------------------------------------------------
# Base model
# ------------------------------------------------------------------------------------------

_UNKNOWN_RAW = {"", "unknown", "other", "none", "null"}


def family_from_raw(raw: Any) -> str | None:
    """Map a raw base-model name (Civitai, WebUI, modelspec, kohya) to a family; None if unknown."""
    if not isinstance(raw, str):
        return None
    s = raw.strip().lower()
    if s in _UNKNOWN_RAW:
        return None
    if newer := basemodels.family_from_raw(raw):  # Civitai names and the newer architectures first
        return newer
    compact = re.sub(r"[\s_.\-/]+", "", s)
    if "pony" in compact:
        return "Pony"
    if "illustrious" in compact:
        return "Illustrious"
    if "noob" in compact:
        return "NoobAI"
    if "flux" in compact:
        return "Flux"
    if compact.startswith(("sd3", "stablediffusionv3", "stablediffusion3")):
        return "SD3"
    if "sdxl" in compact or compact.startswith("stablediffusionxl") or compact in ("xl", "sdxlbase"):
        return "SDXL"
    if compact.startswith(("sd2", "sdv2", "stablediffusionv2", "stablediffusion2")):
        return "SD2"
    if compact.startswith(("sd1", "sdv1", "stablediffusionv1", "stablediffusion1")):
        return "SD1"
    return None


def base_model(user: Mapping[str, Any], civitai: Mapping[str, Any],
               metadata: Mapping[str, str]) -> tuple[str, str]:
    """``(family, raw)`` with the WebUI's precedence: user ``.json`` "sd version" > Civitai
    ``baseModel`` > ``modelspec.architecture`` > ``ss_base_model_version`` (> ``ss_v2``) > unknown.

    A header-only SDXL guess is refined to Pony/Illustrious/NoobAI when the training base says so.
    """
    candidates = [
        (user.get("sd version"), False),
        (civitai.get("baseModel"), False),
        (metadata.get("modelspec.architecture"), True),
        (metadata.get("ss_base_model_version"), True),
    ]
    for raw, from_header in candidates:
        family = family_from_raw(raw)
        if family:
            if from_header and family == "SDXL":
                refined = family_from_raw(metadata.get("ss_sd_model_name"))
                if refined in ("Pony", "Illustrious", "NoobAI"):
                    return refined, f"{raw} ({metadata.get('ss_sd_model_name')})"
            return family, str(raw).strip()
    if str(metadata.get("ss_v2", "")).lower() == "true":
        return "SD2", "ss_v2"
    return "unknown", next((str(r).strip() for r, _ in candidates if isinstance(r, str) and r.strip()), "")


# ------------------------------------------------------------------------------------------
# Civitai JSON (shared by sidecars and card imports)
# ------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------
# Local files
# ------------------------------------------------------------------------------------------


def _preferred_weight(user: Mapping[str, Any], manager: Mapping[str, Any]) -> float | None:
    weight = as_float(user.get("preferred weight"))
    if weight is not None and weight != 0 and -5 <= weight <= 5:
        return weight  # 0 means "use the default"
    tips = manager.get("usage_tips")
    if isinstance(tips, str):
        try:
            tips = loads(tips)
        except ValueError:
            tips = {}
    weight = as_float(as_dict(tips).get("strength"))
    if weight is not None and weight != 0 and -5 <= weight <= 5:
        return weight
    return None


def local_card(path: str, *, size: int | None, mtime: float | None, header: Header | None,
               sidecars: Sidecars, source: str = "local") -> sdk.AdapterCard:
    """Card of an installed LoRA file. ``name`` is the file stem; ``alias`` is ``ss_output_name``
    when it differs (the catalog later makes the alias the name when it is unique)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    meta = header.metadata if header else {}
    user, manager = sidecars.user, sidecars.manager
    civitai = sidecars.civitai or as_dict(manager.get("civitai"))
    facts = civitai_facts(civitai) if civitai else civitai_facts({})
    problems = list(sidecars.problems)
    if header and header.problem:
        problems.insert(0, header.problem)

    family, raw = base_model(user, civitai, meta)
    if family == "unknown":
        lm_family = family_from_raw(manager.get("base_model"))
        if lm_family:
            family, raw = lm_family, str(manager.get("base_model"))
    if family == "unknown" and header is not None and not header.problem and (shaped := families.from_file(path)):
        family, raw = shaped  # no metadata: the tensor names and shapes tell

    raw_alias = meta.get("ss_output_name")
    alias = raw_alias if isinstance(raw_alias, str) and raw_alias.strip() else ""  # unstripped: as the WebUI sees it
    title = (facts["title"] or as_str(meta.get("modelspec.title")) or as_str(manager.get("model_name"))
             or alias.strip() or stem)
    descriptions = [html_to_text(user.get("description")), sidecars.text, html_to_text(user.get("notes")),
                    html_to_text(manager.get("modelDescription")), facts["description"],
                    html_to_text(meta.get("modelspec.description"))]
    description = "\n\n".join(unique(d for d in descriptions if d))[:MAX_DESCRIPTION]
    spec_tags = as_str(meta.get("modelspec.tags")).split(",")
    manager_tags = [t for t in as_list(manager.get("tags")) if isinstance(t, str)]
    activation = as_str(user.get("activation text"))
    triggers = clean_trigger_words([activation, *facts["trigger_words_raw"],
                                    as_str(meta.get("modelspec.trigger_phrase"))])
    model_id = facts["civitai_model_id"] or as_int(user.get("modelId")) or as_int(civitai.get("modelId"))
    return sdk.AdapterCard(
        source=source,
        name=stem,
        title=title,
        path=path,
        size=size,
        mtime=mtime,
        header_sha=header.header_sha if header else None,
        alias=alias if alias and alias != stem else None,
        name_problem=name_problem(stem),
        kind=facts["kind"] if civitai else "LORA",
        base_model=family,
        base_model_raw=raw,
        description=description,
        tags=unique([*facts["tags"], *(t.strip() for t in spec_tags), *manager_tags]),
        trigger_words=triggers,
        activation_text=activation,
        negative_text=as_str(user.get("negative text")),
        preferred_weight=_preferred_weight(user, manager),
        example_prompts=facts["example_prompts"],
        image_urls=facts["image_urls"],
        preview_path=sidecars.preview_path,
        training_tags=training_tags(meta),
        nsfw=bool(facts["nsfw"]),
        civitai_model_id=model_id,
        civitai_version_id=facts["civitai_version_id"],
        download_url=facts["download_url"],
        sha256=None,  # local hashes come only from hashing the file itself (hashing.py)
        autov3=None,
        file_size_kb=facts["file_size_kb"],
        problems=tuple(problems),
    )


def remote_name(facts: Mapping[str, Any], version: Mapping[str, Any]) -> str:
    """``<lora:NAME>`` a not-installed adapter will have: its primary file's stem when downloaded."""
    file_name = as_str(facts.get("file_name"))
    if file_name:
        return os.path.splitext(os.path.basename(file_name.replace("\\", "/")))[0]
    base = facts.get("title") or as_str(version.get("name")) or f"civitai_{facts.get('civitai_version_id')}"
    return re.sub(r"[^\w\-. ]+", "_", str(base)).strip(" _") or "unnamed"


def remote_card(version: Mapping[str, Any], model: Mapping[str, Any] | None = None, *,
                source: str = "civitai-json") -> sdk.AdapterCard:
    """Card of a not-installed adapter version from Civitai JSON."""
    facts = civitai_facts(version, model)
    name = remote_name(facts, version)
    family = family_from_raw(facts["base_model_raw"]) or "unknown"
    title = facts["title"] or name
    version_name = as_str(as_dict(version).get("name"))
    if version_name and facts["title"] and version_name.lower() not in facts["title"].lower():
        title = f"{facts['title']} ({version_name})"
    return sdk.AdapterCard(
        source=source, name=name, title=title, name_problem=name_problem(name), kind=facts["kind"],
        base_model=family, base_model_raw=facts["base_model_raw"],
        description=facts["description"][:MAX_DESCRIPTION], tags=facts["tags"],
        trigger_words=clean_trigger_words(facts["trigger_words_raw"]),
        example_prompts=facts["example_prompts"], image_urls=facts["image_urls"], nsfw=bool(facts["nsfw"]),
        civitai_model_id=facts["civitai_model_id"], civitai_version_id=facts["civitai_version_id"],
        download_url=facts["download_url"], sha256=facts["sha256"], autov3=facts["autov3"],
        file_size_kb=facts["file_size_kb"],
    )
