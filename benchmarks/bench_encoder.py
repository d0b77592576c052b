"""Encoder throughput: the catalog pipeline's embed step vs the raw model forward pass.

Builds a catalog of ``--n`` generated adapter cards (realistic lengths: title, tags, a few
sentences of description), then embeds the same search texts twice:

- raw: AutoTokenizer + AutoModel forward + mean pooling, batches of ``--batch`` in catalog order
  (what a hand-written loop does), and the same on length-sorted texts (the fair comparison:
  the pipeline sorts by length to cut padding);
- pipeline: :func:`stylus_ext.embed.embed_catalog` from an empty cache (search texts, hashing,
  the encoder plugin, float32 blobs written to SQLite in committed chunks).

Goal: pipeline texts/s within 10% of raw. Also prints the no-change re-run time (all cached).

    .venv/bin/python benchmarks/bench_encoder.py --n 2000
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

WORDS = str.split("style portrait anime girl castle forest neon city watercolor detailed armor knight dragon "
         "flower dress kimono robot car night rain snow beach sunset cat dog owl fox painting sketch "
         "lineart pastel cinematic light shadow glow hair eyes smile pose sitting standing running")


def make_cards(n: int, seed: int = 0) -> list:
    from stylus_ext import sdk

    rng = random.Random(seed)
    cards = []
    for i in range(n):
        title = " ".join(rng.choices(WORDS, k=rng.randint(2, 5))).title()
        desc = " ".join(" ".join(rng.choices(WORDS, k=rng.randint(8, 20))).capitalize() + "."
                        for _ in range(rng.randint(1, 6)))
        cards.append(sdk.AdapterCard(source="bench", name=f"lora_{i}", title=title, description=desc,
                                     tags=tuple(rng.choices(WORDS, k=rng.randint(1, 6)))))
    return cards


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()

    import numpy as np
    import torch

    from stylus_ext.catalog.db import Catalog
    from stylus_ext.embed import embed_catalog, search_text
    from stylus_ext.plugins import PluginManager

    pm = PluginManager(entry_points_enabled=False)
    encoder = pm.create("encoder", "transformers", batch_size=args.batch)
    encoder.encode(["warm up"])
    tokenizer, model, device = encoder._tokenizer, encoder._model, encoder._device

    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog(Path(tmp) / "catalog.db")
        for card in make_cards(args.n):
            catalog.insert_card(card)
        texts = [search_text(a) for a in catalog.adapters()]
        mean_chars = sum(map(len, texts)) / len(texts)
        print(f"{len(texts)} texts, mean {mean_chars:.0f} chars; device {device}, torch threads "
              f"{torch.get_num_threads()}, batch {args.batch}")

        by_length = sorted(texts, key=len, reverse=True)

        def raw(items: list[str] = texts) -> float:
            t0 = time.perf_counter()
            with torch.inference_mode():
                for start in range(0, len(items), args.batch):
                    batch = tokenizer(items[start:start + args.batch], padding=True, truncation=True,
                                      max_length=256, return_tensors="pt").to(device)
                    hidden = model(**batch)[0]
                    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                    torch.nn.functional.normalize(pooled, dim=1).cpu().numpy()
            return time.perf_counter() - t0

        def pipeline() -> float:
            catalog.db.execute("delete from embeddings")
            catalog.db.conn.commit()
            t0 = time.perf_counter()
            report = embed_catalog(catalog, encoder)
            elapsed = time.perf_counter() - t0
            assert report.embedded == len(set(texts)), report
            return elapsed

        # Interleave to share any background load fairly; keep the best of each.
        raw_t, sorted_t, pipe_t = [], [], []
        for _ in range(2):
            raw_t.append(raw())
            sorted_t.append(raw(by_length))
            pipe_t.append(pipeline())
        t0 = time.perf_counter()
        again = embed_catalog(catalog, encoder)
        rerun = time.perf_counter() - t0
        n = len(texts)
        r, rs, p = min(raw_t), min(sorted_t), min(pipe_t)
        print(f"raw model forward (catalog order): {n / r:8.1f} texts/s  ({r:.2f} s)")
        print(f"raw model forward (length-sorted): {n / rs:8.1f} texts/s  ({rs:.2f} s)")
        print(f"pipeline embed_catalog:            {n / p:8.1f} texts/s  ({p:.2f} s)  "
              f"= {100 * r / p:.0f}% of raw, {100 * rs / p:.0f}% of length-sorted raw")
        print(f"no-change re-run (all cached):     {rerun:.2f} s, embedded {again.embedded}")
        print(f"a 100,000-card catalogue at this rate: {100_000 * p / n / 60:.0f} min on {device} "
              f"(texts of this mean length; load {'/'.join(f'{x:.1f}' for x in os.getloadavg())})")
        vec = np.frombuffer(catalog.db.execute("select vector from embeddings limit 1").fetchone()[0], np.float32)
        print(f"stored vector: {vec.shape[0]} float32, norm {np.linalg.norm(vec):.4f}")
        catalog.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
