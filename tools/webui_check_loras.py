"""Tiny kohya-style LoRA files for ``tools/webui_check.py``: their metadata names the concepts its
prompts ask for, so Stylus really picks them and the WebUI really loads them ("Lora hashes").

Run with the WebUI venv's Python (torch, safetensors)::

    python tools/webui_check_loras.py WEBUI_DIR --te-width 32     # A1111 + the harness's tiny SD1 checkpoint
    python tools/webui_check_loras.py WEBUI_DIR --te-width 768    # Forge / Neo + build_tiny_forge_sd15.py

Writes into ``WEBUI_DIR/models/Lora``: nine SD1 LoRAs (some in ``styles/``, some with a ``.json``
activation text, one whose activation text is not in any prompt, so paste-back must strip appended
trigger words) and one SDXL LoRA in ``xl/`` that ``base_model=auto`` must keep off an SD1 model.
Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

#: stem, title, training tags, activation text ("" = none), subfolder ("xl" = an SDXL LoRA)
ADAPTERS = [
    ("ghibli_style", "Studio Ghibli Style", {"studio ghibli style": 30, "anime": 10, "scenery": 5}, "ghibli style",
     "styles"),
    ("watercolor_v2", "Watercolor Painting", {"watercolor": 40, "painting": 10, "traditional media": 5}, "", "styles"),
    ("origami_world", "Origami Paper Craft", {"origami": 40, "paper craft": 20, "folded paper": 5}, "origami",
     "styles"),
    ("claymation_style", "Claymation", {"claymation": 40, "clay": 20, "stop motion": 8}, "claymation", "styles"),
    ("pixel_art_xl", "Pixel Art", {"pixel art": 40, "8-bit": 10, "sprite": 5}, "pixel art", "styles"),
    ("steam_locomotive", "Steam Locomotive", {"steam locomotive": 30, "train": 20, "railway": 10}, "", ""),
    ("gothic_cathedral", "Gothic Cathedral Interior",
     {"gothic cathedral": 30, "church interior": 10, "stained glass": 8}, "", ""),
    ("castle_on_hill", "Fantasy Castle", {"castle": 30, "hill": 10, "fantasy": 8}, "", ""),
    ("ocean_waves", "Ocean Waves", {"ocean": 30, "sea": 20, "waves": 10}, "oceanwave style, foam", ""),
    ("watercolor_sdxl", "Watercolor XL", {"watercolor": 60, "watercolor painting": 30}, "", "xl"),
]


def layer_shapes(te_width: int) -> dict[str, tuple[int, int]]:
    """kohya key prefixes → (out, in): two text-encoder layers, two UNet attention layers."""
    te = {f"lora_te_text_model_encoder_layers_{n}_self_attn_{p}_proj": (te_width, te_width)
          for n in (0, 1) for p in ("q", "k", "v")}
    if te_width == 32:  # the harness's tiny SD1 UNet (ldm names)
        unet = {"lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q": (32, 32),
                "lora_unet_output_blocks_3_1_transformer_blocks_0_attn2_to_k": (32, 32)}
    else:  # the one-level SD15 UNet of build_tiny_forge_sd15.py (diffusers names)
        unet = {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q": (320, 320),
                "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k": (320, 768)}
    return {**te, **unet}


def write(webui: Path, te_width: int, checkpoint: str) -> int:
    import torch
    from safetensors.torch import save_file

    out = webui / "models" / "Lora"
    shapes = layer_shapes(te_width)
    for n, (stem, title, tags, activation, sub) in enumerate(ADAPTERS):
        g = torch.Generator().manual_seed(100 + n)
        sd = {}
        for prefix, (o, i) in shapes.items():
            sd[f"{prefix}.lora_down.weight"] = torch.randn(4, i, generator=g) * 0.3
            sd[f"{prefix}.lora_up.weight"] = torch.randn(o, 4, generator=g) * 0.3
            sd[f"{prefix}.alpha"] = torch.tensor(4.0)
        meta = {"ss_output_name": stem, "ss_network_module": "networks.lora", "ss_network_dim": "4",
                "ss_network_alpha": "4", "ss_base_model_version": "sd_v1", "ss_sd_model_name": checkpoint,
                "ss_tag_frequency": json.dumps({f"10_{stem}": tags}), "modelspec.title": title,
                "modelspec.architecture": "stable-diffusion-v1/lora", "modelspec.tags": ", ".join(tags)}
        if sub == "xl":  # SDXL: kohya's te1 names and SDXL markers
            meta.update({"ss_base_model_version": "sdxl_base_v1-0",
                         "modelspec.architecture": "stable-diffusion-xl-v1-base/lora"})
            sd = {k.replace("lora_te_", "lora_te1_"): v for k, v in sd.items()}
        folder = out / sub
        folder.mkdir(parents=True, exist_ok=True)
        save_file(sd, str(folder / f"{stem}.safetensors"), metadata=meta)
        if activation:
            (folder / f"{stem}.json").write_text(json.dumps(
                {"activation text": activation, "preferred weight": 0, "sd version": "SD1"}), encoding="utf-8")
    return len(ADAPTERS)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("webui", type=Path, help="the WebUI folder")
    ap.add_argument("--te-width", type=int, default=32, help="text-encoder width: 32 (tiny A1111 CLIP) or 768")
    ap.add_argument("--checkpoint", default="tinysd.safetensors", help="recorded as ss_sd_model_name")
    args = ap.parse_args(argv)
    print(f"wrote {write(args.webui, args.te_width, args.checkpoint)} LoRAs to {args.webui / 'models' / 'Lora'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
