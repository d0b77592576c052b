"""The embedded sample LoRA folder: ~60 tiny but real adapters, made on demand, byte-identical every time.

``make_sample_folder(dest)`` writes kohya-style ``.safetensors`` files (a few rank-4 tensors and a
realistic ``__metadata__``), WebUI ``<stem>.json`` and Civitai Helper ``<stem>.civitai.info``
sidecars, some ``.txt`` descriptions, a few preview PNGs and some deliberately broken files, so
``stylus demo`` and the tests exercise the real file formats without any download.
The adapter definitions live in :mod:`stylus_ext.sample.adapters`.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from stylus_ext.sample.adapters import ADAPTERS, BROKEN, Entry

#: Fixed modification time of every file (2024-05-01 12:00 UTC): rescans see no change.
MTIME = 1714564800

BASES: dict[str, dict[str, Any]] = {
    "sd15": {"civitai": "SD 1.5", "ss": "sd_v1", "ckpt": "v1-5-pruned-emaonly.safetensors",
             "arch": "stable-diffusion-v1/lora", "sd": "SD1", "unet": "down_blocks_{b}_attentions_0", "width": 320},
    "sdxl": {"civitai": "SDXL 1.0", "ss": "sdxl_base_v1-0", "ckpt": "sd_xl_base_1.0.safetensors",
             "arch": "stable-diffusion-xl-v1-base/lora", "sd": "SDXL", "unet": "input_blocks_{b}_1", "width": 640},
    "pony": {"civitai": "Pony", "ss": "sdxl_base_v1-0", "ckpt": "ponyDiffusionV6XL_v6StartWithThisOne.safetensors",
             "arch": "stable-diffusion-xl-v1-base/lora", "sd": "SDXL", "unet": "input_blocks_{b}_1", "width": 640},
    "illustrious": {"civitai": "Illustrious", "ss": "sdxl_base_v1-0", "ckpt": "illustriousXL_v01.safetensors",
                    "arch": "stable-diffusion-xl-v1-base/lora", "sd": "SDXL", "unet": "input_blocks_{b}_1",
                    "width": 640},
}
QUALITY = {"sd15": "masterpiece, best quality", "sdxl": "high quality, detailed",
           "illustrious": "masterpiece, best quality", "pony": "score_9, score_8_up, score_7_up"}
NEGATIVE = "lowres, bad anatomy, worst quality, watermark"
PREVIEW_STEMS = ("watercolor_style_v2", "corgi_dog", "medieval_castle", "pixel_art_xl")
TXT_NAMES = ("txt", "description.txt")


def make_sample_folder(dest: str | os.PathLike[str]) -> Path:
    """Write the sample LoRA folder into ``dest`` (created if needed) and return its path.

    Deterministic: the same bytes and mtimes every time, so a rescan after a re-make changes nothing.
    Existing files of the same names are overwritten; other files in ``dest`` are left alone.
    """
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for index, entry in enumerate(ADAPTERS):
        written += _write_adapter(root, index, entry)
    written += _write_broken(root)
    for path in written:
        os.utime(path, (MTIME, MTIME))
    return root


# -- one adapter ------------------------------------------------------------------------------


def _write_adapter(root: Path, index: int, entry: Entry) -> list[Path]:
    stem, title, base, category, _tags, triggers, description, prompts, extra = entry
    info = BASES[base]
    sub = root / ("SDXL" if info["sd"] == "SDXL" else "SD15") / category
    sub.mkdir(parents=True, exist_ok=True)
    alias = extra.get("alias")
    prompt_name = extra.get("prompt_name") or alias or stem
    weight = float(extra.get("w", 0.8))
    nsfw = bool(extra.get("nsfw"))
    has_info, has_json, has_spec = index % 4 != 3, index % 2 == 0, index % 3 == 0
    text = description
    if extra.get("weight_in_text") or index % 5 == 1:
        text += f" Recommended weight: {weight:g}."

    model_path = sub / f"{stem}.safetensors"
    model_path.write_bytes(_safetensors(index, entry, alias or stem, has_spec, text))
    paths = [model_path]

    examples = [_example_prompt(base, p, prompt_name, weight + (0.1 if i % 2 else 0.0))
                for i, p in enumerate(prompts)]
    if has_json:
        webui = {
            "description": text if not has_info else "",
            "sd version": info["sd"],
            "activation text": ", ".join(triggers),
            "preferred weight": weight if index % 4 == 0 and "w" in extra else 0,
            "negative text": "lowres, blurry" if index % 6 == 0 else "",
            "notes": "",
        }
        paths.append(_write_json(sub / f"{stem}.json", webui))
    if has_info:
        paths.append(_write_json(sub / f"{stem}.civitai.info",
                                 _civitai_info(index, entry, text, examples, model_path.read_bytes(), nsfw)))
    if not has_info and not has_json:
        name = TXT_NAMES[(index // 4) % 2]
        path = sub / f"{stem}.{name}"
        path.write_text(f"{title}\n\n{text}\n", encoding="utf-8", newline="\n")
        paths.append(path)
    if stem in PREVIEW_STEMS:
        path = sub / f"{stem}.preview.png" if index % 2 else sub / f"{stem}.png"
        path.write_bytes(_png(index))
        paths.append(path)
    return paths


def _example_prompt(base: str, body: str, name: str, weight: float) -> str:
    return f"{QUALITY[base]}, {body}, <lora:{name}:{round(weight, 2):g}>"


def _tensors(index: int, base: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1000 + index)
    info = BASES[base]
    tensors: dict[str, np.ndarray] = {}
    for block in (0, 1):
        unet = info["unet"].format(b=block if base == "sd15" else 4 + 3 * block)
        prefix = f"lora_unet_{unet}_transformer_blocks_0_attn1_to_q"
        tensors[f"{prefix}.lora_down.weight"] = rng.standard_normal((4, 32)).astype(np.float16) * np.float16(0.05)
        tensors[f"{prefix}.lora_up.weight"] = rng.standard_normal((32, 4)).astype(np.float16) * np.float16(0.01)
        tensors[f"{prefix}.alpha"] = np.array(4.0, dtype=np.float16)
    te = ("lora_te1_text_model" if base != "sd15" else "lora_te_text_model") + "_encoder_layers_0_self_attn_q_proj"
    tensors[f"{te}.lora_down.weight"] = rng.standard_normal((4, 16)).astype(np.float16)
    tensors[f"{te}.lora_up.weight"] = np.zeros((16, 4), dtype=np.float16)
    tensors[f"{te}.alpha"] = np.array(4.0, dtype=np.float16)
    return tensors


def _tag_frequency(entry: Entry) -> dict[str, dict[str, int]]:
    stem, _title, _base, _cat, tags, triggers, _desc, prompts, _extra = entry
    counts: dict[str, int] = {}
    words = [t.strip() for p in prompts for t in p.split(",")] + list(triggers)
    for rank, raw in enumerate(words):
        word = raw.strip().lower()
        if word:
            counts[word] = counts.get(word, 0) + 40 - min(rank, 30)
    for tag in tags[1:]:
        counts.setdefault(tag, 5)
    return {f"10_{stem.split('_')[0]}": counts}


def _safetensors(index: int, entry: Entry, output_name: str, has_spec: bool, text: str) -> bytes:
    from safetensors.numpy import save

    _stem, title, base, _cat, tags, triggers, _desc, _prompts, _extra = entry
    info = BASES[base]
    meta = {
        "ss_output_name": output_name,
        "ss_network_module": "networks.lora",
        "ss_network_dim": "4",
        "ss_network_alpha": "4",
        "ss_base_model_version": info["ss"],
        "ss_sd_model_name": info["ckpt"],
        "ss_v2": "False",
        "ss_num_train_images": str(20 + index),
        "ss_num_epochs": "10",
        "ss_learning_rate": "0.0001",
        "ss_resolution": "(512, 512)" if base == "sd15" else "(1024, 1024)",
        "ss_training_comment": "",
        "ss_tag_frequency": json.dumps(_tag_frequency(entry), sort_keys=True),
    }
    if has_spec:
        meta.update({
            "modelspec.sai_model_spec": "1.0.0",
            "modelspec.architecture": info["arch"],
            "modelspec.implementation": "https://github.com/Stability-AI/generative-models",
            "modelspec.title": title,
            "modelspec.description": text,
            "modelspec.tags": ", ".join(tags),
            "modelspec.trigger_phrase": ", ".join(triggers),
        })
    return _canonical(save(_tensors(index, base), metadata=meta))


def _canonical(blob: bytes) -> bytes:
    """Re-serialise a safetensors header with sorted keys (the writer's key order is random)."""
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    raw = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + blob[8 + n:]


def _civitai_info(index: int, entry: Entry, text: str, examples: list[str], blob: bytes,  # noqa: PLR0917
                  nsfw: bool) -> dict[str, Any]:
    stem, title, base, _cat, _tags, triggers, _desc, _prompts, _extra = entry
    (n,) = struct.unpack("<Q", blob[:8])
    model_id, version_id = 700000 + 37 * index, 1700000 + 53 * index
    paragraphs = "".join(f"<p>{p.strip().rstrip('.')}.</p>" for p in text.split(". ") if p.strip())
    return {
        "id": version_id,
        "modelId": model_id,
        "name": "v1.0" if index % 3 else "v2.0",
        "baseModel": BASES[base]["civitai"],
        "trainedWords": list(triggers),
        "description": f"<h3>{title}</h3>{paragraphs}<p><br></p>",
        "model": {"name": title, "type": "LORA", "nsfw": nsfw, "poi": entry[3] == "celebrity"},
        "files": [{
            "name": f"{stem}.safetensors", "sizeKB": round(len(blob) / 1024, 3), "type": "Model", "primary": True,
            "hashes": {"SHA256": hashlib.sha256(blob).hexdigest().upper(),
                       "AutoV2": hashlib.sha256(blob).hexdigest()[:10].upper(),
                       "AutoV3": hashlib.sha256(blob[8 + n:]).hexdigest()[:12].upper()},
            "downloadUrl": f"https://civitai.com/api/download/models/{version_id}",
        }],
        "images": [{"url": f"https://image.civitai.com/sample/{version_id}-{i}.jpeg", "nsfwLevel": 4 if nsfw else 1,
                    "width": 512, "height": 768,
                    "meta": {"prompt": p, "negativePrompt": NEGATIVE, "seed": 1000 + i, "steps": 25, "cfgScale": 7}}
                   for i, p in enumerate(examples)],
        "downloadUrl": f"https://civitai.com/api/download/models/{version_id}",
    }


def _write_json(path: Path, obj: Any) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8", newline="\n")
    return path


def _png(index: int, size: int = 8) -> bytes:
    """A tiny solid-colour RGB PNG (stdlib only)."""
    rgb = bytes(((index * 67) % 256, (index * 131) % 256, (index * 29) % 256))
    raw = b"".join(b"\x00" + rgb * size for _ in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


# -- broken files -----------------------------------------------------------------------------


def _write_broken(root: Path) -> list[Path]:
    folder = root / "broken"
    folder.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []

    def put(name: str, data: bytes) -> None:
        path = folder / name
        path.write_bytes(data)
        out.append(path)

    put("broken_truncated.safetensors", struct.pack("<Q", 4096) + b'{"__metadata__":{"ss_output_name":"trunc')
    put("hostile_header.safetensors", struct.pack("<Q", 2**63) + b"{}" + b"\x00" * 30)
    garbled = b'{"__metadata__":{"ss_output_name":"\xff\xfe\xfa"}' + b" " * 5
    put("garbled_header.safetensors", struct.pack("<Q", len(garbled)) + garbled)
    put("old_embedding_lora.pt", b"PK\x03\x04" + bytes(range(60)))
    # A valid adapter whose WebUI sidecar is not JSON, and whose .civitai.info has wrong types.
    from safetensors.numpy import save

    entry: Entry = ("bad_sidecar_style", "Charcoal Drawing", "sd15", "style", ("style", "charcoal", "drawing"),
                    ("charcoal drawing",), "Rough charcoal drawing with smudges on toned paper.",
                    ("charcoal drawing, a dancer",), {})
    meta = {"ss_output_name": "bad_sidecar_style", "ss_base_model_version": "sd_v1",
            "ss_network_module": "networks.lora", "ss_tag_frequency": json.dumps(_tag_frequency(entry), sort_keys=True)}
    put("bad_sidecar_style.safetensors", _canonical(save(_tensors(999, "sd15"), metadata=meta)))
    put("bad_sidecar_style.json", b'{"activation text": "charcoal drawing", "preferred weight": 0.7,,}')
    put("bad_sidecar_style.civitai.info", json.dumps({"trainedWords": "charcoal drawing", "baseModel": 15,
                                                      "images": "none", "model": ["LORA"]}).encode())
    return out


__all__ = ["ADAPTERS", "BROKEN", "MTIME", "make_sample_folder"]
