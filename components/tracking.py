"""MLflow runs: where they go, what each stage logs, and bounded retries.

Default: a local SQLite file (`mlflow.db`) with artifacts under `mlartifacts/`
in the project, so nothing needs to be started. `MLFLOW_TRACKING_URI` switches
to a server. One parent run per pipeline run, one nested run per stage; each
logs the resolved config, the data version (the md5 in `data.dvc` and the git
commit) and the environment (library versions, device).

MLflow's HTTP client already retries single requests; `with_retries` adds a
bounded outer retry with back-off around each of our logging calls, then fails
with a message that says the local outputs were kept and where (the URI's
credentials redacted). A stage's run ends FAILED when the stage raises or the
process gets SIGTERM, never left RUNNING.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml

from components.io import sigterm_unwinds
from components.logs import redact
from components.report import EvalReport
from components.data_check import check_data

log = logging.getLogger(__name__)
T = TypeVar("T")

EXPERIMENT = "r1-ranker"
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
                 "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}  # our commands print their own progress


class TrackingError(RuntimeError):
    """The tracking server stayed unreachable; local outputs are kept."""


def tracking_uri(root: Path = Path(".")) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(Path(root).resolve() / 'mlflow.db')}"


def configure(root: Path = Path(".")) -> str:
    """Point MLflow at the configured store (called by entry points, never at import)."""
    import mlflow

    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    uri = tracking_uri(root)
    # MLflow also exports these into os.environ; undo that, or the first project's store would stick to
    # this process (tracking_uri() reads the variable) and leak into every subprocess it starts
    before = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for key, value in before.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return uri


def local_artifact_root(uri: str) -> Path | None:
    """Where a SQLite store keeps its artifacts: `mlartifacts/` beside the database file (None for a server).

    >>> local_artifact_root("sqlite:////srv/mlflow/runs.db")
    PosixPath('/srv/mlflow/mlartifacts')
    >>> local_artifact_root("http://mlflow.internal:5000") is None
    True
    """
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):]).resolve().parent / "mlartifacts"


def ensure_experiment(root: Path = Path("."), name: str = EXPERIMENT) -> str:
    """The experiment id; a SQLite store keeps its artifacts beside its database file."""
    import mlflow

    def get_or_create() -> str:
        exp = mlflow.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        artifacts = local_artifact_root(tracking_uri(root))
        # beside the store it belongs to: MLflow's default (./mlartifacts of the current folder) would scatter
        # one store's artifacts over every folder a command was started in
        return mlflow.create_experiment(name, artifact_location=artifacts.as_uri() if artifacts else None)

    exp_id = with_retries(get_or_create, "create the experiment")
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def with_retries(fn: Callable[[], T], what: str, attempts: int | None = None, backoff: float | None = None,
                 keep: str = "") -> T:
    """Call `fn`, retrying connection failures with exponential back-off for a bounded number of tries."""
    from mlflow.exceptions import MlflowException

    attempts = attempts or int(os.environ.get("R1RANKER_TRACKING_ATTEMPTS", "3"))
    backoff = backoff if backoff is not None else float(os.environ.get("R1RANKER_TRACKING_BACKOFF", "2"))
    started = time.monotonic()
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except (MlflowException, ConnectionError, OSError) as err:
            if not _is_connection_error(err):
                raise  # a real error (missing resource, bad input): retrying cannot help
            if attempt == attempts:
                where = f"; local outputs are kept in {keep}" if keep else ""
                raise TrackingError(
                    f"could not {what} at {redact(tracking_uri())} after {attempt} attempt(s) "
                    f"over {time.monotonic() - started:.0f}s: {redact(str(err)[:300])}{where}"
                ) from err
            delay = backoff * 2 ** (attempt - 1)
            log.warning("MLflow unreachable while trying to %s (attempt %d/%d); retrying in %.1fs", what, attempt, attempts, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _is_connection_error(err: BaseException) -> bool:
    text = f"{type(err).__name__} {err}".lower()
    return any(s in text for s in ("connection", "max retries", "timed out", "unreachable", "refused", "503", "502"))


def data_version(root: Path = Path(".")) -> dict[str, str]:
    """The md5 data.dvc pins and the md5 of what data/ holds now (DVC's folder hash: equal when unmodified)."""
    out = {}
    dvc_file = Path(root) / "data.dvc"
    if dvc_file.exists():
        outs = (yaml.safe_load(dvc_file.read_text()) or {}).get("outs") or [{}]
        out["data_md5"] = str(outs[0].get("md5", ""))
    if (Path(root) / "data").is_dir():
        state = check_data(Path(root) / "data")
        out["data_md5_read"] = state.read
        out["data_modified"] = str(len(state.modified)) if state.verified else "unverified"
    proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    out["git_commit"] = proc.stdout.strip() if proc.returncode == 0 else "unknown"
    return out


def environment() -> dict[str, str]:
    import importlib.metadata as md

    env = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "trl", "peft", "mlflow", "prefect"):
        with contextlib.suppress(md.PackageNotFoundError):
            env[pkg] = md.version(pkg)
    try:
        import torch

        env["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover
        env["device"] = "unknown"
    return env


@contextlib.contextmanager
def stage_run(stage: str, config: dict[str, Any] | None = None, root: Path = Path("."),
              parent_run_id: str | None = None) -> Iterator[Any]:
    """A run for one stage (nested under the active or given parent run), with config, data version and env.

    Any exception in the block, SIGTERM included (`sigterm_unwinds`), ends the run FAILED before it propagates.
    """
    import mlflow

    configure(root)
    ensure_experiment(root)
    nested = parent_run_id is not None or mlflow.active_run() is not None
    kwargs = {"run_name": stage, "nested": nested}
    if parent_run_id:
        kwargs["parent_run_id"] = parent_run_id
    with sigterm_unwinds():
        run = with_retries(lambda: mlflow.start_run(**kwargs), f"start the {stage} run")
        try:
            tags = {"stage": stage, **{f"data.{k}": v for k, v in data_version(root).items()},
                    **{f"env.{k}": v for k, v in environment().items()}}
            with_retries(lambda: mlflow.set_tags(tags), "tag the run")
            if config is not None:
                with_retries(lambda: mlflow.log_dict(config, "config/resolved.json"), "log the config")
            yield run
        except BaseException:
            with contextlib.suppress(Exception):
                mlflow.end_run(status="FAILED")
            raise
        else:
            with_retries(lambda: mlflow.end_run(), f"close the {stage} run")


def flat_metrics(report: EvalReport) -> dict[str, float]:
    """`metrics.json` as flat MLflow metrics: `<task>.<metric>` means, rates and costs."""
    out = {}
    for task, rep in report.tasks.items():
        for name, value in (rep.metrics.values.items() if rep.metrics else ()):
            out[f"{task}.{name.replace('@', '_at_')}"] = value.mean
        for group in (rep.parse, rep.cost):  # every number in the block, as written
            for name, value in (group.to_dict().items() if group else ()):
                if isinstance(value, (int, float)):
                    out[f"{task}.{name}"] = float(value)
        out[f"{task}.n_skipped"] = float(rep.n_skipped)
    mrrs = [v for k, v in out.items() if k.endswith(".mrr")]
    if mrrs:
        out["mean_mrr"] = sum(mrrs) / len(mrrs)
    return out


def log_evaluation(eval_dir: Path) -> dict[str, float]:
    """Log an evaluation folder: flat metrics, and metrics.json, traces and plots as artifacts."""
    import mlflow

    eval_dir = Path(eval_dir)
    metrics = flat_metrics(EvalReport.read(eval_dir / "metrics.json"))
    with_retries(lambda: mlflow.log_metrics(metrics), "log evaluation metrics", keep=str(eval_dir))
    with_retries(lambda: mlflow.log_artifacts(str(eval_dir), "evaluation"), "upload the evaluation", keep=str(eval_dir))
    return metrics


def log_training_metrics(metrics: dict[str, float], step: int) -> None:
    """A training step's metrics into the active MLflow run, if any (training itself never needs MLflow)."""
    try:
        import mlflow
    except ImportError:  # pragma: no cover
        return
    if mlflow.active_run() is not None:
        clean = {re.sub(r"[^A-Za-z0-9_./ -]", "_", k): v for k, v in metrics.items()}
        mlflow.log_metrics(clean, step=step)
