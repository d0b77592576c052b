"""Helpers for the catalog tests: tiny real safetensors LoRA files with kohya-style headers,
sidecars, Civitai JSON, and raw hostile files."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file


def kohya_metadata(output_name: str = "", base: str = "sd_v1", tags: dict[str, int] | None = None,
                   **extra: str) -> dict[str, str]:
    meta = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": "4",
        "ss_network_alpha": "1",
        "ss_base_model_version": base,
        "ss_sd_model_name": "v1-5-pruned-emaonly.safetensors",
        "ss_tag_frequency": json.dumps({"10_img": tags or {"red hair": 12, "1girl": 30, "smile": 4}}),
    }
    if output_name:
        meta["ss_output_name"] = output_name
    meta.update(extra)
    return meta


def write_lora(path: Path, metadata: dict[str, str] | None = None, *, seed: int = 0, rows: int = 4) -> Path:
    """A real (tiny) LoRA: two tensors, kohya-style metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    key = "lora_unet_down_blocks_0_attentions_0_proj_in"
    tensors = {
        f"{key}.lora_down.weight": rng.standard_normal((rows, 8)).astype(np.float32),
        f"{key}.lora_up.weight": rng.standard_normal((8, rows)).astype(np.float32),
    }
    save_file(tensors, str(path), metadata=metadata if metadata is not None else kohya_metadata())
    return path


def write_raw(path: Path, header_len: int, header: bytes = b"", tail: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", header_len) + header + tail)
    return path


def write_json(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def civitai_version(version_id: int, model_id: int, *, name: str = "Watercolor Style", base: str = "SD 1.5",
                    file_name: str = "watercolor_v1.safetensors", sha256: str | None = None,
                    autov3: str | None = None, words: list[str] | None = None, nsfw: bool = False) -> dict[str, Any]:
    hashes: dict[str, str] = {}
    if sha256:
        hashes["SHA256"] = sha256.upper()
    if autov3:
        hashes["AutoV3"] = autov3.upper()
    return {
        "id": version_id, "modelId": model_id, "name": "v1.0", "baseModel": base,
        "description": "<p>Version notes &amp; <b>fixes</b></p>",
        "trainedWords": words if words is not None else ["wtrclr", "watercolor painting"],
        "downloadUrl": f"https://civitai.com/api/download/models/{version_id}",
        "model": {"name": name, "type": "LORA", "nsfw": nsfw},
        "files": [{"name": file_name, "primary": True, "sizeKB": 1234.5, "hashes": hashes,
                   "downloadUrl": f"https://civitai.com/api/download/models/{version_id}"}],
        "images": [{"url": f"https://image.civitai.com/{version_id}/1.jpeg", "nsfwLevel": 1,
                    "meta": {"prompt": "a watercolor painting of a fox, <lora:watercolor_v1:0.7>",
                             "negativePrompt": "ugly, blurry"}},
                   {"url": f"https://image.civitai.com/{version_id}/2.jpeg", "meta": None}],
    }


def civitai_model(model_id: int, versions: list[dict[str, Any]], *, name: str = "Watercolor Style",
                  kind: str = "LORA") -> dict[str, Any]:
    for v in versions:
        v.pop("model", None)
        v.pop("modelId", None)
    return {"id": model_id, "name": name, "type": kind, "nsfw": False,
            "description": "<p>Soft <i>watercolor</i> look.</p><ul><li>weight 0.7</li></ul>",
            "tags": ["style", "watercolor"], "modelVersions": versions}


def touch(path: Path, delta: float = 10.0) -> None:
    st = path.stat()
    os.utime(path, (st.st_atime + delta, st.st_mtime + delta))
