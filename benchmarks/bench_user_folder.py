"""A real user's 190-LoRA folder (../shared/data/sd_tools_user_lora_table.json; anime characters,
Pony + SD1.5, no Civitai cards): does Stylus pick the character a prompt names, and only then?

Prints hit rate (named character chosen), wrong-character rate and unnamed rate (a character
adapter for a prompt naming none) for the offline composer and a retriever-only top-3 baseline.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

from stylus_ext.catalog.db import Catalog
from stylus_ext.catalog.scan import scan_folders
from stylus_ext.indexing import index_catalog
from stylus_ext.pipeline import Stylus, StylusSettings
from stylus_ext.plugins import PluginManager
from stylus_ext.sample.user_table import character_prompts, evaluate, folder_from_table

TABLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "sd_tools_user_lora_table.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--table", type=Path, default=TABLE)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    items = json.loads(args.table.read_text(encoding="utf-8"))["items"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = folder_from_table(items, Path(tmp) / "Lora")
        pm = PluginManager(user_dir=Path(tmp) / "none", entry_points_enabled=False)
        catalog = Catalog(Path(tmp) / "catalog.db")
        scan_folders(catalog, [str(folder)], plugins=pm)
        index_catalog(catalog, pm)
        pipes: dict[str, Stylus] = {}

        def pipe(base: str) -> Stylus:
            if base not in pipes:
                shared = next(iter(pipes.values())).retriever if pipes else None
                pipes[base] = Stylus(catalog, pm, StylusSettings(base_model=base), retriever=shared)
            return pipes[base]

        def offline(prompt: str, base: str) -> list[str]:
            return [c.adapter.name for _, chosen in pipe(base).select(prompt).concepts for c in chosen]

        def top3(prompt: str, base: str) -> list[str]:
            return [c.adapter.name for c in pipe(base).retrieve(prompt)[:3]]

        prompts = character_prompts(items)
        print("(* ms per prompt include retrieval and the encoder forward passes; the first includes loading it)")
        stems = {i["lora_name"] for i in items if i.get("character_trigger_tags")}
        print(f"{len(items)} LoRAs, {len(prompts)} labelled prompts")
        print(f"{'method':16} {'hit':>6} {'wrong':>6} {'unnamed':>8} {'ms/prompt*':>10}")
        for label, fn in (("offline", offline), ("retriever top-3", top3)):
            t0 = time.perf_counter()
            s = evaluate(fn, prompts, stems)
            ms = (time.perf_counter() - t0) * 1000 / len(prompts)
            print(f"{label:16} {s['hit']:6.1%} {s['wrong']:6.1%} {s['unnamed']:8.1%} {ms:10.1f}")
        catalog.close()


if __name__ == "__main__":
    main()
