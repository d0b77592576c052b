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


def seed(catalog: Any, cards: Any) -> list[int]:
    """Add cards through the production write path (:func:`store.upsert`: merge, ``added`` stamp);
    their catalog ids, in order."""
    from stylus_ext.catalog import store

    ids = []
    for card in cards:
        with store.atomic(catalog):
            ids.append(store.upsert(catalog, card)[0])
    catalog.db.conn.commit()
    return ids


# ------------------------------------------------------------------------------------------
# The hostile LoRA folder: generated here, never committed as binary blobs
# ------------------------------------------------------------------------------------------

DEEP = "[" * 700 + "]" * 700
HUGE_NUMBER = "9" * 5000


def _fifo(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)


def hostile_folder(root: Path) -> dict[str, str]:
    """Write the hostile corpus under ``root``; returns ``case → expectation``:

    - ``"kept"``: the LoRA is in the catalog (a bad sidecar or value costs that value, not the LoRA);
    - ``"skipped"``: not in the catalog, and a problem names it;
    - ``"ignored"``: not a LoRA at all (nothing in the catalog, no problem needed).
    """
    cases: dict[str, str] = {}

    def lora(name: str, expect: str = "kept", metadata: dict[str, str] | None = None, seed: int = 0) -> Path:
        cases[name] = expect
        return write_lora(root / name, metadata if metadata is not None else kohya_metadata(), seed=seed)

    for i in range(3):
        lora(f"good_{i}.safetensors", seed=100 + i)
    _bad_values(root, lora)
    # broken files: kept with a problem (the entry shows why it cannot be used)
    for name, header_len, header in [
        ("truncated.safetensors", 4096, b"{}"),
        ("len_2_63.safetensors", 2**63, b""),
        ("not_utf8_header.safetensors", 4, b"\xff\xfe\xfd\xfc"),
        ("header_array.safetensors", 2, b"[]"),
        ("meta_array.safetensors", 19, b'{"__metadata__":[]}'),
        ("deep_header.safetensors", len(DEEP), DEEP.encode()),
    ]:
        cases[name] = "kept"
        write_raw(root / name, header_len, header)
    (root / "empty.safetensors").write_bytes(b"")
    cases["empty.safetensors"] = "kept"
    # things that are not regular files, or names SQLite cannot store
    _fifo(root / "fifo.safetensors")
    cases["fifo.safetensors"] = "skipped"
    lora("fifo_sidecar.safetensors", seed=240)
    _fifo(root / "fifo_sidecar.json")
    if os.path.exists("/dev/zero"):
        os.symlink("/dev/zero", root / "device.safetensors")
        cases["device.safetensors"] = "skipped"
    os.symlink(root / "nowhere.safetensors", root / "dangling.safetensors")
    cases["dangling.safetensors"] = "skipped"
    (root / "folder.safetensors").mkdir()
    cases["folder.safetensors"] = "ignored"
    (root / "loop").mkdir()
    os.symlink(root, root / "loop" / "back")
    bad_name = os.fsdecode(b"latin1_\xe9t\xe9.safetensors")
    write_lora(root / bad_name, kohya_metadata(), seed=250)
    cases[bad_name] = "skipped"
    bad_dir = os.fsdecode(b"dir_\xfe")
    write_lora(root / bad_dir / "inside.safetensors", kohya_metadata(), seed=251)
    cases[f"{bad_dir}/inside.safetensors"] = "skipped"
    lora("colon:name.safetensors", seed=252)
    lora(("l" * 240) + ".safetensors", seed=253)
    _odd_places(root, lora, cases)
    return cases


