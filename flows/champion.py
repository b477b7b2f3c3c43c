"""The `evaluate-champion` flow: re-rank the frozen suite with `models:/<name>@champion`.

A significant MRR drop against the evaluation stored with the version fails the
run, which is the alert (Prefect notifications/automations can watch for it)."""

from __future__ import annotations

from typing import Any

from prefect import flow, task

from components.params import Params
from components.pipeline import champion_check
from flows.common import markdown_table, publish, resolve_config
from flows.data import prepare


@task(name="check-champion")
def check(params: Params, name: str | None = None) -> dict[str, Any]:
    return champion_check(params, name)


@flow(name="evaluate-champion", log_prints=True)
def champion_flow(config: str = "params.yaml", profile: str | None = None, name: str | None = None) -> dict[str, Any]:
    """Re-evaluate the champion on its frozen suite; fail when it regressed significantly."""
    params = resolve_config(config, profile, None)
    prepare(params)  # cached: the same params give the same frozen suite
    result = check(params, name)
    publish("champion-check", markdown_table(
        ["task", "MRR now", "MRR at registration", "diff", "p"],
        [[t, f"{c['mrr']:.4f}", f"{c['other_mrr']:.4f}", f"{c['mean_diff']:+.4f}", f"{c['p_value']:.4f}"]
         for t, c in result["tasks"].items() if c.get("p_value") is not None]),
        f"{result['name']} v{result['version']} re-evaluated")
    return result
