"""One installed LoRA file → an :class:`~stylus_ext.sdk.AdapterCard` from its safetensors header and
sidecars (never raises for bad files: problems end up in ``card.problems``): the ``<lora:NAME>``
name, title, tags, trigger words, plain-text description, base-model family, preferred weight,
example prompts, training tags and Civitai ids.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from stylus_ext.sdk.basemodels import family_from_raw
from stylus_ext.sdk.cards import families
from stylus_ext.sdk.cards.civitai_json import civitai_facts
from stylus_ext.sdk.cards.fields import (
    MAX_DESCRIPTION,
    as_dict,
    as_float,
    as_int,
    as_list,
    as_str,
    clean_trigger_words,
    html_to_text,
    name_problem,
    training_tags,
    unique,
)
from stylus_ext.sdk.cards.fileio import loads
from stylus_ext.sdk.cards.header import Header, read_header
from stylus_ext.sdk.cards.sidecars import Sidecars, read_sidecars
from stylus_ext.sdk.records import AdapterCard


def read_lora_card(path: str, *, size: int | None = None, mtime: float | None = None,
                   siblings: Iterable[str] | None = None, source: str = "local") -> AdapterCard:
    """Card of the model file ``path``. ``.pt``/``.ckpt`` files are read by name and sidecars only.

    ``size``/``mtime`` default to the file's own; ``siblings`` (names in its folder) saves stats.
    """
    path = os.path.abspath(path)
    if size is None or mtime is None:
        try:
            st = os.stat(path)
            size = st.st_size if size is None else size
            mtime = st.st_mtime if mtime is None else mtime
        except OSError as exc:
            return AdapterCard(source=source, name=os.path.splitext(os.path.basename(path))[0], path=path,
                               problems=(f"cannot read: {exc.strerror or exc}",))
    header = read_header(path, size=size) if path.lower().endswith(".safetensors") else None
    return local_card(path, size=size, mtime=mtime, header=header, sidecars=read_sidecars(path, siblings),
                      source=source)


def local_card(path: str, *, size: int | None, mtime: float | None, header: Header | None,
               sidecars: Sidecars, source: str = "local") -> AdapterCard:
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
    family, raw = _family(path, header, sidecars, civitai)
    raw_alias = meta.get("ss_output_name")
    alias = raw_alias if isinstance(raw_alias, str) and raw_alias.strip() else ""  # unstripped: as the WebUI sees it
    title = (facts["title"] or as_str(meta.get("modelspec.title")) or as_str(manager.get("model_name"))
             or alias.strip() or stem)
    activation = as_str(user.get("activation text"))
    triggers = clean_trigger_words([activation, *facts["trigger_words_raw"],
                                    as_str(meta.get("modelspec.trigger_phrase"))])
    model_id = facts["civitai_model_id"] or as_int(user.get("modelId")) or as_int(civitai.get("modelId"))
    return AdapterCard(
        source=source, name=stem, title=title, path=path, size=size, mtime=mtime,
        header_sha=header.header_sha if header else None, alias=alias if alias and alias != stem else None,
        name_problem=name_problem(stem), kind=facts["kind"] if civitai else "LORA",
        base_model=family, base_model_raw=raw, description=_description(meta, sidecars, facts),
        tags=_tags(meta, manager, facts), trigger_words=triggers, activation_text=activation,
        negative_text=as_str(user.get("negative text")), preferred_weight=_preferred_weight(user, manager),
        example_prompts=facts["example_prompts"], image_urls=facts["image_urls"], preview_path=sidecars.preview_path,
        training_tags=training_tags(meta), nsfw=bool(facts["nsfw"]), civitai_model_id=model_id,
        civitai_version_id=facts["civitai_version_id"], download_url=facts["download_url"],
        sha256=None,  # local hashes come only from hashing the file itself (catalog hashing)
        autov3=None, file_size_kb=facts["file_size_kb"], problems=tuple(problems),
    )


def _family(path: str, header: Header | None, sidecars: Sidecars, civitai: Mapping[str, Any]) -> tuple[str, str]:
    """``(family, raw)``: the sidecars and header (:func:`base_model`), then LoRA Manager's
    ``base_model``, then — with no metadata at all — the tensor names and shapes."""
    family, raw = base_model(sidecars.user, civitai, header.metadata if header else {})
    if family == "unknown":
        lm_family = family_from_raw(sidecars.manager.get("base_model"))
        if lm_family:
            family, raw = lm_family, str(sidecars.manager.get("base_model"))
    if family == "unknown" and header is not None and not header.problem and (shaped := families.from_file(path)):
        family, raw = shaped
    return family, raw


def _description(meta: Mapping[str, str], sidecars: Sidecars, facts: Mapping[str, Any]) -> str:
    user, manager = sidecars.user, sidecars.manager
    descriptions = [html_to_text(user.get("description")), sidecars.text, html_to_text(user.get("notes")),
                    html_to_text(manager.get("modelDescription")), facts["description"],
                    html_to_text(meta.get("modelspec.description"))]
    return "\n\n".join(unique(d for d in descriptions if d))[:MAX_DESCRIPTION]


def _tags(meta: Mapping[str, str], manager: Mapping[str, Any], facts: Mapping[str, Any]) -> tuple[str, ...]:
    spec_tags = as_str(meta.get("modelspec.tags")).split(",")
    manager_tags = [t for t in as_list(manager.get("tags")) if isinstance(t, str)]
    return unique([*facts["tags"], *(t.strip() for t in spec_tags), *manager_tags])


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
