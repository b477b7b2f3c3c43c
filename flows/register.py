"""The `register` flow (register + promote) and the on-demand `promote` flow."""

from __future__ import annotations

from typing import Any

from prefect import flow, task

from components.params import Params
from components.pipeline import promote_only, register_stage
from components.tracking import TrackingError
from flows.common import publish, resolve_config, retry_on


@task(name="register-and-promote", retries=2, retry_delay_seconds=[10, 60], retry_condition_fn=retry_on(TrackingError))
def register_and_promote(params: Params, parent_run_id: str | None = None) -> dict[str, Any]:
    return register_stage(params, parent_run_id=parent_run_id)


@task(name="promote", retries=2, retry_delay_seconds=[10, 60], retry_condition_fn=retry_on(TrackingError))
def promote(params: Params, name: str | None = None) -> dict[str, Any]:
    return promote_only(params, name)


def decision_markdown(d: dict[str, Any]) -> str:
    verdict = "**PROMOTED** to @champion" if d["promote"] else "**NOT PROMOTED** (stays @challenger)"
    lines = [f"`{d['name']}` v{d['challenger']}: {verdict}", "", f"Reason: {d['reason']}"]
    if d.get("champion"):
        lines.append(f"Previous champion: v{d['champion']}")
    return "\n".join(lines)


def mlflow_markdown(d: dict[str, Any]) -> str:
    uri = d["tracking_uri"]
    ui = (f"mlflow ui --backend-store-uri {uri}" if uri.startswith("sqlite:") else f"open {uri}")
    return "\n".join([f"- tracking URI: `{uri}`", f"- run: `{d['mlflow_run_id']}`", f"- model: `{d['model_uri']}` "
                      f"(serve the champion: `models:/{d['name']}@champion`)", f"- browse: `{ui}`"])


@flow(name="register", log_prints=True)
def register_flow(config: str = "params.yaml", profile: str | None = None, overrides: dict[str, Any] | None = None,
                  parent_run_id: str | None = None) -> dict[str, Any]:
    """Register the trained model with its evaluation as @challenger and promote it if it beats @champion."""
    params = resolve_config(config, profile, overrides)
    decision = register_and_promote(params, parent_run_id)
    publish("promotion-decision", decision_markdown(decision), "Champion/challenger decision")
    publish("mlflow-run", mlflow_markdown(decision), "Where the run and the model version are")
    return decision


@flow(name="promote", log_prints=True)
def promote_flow(config: str = "params.yaml", profile: str | None = None, name: str | None = None) -> dict[str, Any]:
    """Re-decide the current @challenger against @champion (e.g. after changing alpha or tolerance)."""
    params = resolve_config(config, profile, None)
    decision = promote(params, name)
    publish("promotion-decision", decision_markdown(decision), "Champion/challenger decision")
    return decision
