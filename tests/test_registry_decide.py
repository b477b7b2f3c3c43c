"""Promotion rules on real evaluation reports (BM25 vs random vs identity on real test samples)."""

import pytest

from components.evaluation import measure_task
from components.io import read_samples
from components.rankers import build_ranker
from components.promotion import PromotionConfig, PromotionRefused, decide
from components.report import EvalReport, SystemInfo


@pytest.fixture(scope="module")
def reports(prepared):
    out, _ = prepared
    suite = {t: read_samples(out / t / "test.jsonl")[:60] for t in ("rec-movie", "passage-5")}

    def run(name):
        ranker = build_ranker(name, seed=0)
        return EvalReport(system=SystemInfo({"label": name}),
                          tasks={t: measure_task(s, ranker.rank(s)) for t, s in suite.items()})

    return {name: run(name) for name in ("random", "bm25")}


def test_first_version_becomes_champion(reports):
    d = decide(reports["random"], None, PromotionConfig(), "1")
    assert d.promote and "first version" in d.reason


def test_a_better_challenger_is_promoted(reports):
    d = decide(reports["bm25"], reports["random"], PromotionConfig(tolerance=0.5), "2", "1")
    assert d.promote, d.reason
    assert d.challenger_mrr > d.champion_mrr and d.p_value < 0.05


def test_a_worse_challenger_is_not_promoted(reports):
    d = decide(reports["random"], reports["bm25"], PromotionConfig(), "2", "1")
    assert not d.promote and "not above" in d.reason


def test_not_significantly_better_is_not_promoted(reports):
    better = reports["random"].to_dict()  # a plain copy to edit
    for task in better["tasks"].values():  # a hair better on one sample: higher mean, no significance
        sid = next(iter(task["per_sample_mrr"]))
        task["per_sample_mrr"][sid] = min(1.0, task["per_sample_mrr"][sid] + 0.01)
        task["metrics"]["mrr"]["mean"] += 0.01 / len(task["per_sample_mrr"])
    d = decide(EvalReport.from_dict(better), reports["random"], PromotionConfig(), "2", "1")
    assert not d.promote and "not significant" in d.reason


def test_a_task_regression_blocks_promotion(reports):
    # much better on rec-movie, but passage-5 a little worse than the champion's
    mixed = reports["bm25"].to_dict()
    p5 = mixed["tasks"]["passage-5"] = reports["random"].tasks["passage-5"].to_dict()
    for sid in list(p5["per_sample_mrr"])[:10]:
        p5["per_sample_mrr"][sid] = max(0.0, p5["per_sample_mrr"][sid] - 0.3)
    p5["metrics"]["mrr"]["mean"] = sum(p5["per_sample_mrr"].values()) / len(p5["per_sample_mrr"])
    mixed = EvalReport.from_dict(mixed)
    d = decide(mixed, reports["random"], PromotionConfig(tolerance=0.02), "2", "1")
    assert d.challenger_mrr > d.champion_mrr and d.p_value < 0.05
    assert not d.promote and "passage-5 drops" in d.reason
    assert decide(mixed, reports["random"], PromotionConfig(tolerance=0.2), "2", "1").promote


def test_incomplete_evaluations_are_refused(reports):
    missing_task = reports["bm25"].to_dict()
    del missing_task["tasks"]["passage-5"]
    with pytest.raises(PromotionRefused, match=r"lacks task\(s\) \['passage-5'\]"):
        decide(EvalReport.from_dict(missing_task), reports["random"], PromotionConfig())
    skipped = reports["bm25"].to_dict()
    skipped["tasks"]["rec-movie"]["n_skipped"] = 3
    with pytest.raises(PromotionRefused, match="rec-movie is incomplete"):
        decide(EvalReport.from_dict(skipped), reports["random"], PromotionConfig())
    other_suite = reports["bm25"].to_dict()
    other_suite["tasks"]["rec-movie"]["sample_ids_hash"] = "0" * 16
    with pytest.raises(PromotionRefused, match="other rec-movie samples"):
        decide(EvalReport.from_dict(other_suite), reports["random"], PromotionConfig())
    with pytest.raises(PromotionRefused, match="has no evaluation"):
        decide(None, reports["random"], PromotionConfig())


def test_the_base_rule_applies_to_a_first_version_too(reports):
    """A challenger significantly worse than the untrained base on any task is not promoted, champion or not."""
    d = decide(reports["random"], None, PromotionConfig(), "1", base=reports["bm25"])
    assert not d.promote and d.reason.startswith("base rule: ") and "significantly below the untrained base" in d.reason
    d = decide(reports["bm25"], reports["random"], PromotionConfig(tolerance=0.5), "2", "1", base=reports["bm25"])
    assert d.promote and "not significantly worse than the untrained base on any task" in d.reason
    d = decide(reports["random"], None, PromotionConfig(), "1")
    assert d.promote and "base rule not applied" in d.reason  # the decision says whether the rule was applied


def test_a_base_evaluated_on_other_samples_is_refused(reports):
    other = reports["bm25"].to_dict()
    other["tasks"]["passage-5"]["sample_ids_hash"] = "0" * 16
    with pytest.raises(PromotionRefused, match="the untrained base was evaluated on other passage-5 samples than the challenger"):
        decide(reports["random"], None, PromotionConfig(), "1", base=EvalReport.from_dict(other))


class _TagStore:
    """A registry client's tag calls, in memory; the first `fail_first` writes raise `error` and write nothing."""

    def __init__(self, error=None, fail_first=0):
        self.tags, self.error, self.fail_first, self.writes = {}, error, fail_first, 0

    def get_registered_model(self, name):
        from types import SimpleNamespace

        return SimpleNamespace(tags=dict(self.tags))

    def set_registered_model_tag(self, name, key, value):
        self.writes += 1
        if self.writes <= self.fail_first:
            raise self.error
        self.tags[key] = value

    def delete_registered_model_tag(self, name, key):
        self.tags.pop(key, None)


def test_a_lock_write_that_lost_the_stores_insert_race_waits_and_takes_the_lock():
    """Two promotes inserting the lock tag at once: the SQL store refuses one with a UNIQUE error. That promote
    reads back who holds the lock and goes on waiting, instead of failing."""
    from mlflow.exceptions import MlflowException

    from components.registry import LOCK_TAG, promotion_lock

    store = _TagStore(MlflowException("(sqlite3.IntegrityError) UNIQUE constraint failed: registered_model_tags.key"),
                      fail_first=1)
    with promotion_lock(store, "m", wait_seconds=10):
        assert LOCK_TAG in store.tags and store.writes == 2
    assert LOCK_TAG not in store.tags  # released


def test_any_other_error_taking_the_lock_is_raised():
    from mlflow.exceptions import MlflowException

    from components.registry import promotion_lock

    store = _TagStore(MlflowException("RESOURCE_DOES_NOT_EXIST: registered model 'm' not found"), fail_first=1)
    with pytest.raises(MlflowException, match="not found"):
        with promotion_lock(store, "m", wait_seconds=10):
            pass