def _odd_places(root: Path, lora: Any, cases: dict[str, str]) -> None:
    """Odd names, odd sidecars and odd places: each LoRA is kept, the oddity costs at most a sidecar."""
    lora("new\nline.safetensors", seed=260)
    lora("trailing dot..safetensors", seed=261)
    lora("UPPER.SAFETENSORS", seed=262)
    lora("emoji_\U0001f600.safetensors", seed=263)
    lora("/".join(f"d{i}" for i in range(60)) + "/deep.safetensors", seed=264)
    lora("empty_sidecar.safetensors", seed=265)
    (root / "empty_sidecar.json").write_bytes(b"")
    lora("dir_sidecar.safetensors", seed=266)
    (root / "dir_sidecar.json").mkdir()
    lora("device_sidecar.safetensors", seed=267)
    if os.path.exists("/dev/zero"):
        os.symlink("/dev/zero", root / "device_sidecar.civitai.info")
    lora("big_sidecar.safetensors", seed=268)
    with open(root / "big_sidecar.json", "wb") as fh:
        fh.truncate(9 * 1024 * 1024)  # sparse: over the 8 MB cap without using the disk
    lora("nul_sidecar.safetensors", seed=269)
    (root / "nul_sidecar.json").write_bytes(b'{"activation text": "a\x00b"}')
    lora("many_keys.safetensors", metadata={f"k{i}": "v" for i in range(20000)}, seed=270)
    lora("number_meta.safetensors", metadata={"ss_output_name": "number_meta", "ss_network_dim": "1e999"},
         seed=271)
    for name, header_len, header in [
        ("claims_99mb.safetensors", 99 * 1024 * 1024, b"{}"),
        ("nul_header.safetensors", 8, b"\x00" * 8),
        ("nan_header.safetensors", 25, b'{"__metadata__":{"a":NaN}'),
    ]:
        cases[name] = "kept"
        write_raw(root / name, header_len, header)
    (root / "model.pt").write_bytes(b"\x80\x02not really a pickle")
    cases["model.pt"] = "kept"
    _fifo(root / "fifo.ckpt")
    cases["fifo.ckpt"] = "skipped"
    (root / "not_a_lora.txt").write_text("hello", encoding="utf-8")
    cases["not_a_lora.txt"] = "ignored"


def _bad_values(root: Path, lora: Any) -> None:
    """Sidecars and header values with one bad value each: the LoRA stays, the value goes."""
    # sidecars with one bad value: the LoRA stays
    for i, (suffix, body) in enumerate([
        (".json", '{"modelId": "\u00b2", "activation text": "ok"}'),
        (".json", '{"modelId": 1000000000000000000000000000000}'),
        (".json", '{"preferred weight": ' + HUGE_NUMBER + "}"),
        (".json", '{"description": ' + DEEP + "}"),
        (".json", '{"broken": '),
        (".json", "[1, 2, 3]"),
        (".civitai.info", '{"id": 100000000000000000000, "modelId": 5, "baseModel": "SD 1.5"}'),
        (".civitai.info", '{"id": "\u00b2", "modelId": "\u00b2", "files": []}'),
        (".civitai.info", '{"id": 7, "modelId": 8, "files": ' + DEEP + "}"),
        (".metadata.json", '{"usage_tips": "{\\"strength\\": ' + HUGE_NUMBER + '}"}'),
    ]):
        stem = f"sidecar_{i}"
        lora(f"{stem}.safetensors", seed=200 + i)
        (root / f"{stem}{suffix}").write_text(body, encoding="utf-8")
    (root / "sidecar_bytes.json").write_bytes(b'{"notes": "\xff\xfe"}')
    lora("sidecar_bytes.safetensors", seed=220)
    # header values: a 5,000-digit tag count, deep nesting, a newline alias, a leading-space alias
    lora("huge_tag_count.safetensors", metadata=kohya_metadata(
        ss_tag_frequency='{"1_x": {"red hair": ' + HUGE_NUMBER + "}}"), seed=230)
    lora("deep_meta.safetensors", metadata=kohya_metadata(ss_dataset_dirs=DEEP), seed=231)
    lora("alias_newline.safetensors", metadata=kohya_metadata("evil\nname"), seed=232)
    lora(" lead.safetensors", metadata=kohya_metadata(" lead"), seed=233)


def hostile_cards(root: Path) -> dict[str, int]:
    """Card files for ``import-cards`` with one bad item among good ones; ``file → good cards``."""
    root.mkdir(parents=True, exist_ok=True)
    good = [civitai_model(9000 + i, [civitai_version(90000 + i, 9000 + i, file_name=f"c{i}.safetensors")])
            for i in range(3)]
    out: dict[str, int] = {}
    (root / "deep.json").write_text('{"items": [' + json.dumps(good[0]) + ", " + DEEP + "]}", encoding="utf-8")
    out["deep.json"] = 1
    bad_id = civitai_version(1, 2)
    bad_id["id"] = "\u00b2"
    (root / "superscript.json").write_text(json.dumps([bad_id, good[1]]), encoding="utf-8")
    out["superscript.json"] = 1
    lines = [json.dumps(good[0]), "{broken", json.dumps(good[2]), '{"id": ' + HUGE_NUMBER + "}"]
    (root / "cards.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out["cards.jsonl"] = 2
    huge = civitai_version(91000, 9100, file_name="huge.safetensors")
    huge["modelId"] = 10**30
    (root / "huge_ids.json").write_text(json.dumps([huge, civitai_version(10**20, 9101)]), encoding="utf-8")
    out["huge_ids.json"] = 1
    _fifo(root / "fifo.json")
    out["fifo.json"] = 0
    return out
