"""Scan speed on a generated folder of small LoRA files with sidecars.

    .venv/bin/python benchmarks/bench_scan.py [--files 10000] [--keep DIR]

Prints: generation time, first scan, no-change rescan (goal ≤ 1 s for 10,000 files), a rescan
after touching 1% of the files, and hashing throughput. Files are tiny real safetensors with
kohya-style headers; every file has a ``.json`` and half of them a ``.civitai.info``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from stylus_ext.catalog.db import Catalog
from stylus_ext.catalog.hashing import ensure_hashes
from stylus_ext.catalog.scan import scan_folders
from stylus_ext.plugins import PluginManager

WORDS = ["watercolor", "ink", "cyberpunk", "castle", "forest", "armor", "kimono", "neon", "portrait", "cat",
         "dragon", "pixel", "sketch", "oil", "anime", "photo", "retro", "gothic", "mecha", "flower"]


def generate(root: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    pick = random.Random(0)
    tensors = {"lora_unet_proj_in.lora_down.weight": rng.standard_normal((4, 16)).astype(np.float16),
               "lora_unet_proj_in.lora_up.weight": rng.standard_normal((16, 4)).astype(np.float16)}
    for i in range(count):
        folder = root / f"group_{i // 500:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        words = pick.sample(WORDS, 3)
        stem = f"{words[0]}_{words[1]}_{i:05d}"
        tags = {w: pick.randint(1, 50) for w in pick.sample(WORDS, 8)}
        meta = {"ss_output_name": stem, "ss_base_model_version": pick.choice(["sd_v1", "sdxl_base_v1-0"]),
                "ss_network_dim": "4", "ss_tag_frequency": json.dumps({"10_x": tags})}
        save_file(tensors, str(folder / f"{stem}.safetensors"), metadata=meta)
        (folder / f"{stem}.json").write_text(json.dumps(
            {"activation text": f"{words[0]} style", "preferred weight": 0.7, "sd version": "Unknown",
             "description": f"A {words[0]} {words[1]} adapter with {words[2]}."}), encoding="utf-8")
        if i % 2 == 0:
            (folder / f"{stem}.civitai.info").write_text(json.dumps({
                "id": 100000 + i, "modelId": 50000 + i, "baseModel": "SD 1.5", "trainedWords": [words[0]],
                "model": {"name": f"{words[0].title()} {words[1].title()}", "type": "LORA", "nsfw": False},
                "description": f"<p>{words[2]} details</p>",
                "images": [{"url": f"https://example.invalid/{i}.jpeg",
                            "meta": {"prompt": f"{words[0]}, {words[1]}, <lora:{stem}:0.7>"}}]}), encoding="utf-8")


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--keep", help="generate into this folder and keep it")
    parser.add_argument("--repeats", type=int, default=5, help="no-change rescans to time")
    args = parser.parse_args()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="stylus-bench-scan-"))
    lora = tmp / "Lora"
    try:
        if not lora.exists():
            t, _ = timed(lambda: generate(lora, args.files))
            print(f"generated {args.files} LoRA files + sidecars in {t:.1f} s")
        plugins = PluginManager(user_dir=tmp / "no-plugins", entry_points_enabled=False)
        db = tmp / "catalog.db"
        if db.exists():
            db.unlink()
        catalog = Catalog(db)
        t, report = timed(lambda: scan_folders(catalog, [lora], plugins=plugins))
        print(f"first scan:        {t:7.2f} s  ({report.summary()})")
        times = []
        for _ in range(args.repeats):
            t, report = timed(lambda: scan_folders(catalog, [lora], plugins=plugins))
            times.append(t)
        print(f"no-change rescan:  {statistics.median(times):7.3f} s median of {args.repeats} "
              f"(min {min(times):.3f}, max {max(times):.3f}; {report.summary()})  goal <= 1 s")
        catalog.close()
        catalog = Catalog(db)  # a fresh process-like open (cold statement cache)
        t, report = timed(lambda: scan_folders(catalog, [lora], plugins=plugins))
        print(f"rescan, new open:  {t:7.3f} s")
        files = sorted(lora.rglob("*.safetensors"))
        for path in files[:: 100]:
            st = path.stat()
            os.utime(path, (st.st_atime, st.st_mtime + 5))
        t, report = timed(lambda: scan_folders(catalog, [lora], plugins=plugins))
        print(f"rescan, 1% touched:{t:7.3f} s  ({report.summary()})")
        t, hashed = timed(lambda: ensure_hashes(catalog))
        print(f"hash all:          {t:7.2f} s  ({hashed.summary()}; {hashed.bytes / 1e6 / max(t, 1e-9):.0f} MB/s)")
        t, hashed = timed(lambda: ensure_hashes(catalog))
        print(f"hash again:        {t:7.3f} s  ({hashed.summary()})")
        catalog.close()
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
