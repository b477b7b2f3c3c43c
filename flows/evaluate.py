"""The `evaluate` flow: the trained model and its references on the frozen test suite."""

from __future__ import annotations

from typing import Any

from prefect import flow, task

from components.params import Params
from components.pipeline import evaluate_stage
from flows.common import markdown_table, publish, resolve_config


@task(name="evaluate")
def evaluate(params: Params, parent_run_id: str | None = None) -> dict[str, Any]:
    return evaluate_stage(params, parent_run_id=parent_run_id)


def metrics_markdown(summary: dict[str, Any]) -> str:
    systems = [s for s in summary if s != "mlflow_run_id"]
    tasks = [t for t in summary["candidate"] if t != "mean_mrr"]
    rows = []
    for system in systems:
        cells = []
        for t in tasks:
            e = summary[system][t]
            if e["mrr"] is None:
                cells.append("-")
                continue
            cell = f"{100 * e['mrr']:.1f} [{100 * e['mrr_ci95'][0]:.1f}, {100 * e['mrr_ci95'][1]:.1f}]"
            if "vs_base" in e:
                cell += f" (vs base p={e['vs_base']['p_value']:.3f})"
            cells.append(cell)
        invalid = max(summary[system][t]["invalid_rate"] for t in tasks)
        no_answer = max(summary[system][t]["no_answer_rate"] for t in tasks)
        rows.append([system, *cells, f"{100 * invalid:.1f}%", f"{100 * no_answer:.1f}%"])
    return ("MRR x 100 with 95% CI on the test suite\n\n"
            + markdown_table(["system", *tasks, "invalid (max)", "no answer (max)"], rows)
            + f"\n\nMLflow run `{summary.get('mlflow_run_id')}`")


@flow(name="evaluate", log_prints=True)
def evaluate_flow(config: str = "params.yaml", profile: str | None = None, overrides: dict[str, Any] | None = None,
                  parent_run_id: str | None = None) -> dict[str, Any]:
    """Evaluate the trained model (train.output_dir/final) and params.yaml `evaluate.references`."""
    params = resolve_config(config, profile, overrides)
    summary = evaluate(params, parent_run_id)
    publish("evaluation", metrics_markdown(summary), "Evaluation metrics (artifacts/eval/summary.json)")
    return summary
