"""Ranking metrics: one implementation for the RL reward and the evaluation report.

Per-sample MRR, NDCG@k and Hit@k come from ranx (`evaluate(..., return_mean=False)`):

- NDCG uses the graded relevance (Järvelin-Kekäläinen: gain = grade,
  discount = log2(rank + 1)); a partial ranking simply leaves documents out.
- MRR and Hit@k count only the gold items (the highest grade, > 0): with graded
  routing relevance every candidate has a grade > 0, and "relevant" must mean
  the best choice, as in the paper.
- ranx wants integer grades: integral grades are kept, other grades are mapped
  to integer levels by dense rank (0 stays 0), which preserves their order.

`ranking_reward` calls `ndcg_per_sample`, the same function the evaluation
reports. Confidence intervals are 95% percentile bootstraps (scipy), and two
systems on the same samples are compared with a paired permutation test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from components.schema import RankingSample

DEFAULT_METRICS = ("mrr", "ndcg@1", "ndcg@3", "ndcg@5", "ndcg@10", "hit@1", "hit@3", "hit@5")
_NO_DOC = "\x00none"  # stands in for an empty ranking (ranx rejects empty runs); never relevant


def _integer_grades(relevance: Mapping[str, float]) -> dict[str, int]:
    grades = {k: float(v) for k, v in relevance.items()}
    if all(g == int(g) for g in grades.values()):
        return {k: int(g) for k, g in grades.items()}
    levels = sorted({g for g in grades.values() if g > 0})
    return {k: (levels.index(g) + 1 if g > 0 else 0) for k, g in grades.items()}


def _gold(relevance: Mapping[str, float], min_grade: float | None = None) -> dict[str, int]:
    if min_grade is not None:
        return {k: 1 for k, v in relevance.items() if v >= min_grade}
    top = max(relevance.values(), default=0)
    return {k: 1 for k, v in relevance.items() if v == top and top > 0}


def per_sample_metrics(
    orders: Sequence[Sequence[str]],
    relevances: Sequence[Mapping[str, float]],
    metrics: Sequence[str] = DEFAULT_METRICS,
    judged: Sequence[Mapping[str, float] | None] | None = None,
    relevant_grade: Sequence[float | None] | None = None,
) -> dict[str, np.ndarray]:
    """One value per sample for each metric (`mrr`, `mrr@k`, `ndcg`, `ndcg@k`, `hit@k`, `recall@k`).

    `judged[i]`, when given, is every judged document of sample i's query (`meta.qrels`), candidates or
    not: nDCG's ideal ranking and Recall's denominator come from it, as in trec_eval (unjudged = 0).
    `relevant_grade[i]`, when given, is the grade from which a document counts as relevant for MRR, Hit
    and Recall (TREC DL: 2) instead of "the highest grade".
    """
    from ranx import Qrels, Run, evaluate

    if len(orders) != len(relevances):
        raise ValueError(f"{len(orders)} rankings for {len(relevances)} relevance maps")
    judged = list(judged) if judged is not None else [None] * len(orders)
    relevant_grade = list(relevant_grade) if relevant_grade is not None else [None] * len(orders)
    graded_maps = [j if j else r for j, r in zip(judged, relevances)]
    n = len(orders)
    if n == 0:
        return {m: np.zeros(0) for m in metrics}
    keys = [f"{i:09d}" for i in range(n)]  # sorted == input order, so arrays align
    run = {}
    for key, order in zip(keys, orders):
        order = list(dict.fromkeys(order)) or [_NO_DOC]
        run[key] = {doc: float(len(order) - pos) for pos, doc in enumerate(order)}
    graded = {k: (_integer_grades(r) or {_NO_DOC + "g": 0}) for k, r in zip(keys, graded_maps)}
    gold = {k: (_gold(r, g) or {_NO_DOC + "g": 0}) for k, r, g in zip(keys, graded_maps, relevant_grade)}
    ranx_names = {m: m.replace("hit@", "hit_rate@") for m in metrics}
    out: dict[str, np.ndarray] = {}
    graded_metrics = [ranx_names[m] for m in metrics if m.startswith("ndcg")]
    gold_metrics = [ranx_names[m] for m in metrics if not m.startswith("ndcg")]
    for qrels, names in ((graded, graded_metrics), (gold, gold_metrics)):
        if not names:
            continue
        q, r = Qrels(qrels), Run(run)
        if list(q.keys()) != keys:  # guard the alignment assumption
            raise RuntimeError("ranx reordered the queries")
        res = evaluate(q, r, names, return_mean=False, make_comparable=True)
        res = res if isinstance(res, dict) else {names[0]: res}
        for m in metrics:
            if ranx_names[m] in res:
                out[m] = np.asarray(res[ranx_names[m]], dtype=float)
    return {m: out[m] for m in metrics}


# what TREC DL reranking reports besides the defaults (samples carrying `meta.qrels`)
TREC_METRICS = ("mrr@10", "recall@100")


def judgements(samples: Sequence[RankingSample]) -> dict:
    """`per_sample_metrics`' keyword arguments for samples that carry full judgements (`meta.qrels`)."""
    if not any(s.qrels for s in samples):
        return {}
    return {"judged": [s.qrels for s in samples], "relevant_grade": [s.meta.get("relevant_grade") for s in samples]}


