"""`r1ranker config`, `stage` and `pipeline`: bad input fails before any work, with the fix in the message."""

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [*args, "--params", str(ROOT / "params.yaml")])


def test_config_prints_the_resolved_profile():
    result = run("config", "--profile", "tiny", "--set", "train.max_steps=3")
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load(result.output)
    assert resolved["train"]["model"] == "random:tiny" and resolved["train"]["max_steps"] == 3
    assert resolved["prepare"]["select"] == ["passage-5"] and "tiny" in resolved["profiles"]


def test_config_out_writes_a_params_file_dvc_can_read(tmp_path):
    out = tmp_path / "params.yaml"
    result = run("config", "--profile", "demo", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(out.read_text())["evaluate"]["references"] == ["random", "bm25", "base"]


def test_unknown_stage_lists_the_stages():
    result = run("stage", "deploy")
    assert result.exit_code == 1 and "unknown stage 'deploy'" in result.output and "register" in result.output


def test_pipeline_with_an_unknown_profile_fails_before_prefect_starts():
    result = run("pipeline", "--profile", "nightly")
    assert result.exit_code == 1 and "unknown profile 'nightly'" in result.output


def test_bad_override_says_how_to_write_one():
    result = run("stage", "prepare", "--set", "train.max_steps")
    assert result.exit_code == 1 and "expected key.path=value" in result.output


def test_demo_falls_back_to_rec_movie_when_only_movielens_was_restored(tmp_path, monkeypatch):
    import cli.pipeline as cli_pipeline  # where `demo` looks up `run_pipeline`

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["prepare"]["data_root"] = str(tmp_path / "data")
    (tmp_path / "data" / "movielens-100k").mkdir(parents=True)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    calls = []
    monkeypatch.setattr(cli_pipeline, "run_pipeline", lambda **kw: calls.append(kw))
    result = runner.invoke(app, ["demo", "--params", str(params)])
    assert result.exit_code == 0, result.output
    assert "PyPI fallback" in result.output and "Rec-Movie" in result.output
    assert calls[0]["profile"] == "demo" and calls[0]["pull"] is False
    assert "evaluate.tasks=[rec-movie]" in calls[0]["overrides"]


@pytest.mark.slow  # a scratch project: prepare, train and three evaluations
def test_evaluate_and_train_without_flags_are_the_stages(tmp_path_factory, monkeypatch):
    """`r1ranker evaluate` with no system flag runs the evaluate stage: the same summary as `r1ranker stage evaluate`."""
    import json

    from tests.project import make_project

    project = make_project(tmp_path_factory.mktemp("cli-stages"))
    monkeypatch.chdir(project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the scratch project's own sqlite store
    tiny = ["--profile", "tiny", "--params", "params.yaml"]
    assert runner.invoke(app, ["stage", "prepare", *tiny]).exit_code == 0
    trained = runner.invoke(app, ["train", *tiny, "--max-steps", "1"])  # a flag is a shorthand for --set train.max_steps=1
    assert trained.exit_code == 0 and "trained 1 steps" in trained.output, trained.output
    by_cli = runner.invoke(app, ["evaluate", *tiny, "--out", "artifacts/eval-cli"])
    by_stage = runner.invoke(app, ["stage", "evaluate", *tiny, "--set", "evaluate.out=artifacts/eval-stage"])
    assert by_cli.exit_code == 0 and by_stage.exit_code == 0, by_cli.output + by_stage.output
    cli_summary = json.loads(Path("artifacts/eval-cli/summary.json").read_text())
    assert cli_summary == json.loads(Path("artifacts/eval-stage/summary.json").read_text())
    assert set(cli_summary) == {"candidate", "random"} and cli_summary["candidate"]["passage-5"]["n"] == 4  # tiny: limit 4
    assert not Path("artifacts/eval/iranker-score").exists()  # not the one-system evaluation
    limited = runner.invoke(app, ["evaluate", *tiny, "--limit", "2", "--out", "artifacts/eval-2"])
    assert limited.exit_code == 0 and json.loads(Path("artifacts/eval-2/summary.json").read_text())["candidate"]["passage-5"]["n"] == 2


def test_evaluate_stage_refuses_flags_only_one_system_uses():
    result = runner.invoke(app, ["evaluate", "--dtype", "bfloat16", "--params", str(ROOT / "params.yaml")])
    assert result.exit_code == 1 and "--dtype: only for one system's evaluation" in result.output
