"""`r1ranker config`, `stage` and `pipeline`: bad input fails before any work, with the fix in the message."""

from pathlib import Path

import yaml
from typer.testing import CliRunner

from components.cli import app

ROOT = Path(__file__).resolve().parents[1]
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
    import components.cli as cli

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["prepare"]["data_root"] = str(tmp_path / "data")
    (tmp_path / "data" / "movielens-100k").mkdir(parents=True)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    calls = []
    monkeypatch.setattr(cli, "run_pipeline", lambda **kw: calls.append(kw))
    result = runner.invoke(app, ["demo", "--params", str(params)])
    assert result.exit_code == 0, result.output
    assert "PyPI fallback" in result.output and "Rec-Movie" in result.output
    assert calls[0]["profile"] == "demo" and calls[0]["pull"] is False
    assert "evaluate.tasks=[rec-movie]" in calls[0]["overrides"]
