"""A LoRA folder built from a table of a real user's installed LoRAs (names, triggers, weights, bases).

The rows look like ``../shared/data/sd_tools_user_lora_table.json`` (190 mostly anime-character
LoRAs, Pony and SD1.5): ``lora_name``, ``character_trigger_tags``, ``outfit_trigger_tags``,
``recommended_weight``, ``base_models``. Each row becomes a tiny real ``.safetensors`` file with a
kohya-style header plus the WebUI's ``<stem>.json`` user metadata — what such a user's folder holds
when no Civitai card was ever downloaded (no title, no description: the hard, common case).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from stylus_ext.sample import MTIME, _canonical, _tensors

_BASES = {  # table base model → (sample base key, ss_sd_model_name, WebUI "sd version")
    "Pony": ("pony", "ponyDiffusionV6XL_v6StartWithThisOne.safetensors", "SDXL"),
    "SD1.5": ("sd15", "v1-5-pruned-emaonly.safetensors", "SD1"),
    "SDXL": ("sdxl", "sd_xl_base_1.0.safetensors", "SDXL"),
    "Illustrious": ("illustrious", "illustriousXL_v01.safetensors", "SDXL"),
}


def folder_from_table(items: Iterable[Mapping[str, Any]], dest: str | os.PathLike[str]) -> Path:
    """Write one adapter per row into ``dest``; rows without a usable ``lora_name`` are skipped."""
    from safetensors.numpy import save

    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    for index, row in enumerate(items):
        stem = str(row.get("lora_name") or "").strip()
        if not stem or "/" in stem or "\\" in stem:
            continue
        base = (row.get("base_models") or ["SD1.5"])[0]
        key, ckpt, sd_version = _BASES.get(base, _BASES["SD1.5"])
        characters = [str(t) for t in row.get("character_trigger_tags") or []]
        outfits = [str(t) for t in row.get("outfit_trigger_tags") or []]
        tags = {t.lower(): 50 - i for i, t in enumerate([*characters, *outfits, "1girl", "solo"])}
        meta = {
            "ss_output_name": stem,
            "ss_network_module": "networks.lora",
            "ss_network_dim": "4",
            "ss_network_alpha": "4",
            "ss_base_model_version": "sd_v1" if key == "sd15" else "sdxl_base_v1-0",
            "ss_sd_model_name": ckpt,
            "ss_tag_frequency": json.dumps({f"10_{stem}": tags}, sort_keys=True),
        }
        files = {
            root / f"{stem}.safetensors": _canonical(save(_tensors(index, key), metadata=meta)),
            root / f"{stem}.json": json.dumps({
                "activation text": ", ".join([*characters, *outfits]),
                "preferred weight": float(row.get("recommended_weight") or 0),
                "sd version": sd_version,
                "description": "", "notes": str(row.get("civitai_url") or ""),
            }, indent=2, sort_keys=True).encode("utf-8"),
        }
        for path, data in files.items():
            path.write_bytes(data)
            os.utime(path, (MTIME, MTIME))
    return root


def _norm(tag: str) -> str:
    return " ".join(tag.replace("_", " ").lower().split())


def character_prompts(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Labelled tag-style prompts: one per distinct character (its trigger plus generic tags), with
    the stems of every adapter of that character (a character often has several versions), and
    prompts naming no character (no character adapter may be chosen)."""
    by_char: dict[str, dict[str, Any]] = {}
    for row in items:
        stem = str(row.get("lora_name") or "").strip()
        for tag in row.get("character_trigger_tags") or []:
            entry = by_char.setdefault(_norm(str(tag)), {"trigger": str(tag), "stems": set(),
                                                           "base": (row.get("base_models") or ["SD1.5"])[0]})
            entry["stems"].add(stem)
    prompts = []
    for key in sorted(by_char):
        entry = by_char[key]
        quality = "score_9, score_8_up, " if entry["base"] == "Pony" else "masterpiece, best quality, "
        prompts.append({"prompt": f"{quality}1girl, {entry['trigger']}, smile, standing, outdoors",
                        "base_model": "Pony" if entry["base"] == "Pony" else "SD1",
                        "expected": sorted(entry["stems"]), "character": key})
    for base in ("Pony", "SD1"):
        for body in ("1girl, smile, standing, outdoors, blue sky", "a girl reading a book in a library",
                     "1boy, sword, armor, castle, night"):
            prompts.append({"prompt": body, "base_model": base, "expected": [], "character": ""})
    return prompts


def evaluate(compose: Any, prompts: Iterable[Mapping[str, Any]], character_stems: set[str]) -> dict[str, float]:
    """Score ``compose(prompt, base_model) -> list of chosen stems`` on :func:`character_prompts`.

    ``hit``: named character's adapter chosen; ``wrong``: another character's adapter chosen;
    ``unnamed``: a character adapter chosen for a prompt that names no character.
    """
    named = hits = wrong = unnamed_prompts = unnamed = 0
    for item in prompts:
        chosen = set(compose(item["prompt"], item["base_model"]))
        others = (chosen & character_stems) - set(item["expected"])
        if item["expected"]:
            named += 1
            hits += bool(chosen & set(item["expected"]))
            wrong += bool(others)
        else:
            unnamed_prompts += 1
            unnamed += bool(others)
    return {"prompts": named + unnamed_prompts, "hit": hits / max(1, named),
            "wrong": wrong / max(1, named), "unnamed": unnamed / max(1, unnamed_prompts)}