def ndcg_per_sample(orders: Sequence[Sequence[str]], relevances: Sequence[Mapping[str, float]]) -> np.ndarray:
    """Full-length NDCG of each ranking (missing documents simply earn no gain).

    >>> ndcg_per_sample([["a", "b"], ["b", "a"]], [{"a": 1}, {"a": 1}]).round(4).tolist()
    [1.0, 0.6309]
    """
    return per_sample_metrics(orders, relevances, ("ndcg",))["ndcg"]


def bootstrap_ci(values: Sequence[float], seed: int = 0, n_resamples: int = 2000) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean."""
    from scipy import stats

    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return (float("nan"), float("nan"))
    if arr.size == 1 or np.all(arr == arr[0]):
        return (float(arr[0]), float(arr[0]))
    res = stats.bootstrap((arr,), np.mean, confidence_level=0.95, n_resamples=n_resamples,
                          method="percentile", random_state=np.random.default_rng(seed))
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def paired_test(a: Sequence[float], b: Sequence[float], seed: int = 0, n_resamples: int = 10000) -> dict[str, float]:
    """Two-sided paired permutation test of mean(a) - mean(b) on the same samples."""
    from scipy import stats

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired test needs the same samples: {x.size} vs {y.size} values")
    diff = float(np.mean(x - y)) if x.size else float("nan")
    # one pair: its two sign flips give |mean| the same value, so the exact two-sided p is 1 (scipy refuses n = 1)
    if x.size < 2 or np.all(x == y):
        return {"mean_diff": diff if x.size else float("nan"), "p_value": 1.0, "n": int(x.size)}
    res = stats.permutation_test(
        (x, y), lambda u, v: np.mean(u - v), permutation_type="samples", alternative="two-sided",
        n_resamples=n_resamples, random_state=np.random.default_rng(seed),
    )
    return {"mean_diff": diff, "p_value": float(res.pvalue), "n": int(x.size)}


def routing_utility(orders: Sequence[Sequence[str]], samples: Sequence[RankingSample]) -> dict[str, float]:
    """Mean perf, cost and score of each query's top-1 model, with the oracle's for reference.

    Only samples that carry `meta.routing` count (`n`); the others are counted as `routing_absent`.
    """
    picked, oracle, absent = [], [], 0
    for order, sample in zip(orders, samples):
        routing = sample.routing
        if routing is None:
            absent += 1
            continue
        top = order[0] if order and order[0] in routing else None
        picked.append(routing[top] if top else {"perf": 0.0, "cost": 0.0, "score": 0.0})
        oracle.append(routing[sample.gold_ids[0]])
    mean = lambda rows, k: float(np.mean([r[k] for r in rows]))  # noqa: E731
    out: dict[str, float] = {"n": len(picked), "routing_absent": absent}
    if picked:
        out.update({
            "perf": mean(picked, "perf"), "cost": mean(picked, "cost"), "score": mean(picked, "score"),
            "oracle_perf": mean(oracle, "perf"), "oracle_cost": mean(oracle, "cost"), "oracle_score": mean(oracle, "score"),
        })
    return out


def summarise(orders: Sequence[Sequence[str]], samples: Sequence[RankingSample], seed: int = 0,
              values: dict[str, np.ndarray] | None = None) -> dict:
    """Mean and 95% CI of every default metric, plus routing utility where router samples carry routing meta.

    `values` takes per-sample metrics the caller already computed, so they are not computed twice.
    """
    if values is None:
        values = per_sample_metrics(orders, [s.relevance for s in samples], **judgements(samples))
    out: dict = {"n": len(samples)}
    for name, arr in values.items():
        lo, hi = bootstrap_ci(arr, seed)
        out[name] = {"mean": float(arr.mean()) if arr.size else float("nan"), "ci95": [lo, hi]}
    if samples and all(s.scenario == "router" for s in samples):
        out["routing"] = routing_utility(orders, samples)
    return out
