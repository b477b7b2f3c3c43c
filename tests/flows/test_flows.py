"""The Prefect flows in-process against a temporary API (prefect_test_harness), tiny profile.

Tasks are also called through `.fn` (plain functions). Each test module works in
its own scratch copy of the project, so artifacts/ and mlflow.db stay out of the checkout.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.params import load_params
from components.promotion import regressions
from components.report import TaskComparison
from components.validation import ValidationFailed
from tests.project import corrupt_samples, make_project

pytestmark = pytest.mark.slow  # the Prefect flows against a temporary API, every stage


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("project"))


@pytest.fixture()
def in_project(project, monkeypatch):
    monkeypatch.chdir(project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the project's own sqlite store
    return project


def test_prepare_cache_key_follows_inputs_and_outputs(in_project):
    from flows.data import prepare, prepare_cache_key

    params = load_params("params.yaml", "tiny")
    card = Path(params.prepare.out) / "datacard.json"
    if card.exists():
        card.unlink()
    assert prepare_cache_key(None, {"params": params}) is None  # no outputs yet: never a cache hit
    prepare.fn(params)
    key = prepare_cache_key(None, {"params": params})
    assert key and key == prepare_cache_key(None, {"params": load_params("params.yaml", "tiny")})
    assert key != prepare_cache_key(None, {"params": load_params("params.yaml", "tiny", {"prepare.seed": 7})})


def test_validate_task_raises_on_corrupted_samples(in_project):
    from flows.data import prepare, validate

    params = load_params("params.yaml", "tiny", corrupt_samples(in_project))
    prepare.fn(params)
    with pytest.raises(ValidationFailed, match=r"custom-qa/.*candidate_chars.*custom:q2"):
        validate.fn(params)


def test_retry_condition_only_matches_io_errors():
    from prefect.states import Failed

    from components.tracking import TrackingError
    from flows.common import retry_on

    condition = retry_on(TrackingError)
    assert condition(None, None, Failed(data=TrackingError("server away")))
    assert not condition(None, None, Failed(data=ValidationFailed(["x"], Path("r"))))


def test_pipeline_flow_runs_every_stage_and_publishes_artifacts(harness, in_project):
    import mlflow
    from mlflow import MlflowClient
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.pipeline import pipeline

    result = pipeline(profile="tiny", pull=False)
    assert result["train"]["steps"] == 1
    assert result["evaluate"]["candidate"]["passage-5"]["n"] == 4
    decision = json.loads(Path("artifacts/registry/decision.json").read_text())
    assert decision["promote"] and decision["name"] == "iranker-tiny"  # the first version becomes champion
    assert Path("artifacts/train/iranker/curves.csv").read_text().startswith("step,")

    client = MlflowClient(tracking_uri=f"sqlite:///{in_project / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("iranker-tiny", "champion")
    assert str(champion.version) == decision["version"]
    parent = client.get_run(result["mlflow_run_id"])
    stages = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert {r.data.tags["stage"] for r in stages} == {"train", "evaluate", "register"}
    assert any("passage-5.mrr" in r.data.metrics for r in stages)

    with get_client(sync_client=True) as prefect:
        keys = {a.key for a in prefect.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(
            any_=["datacard", "prompts", "training", "evaluation", "promotion-decision", "mlflow-run"])))}
    assert keys == {"datacard", "prompts", "training", "evaluation", "promotion-decision", "mlflow-run"}
    mlflow.set_tracking_uri(f"sqlite:///{in_project / 'mlflow.db'}")


def test_champion_flow_passes_when_nothing_changed(harness, in_project):
    from flows.champion import champion_flow

    result = champion_flow(profile="tiny")  # after the pipeline test registered a champion
    assert result["regressions"] == [] and result["tasks"]["passage-5"]["mean_diff"] == 0.0


def test_data_flow_fails_in_validation_before_training(harness, in_project):
    from flows.data import data_flow

    with pytest.raises(ValidationFailed):
        data_flow(profile="tiny", overrides=corrupt_samples(in_project), pull=False)
    assert not Path("artifacts/prompts/report.json").exists() or "custom-qa" not in Path(
        "artifacts/prompts/report.json").read_text()


def test_regressions_need_both_a_drop_beyond_tolerance_and_significance():
    compared = {task: TaskComparison.from_dict(c) for task, c in {
        "a": {"mrr": 0.40, "other_mrr": 0.60, "mean_diff": -0.20, "p_value": 0.001},  # real regression
        "b": {"mrr": 0.55, "other_mrr": 0.60, "mean_diff": -0.05, "p_value": 0.30},   # noise
        "c": {"mrr": 0.59, "other_mrr": 0.60, "mean_diff": -0.01, "p_value": 0.001},  # within tolerance
        "d": {"error": "task missing from the compared run"},
    }.items()}
    found = regressions(compared, alpha=0.05, tolerance=0.02)
    assert [f.split(":")[0] for f in found] == ["a", "d"]
