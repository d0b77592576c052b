"""Base models as Civitai groups them: tiers, current baseModel names, Forge Neo engines, the selected
checkpoint's header, and detection from tensor shapes for LoRAs without metadata."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lora_headers import GENERATORS
from safetensors.numpy import save_file
from webui_stub import WebUI, webui  # noqa: F401 - fixture

from stylus_ext import sdk
from stylus_ext.sdk import basemodels
from stylus_ext.sdk.basemodels import family_from_raw
from stylus_ext.sdk.cards.local import read_lora_card
from stylus_ext.webui import compat

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
pytestmark = pytest.mark.a1111


def test_tiers_follow_civitais_table() -> None:
    t = basemodels.tier
    for a in ("SDXL", "Pony", "Illustrious", "NoobAI"):
        for b in ("SDXL", "Pony", "Illustrious", "NoobAI"):
            assert t(a, b) == ("full" if a == b else "partial"), (a, b)
    assert t("Flux.1 Krea", "Flux") == t("Flux", "Flux.1 Krea") == "full"
    assert t("Wan Video 2.2 T2V-A14B", "Wan Video 14B t2v") == "partial"
    assert t("Wan Video 14B t2v", "Wan Video 2.2 I2V-A14B") == "partial"
    assert t("ZImageBase", "ZImageTurbo") == "partial" and t("ZImageTurbo", "ZImageBase") == "incompatible"
    assert t("SD1", "SDXL") == t("Flux", "Flux.2 D") == t("Pony", "Pony V7") == "incompatible"
    assert t("unknown", "SD1") == t("Qwen", None) == t("Other", "Flux") == "unknown"
    assert sdk.compatible("Illustrious", "Pony") and not sdk.compatible("Flux", "Flux.2 D")
    assert sdk.compatible("unknown", "SD1") and sdk.compatible("SD1", None)


@pytest.mark.parametrize(("raw", "family"), [
    ("Flux.2 D", "Flux.2 D"), ("Flux.2 Klein 9B", "Flux.2 Klein 9B"), ("Flux.2 Klein 4B-base", "Flux.2 Klein 4B-base"),
    ("Qwen", "Qwen"), ("ZImageTurbo", "ZImageTurbo"), ("ZImageBase", "ZImageBase"), ("Chroma", "Chroma"),
    ("Lumina", "Lumina"), ("HiDream", "HiDream"), ("Wan Video 14B t2v", "Wan Video 14B t2v"),
    ("Wan Video 2.2 I2V-A14B", "Wan Video 2.2 I2V-A14B"), ("Anima", "Anima"), ("Illustrious", "Illustrious"),
    ("NoobAI", "NoobAI"), ("Pony V7", "Pony V7"), ("Flux.1 Krea", "Flux.1 Krea"), ("SD 1.5", "SD1"),
    ("SDXL 1.0", "SDXL"), ("Pony", "Pony"), ("flux-1-dev", "Flux"), ("qwen-image", "Qwen"),
])
def test_current_civitai_base_models_get_their_own_family(raw: str, family: str) -> None:
    assert family_from_raw(raw) == family
    assert basemodels.canonical(family) == family


def test_retriever_filter_uses_the_tiers() -> None:
    from stylus_ext.retrieve import Retriever

    def row(family: str, installed: bool = True) -> dict[str, object]:
        return {"base_model": family, "installed": installed, "banned": False, "pinned": False,
                "name_problem": "", "readable": True}

    for family in ("SDXL", "Illustrious", "NoobAI", "Pony", "unknown"):
        assert Retriever._passes(row(family), "Pony", True), family
    for family in ("SD1", "Flux", "Pony V7"):
        assert not Retriever._passes(row(family), "Pony", True), family
    assert not Retriever._passes(row("Pony", installed=False), "Pony", True)
    assert Retriever._passes(row("Flux.2 D"), "Flux.2 D", False)
    assert not Retriever._passes(row("Flux"), "Flux.2 D", False)
    usable = set(basemodels.usable_families("Flux.2 D"))
    assert "Flux.2 D" in usable and "Flux" not in usable and "Qwen" not in usable


@pytest.mark.parametrize("raw", ["Hunyuan Video", "LTXV", "Mochi", "CogVideoX", "SVD XT", "Stable Cascade"])
def test_video_loras_from_civitai_never_reach_an_image_checkpoint(raw: str) -> None:
    from stylus_ext.retrieve import Retriever

    family = family_from_raw(raw)
    assert family is not None and basemodels.canonical(family) == family
    row = {"base_model": family, "installed": False, "banned": False, "pinned": False, "name_problem": "",
           "readable": True}
    for target in ("SD1", "SDXL", "Pony", "Illustrious", "Flux", "SD3", "Qwen", "Wan Video 14B t2v"):
        assert not Retriever._passes(row, target, False), (raw, target)
    assert Retriever._passes(row, None, False) and Retriever._passes(row, family, False)


def test_detection_accuracy_on_labelled_layouts(capsys: pytest.CaptureFixture[str]) -> None:
    import bench_families

    figures = bench_families.measure(per_family=15)
    assert figures["architecture"] >= 0.95, figures
    assert figures["kept"] >= 0.98, figures
    assert figures["undetected"] <= 0.02, figures
    assert figures["wrongly_kept"] <= 0.10, figures


def _write(path: Path, shapes: dict[str, list[int]], metadata: dict[str, str] | None = None) -> Path:
    tensors = {k: np.zeros(v, dtype=np.float16) for k, v in shapes.items()}
    save_file(tensors, str(path), metadata=metadata)
    return path


@pytest.mark.parametrize("family", ["Flux", "Qwen", "SDXL", "Lumina"])
def test_lora_without_metadata_gets_its_family_from_tensor_shapes(tmp_path: Path, family: str) -> None:
    import random

    shapes = GENERATORS[family](random.Random(7))
    shapes = {k: [min(d, 4) if i == (0 if "down" in k or "lora_A" in k else 1) else d for i, d in enumerate(v)]
              for k, v in shapes.items()}  # rank 4 keeps the file small; widths stay real
    card = read_lora_card(str(_write(tmp_path / "nometa.safetensors", shapes)))
    assert basemodels.base_model_group(card.base_model) == basemodels.base_model_group(family), card.base_model
    assert card.base_model_raw.startswith("tensor shapes")


def test_metadata_still_wins_over_tensor_shapes(tmp_path: Path) -> None:
    shapes = {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": [4, 768],
              "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": [320, 4]}
    path = _write(tmp_path / "meta.safetensors", shapes, {"ss_base_model_version": "sd_v2"})
    assert read_lora_card(str(path)).base_model == "SD2"


@pytest.mark.parametrize(("engine", "config", "family"), [
    ("QwenImage", "QwenImage", "Qwen"), ("ZImage", "ZImage", "Z-Image-type"), ("Wan", "WAN21_T2V", "Wan 14B-type"),
    ("Lumina2", "Lumina2", "Lumina"), ("Chroma", "Chroma", "Chroma"), ("Anima", "Anima", "Anima"),
    ("Flux2", "Flux2K4B", "Flux.2 Klein 4B-type"), ("Flux2", "Flux2K9B", "Flux.2 Klein 9B-type"),
    ("Flux", "Flux", "Flux"),
])
def test_forge_neo_engines_give_a_family(webui: WebUI, engine: str, config: str, family: str) -> None:  # noqa: F811
    webui.set_engine(engine, config)
    assert compat.checkpoint_family() == family
    assert basemodels.tier("SD1", family) == "incompatible"  # so the filter really filters


def test_selected_checkpoint_header_when_none_is_loaded(webui: WebUI, tmp_path: Path) -> None:  # noqa: F811
    prefix = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2."
    ckpt = _write(tmp_path / "tiny_sd1.safetensors", {prefix + "to_k.weight": [320, 768], prefix + "to_q.weight":
                                                     [320, 320]})
    assert compat.checkpoint_family() is None  # nothing selected, nothing loaded: unknown
    webui.add_checkpoint("tiny_sd1.safetensors [abc]", str(ckpt))
    assert compat.checkpoint_family() == "SD1"
    webui.set_family("SDXL")  # a loaded model wins over the selection
    assert compat.checkpoint_family() == "SDXL"


def test_fresh_install_uses_the_checkpoint_the_webui_would_load(webui: WebUI, tmp_path: Path) -> None:  # noqa: F811
    """Seen in Forge: no config.json yet (no ``sd_model_checkpoint`` saved) and nothing loaded, so
    compose offered an SDXL LoRA for the only (SD1) checkpoint. The WebUI then loads the first one of
    ``checkpoints_list`` (sd_models.select_checkpoint): its header gives the family."""
    prefix = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2."
    ckpt = _write(tmp_path / "only_sd1.safetensors", {prefix + "to_k.weight": [320, 768], prefix + "to_q.weight":
                                                     [320, 320]})
    webui.add_checkpoint("only_sd1.safetensors [abc]", str(ckpt), select=False)
    assert "sd_model_checkpoint" not in webui.shared.opts.data
    assert compat.checkpoint_family() == "SD1"
    webui.shared.opts.data["sd_model_checkpoint"] = "gone.safetensors"  # a saved title no longer on disk
    assert compat.checkpoint_family() == "SD1"  # the WebUI falls back to the first checkpoint too
    webui.forge_before_first_load()  # Forge's placeholder model is no model: the header still decides
    assert compat.checkpoint_family() == "SD1"


def test_auto_base_model_unknown_is_said(webui: WebUI, sample_catalog: Path, plugins: Any) -> None:  # noqa: F811
    from stylus_ext.webui import controls, runtime

    webui.shared.opts.data["stylus_catalog_path"] = str(sample_catalog)
    rt = runtime.Runtime(opts=lambda: webui.shared.opts.data, plugins=lambda: plugins)
    result = rt.plan_images(["a castle"], [""], [1], controls.RunOptions(base_model="auto"))
    assert any("base model unknown" in w for w in result.warnings), result.warnings
    webui.set_family("SD1")
    result = rt.plan_images(["a castle"], [""], [1], controls.RunOptions(base_model="auto"))
    assert not any("base model unknown" in w for w in result.warnings)
