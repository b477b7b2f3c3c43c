"""Tracking: a SQLite store keeps its artifacts beside its database file, wherever the command runs."""

from __future__ import annotations

import os
from pathlib import Path

from components.tracking import configure, ensure_experiment


def test_artifacts_follow_the_tracking_uri(tmp_path, monkeypatch):
    import mlflow

    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    try:
        _log_one_artifact(tmp_path, monkeypatch, mlflow)
    finally:  # later tests in this process must not write to this test's store
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])


def _log_one_artifact(tmp_path, monkeypatch, mlflow):
    store = tmp_path / "stores" / "team.db"
    store.parent.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a command started in another folder
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    configure(elsewhere)
    exp_id = ensure_experiment(elsewhere, name="artifacts-follow-the-store")
    with mlflow.start_run(experiment_id=exp_id):
        (elsewhere / "note.txt").write_text("hello")
        mlflow.log_artifact(str(elsewhere / "note.txt"))
        run_id = mlflow.active_run().info.run_id
    logged = list((store.parent / "mlartifacts").rglob("note.txt"))
    assert len(logged) == 1 and run_id in str(logged[0])
    assert not (elsewhere / "mlartifacts").exists() and not (elsewhere / "mlruns").exists()
    assert os.environ["MLFLOW_TRACKING_URI"] == f"sqlite:///{store}"
    assert Path(mlflow.get_experiment(exp_id).artifact_location.removeprefix("file://")) == store.parent / "mlartifacts"
