"""Metrics: a hand-computed example, agreement with an independent implementation and ranx, chance MRR."""

import math
import random

import numpy as np
import pytest

from components.metrics import bootstrap_ci, ndcg_per_sample, paired_test, per_sample_metrics, routing_utility, summarise
from components.schema import Candidate, RankingSample


def test_hand_computed_example():
    # ranking a, b, c, d; grades: b=3 (gold), c=1
    rel = {"b": 3, "c": 1, "a": 0}
    m = per_sample_metrics([["a", "b", "c", "d"]], [rel], ("mrr", "ndcg", "ndcg@1", "ndcg@3", "hit@1", "hit@3"))
    dcg = 3 / math.log2(3) + 1 / math.log2(4)
    idcg = 3 / math.log2(2) + 1 / math.log2(3)
    assert m["mrr"][0] == pytest.approx(0.5, abs=1e-9)
    assert m["ndcg"][0] == pytest.approx(dcg / idcg, abs=1e-9)
    assert m["ndcg@1"][0] == pytest.approx(0.0, abs=1e-9)
    assert m["ndcg@3"][0] == pytest.approx(dcg / idcg, abs=1e-9)
    assert (m["hit@1"][0], m["hit@3"][0]) == (0.0, 1.0)


def reference(order, rel, k=None):
    """An independent plain-Python NDCG / RR for the cross-check."""
    top = max(rel.values())
    gold = {d for d, g in rel.items() if g == top}
    rr = next((1 / (i + 1) for i, d in enumerate(order) if d in gold), 0.0)
    cut = order[:k] if k else order
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(cut))
    ideal = sorted(rel.values(), reverse=True)[: k or None]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return rr, dcg / idcg


@pytest.mark.slow  # many random runs through ranx and an independent implementation
def test_agrees_with_independent_implementation_on_random_runs():
    rng = random.Random(3)
    orders, rels = [], []
    for _ in range(300):
        n = rng.randint(2, 20)
        docs = [f"d{i}" for i in range(n)]
        rel = {d: rng.choice([0, 0, 1, 2, 3]) for d in docs}
        rel[rng.choice(docs)] = 3
        order = docs[:]
        rng.shuffle(order)
        orders.append(order[: rng.randint(1, n)])  # partial rankings too
        rels.append(rel)
    m = per_sample_metrics(orders, rels, ("mrr", "ndcg", "ndcg@5"))
    for i, (order, rel) in enumerate(zip(orders, rels)):
        rr, ndcg = reference(order, rel)
        assert m["mrr"][i] == pytest.approx(rr, abs=1e-9)
        assert m["ndcg"][i] == pytest.approx(ndcg, abs=1e-9)
        assert m["ndcg@5"][i] == pytest.approx(reference(order, rel, 5)[1], abs=1e-9)


def test_agrees_with_ranx_directly_on_binary_relevance():
    from ranx import Qrels, Run, evaluate

    rng = random.Random(5)
    qrels, run, orders, rels = {}, {}, [], []
    for q in range(200):
        docs = [f"d{i}" for i in range(10)]
        rng.shuffle(docs)
        rel = {docs[0]: 1}
        order = docs[:]
        rng.shuffle(order)
        qrels[f"q{q}"], run[f"q{q}"] = rel, {d: float(10 - i) for i, d in enumerate(order)}
        orders.append(order)
        rels.append(rel)
    ours = per_sample_metrics(orders, rels, ("mrr", "ndcg@10", "hit@3"))
    theirs = evaluate(Qrels(qrels), Run(run), ["mrr", "ndcg@10", "hit_rate@3"])
    assert ours["mrr"].mean() == pytest.approx(theirs["mrr"], abs=1e-9)
    assert ours["ndcg@10"].mean() == pytest.approx(theirs["ndcg@10"], abs=1e-9)
    assert ours["hit@3"].mean() == pytest.approx(theirs["hit_rate@3"], abs=1e-9)


@pytest.mark.parametrize("n", [5, 11])
def test_random_rankings_give_chance_mrr(n):
    rng = np.random.default_rng(11)
    docs = [f"d{i}" for i in range(n)]
    orders = [[docs[j] for j in rng.permutation(n)] for _ in range(20000)]
    mrr = per_sample_metrics(orders, [{"d0": 1}] * len(orders), ("mrr",))["mrr"].mean()
    chance = sum(1 / k for k in range(1, n + 1)) / n
    assert abs(mrr - chance) / chance < 0.01


