"""What every flow shares: the resolved config, retry rules for I/O, and Prefect artifacts.

Flows run in the project folder (a deployment's working directory, or the
caller's), so every path in params.yaml is relative to it. Flow parameters are
a config path, an optional profile (`profiles.<name>` in params.yaml) and
dotted overrides, e.g. `{"train.max_steps": 2}`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import yaml
from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from components.params import Params, load_params
from components.logs import telemetry_off


def run_logger():
    """The flow/task run logger (shown in the Prefect UI), or a plain logger when a task is called via `.fn`."""
    import logging

    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("r1ranker.flows")


def resolve_config(config: str, profile: str | None, overrides: dict[str, Any] | None) -> Params:
    """Load params.yaml + profile + overrides and log the result, so every run says what it ran with.

    Every flow starts here, before any stage imports MLflow: its telemetry (and Prefect's, where this process
    has not decided yet) defaults to off. A deployment's worker sets them in its own environment (README).
    """
    telemetry_off()
    params = load_params(config, profile, overrides)
    run_logger().info("resolved config (%s, profile %s, overrides %s):\n%s", config, profile,
                          json.dumps(overrides or {}), yaml.safe_dump(params.resolved, sort_keys=False))
    return params


def retry_on(*errors: type[BaseException]) -> Callable[..., bool]:
    """A Prefect `retry_condition_fn`: retry only when the task failed with one of `errors`.

    Validation failures and bad config never match, so they fail at once instead of
    burning retries; I/O errors (a store or server that is briefly away) do.
    """

    def condition(task, task_run, state) -> bool:
        try:
            state.result()
        except errors:
            return True
        except BaseException:
            return False
        return False

    return condition


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("-" if c is None else str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def publish(key: str, markdown: str, description: str) -> None:
    create_markdown_artifact(markdown=markdown, key=key, description=description)
