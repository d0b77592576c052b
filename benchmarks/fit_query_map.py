"""Fit the query map (``stylus_ext/data/query_map.npz``): a linear map of prompt embeddings into
the space of the cards' embeddings, for the retriever's dense side.

MiniLM embeds a community tag prompt ("1girl, solo, looking at viewer, ...") and a card's text
("A LoRA of ... trained on ...") far apart, so dense search alone finds the card a real prompt was
made with for few prompts (dev recover R@150 0.29). A 384 × 384 matrix ``W`` (started at the
identity, held near it by an L2 penalty) maps a prompt's vector ``q`` to ``normalise(q @ W)``, which
is compared with the cards' unchanged vectors: nothing is re-embedded, every index kind serves it.

Training data (built outside the repo by ``../shared/eval``; only the matrix is written): the
recover train queries → their card, and the silver fit half's captions → the paper's picks. A
softmax over every card of the catalogue (temperature ``--temperature``) is maximised for the
answer's versions. The train queries of cards that have a dev query are left out, so the dev
figures measure cards the map never saw — the judged split's cards have no train queries at all,
and a map that memorised cards would look better on dev than it is.

The retriever's own fit (``fit_retriever.py``) and the keep score's (``fit_composer.py``) learn from
the same train queries, whose mapped cosines this map was fitted on (and so inflated): with
``--folds N`` the map is also fitted N times, each without one fold of the queries (by card; silver
by caption: ``realcards.map_fold``), into ``--folds-dir``, and those fits read each train query
through the map that never saw it (their ``--query-map-folds``).

    python benchmarks/fit_query_map.py [--l2 0.01] [--temperature 0.05] [--epochs 10] [--out PATH]
                                       [--folds 5 --folds-dir DIR]
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import realcards as rc  # noqa: E402


def dense_recall(queries: np.ndarray, cards: np.ndarray, card_model: np.ndarray,
                 answers: list[set[int]]) -> tuple[float, float]:
    """Dense-only R@10 and R@150 (versions of one model are one place; share of each query's answers)."""
    r10 = r150 = 0.0
    for row in range(0, len(queries), 256):
        sims = queries[row:row + 256] @ cards.T
        for s, ans in zip(sims, answers[row:row + 256], strict=True):
            order = card_model[np.argsort(-s)[:2000]]
            ranked = list(dict.fromkeys(order.tolist()))[:150]
            r10 += len(ans & set(ranked[:10])) / len(ans)
            r150 += len(ans & set(ranked)) / len(ans)
    n = max(1, len(queries))
    return round(r10 / n, 3), round(r150 / n, 3)


def fit_map(queries: np.ndarray, positives: list[np.ndarray], cards: np.ndarray, *, l2: float,
            temperature: float, epochs: int, batch: int = 512, seed: int = 0) -> np.ndarray:
    """``W`` maximising each query's softmax mass on its positive card rows, near the identity."""
    import torch

    torch.manual_seed(seed)
    x, c = torch.tensor(queries), torch.tensor(cards)
    eye = torch.eye(x.shape[1])
    w = torch.nn.Parameter(eye.clone())
    opt = torch.optim.Adam([w], lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch):
            rows = order[start:start + batch]
            mask = torch.zeros(len(rows), len(c), dtype=torch.bool)
            for i, r in enumerate(rows.tolist()):
                mask[i, positives[r]] = True
            logits = torch.nn.functional.normalize(x[rows] @ w, dim=1) @ c.T / temperature
            loss = (torch.logsumexp(logits, 1) - torch.logsumexp(logits.masked_fill(~mask, -1e9), 1)).mean()
            loss = loss + l2 * ((w - eye) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return w.detach().numpy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    rc.data_arguments(parser)
    parser.add_argument("--l2", type=float, default=0.01, help="penalty on the distance from the identity")
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--silver-weight", type=int, default=1, help="times each silver fit caption is repeated")
    parser.add_argument("--out", type=Path, default=HERE.parent / "stylus_ext" / "data" / "query_map.npz")
    parser.add_argument("--folds", type=int, default=0, help="also fit this many out-of-fold maps")
    parser.add_argument("--folds-dir", type=Path, default=None, help="where the fold maps go (outside the repo)")
    args = parser.parse_args()
    if args.folds and args.folds_dir is None:
        parser.error("--folds needs --folds-dir")
    import torch

    from stylus_ext import lexical, query_map
    from stylus_ext.catalog.db import Catalog
    from stylus_ext.retrieve import Retriever

    torch.set_num_threads(2)
    catalog_path = rc.ensure_catalog(args.recover / "cards_heldout",
                                     args.catalog or args.recover / "stylus-catalog.db", index=not args.skip_index)
    catalog = Catalog(catalog_path, create=False)
    retriever = Retriever(catalog, cache_size=50_000, use_query_map=False)
    model_of = {int(i): m for i, m in catalog.db.execute("select id, civitai_model_id from adapters")}
    cards = np.asarray(retriever.index.vectors, dtype=np.float32)
    card_model = np.array([model_of.get(int(i), -1) for i in retriever.index.ids])
    train = rc.read_jsonl(args.recover / "queries_train.jsonl")
    dev = rc.read_jsonl(args.recover / "queries_dev.jsonl")
    dev_cards = {q["model_id"] for q in dev}
    recover_fit = [q for q in train if q["model_id"] not in dev_cards]
    silver_fit = rc.silver_rows(args.silver, "fit")
    sets = {"train": [(q["query"], {q["model_id"]}) for q in recover_fit],
            "silver_fit": [(s["prompt"], set(s["picks_in_catalog"])) for s in silver_fit] * args.silver_weight,
            "dev": [(q["query"], {q["model_id"]}) for q in dev],
            "silver_dev": [(s["prompt"], set(s["picks_in_catalog"])) for s in rc.silver_rows(args.silver, "dev")],
            "dev_named": [(n, {m}) for n, m in rc.named_queries(dev, rc.titles(catalog))]}
    vectors = {}
    for name, items in sets.items():
        texts = [lexical.clean_prompt(p) or p for p, _ in items]
        vectors[name] = np.concatenate([retriever.encode(texts[i:i + 256]) for i in range(0, len(texts), 256)])
        print(f"embedded {name}: {len(texts)}", flush=True)
    fit_names = ("train", "silver_fit")
    x = np.concatenate([vectors[n] for n in fit_names])
    positives = [np.flatnonzero(np.isin(card_model, list(ans))) for n in fit_names for _, ans in sets[n]]
    keep = [i for i, p in enumerate(positives) if len(p)]
    w = fit_map(x[keep], [positives[i] for i in keep], cards, l2=args.l2, temperature=args.temperature,
                epochs=args.epochs)
    print(f"fitted on {len(keep)} queries ({len(sets['train'])} recover train of cards without a dev query, "
          f"{len(sets['silver_fit'])} silver fit captions)")
    if args.folds:
        args.folds_dir.mkdir(parents=True, exist_ok=True)
        fold = np.array([rc.map_fold(str(q["model_id"]), args.folds) for q in recover_fit]
                        + [rc.map_fold(rc.silver_key(s), args.folds) for s in silver_fit] * args.silver_weight)
        for k in range(args.folds):
            rows = [i for i in keep if fold[i] != k]
            wk = fit_map(x[rows], [positives[i] for i in rows], cards, l2=args.l2, temperature=args.temperature,
                         epochs=args.epochs)
            out_rows = [i for i in keep if fold[i] == k and i < len(recover_fit)]
            held = dense_recall(query_map.QueryMap(wk, "", "")(x[out_rows]), cards, card_model,
                                [sets["train"][i][1] for i in out_rows])
            query_map.save(args.folds_dir / f"fold-{k}.npz", wk, retriever.index.encoder, f"fold {k} of {args.folds}")
            print(f"fold {k}: fitted on {len(rows)}; its left-out recover queries, dense R@10 / R@150 "
                  f"{held[0]:.3f} / {held[1]:.3f}", flush=True)
    mapped = query_map.QueryMap(w, retriever.index.encoder, "")
    for name in ("dev", "silver_dev", "dev_named"):
        answers = [ans for _, ans in sets[name]]
        raw = dense_recall(vectors[name], cards, card_model, answers)
        new = dense_recall(mapped(vectors[name]), cards, card_model, answers)
        print(f"dense only, {name:10s} R@10 / R@150: raw {raw[0]:.3f} / {raw[1]:.3f}"
              f" → mapped {new[0]:.3f} / {new[1]:.3f}")
    note = (f"fitted by benchmarks/fit_query_map.py on {len(keep)} real-card queries "
            f"(l2 {args.l2:g}, temperature {args.temperature:g}, {args.epochs} epochs), {datetime.date.today()}")
    query_map.save(args.out, w, retriever.index.encoder, note)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
