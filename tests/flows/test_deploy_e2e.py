"""End to end through real servers: `prefect server`, a process work pool, `prefect deploy`
from prefect.yaml, a worker, and `mlflow server`. The tiny profile keeps each run to a minute.

Everything started here is stopped at the end, pass or fail.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.project import corrupt_samples, env_with_venv, make_project
from tests.servers import BIN, MlflowServer, free_port, stop, wait_http

pytestmark = pytest.mark.slow  # a real Prefect server, worker and deployment

POOL = "r1ranker-process"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


class PrefectStack:
    def __init__(self, home: Path, project: Path, mlflow_uri: str):
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.project = project
        self.env = env_with_venv(PREFECT_HOME=str(home), PREFECT_API_URL=self.api, MLFLOW_TRACKING_URI=mlflow_uri,
                                 PREFECT_WORKER_QUERY_SECONDS="2", PREFECT_SERVER_ANALYTICS_ENABLED="false",
                                 PREFECT_LOGGING_LEVEL="INFO")
        self.env.pop("PREFECT_PROFILE", None)
        self.home = home
        self.procs: list[subprocess.Popen] = []

    def spawn(self, args: list[str], log: str) -> subprocess.Popen:
        proc = subprocess.Popen(args, cwd=self.project, env=self.env, stdout=open(self.home / log, "ab"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def cli(self, *args: str) -> str:
        proc = subprocess.run([str(BIN / "prefect"), "--no-prompt", *args], cwd=self.project, env=self.env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"prefect {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout

    def start(self) -> "PrefectStack":
        server = self.spawn([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
                            "server.log")
        wait_http(f"{self.api}/health", 180, server)
        self.cli("work-pool", "create", POOL, "--type", "process")
        self.cli("deploy", "--all")
        self.spawn([str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--limit", "1"], "worker.log")
        return self

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)

    def request(self, method: str, path: str, body: dict | None = None):
        # a busy SQLite-backed server answers 503 with Retry-After; Prefect's own client retries those too
        for attempt in range(8):
            resp = httpx.request(method, f"{self.api}{path}", json=body, timeout=30)
            if resp.status_code not in (429, 503):
                break
            time.sleep(float(resp.headers.get("Retry-After", 1 + attempt)))
        resp.raise_for_status()
        return resp.json()

    def post(self, path: str, body: dict) -> dict | list:
        return self.request("POST", path, body)

    def get(self, path: str) -> dict:
        return self.request("GET", path)

    def run(self, deployment: str, parameters: dict, timeout: float = 600) -> dict:
        dep = self.get(f"/deployments/name/{deployment}")
        run = self.post(f"/deployments/{dep['id']}/create_flow_run", {"parameters": parameters})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.get(f"/flow_runs/{run['id']}")
            if state["state_type"] in TERMINAL:
                return state
            time.sleep(2)
        worker_log = (self.home / "worker.log").read_text()[-3000:]
        raise TimeoutError(f"flow run {run['id']} not finished after {timeout}s; worker log tail:\n{worker_log}")

    def logs(self, level: int = 0) -> list[str]:
        return [entry["message"] for entry in self.post("/logs/filter", {"logs": {"level": {"ge_": level}}, "limit": 200})]

    def logs_containing(self, needles: tuple[str, ...], level: int = 0, timeout: float = 60) -> str:
        """The logs once they hold every needle: a run's state can turn terminal before its log batches are stored."""
        deadline = time.monotonic() + timeout
        while True:
            text = "\n".join(self.logs(level))
            if all(n in text for n in needles) or time.monotonic() > deadline:
                return text
            time.sleep(1)

    def task_runs(self, name: str) -> int:
        return sum(t["name"].rsplit("-", 1)[0] == name for t in self.post("/task_runs/filter", {}))

    def artifacts(self, key: str) -> list[dict]:
        return self.post("/artifacts/filter", {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC"})


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("project"))
    mlflow = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    prefect = PrefectStack(tmp_path_factory.mktemp("prefect-home"), project, mlflow.uri)
    try:
        mlflow.start()
        prefect.start()
        yield prefect, mlflow
    finally:
        prefect.stop()
        mlflow.stop()


def test_prefect_yaml_deploys_the_four_deployments(stack):
    prefect, _ = stack
    names = {d["name"]: d for d in prefect.post("/deployments/filter", {})}
    assert set(names) == {"r1ranker-pipeline", "r1ranker-evaluate-champion", "r1ranker-promote", "r1ranker-rerank"}
    crons = {n: [s["schedule"].get("cron") for s in d.get("schedules", [])] for n, d in names.items()}
    assert crons == {"r1ranker-pipeline": ["0 2 * * *"], "r1ranker-evaluate-champion": ["0 4 * * 1"], "r1ranker-promote": [],
                     "r1ranker-rerank": []}


def test_pipeline_deployment_trains_registers_and_publishes(stack):
    from mlflow import MlflowClient

    prefect, mlflow = stack
    run = prefect.run("pipeline/r1ranker-pipeline", {"profile": "tiny"})
    assert run["state_type"] == "COMPLETED", prefect.logs(40)[-10:]
    for key in ("datacard", "prompts", "training", "evaluation", "promotion-decision", "mlflow-run"):
        assert prefect.artifacts(key), f"no {key} artifact"
    evaluation = prefect.artifacts("evaluation")[0]["data"]
    assert "passage-5" in evaluation and "candidate" in evaluation and "random" in evaluation
    assert "PROMOTED" in prefect.artifacts("promotion-decision")[0]["data"]

    client = MlflowClient(tracking_uri=mlflow.uri, registry_uri=mlflow.uri)
    champion = client.get_model_version_by_alias("iranker-tiny", "champion")
    train_run = client.search_runs([client.get_experiment_by_name("r1-ranker").experiment_id], "tags.stage = 'train'")[0]
    assert "reward/expected_mean" in train_run.data.metrics
    assert client.get_run(champion.run_id).data.tags["stage"] == "register"
    assert run["id"] and (prefect.project / "artifacts/registry/decision.json").exists()


def test_champion_check_and_promote_deployments_run_on_the_registered_champion(stack):
    prefect, _ = stack
    run = prefect.run("evaluate-champion/r1ranker-evaluate-champion", {"profile": "tiny"})
    assert run["state_type"] == "COMPLETED", prefect.logs(40)[-10:]
    assert "passage-5" in prefect.artifacts("champion-check")[0]["data"]
    run = prefect.run("promote/r1ranker-promote", {"profile": "tiny"})
    assert run["state_type"] == "COMPLETED", prefect.logs(40)[-10:]
    assert "already the champion" in prefect.artifacts("promotion-decision")[0]["data"]


def test_corrupted_input_fails_in_validation_and_registers_nothing(stack):
    from mlflow import MlflowClient

    prefect, mlflow = stack
    trains_before = prefect.task_runs("train")
    run = prefect.run("pipeline/r1ranker-pipeline", {"profile": "tiny", "pull": False,
                                                      "overrides": corrupt_samples(prefect.project)})
    assert run["state_type"] == "FAILED"
    errors = prefect.logs_containing(("validation failed", "candidate_chars", "custom:q2"), level=40)
    assert "validation failed" in errors and "candidate_chars" in errors and "custom:q2" in errors
    failed = {t["name"].rsplit("-", 1)[0] for t in prefect.post("/task_runs/filter", {}) if t["state_type"] == "FAILED"}
    assert failed == {"validate", "data"}  # the task and the subflow around it; nothing after it ran
    assert prefect.task_runs("train") == trains_before
    client = MlflowClient(tracking_uri=mlflow.uri, registry_uri=mlflow.uri)
    assert client.search_model_versions("name = 'iranker-corrupt'") == []
