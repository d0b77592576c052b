"""A labelled set of LoRA tensor layouts (name → shape), for measuring family detection.

Each family is written in the naming schemes trainers really use (kohya ``lora_unet_*``,
diffusers/PEFT ``transformer.*.lora_A``, BFL/ComfyUI ``diffusion_model.*``) with the model's
layer widths, a random rank, a random subset of blocks and modules, and sometimes text-encoder
keys only: what a metadata-free file in a user's folder looks like. Seeded: the same set every run.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

Shapes = dict[str, list[int]]


def _pair(out: Shapes, base: str, din: int, dout: int, r: int, scheme: str) -> None:
    if scheme == "kohya":
        out[f"{base}.lora_down.weight"] = [r, din]
        out[f"{base}.lora_up.weight"] = [dout, r]
        out[f"{base}.alpha"] = []
    else:
        out[f"{base}.lora_A.weight"] = [r, din]
        out[f"{base}.lora_B.weight"] = [dout, r]


def _k(name: str, scheme: str, prefix: str) -> str:
    """``name`` with dots, in kohya form (``lora_unet_`` + underscores) or with a prefix."""
    return "lora_unet_" + name.replace(".", "_") if scheme == "kohya" else prefix + name


def _clip(out: Shapes, rng: random.Random, width: int, tag: str, r: int) -> None:
    for i in rng.sample(range(12), 4):
        for m in ("q_proj", "k_proj", "v_proj", "out_proj"):
            _pair(out, f"lora_{tag}_text_model_encoder_layers_{i}_self_attn_{m}", width, width, r, "kohya")


def _sd_unet(rng: random.Random, ctx: int, sdxl: bool, te: tuple[int, ...]) -> Shapes:
    out: Shapes = {}
    r = rng.choice([4, 8, 16, 32])
    scheme = rng.choice(["kohya", "kohya", "peft"])
    mode = rng.choice(["both", "both", "unet", "te"]) if te else "unet"
    if mode != "te":
        blocks = [(4, 640), (5, 640), (7, 1280), (8, 1280)] if sdxl else [(1, 320), (2, 640), (4, 1280)]
        for b, ch in rng.sample(blocks, 2):
            stem = (f"input_blocks.{b}.1.transformer_blocks.0" if sdxl and scheme == "kohya"
                    else f"down_blocks.{b // 3}.attentions.{b % 2}.transformer_blocks.0")
            for attn in ("attn1", "attn2"):
                for m in ("to_q", "to_k", "to_v", "to_out.0"):
                    din = ctx if attn == "attn2" and m in ("to_k", "to_v") else ch
                    _pair(out, _k(f"{stem}.{attn}.{m}", scheme, "unet."), din, ch, r, scheme)
    if mode != "unet" and scheme == "kohya":
        if len(te) == 1:
            _clip(out, rng, te[0], "te", r)
        else:
            _clip(out, rng, te[0], "te1", r)
            _clip(out, rng, te[1], "te2", r)
    if not out:  # a PEFT file in "te" mode: fall back to the UNet
        return _sd_unet(rng, ctx, sdxl, ())
    return out


def _flux(rng: random.Random, width: int, flux2: bool, mods: bool, extra: str = "") -> Shapes:
    out: Shapes = {}
    r = rng.choice([4, 8, 16, 32, 64])
    scheme = rng.choice(["kohya", "bfl", "peft"])
    mlp = 6 * width if flux2 else 4 * width
    lin1 = 9 * width if flux2 else 7 * width
    n_double, n_single = (8, 48) if flux2 else (19, 38)
    if scheme == "peft":
        for i in rng.sample(range(n_double), 3):
            for m in ("attn.to_q", "attn.to_k", "attn.add_q_proj"):
                _pair(out, f"transformer.transformer_blocks.{i}.{m}", width, width, r, scheme)
            _pair(out, f"transformer.transformer_blocks.{i}.ff.net.0.proj", width, mlp, r, scheme)
            if mods:
                _pair(out, f"transformer.transformer_blocks.{i}.norm1.linear", width, 6 * width, r, scheme)
        for i in rng.sample(range(n_single), 3):
            _pair(out, f"transformer.single_transformer_blocks.{i}.attn.to_q", width, width, r, scheme)
        return out
    prefix = "diffusion_model."
    for i in rng.sample(range(n_double), 3):
        _pair(out, _k(f"double_blocks.{i}.img_attn.qkv", scheme, prefix), width, 3 * width, r, scheme)
        _pair(out, _k(f"double_blocks.{i}.img_mlp.0", scheme, prefix), width, mlp, r, scheme)
        if mods:
            _pair(out, _k(f"double_blocks.{i}.img_mod.lin", scheme, prefix), width, 6 * width, r, scheme)
    for i in rng.sample(range(n_single), 4):
        _pair(out, _k(f"single_blocks.{i}.linear1", scheme, prefix), width, lin1, r, scheme)
    if extra:
        _pair(out, _k(extra, scheme, prefix), 64, width, r, scheme)
    return out


def _blocks(rng: random.Random, names: list[tuple[str, int, int]], count: int, prefix: str = "diffusion_model.",
            kohya: bool = True) -> Shapes:
    out: Shapes = {}
    r = rng.choice([4, 8, 16, 32])
    scheme = rng.choice(["kohya", "bfl", "peft"] if kohya else ["bfl", "peft"])
    for i in rng.sample(range(count), 3):
        for name, din, dout in rng.sample(names, max(1, len(names) - 1)):
            _pair(out, _k(name.format(i=i), scheme, prefix), din, dout, r, scheme)
    return out


def _qwen(rng: random.Random) -> Shapes:
    w = 3072
    return _blocks(rng, [("transformer_blocks.{i}.attn.to_q", w, w), ("transformer_blocks.{i}.attn.add_q_proj", w, w),
                         ("transformer_blocks.{i}.img_mlp.net.0.proj", w, 4 * w),
                         ("transformer_blocks.{i}.txt_mlp.net.0.proj", w, 4 * w)], 60, prefix="transformer.")


def _lumina_like(rng: random.Random, w: int) -> Shapes:
    return _blocks(rng, [("layers.{i}.attention.qkv", w, 3 * w), ("layers.{i}.attention.out", w, w),
                         ("layers.{i}.feed_forward.w1", w, 4 * w), ("layers.{i}.feed_forward.w3", w, 4 * w)], 26)


def _wan(rng: random.Random, w: int, i2v: bool) -> Shapes:
    names = [("blocks.{i}.self_attn.q", w, w), ("blocks.{i}.self_attn.k", w, w), ("blocks.{i}.cross_attn.q", w, w),
             ("blocks.{i}.ffn.0", w, 4 * w)]
    if i2v:
        names.append(("blocks.{i}.cross_attn.k_img", w, w))
    return _blocks(rng, names, 30)


GENERATORS: dict[str, Callable[[random.Random], Shapes]] = {
    "SD1": lambda g: _sd_unet(g, 768, False, (768,)),
    "SD2": lambda g: _sd_unet(g, 1024, False, (1024,)),
    "SDXL": lambda g: _sd_unet(g, 2048, True, (768, 1280)),
    "Pony": lambda g: _sd_unet(g, 2048, True, (768, 1280)),
    "Illustrious": lambda g: _sd_unet(g, 2048, True, (768, 1280)),
    "NoobAI": lambda g: _sd_unet(g, 2048, True, (768, 1280)),
    "Flux": lambda g: _flux(g, 3072, False, mods=g.random() < 0.5),
    "Flux.1 Krea": lambda g: _flux(g, 3072, False, mods=g.random() < 0.5),
    "Chroma": lambda g: _flux(g, 3072, False, mods=False,
                              extra="distilled_guidance_layer.in_proj" if g.random() < 0.3 else ""),
    "Flux.2 D": lambda g: _flux(g, 6144, True, mods=False),
    "Flux.2 Klein 9B": lambda g: _flux(g, 4096, True, mods=False),
    "Flux.2 Klein 4B": lambda g: _flux(g, 3072, True, mods=False),
    "Qwen": _qwen,
    "ZImageTurbo": lambda g: _lumina_like(g, 3840),
    "ZImageBase": lambda g: _lumina_like(g, 3840),
    "Lumina": lambda g: _lumina_like(g, 2304),
    "HiDream": lambda g: _blocks(g, [("double_stream_blocks.{i}.block.attn1.to_q", 2560, 2560),
                                     ("single_stream_blocks.{i}.block.attn1.to_q", 2560, 2560)], 16),
    "Wan Video 14B t2v": lambda g: _wan(g, 5120, False),
    "Wan Video 2.2 T2V-A14B": lambda g: _wan(g, 5120, False),
    "Wan Video 14B i2v 480p": lambda g: _wan(g, 5120, True),
    "Wan Video 1.3B t2v": lambda g: _wan(g, 1536, False),
    "Wan Video 2.2 TI2V-5B": lambda g: _wan(g, 3072, False),
    "Anima": lambda g: _blocks(g, [("blocks.{i}.self_attn.q_proj", 2048, 2048),
                                   ("blocks.{i}.cross_attn.k_proj", 1024, 2048),
                                   ("blocks.{i}.mlp.layer1", 2048, 8192)], 28),
    "Pony V7": lambda g: _blocks(g, [("double_layers.{i}.attn.w1q", 3072, 3072),
                                     ("single_layers.{i}.attn.w1q", 3072, 3072)], 4),
    "SD3": lambda g: _blocks(g, [("joint_blocks.{i}.x_block.attn.qkv", 1536, 4608),
                                 ("joint_blocks.{i}.context_block.attn.qkv", 1536, 4608)], 24),
    "SD 3.5 Medium": lambda g: _blocks(g, [("joint_blocks.{i}.x_block.attn.qkv", 1536, 4608),
                                           ("joint_blocks.{i}.x_block.attn2.qkv", 1536, 4608)], 24),
}


def labelled(per_family: int = 40, seed: int = 20260101) -> Iterator[tuple[str, Shapes]]:
    """``(true family, {tensor: shape})`` for ``per_family`` files of every family above."""
    rng = random.Random(seed)
    for family, make in GENERATORS.items():
        for _ in range(per_family):
            yield family, make(rng)
