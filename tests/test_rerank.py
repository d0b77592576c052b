"""The retriever's re-ranker: trees re-order the linear score's best candidates, the rest stay below."""

from __future__ import annotations

import json

import numpy as np

from stylus_ext import ranking


def test_the_trees_reorder_the_top_and_the_rest_keeps_its_order_below():
    feature = ranking.FEATURES[0]
    # one split on the first feature: rows with a value above 0.5 are worth less to the trees
    tree = {"feature": [0, 0, 0], "threshold": [0.5, 0, 0], "left": [1, 0, 0], "right": [2, 0, 0],
            "leaf": [False, True, True], "value": [0.0, 2.0, -2.0]}
    rerank = ranking.Rerank.from_dict({"top": 3, "features": [feature], "trees": [tree], "scale": 1.0, "offset": 0.0})
    model = ranking.Ranker(np.zeros(len(ranking.FEATURES)), 0.0, {}, rerank)
    x = np.zeros((5, len(ranking.FEATURES)))
    x[:, 0] = [0.9, 0.1, 0.2, 0.8, 0.7]
    first = np.array([0.99, 0.9, 0.8, 0.7, 0.6])  # linear order 0, 1, 2, 3, 4; top 3 = rows 0, 1, 2
    keys = model.order_keys(x, first)
    order = np.argsort(-keys, kind="stable").tolist()
    assert order[:3] == [1, 2, 0]  # rows 1 and 2 pass the split, row 0 does not
    assert order[3:] == [3, 4] and keys[3] < keys[:3].min()  # the rest: below every re-ranked row, same order
    assert np.allclose(keys[[1, 2]], 1 / (1 + np.exp(-2.0)))
    assert model.score(x).tolist() == [0.5] * 5  # the score stays the linear stage's
    assert ranking.Ranker(model.coef, 0.0, {}).order_keys(x, first) is first  # no re-ranker: the score's order


def test_a_pool_smaller_than_the_trees_learnt_from_keeps_the_linear_order():
    feature = ranking.FEATURES[0]
    tree = {"feature": [0, 0, 0], "threshold": [0.5, 0, 0], "left": [1, 0, 0], "right": [2, 0, 0],
            "leaf": [False, True, True], "value": [0.0, 2.0, -2.0]}
    data = {"top": 3, "min_pool": 6, "features": [feature], "trees": [tree], "scale": 1.0, "offset": 0.0}
    model = ranking.Ranker(np.zeros(len(ranking.FEATURES)), 0.0, {}, ranking.Rerank.from_dict(data))
    x = np.zeros((6, len(ranking.FEATURES)))
    x[:, 0] = [0.9, 0.1, 0.2, 0.8, 0.7, 0.6]
    first = np.array([0.99, 0.9, 0.8, 0.7, 0.6, 0.5])
    assert np.argsort(-model.order_keys(x, first), kind="stable")[:3].tolist() == [1, 2, 0]  # 6 rows: re-ranked
    assert model.order_keys(x[:5], first[:5]).tolist() == first[:5].tolist()  # 5 rows: the linear order
    without = {k: v for k, v in data.items() if k != "min_pool"}
    assert ranking.Rerank.from_dict(without).min_pool == 3  # by default: the trees' own top
    assert ranking.default_ranker().rerank.min_pool >= ranking.default_ranker().rerank.top


def test_the_shipped_ranker_has_a_reranker_over_known_features():
    model = ranking.default_ranker()
    assert model.rerank is not None and model.rerank.top >= 150
    x = np.random.default_rng(0).random((400, len(ranking.FEATURES)))
    keys = model.order_keys(x)
    assert keys.shape == (400,) and np.all((keys > 0) & (keys < 1))


def test_the_shipped_ranker_stays_small_and_its_trees_within_the_evaluator_limit():
    assert ranking.MODEL_PATH.stat().st_size < 400_000  # it ships with the package
    trees = json.loads(ranking.MODEL_PATH.read_text(encoding="utf-8"))["rerank"]["trees"]
    assert max(sum(t["leaf"]) for t in trees) <= 64
