"""A LoRA's base-model family from its tensor names and shapes, for files without metadata.

The WebUIs match a LoRA's keys against the loaded model's modules; without a model we read the
same evidence from the safetensors header: the naming scheme (kohya ``lora_unet_*``, diffusers /
PEFT ``transformer.*``, BFL / ComfyUI ``diffusion_model.*``), which blocks exist, and the input
width of known layers (the ``lora_down`` / ``lora_A`` matrix is ``[rank, in_features]``).

Where the weights cannot tell variants apart (Flux.1 dev vs Krea, Wan 2.1 vs 2.2 14B, Z-Image
Turbo vs Base) the answer is an architecture-level family (``"Flux.1-type"`` ...), which
:mod:`stylus_ext.sdk.basemodels` treats as *partial* on every variant. ``None`` = no idea.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path

from stylus_ext.sdk.cards.header import MAX_HEADER_BYTES

Shapes = Mapping[str, Sequence[int]]
_DOWN = re.compile(r"(lora_down|lora_a)(_weight)?$")


def _norm(key: str) -> str:
    return key.lower().replace(".", "_")


def _in_width(keys: Mapping[str, Sequence[int]], pattern: str) -> int | None:
    """Input width of the first down/A matrix whose (normalised) key matches ``pattern``."""
    rx = re.compile(pattern)
    for key, shape in keys.items():
        if _DOWN.search(key) and rx.search(key) and len(shape) == 2:
            return int(shape[1])
    return None


def _out_width(keys: Mapping[str, Sequence[int]], pattern: str) -> int | None:
    rx = re.compile(pattern)
    for key, shape in keys.items():
        if re.search(r"(lora_up|lora_b)(_weight)?$", key) and rx.search(key) and len(shape) == 2:
            return int(shape[0])
    return None


def _any(keys: Mapping[str, object], pattern: str) -> bool:
    rx = re.compile(pattern)
    return any(rx.search(k) for k in keys)


def _unet_family(k: Mapping[str, Sequence[int]]) -> str | None:
    """SD1 / SD2 / SDXL (UNet and CLIP LoRAs)."""
    width = _in_width(k, r"attn2_to_k") or _in_width(k, r"attn2_to_v")
    if width in (768, 1024, 2048):
        return {768: "SD1", 1024: "SD2", 2048: "SDXL"}[width]
    if _any(k, r"lora_te2_|text_encoder_2|te2_text_model|label_emb|add_embedding|lora_unet_input_blocks_[4-8]_1_"):
        return "SDXL"
    te = _in_width(k, r"(lora_te_|text_encoder_|te_)(text_model_)?encoder_layers_\d+_(self_attn|mlp_fc1)")
    return {768: "SD1", 1024: "SD2"}.get(te or 0)


def _flux_family(k: Mapping[str, Sequence[int]]) -> str | None:
    """Flux.1 / Chroma / Flux.2 (BFL block names or diffusers names)."""
    width = (_in_width(k, r"double_blocks_\d+_img_attn_qkv") or _in_width(k, r"(^|_)transformer_blocks_\d+_attn_to_q")
             or _in_width(k, r"single(_transformer)?_blocks_\d+_(linear1|attn_to_q|proj_mlp)"))
    if width is None:
        return None
    mlp_out = _out_width(k, r"double_blocks_\d+_img_mlp_0") or _out_width(k, r"transformer_blocks_\d+_ff_net_0_proj")
    single_out = _out_width(k, r"single_blocks_\d+_linear1")
    flux2 = (mlp_out is not None and mlp_out == 6 * width) or (single_out is not None and single_out == 9 * width)
    if flux2 or width in (4096, 6144):
        return {3072: "Flux.2 Klein 4B-type", 4096: "Flux.2 Klein 9B-type"}.get(width, "Flux.2 D")
    if width != 3072:
        return None
    if _any(k, r"distilled_guidance_layer"):
        return "Chroma"
    if _any(k, r"(img_mod|txt_mod|modulation_lin|norm1_linear|norm1_context_linear|norm_linear)"):
        return "Flux"
    return "Flux.1-type"


def _dit_family(k: Mapping[str, Sequence[int]]) -> str | None:
    """The newer DiTs, each by the block names its reference implementation uses."""
    if _any(k, r"double_stream_blocks|single_stream_blocks"):
        return "HiDream"
    if _any(k, r"double_layers_\d+|single_layers_\d+|attn_w[12][qkvo]"):
        return "AuraFlow-type"
    if _any(k, r"joint_blocks_\d+_(x|context)_block"):
        width = _in_width(k, r"joint_blocks_\d+_(x|context)_block_attn_qkv")
        return "SD 3.5 Medium" if _any(k, r"x_block_attn2") else "SD3" if width == 2432 else "SD3-type"
    if _any(k, r"transformer_blocks_\d+_(img_mlp|txt_mlp|img_mod|txt_mod)"):
        return "Qwen"
    if _any(k, r"transformer_blocks_\d+_(attn_add_q_proj|ff_context)") and not _any(k, r"single_transformer_blocks"):
        width = _in_width(k, r"transformer_blocks_\d+_attn_to_q")
        return _flux_family(k) if width in (3072, 4096, 6144) else {1536: "SD3", 2432: "SD3"}.get(width or 0)
    if _any(k, r"(^|_)layers_\d+_(attention|feed_forward|adaln_modulation)|noise_refiner|context_refiner"):
        width = _in_width(k, r"layers_\d+_attention_(qkv|to_q)") or _in_width(k, r"layers_\d+_feed_forward_w[13]")
        return {2304: "Lumina", 3840: "Z-Image-type"}.get(width or 0)
    if _any(k, r"(^|_)blocks_\d+_(self_attn_[qkvo]|cross_attn_[qkvo])(_|$)(?!proj)") or _any(k, r"blocks_\d+_ffn_[02]"):
        width = _in_width(k, r"blocks_\d+_(self|cross)_attn_[qkv]_") or _in_width(k, r"blocks_\d+_ffn_0")
        return {5120: "Wan 14B-type", 1536: "Wan Video 1.3B t2v", 3072: "Wan Video 2.2 TI2V-5B"}.get(width or 0)
    if _any(k, r"blocks_\d+_(self_attn_q_proj|cross_attn_q_proj|mlp_layer1|adaln_modulation)|llm_adapter"):
        return "Anima"
    return None


def detect(shapes: Shapes) -> str | None:
    """The family of a LoRA whose tensors are ``{name: shape}`` (see the module doc), or None."""
    keys = {_norm(name): shape for name, shape in shapes.items() if name != "__metadata__"}
    if not keys:
        return None
    if _any(keys, r"double_blocks_\d+|single_blocks_\d+|single_transformer_blocks_\d+"):
        return _flux_family(keys)
    if _any(keys, r"down_blocks_\d+|up_blocks_\d+|mid_block|input_blocks_\d+|output_blocks_\d+|middle_block|"
                  r"lora_te[12]?_|text_encoder"):
        return _unet_family(keys)
    return _dit_family(keys)


def read_shapes(path: str | Path) -> dict[str, list[int]]:
    """``{tensor name: shape}`` from a safetensors header ({} when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return {}
            (length,) = struct.unpack("<Q", head)
            if not 2 <= length <= MAX_HEADER_BYTES:
                return {}
            obj = json.loads(fh.read(length).decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return {}
    if not isinstance(obj, dict):
        return {}
    return {k: list(v["shape"]) for k, v in obj.items()
            if isinstance(v, dict) and isinstance(v.get("shape"), list)}


def from_file(path: str | Path) -> tuple[str, str] | None:
    """``(family, raw)`` from the tensor names/shapes of a ``.safetensors`` LoRA, or None."""
    if not str(path).lower().endswith(".safetensors"):
        return None
    family = detect(read_shapes(path))
    return (family, f"tensor shapes ({family})") if family else None


def checkpoint_family(path: str | Path) -> str | None:
    """Family of a checkpoint (``.safetensors``) from its weight names and shapes: each 2-D weight
    ``[out, in]`` is read as a LoRA pair, so one rule set serves checkpoints and LoRAs."""
    shapes: dict[str, list[int]] = {}
    for name, shape in read_shapes(path).items():
        if name.endswith(".weight") and len(shape) == 2:
            stem = name[: -len(".weight")].removeprefix("model.").removeprefix("model.diffusion_model.")
            shapes[f"{stem}.lora_down.weight"] = [1, shape[1]]
            shapes[f"{stem}.lora_up.weight"] = [shape[0], 1]
    return detect(shapes)
