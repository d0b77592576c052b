"""Civitai sync / match throughput against the tests' fake Civitai on 127.0.0.1 (no network).

Prints: requests per sync, wall time, models/s for a first sync and for a re-sync where nothing
changed, the cost of resuming after a crash, and a bulk hash match of local files. The real
Civitai is paced at ≥ 0.75 s/request, so there a 100-model page costs ~0.75 s of waiting + the
catalog work measured here (the local work must stay far below the pacing).

    .venv/bin/python benchmarks/civitai_sync.py [--models 5000] [--files 300]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from civitai_server import FakeCivitai, make_models

from stylus_ext.catalog.db import Catalog
from stylus_ext.catalog.scan import scan_folders
from stylus_ext.civitai.match import match_files
from stylus_ext.civitai.sync import sync_civitai
from stylus_ext.plugins import PluginManager
from stylus_ext.sdk.civitai.client import CivitaiClient


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=5000)
    ap.add_argument("--files", type=int, default=300)
    args = ap.parse_args()
    models, blobs = make_models(args.models)
    fake = FakeCivitai(models=models, blobs=blobs, max_lifetime=3600).start()
    tmp = Path(tempfile.mkdtemp())
    plugins = PluginManager(user_dir=tmp / "none", entry_points_enabled=False)

    def source():
        return plugins.create("source", "civitai", base_url=fake.base_url, min_interval=0.0, page_size=100)

    catalog = Catalog(tmp / "catalog.db")
    t = time.perf_counter()
    first = sync_civitai(catalog, source())
    dt = time.perf_counter() - t
    print(f"first sync: {first.summary()}")
    print(f"  {dt:.2f} s, {args.models / dt:.0f} models/s, {1000 * dt / first.pages:.0f} ms per 100-model page")
    t = time.perf_counter()
    again = sync_civitai(catalog, source())
    dt = time.perf_counter() - t
    print(f"re-sync, nothing changed: {again.summary()}; {dt:.2f} s, {args.models / dt:.0f} models/s")

    crash_at = max(1, first.pages // 2)

    def crash(page, report):
        if page.number == crash_at:
            raise KeyboardInterrupt

    fresh = Catalog(tmp / "crash.db")
    try:
        sync_civitai(fresh, source(), on_page=crash)
    except KeyboardInterrupt:
        pass
    before = len(fake.requests_to("models"))
    resumed = sync_civitai(fresh, source())
    print(f"crash after page {crash_at}, then resume: {resumed.summary()}; "
          f"{len(fake.requests_to('models')) - before} request(s); entries {fresh.count()} "
          f"(distinct versions {len({r['civitai_version_id'] for r in fresh.rows()})})")

    folder = tmp / "Lora"
    folder.mkdir()
    for vid in list(blobs)[: args.files]:
        (folder / f"f{vid}.safetensors").write_bytes(blobs[vid])
    local = Catalog(tmp / "local.db")
    scan_folders(local, [str(folder)], plugins=plugins)
    client = CivitaiClient(fake.base_url, min_interval=0.0)
    t = time.perf_counter()
    report = match_files(local, client)
    dt = time.perf_counter() - t
    print(f"match {args.files} files: {report.summary()}; {dt:.2f} s (hashing included)")
    fake.stop()


if __name__ == "__main__":
    main()
