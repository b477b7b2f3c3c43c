"""Promotion decides only on what it recomputes: a hand-edited metrics.json, relabelled samples, forged rankings
and a worse-but-significant challenger are refused (no MLflow needed: all of it happens before any registry work)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from components.audit import EvaluationNotReproduced, verify_evaluation
from cli import app
from components.evaluation import evaluate_report, load_eval_samples, measure_task
from components.rankers import build_ranker
from components.promotion import PromotionConfig, decide
from components.report import EvalReport, SystemInfo

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
RECOMPUTED = "the stored numbers are not what its rankings.jsonl gives"


@pytest.fixture(scope="module")
def suite(prepared, tmp_path_factory) -> Path:
    """The first 12 passage-5 test samples in their own folder, so a test may relabel them."""
    samples, _ = prepared
    out = tmp_path_factory.mktemp("suite")
    (out / "passage-5").mkdir()
    lines = (samples / "passage-5" / "test.jsonl").read_text().splitlines()[:12]
    (out / "passage-5" / "test.jsonl").write_text("\n".join(lines) + "\n")
    return out


@pytest.fixture(scope="module")
def genuine(suite, tmp_path_factory) -> Path:
    by_task = load_eval_samples(suite, ["passage-5"], "test")
    out = tmp_path_factory.mktemp("eval") / "bm25"
    evaluate_report(build_ranker("bm25"), by_task, out, {"label": "bm25", "samples": str(suite)}, show_progress=False)
    return out


def forge(src: Path, dst: Path, per_sample: float, mean: float) -> Path:
    shutil.copytree(src, dst)
    d = json.loads((dst / "metrics.json").read_text())
    task = d["tasks"]["passage-5"]
    task["per_sample_mrr"] = {k: per_sample for k in task["per_sample_mrr"]}
    task["metrics"]["mrr"]["mean"] = mean
    (dst / "metrics.json").write_text(json.dumps(d))
    return dst


def test_a_genuine_evaluation_recomputes_to_itself(genuine):
    report = verify_evaluation(genuine)
    assert report.tasks["passage-5"].n == 12 and report.tasks["passage-5"].samples_hash


@pytest.mark.parametrize("per_sample, mean", [(1.0, 1.0), (0.2, 0.9)])
def test_a_hand_edited_evaluation_is_refused_at_register_before_any_registry_work(genuine, tmp_path, monkeypatch,
                                                                                   per_sample, mean):
    forged = forge(genuine, tmp_path / "forged", per_sample, mean)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = runner.invoke(app, ["register", "--model", "random:tiny", "--eval", str(forged), "--name", "forged",
                                 "--params", str(ROOT / "params.yaml")])
    assert result.exit_code == 1, result.output
    assert RECOMPUTED in " ".join(result.output.split()) and "passage-5" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no MLflow store, no run, nothing written


def test_relabelled_samples_are_refused(genuine, suite, tmp_path):
    moved = tmp_path / "suite"
    shutil.copytree(suite, moved)
    path = moved / "passage-5" / "test.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    first = rows[0]
    first["relevance"] = {c["id"]: 0 for c in first["candidates"]} | {first["candidates"][-1]["id"]: 1}
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(EvaluationNotReproduced, match="changed since the evaluation"):
        verify_evaluation(genuine, moved)


def test_rankings_that_are_not_permutations_or_miss_samples_are_refused(genuine, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(genuine, bad)
    rows = [json.loads(line) for line in (bad / "rankings.jsonl").read_text().splitlines()]
    rows[0]["order"] = rows[0]["order"][:1] * len(rows[0]["order"])  # the gold "ranked" everywhere
    (bad / "rankings.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(EvaluationNotReproduced, match="not a permutation of its candidates"):
        verify_evaluation(bad)
    (bad / "rankings.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[1:]))
    with pytest.raises(EvaluationNotReproduced, match="the samples rankings.jsonl ranks \\(11\\) are not the suite"):
        verify_evaluation(bad)


def test_an_evaluation_without_its_samples_folder_names_the_option(genuine, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(genuine, bare)
    d = json.loads((bare / "metrics.json").read_text())
    del d["system"]["samples"]
    (bare / "metrics.json").write_text(json.dumps(d))
    with pytest.raises(EvaluationNotReproduced, match="pass --samples"):
        verify_evaluation(bare)


def test_a_mean_that_is_not_the_mean_of_its_per_sample_values_is_refused_by_decide(genuine, tmp_path):
    forged = EvalReport.read(forge(genuine, tmp_path / "f", 0.2, 0.9) / "metrics.json")
    real = EvalReport.read(genuine / "metrics.json")
    with pytest.raises(EvaluationNotReproduced, match="not the mean of its 12 per-sample values"):
        decide(forged, real, PromotionConfig(), "2", "1")


def test_only_a_positive_significant_difference_promotes(prepared):
    """The p-value is two-sided: a challenger significantly *worse* on every sample must not pass on it."""
    samples, _ = prepared
    suite = load_eval_samples(samples, ["passage-5"], "test", 60)["passage-5"]

    def report(name):
        return EvalReport(system=SystemInfo({"label": name}),
                          tasks={"passage-5": measure_task(suite, build_ranker(name, seed=0).rank(suite))})

    worse, better = report("random"), report("bm25")
    loose = PromotionConfig(alpha=0.99, tolerance=1.0)  # neither the alpha nor the tolerance stops it: the sign does
    decision = decide(worse, better, loose, "2", "1")
    assert not decision.promote and "is not above the champion's" in decision.reason
    assert decision.challenger_mrr < decision.champion_mrr
    assert decide(better, worse, loose, "2", "1").promote
