"""The `pipeline` flow: data -> train -> evaluate -> register, as subflows under one MLflow run."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from components.tracking import stage_run
from flows.common import resolve_config
from flows.data import data_flow
from flows.evaluate import evaluate_flow
from flows.register import register_flow
from flows.train import train_flow


@flow(name="pipeline", log_prints=True)
def pipeline(config: str = "params.yaml", profile: str | None = None, overrides: dict[str, Any] | None = None,
             pull: bool = True) -> dict[str, Any]:
    """The whole job: pull + prepare + validate + prompts, train, evaluate, register and promote.

    Args:
        config: path to params.yaml, relative to the project folder.
        profile: `demo` (real SmolLM2, small slices), `tiny` (random model, tests) or none (full).
        overrides: dotted keys over the config, e.g. {"train.max_steps": 100}.
        pull: run `dvc pull` for the raw data first.
    """
    params = resolve_config(config, profile, overrides)
    logger = get_run_logger()
    kwargs = {"config": config, "profile": profile, "overrides": overrides}
    with stage_run("pipeline", config={"profile": profile, "overrides": overrides or {}, "params": params.resolved}) as run:
        parent = run.info.run_id
        logger.info("stage 1/4: data (pull, prepare, validate, prompts)")
        data = data_flow(**kwargs, pull=pull)
        logger.info("stage 2/4: train")
        trained = train_flow(**kwargs, parent_run_id=parent)
        logger.info("stage 3/4: evaluate")
        evaluated = evaluate_flow(**kwargs, parent_run_id=parent)
        logger.info("stage 4/4: register and promote")
        decision = register_flow(**kwargs, parent_run_id=parent)
    return {"data": data, "train": trained, "evaluate": evaluated, "register": decision, "mlflow_run_id": parent}