def test_mrr_counts_only_the_gold_with_graded_relevance():
    # routing: every candidate has a grade > 0; only the best one is "relevant" for MRR
    rel = {"a": 1, "b": 2, "c": 3}
    assert per_sample_metrics([["a", "b", "c"]], [rel], ("mrr",))["mrr"][0] == pytest.approx(1 / 3)


def test_non_integer_grades_keep_their_order():
    assert ndcg_per_sample([["a", "b"]], [{"a": 0.7, "b": 0.2}])[0] == pytest.approx(1.0)
    assert ndcg_per_sample([["b", "a"]], [{"a": 0.7, "b": 0.2}])[0] < 1.0


def test_empty_ranking_scores_zero():
    m = per_sample_metrics([[]], [{"a": 1}], ("mrr", "ndcg"))
    assert m["mrr"][0] == 0.0 and m["ndcg"][0] == 0.0


def test_bootstrap_ci_and_paired_test():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.4, 1.0, 200)
    lo, hi = bootstrap_ci(a)
    assert lo < a.mean() < hi and hi - lo < 0.1
    assert bootstrap_ci([0.5, 0.5]) == (0.5, 0.5)
    assert paired_test(a, a)["p_value"] == 1.0
    assert paired_test(a, a - 0.1)["p_value"] < 0.05
    one = paired_test([0.5], [0.25])  # a one-sample `--limit 1 --compare`: exact p of one pair, not a scipy error
    assert one == {"mean_diff": 0.25, "p_value": 1.0, "n": 1}
    assert paired_test(a, a + rng.normal(0, 0.01, 200))["p_value"] > 0.01
    with pytest.raises(ValueError, match="same samples"):
        paired_test(a, a[:10])


def test_routing_utility_and_summary():
    def sample(i, routing):
        ranked = sorted(routing, key=lambda m: (-routing[m]["score"], routing[m]["cost"]))
        return RankingSample(f"s{i}", "router-cost", "router", "q", tuple(Candidate(m, m) for m in routing),
                             {m: float(len(ranked) - k) for k, m in enumerate(ranked)}, f"g{i}", {"routing": routing})

    routing = {"big": {"perf": 1.0, "cost": 0.01, "score": 0.2}, "small": {"perf": 1.0, "cost": 0.001, "score": 0.9}}
    samples = [sample(0, routing), sample(1, routing)]
    util = routing_utility([["big", "small"], ["small", "big"]], samples)
    assert util["perf"] == 1.0 and util["cost"] == pytest.approx(0.0055) and util["score"] == pytest.approx(0.55)
    assert util["oracle_score"] == pytest.approx(0.9)
    summary = summarise([["big", "small"], ["small", "big"]], samples)
    assert summary["n"] == 2 and summary["mrr"]["mean"] == pytest.approx(0.75)
    assert summary["routing"]["score"] == pytest.approx(0.55)


def test_judged_qrels_set_the_ideal_and_relevant_grade_the_gold():
    """trec_eval's conventions: the ideal DCG from every judged passage, MRR at grade >= relevant_grade."""
    from components.metrics import per_sample_metrics

    order = ["a", "b", "c"]
    rel = {"a": 1.0, "b": 2.0}
    judged = {"a": 1.0, "b": 2.0, "x": 3.0, "y": 0.0}  # x: judged, never retrieved
    plain = per_sample_metrics([order], [rel], ("ndcg@10", "mrr"))
    trec = per_sample_metrics([order], [rel], ("ndcg@10", "mrr", "recall@100"), judged=[judged], relevant_grade=[2])
    dcg = 1 + 2 / np.log2(3)
    assert plain["ndcg@10"][0] == pytest.approx(dcg / (2 + 1 / np.log2(3)))
    assert trec["ndcg@10"][0] == pytest.approx(dcg / (3 + 2 / np.log2(3) + 1 / 2))
    assert trec["mrr"][0] == pytest.approx(0.5)  # "a" (grade 1) is not relevant at grade >= 2
    assert trec["recall@100"][0] == pytest.approx(0.5)  # b of {b, x}
