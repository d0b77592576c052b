"""The embedded sample LoRA folder: real, small, deterministic, varied, with deliberately broken files."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest
from safetensors.numpy import load_file

from stylus_ext import sdk
from stylus_ext.sample import ADAPTERS, MTIME, make_sample_folder
from stylus_ext.sdk.cards.local import read_lora_card


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(root).as_posix(): (p.read_bytes(), int(p.stat().st_mtime))
            for p in sorted(root.rglob("*")) if p.is_file()}


def _valid_models(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.safetensors") if p.parent.name != "broken")


def test_same_bytes_and_mtimes_every_time(tmp_path: Path, sample_folder: Path) -> None:
    again = make_sample_folder(tmp_path / "again")
    first, second = _tree(sample_folder), _tree(again)
    assert first == second
    assert {mtime for _, mtime in first.values()} == {MTIME}
    # Re-making into the same folder changes nothing either.
    make_sample_folder(again)
    assert _tree(again) == second


def test_small_and_about_sixty_adapters(sample_folder: Path) -> None:
    total = sum(p.stat().st_size for p in sample_folder.rglob("*") if p.is_file())
    assert total < 2 * 1024 * 1024
    models = _valid_models(sample_folder)
    assert 55 <= len(models) <= 70
    assert len({p.stem for p in models}) == len(models)


def test_real_kohya_safetensors_with_metadata(sample_folder: Path) -> None:
    for path in _valid_models(sample_folder):
        tensors = load_file(str(path))
        assert any(k.endswith(".lora_down.weight") for k in tensors)
        assert any(k.endswith(".lora_up.weight") for k in tensors)
        assert any(k.endswith(".alpha") for k in tensors)
        assert all(k.startswith(("lora_unet_", "lora_te")) for k in tensors)
        blob = path.read_bytes()
        (n,) = struct.unpack("<Q", blob[:8])
        meta = json.loads(blob[8:8 + n])["__metadata__"]
        assert meta["ss_network_module"] == "networks.lora"
        assert meta["ss_base_model_version"] in ("sd_v1", "sdxl_base_v1-0")
        freq = json.loads(meta["ss_tag_frequency"])
        assert freq and all(isinstance(v, dict) and v for v in freq.values())
    specs = [p for p in _valid_models(sample_folder) if b"modelspec.title" in p.read_bytes()[:8192]]
    assert 10 <= len(specs) < len(_valid_models(sample_folder))


def test_civitai_info_hashes_match_the_files(sample_folder: Path) -> None:
    infos = sorted(p for p in sample_folder.rglob("*.civitai.info") if p.parent.name != "broken")
    assert len(infos) >= 30
    for info_path in infos:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        model = info_path.with_name(info_path.name.replace(".civitai.info", ".safetensors"))
        blob = model.read_bytes()
        (n,) = struct.unpack("<Q", blob[:8])
        hashes = info["files"][0]["hashes"]
        assert hashes["SHA256"] == hashlib.sha256(blob).hexdigest().upper()
        assert hashes["AutoV3"] == hashlib.sha256(blob[8 + n:]).hexdigest()[:12].upper()
        assert {"modelId", "id", "baseModel", "trainedWords", "description", "model", "images"} <= set(info)
        assert info["model"]["type"] == "LORA"


def test_sidecars_of_every_kind(sample_folder: Path) -> None:
    suffixes = {p.name[len(p.name.split(".")[0]):] for p in sample_folder.rglob("*") if p.is_file()}
    wanted = {".safetensors", ".json", ".civitai.info", ".txt", ".description.txt", ".png", ".preview.png", ".pt"}
    assert wanted <= suffixes
    webui = json.loads(next(sample_folder.rglob("watercolor_style_v2.json")).read_text(encoding="utf-8"))
    assert {"activation text", "preferred weight", "negative text", "sd version", "description"} <= set(webui)


def test_coverage_of_topics_and_base_models() -> None:
    categories = {a[3] for a in ADAPTERS}
    assert categories == set(sdk.CATEGORIES)
    assert {a[2] for a in ADAPTERS} == {"sd15", "sdxl", "pony", "illustrious"}
    assert sum(bool(a[8].get("nsfw")) for a in ADAPTERS) >= 1
    assert sum(bool(a[8].get("alias")) for a in ADAPTERS) >= 3


@pytest.mark.parametrize(("name", "needle"), [
    ("broken_truncated.safetensors", "truncated"),
    ("hostile_header.safetensors", "9223372036854775808"),
    ("garbled_header.safetensors", "utf-8"),
    ("bad_sidecar_style.safetensors", "json"),
])
def test_broken_files_give_one_line_problems(sample_folder: Path, name: str, needle: str) -> None:
    card = read_lora_card(str(sample_folder / "broken" / name))
    assert card.problems, name
    assert needle in " ".join(card.problems).lower()
    assert all("\n" not in p for p in card.problems)


def test_names_aliases_and_an_unreferenceable_name(sample_folder: Path) -> None:
    cards = {p.stem: read_lora_card(str(p)) for p in _valid_models(sample_folder)}
    assert cards["fluffy_cat"].alias == "FluffyCat"
    assert cards["ink=wash_style"].name_problem
    assert not cards["fluffy_cat"].name_problem
    families = {c.base_model for c in cards.values()}
    assert {"SD1", "SDXL", "Pony", "Illustrious"} <= families
    watercolor = cards["watercolor_style_v2"]
    assert watercolor.trigger_words and watercolor.example_prompts
    assert any("<lora:watercolorStyle:" in p for p in watercolor.example_prompts)
