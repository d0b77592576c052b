"""What Stylus adds to a WebUI generation: planning 8 images (batch 4 × 2) through the real Script
classes and the WebUI stand-in (tests/webui_stub.py), on the sample catalog. Prints figures.

    .venv/bin/python benchmarks/bench_webui.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    import pytest
    import webui_stub

    from stylus_ext.catalog.db import Catalog
    from stylus_ext.catalog.scan import scan_folders
    from stylus_ext.indexing import index_catalog
    from stylus_ext.plugins import PluginManager
    from stylus_ext.sample import make_sample_folder
    from stylus_ext.webui import batching, runtime

    tmp = Path(tempfile.mkdtemp())
    os.environ["STYLUS_HOME"] = str(tmp / "home")
    plugins = PluginManager(user_dir=tmp / "none", entry_points_enabled=False)
    folder = make_sample_folder(tmp / "Lora")
    catalog = Catalog(tmp / "catalog.db")
    t = time.perf_counter()
    scan_folders(catalog, [str(folder)], plugins=plugins)
    index_catalog(catalog, plugins)
    print(f"sample catalog scan+index: {time.perf_counter() - t:.2f} s ({catalog.count()} adapters)")
    mp = pytest.MonkeyPatch()
    ui = webui_stub.WebUI()
    ui.install(mp)
    ui.shared.opts.data.update({"stylus_catalog_path": str(tmp / "catalog.db"), "stylus_auto_refresh": False})
    for a in catalog.adapters():
        if a.card.path:
            ui.add_lora(Path(a.card.path).stem, a.card.path, alias=a.card.alias or "")
    ui.set_family("SD1")
    runtime.set_runtime(runtime.Runtime(plugins=lambda: plugins))
    runner = ui.runner()
    prompts = ["a castle on a hill, studio ghibli style, watercolor", "portrait of a knight in armor, pixel art",
               "a red fox in an enchanted forest, ukiyoe woodblock print", "a cat"]
    first = []
    for prompt in prompts:
        t = time.perf_counter()
        ui.generate(runner, runner.ui_args("Stylus"), prompt=prompt, seed=1, batch_size=4, n_iter=2)
        first.append(time.perf_counter() - t)
    warm = []
    for i in range(20):
        t = time.perf_counter()
        ui.generate(runner, runner.ui_args("Stylus"), prompt=prompts[i % 4], seed=100 + i, batch_size=4, n_iter=2)
        warm.append(time.perf_counter() - t)
    plain = []
    for i in range(20):
        t = time.perf_counter()
        ui.generate(runner, runner.ui_args(None), prompt=prompts[i % 4], seed=100 + i, batch_size=4, n_iter=2)
        plain.append(time.perf_counter() - t)
    keys = [tuple(("a", "b", "c", "d")[: 1 + (i * 7) % 4]) for i in range(64)]
    t = time.perf_counter()
    for _ in range(100):
        batching.plan_batches(keys, 8)
    plan_ms = (time.perf_counter() - t) * 10
    print(f"first generation per prompt (encoder load, compose, 8 images): "
          f"{', '.join(f'{x * 1000:.0f}' for x in first)} ms")
    print(f"warm generation, 8 images (new seeds, prompt cached): p50 {statistics.median(warm) * 1000:.1f} ms, "
          f"max {max(warm) * 1000:.1f} ms; stand-in without Stylus: p50 {statistics.median(plain) * 1000:.2f} ms")
    print(f"plan_batches for 64 images, 4 sets: {plan_ms:.3f} ms")
    mp.undo()


if __name__ == "__main__":
    main()
