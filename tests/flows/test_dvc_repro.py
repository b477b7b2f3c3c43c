"""`dvc repro` runs the same stages as the flows: tiny profile, in a scratch copy of the project."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from tests.project import env_with_venv, make_project
from tests.servers import BIN

pytestmark = pytest.mark.slow  # `dvc repro` of every stage in a scratch project


def dvc(project, *args: str) -> str:
    proc = subprocess.run([str(BIN / "dvc"), *args], cwd=project, env=env_with_venv(MLFLOW_TRACKING_URI=""),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("project"))
    subprocess.run([str(BIN / "r1ranker"), "config", "--profile", "tiny", "--out", "params.yaml"], cwd=project, check=True,
                   capture_output=True)
    out = dvc(project, "repro")
    return project, out


def test_repro_runs_every_stage_and_writes_metrics(reproduced):
    project, out = reproduced
    for stage in ("prepare", "validate", "prompts", "train", "evaluate", "register"):
        assert f"Running stage '{stage}'" in out
    summary = json.loads((project / "artifacts/eval/summary.json").read_text())
    assert summary["candidate"]["passage-5"]["n"] == 4
    shown = dvc(project, "metrics", "show")
    assert "artifacts/eval/summary.json" in shown and "candidate.passage-5.mrr" in shown
    assert json.loads((project / "artifacts/registry/decision.json").read_text())["version"] == "1"
    dvc(project, "plots", "show")
    page = (project / "dvc_plots" / "index.html").read_text()
    assert "training reward" in page and "MRR per task" in page


def test_second_repro_does_no_work(reproduced):
    project, _ = reproduced
    out = dvc(project, "repro")
    assert "Running stage" not in out and "Data and pipelines are up to date" in out


def test_a_param_change_reruns_only_what_depends_on_it(reproduced):
    project, _ = reproduced
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["register"]["tolerance"] = 0.05
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = json.loads(dvc(project, "status", "--json"))
    assert set(status) == {"register"}
    params["register"]["tolerance"] = 0.02
    params["evaluate"]["limit"] = 3
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = json.loads(dvc(project, "status", "--json"))
    assert set(status) == {"prompts", "evaluate"}  # register follows once evaluate's outputs change
