"""`EvalReport`: the exact metrics.json evaluation writes round-trips, older files read, broken ones name file and key.

Fast: non-LLM rankers (identity, random) and hand-built rankings on a few hand-built samples; no model.
"""

import copy
import json
import pickle
from pathlib import Path

import pytest

from components.evaluation import evaluate_report, measure_task
from components.io import DataError
from components.rankers import build_ranker
from components.promotion import PromotionConfig, decide
from components.registry import EvaluationMismatch, check_evaluation_of
from components.report import EvalReport, ReportError
from components.schema import Candidate, Ranking, RankingSample, RankingStep
from components.tracking import flat_metrics

SYSTEM = {"label": "identity", "ranker": "identity", "mode": None, "model": None, "split": "test", "limit": None}


def _custom(i: int) -> RankingSample:
    ids = ["a", "b", "c"]
    return RankingSample(f"c{i}", "mine", "custom", f"query {i}", tuple(Candidate(x, f"text {x}") for x in ids),
                         {ids[i % 3]: 1.0}, f"g{i}")


def _router(i: int) -> RankingSample:
    ids = ["m1", "m2"]
    routing = {m: {"perf": 0.5 + k / 4, "cost": 1.0 + k, "score": 0.1 * (k + 1)} for k, m in enumerate(ids)}
    return RankingSample(f"r{i}", "router-mine", "router", f"route {i}", tuple(Candidate(m, m) for m in ids),
                         {ids[i % 2]: 1.0, ids[1 - i % 2]: 0.5}, f"u{i}", {"routing": routing})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An identity run, then a random run compared against it (the files evaluation writes)."""
    base = tmp_path_factory.mktemp("eval")
    by_task = {"mine": [_custom(i) for i in range(4)], "router-mine": [_router(i) for i in range(4)]}
    ident = evaluate_report(build_ranker("identity"), by_task, base / "identity", SYSTEM, show_progress=False)
    rand = evaluate_report(build_ranker("random", seed=1), by_task, base / "random", {**SYSTEM, "label": "random"},
                           compare=base / "identity" / "metrics.json", show_progress=False)
    return base, ident, rand


def test_the_written_file_round_trips_exactly(runs):
    base, ident, rand = runs
    for name, report in (("identity", ident), ("random", rand)):
        path = base / name / "metrics.json"
        text = path.read_text()
        assert text == json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n"  # the layout evaluation wrote
        d = json.loads(text)
        assert EvalReport.from_dict(d).to_dict() == d
        assert EvalReport.read(path) == report
        report.write(base / f"{name}-again.json")
        assert (base / f"{name}-again.json").read_bytes() == path.read_bytes()
        assert pickle.loads(pickle.dumps(report)) == report  # the training bench evaluates in a subprocess


def test_typed_access_replaces_string_keys(runs):
    _, ident, rand = runs
    assert ident.identity == {"ranker": "identity"} and ident.system.mode is None and ident.system.label == "identity"
    mine = ident.tasks["mine"]
    assert mine.n == 4 and mine.n_skipped == 0 and mine.complete
    assert ident.mrr("mine") == pytest.approx(sum(mine.per_sample_mrr.values()) / 4)
    assert ident.mrr("mine") == mine.metrics.mrr.mean and mine.metrics.mrr.ci95[0] <= mine.metrics.mrr.mean
    assert set(mine.metrics.values) >= {"mrr", "ndcg@10", "hit@1"} and mine.metrics.routing is None
    assert ident.tasks["router-mine"].metrics.routing.oracle_perf == pytest.approx(0.625)  # gold m1 (0.5), m2 (0.75)
    assert mine.parse.steps == 0 and mine.first_answer_top is None and mine.cost.llm_calls_per_sample == 0
    cmp = rand.compare.tasks["mine"]
    assert cmp.n == 4 and cmp.same_suite is True and cmp.other_mrr == pytest.approx(ident.mrr("mine"))
    assert rand.compare.system == ident.system.to_dict()


def test_every_reader_sees_the_same_numbers(runs, tmp_path):
    base, ident, _ = runs
    by_task = {"mine": [_custom(i) for i in range(4)]}
    returned = evaluate_report(build_ranker("identity"), by_task, tmp_path / "d", SYSTEM, show_progress=False)
    assert isinstance(returned, EvalReport) and returned == EvalReport.read(tmp_path / "d" / "metrics.json")
    assert flat_metrics(ident)["mine.mrr"] == ident.mrr("mine") and flat_metrics(ident)["mine.n_skipped"] == 0.0
    assert decide(ident, None, PromotionConfig(), "1").promote
    assert decide(EvalReport.from_dict(ident.to_dict()), None, PromotionConfig(), "1").promote
    with pytest.raises(EvaluationMismatch, match="another model"):
        check_evaluation_of(ident, {"ranker": "iranker"}, "m", base / "identity")


def test_an_evaluation_recorded_under_a_former_ranker_name_is_of_the_same_ranker(runs):
    """Evaluations written before each ranker had one name record `iterative`: registering that model still matches."""
    _, ident, _ = runs
    identity = {"weights": "w", "template_hash": "t", "ranker": "iranker", "mode": "score", "scorers": None}
    raw = ident.to_dict()
    raw["system"] = {**raw["system"], "identity": {**identity, "ranker": "iterative"}}
    before_rename = EvalReport.from_dict(raw)
    check_evaluation_of(before_rename, identity, "m", Path("eval"))  # no mismatch
    with pytest.raises(EvaluationMismatch, match="ranker: evaluated 'iranker', registering 'dranker'"):
        check_evaluation_of(before_rename, {**identity, "ranker": "dranker"}, "m", Path("eval"))


def test_parse_rates_skips_and_first_answers_round_trip():
    samples = [_custom(i) for i in range(3)]
    step = lambda label, status: RankingStep("h", f"<answer>{label}</answer>", [label], status, 10, 2, 0.5, 4)  # noqa: E731
    rankings = [Ranking("c0", ("a", "b", "c"), (step("a", "ok"), step("b", "ok"))),
                Ranking("c1", ("a", "b", "c"), (step("a", "repaired"),), repaired=True),
                Ranking("c2", (), skipped="prompt too long: 900 > 300")]
    task = measure_task(samples, rankings)
    assert task.n == 2 and task.n_skipped == 1 and task.skipped_reasons == {"prompt too long": 1} and not task.complete
    assert task.first_answer_top.label == "a" and task.first_answer_top.share == 1.0
    assert task.parse.repaired_step_rate == pytest.approx(1 / 3) and task.cost.tokens_computed_per_sample == 9.0
    d = task.to_dict()
    assert type(task).from_dict(d) == task
    nothing = measure_task(samples[:1], [Ranking("c0", (), skipped="fewer than 2 candidates")])
    assert nothing.metrics is None and nothing.mrr is None and set(nothing.to_dict()) == {
        "n", "n_skipped", "skipped_reasons", "sample_ids_hash", "samples_hash"}


def test_an_older_file_without_newer_fields_reads(runs, tmp_path):
    _, ident, _ = runs
    old = copy.deepcopy(ident.to_dict())
    for key in ("identity", "device", "dtype", "prompt_version"):
        old["system"].pop(key, None)
    for task in old["tasks"].values():
        task["parse"].pop("first_answer_top", None)
        task["cost"].pop("tokens_computed_per_sample")
        task["metrics"].get("routing", {}).pop("routing_absent", None)
        task["metrics"].get("routing", {}).pop("n", None)
    old.pop("wall_seconds")
    old["eval_seconds"] = 12.5  # keys written by other tools are kept
    old["tasks"]["mine"]["note"] = "by hand"
    (tmp_path / "metrics.json").write_text(json.dumps(old))
    report = EvalReport.read(tmp_path / "metrics.json")
    assert report.identity is None and report.system.dtype is None and report.wall_seconds is None
    assert report.tasks["mine"].cost.tokens_computed_per_sample is None
    assert report.tasks["router-mine"].metrics.routing.n is None
    assert report.extra == {"eval_seconds": 12.5} and report.tasks["mine"].extra == {"note": "by hand"}
    assert report.to_dict() == old and report.mrr("mine") == ident.mrr("mine")


@pytest.mark.parametrize("key", ["system", "tasks.mine.sample_ids_hash", "tasks.mine.metrics.mrr.ci95",
                                 "tasks.router-mine.cost.latency_p95", "compare.tasks"])
def test_a_missing_required_key_names_file_and_key(runs, tmp_path, key):
    d = copy.deepcopy(runs[2].to_dict())
    *parents, last = key.split(".")
    block = d
    for part in parents:
        block = block[part]
    del block[last]
    file = tmp_path / "metrics.json"
    file.write_text(json.dumps(d))
    with pytest.raises(ReportError) as err:
        EvalReport.read(file)
    assert str(err.value) == f"{file}: required key {key!r} is missing"
    assert isinstance(err.value, DataError)  # the CLI prints it as a user error


def test_a_block_that_is_not_an_object_is_named(tmp_path):
    file = tmp_path / "metrics.json"
    file.write_text(json.dumps({"system": {}, "tasks": {"mine": [1, 2]}}))
    with pytest.raises(ReportError, match=r"metrics.json: key 'tasks.mine' is not a JSON object"):
        EvalReport.read(file)
