"""The typed record one training benchmark run writes (`<out>/result.json`, and the latest one
`artifacts/bench/train_iranker.json`), and the only reader of it (`bench/results_table.py`).

Older runs' files lack fields added since; each such field has the default those runs meant (the defaults
below are the ones docs/RESULTS.md's tables always assumed), so every recorded run reads back.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunSettings:
    """The training and evaluation settings a run used, under the names every recorded run has."""

    learning_rate: float
    batch_size: int
    beta: float
    lora_r: int
    top_layers: int | None
    max_prompt_tokens: int
    max_train_samples: int | None
    eval_limit: int
    budget_minutes: float | None = None
    objective: str = "expected"  # runs before soft-target trained the expected reward
    target_tau: float | None = None
    score_tau: float | None = None
    stable_labels: bool = False
    label_position: str = "before"
    max_pool: int | None = None
    max_pool_for: list[str] = field(default_factory=list)  # 'KEY=N'
    draw_weight_for: list[str] = field(default_factory=list)  # 'KEY=W'
    val_groups: int | None = None
    eval_limit_for: list[str] = field(default_factory=list)  # 'TASK=N'
    pointer_trains_lora: bool | None = None  # None: runs before the option (both trained from every task)
    eval_dtype: str | None = None
    autocast: str = "off"


@dataclass(frozen=True)
class TaskResult:
    """Base against trained on one held-out task: paired on the samples both ranked."""

    n: int
    base_mrr: float
    base_ci95: list[float]
    trained_mrr: float
    trained_ci95: list[float]
    diff: float
    p_value: float
    ndcg10: dict[str, Any] | None = None  # TREC DL: the per-query nDCG@10 paired test
    base_first: dict[str, Any] | None = None  # the label named first most often, and its share
    trained_first: dict[str, Any] | None = None


@dataclass(frozen=True)
class TrainingRun:
    command: str
    machine: str
    model: str
    train_tasks: list[str]
    settings: RunSettings
    steps: int
    train_seconds: float
    seconds_per_step: float
    reward_first10: float
    reward_last10: float
    tasks: dict[str, TaskResult]
    curve: str
    algo: str = "expected-reward"
    mode: str = "fast"  # runs before score mode
    scorers: dict[str, str] | None = None
    objective: str | None = None
    tokens_per_second: float | None = None
    greedy_gain_first10: float | None = None
    greedy_gain_last10: float | None = None
    held_out: dict[str, Any] | None = None
    eval_seconds: dict[str, float] = field(default_factory=dict)
    profile: str | None = None  # runs since the bench reads params.yaml profiles
    overrides: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def write(self, path: Path) -> None:
        from components.io import write_json

        write_json(Path(path), self.to_dict())

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "result.json") -> TrainingRun:
        try:
            settings = _known(RunSettings, raw["settings"])
            tasks = {t: TaskResult(**_known(TaskResult, v)) for t, v in raw["tasks"].items()}
            return cls(**{**_known(cls, raw), "settings": RunSettings(**settings), "tasks": tasks})
        except (KeyError, TypeError) as err:
            raise ValueError(f"{where}: not a training run record ({err})") from err

    @classmethod
    def read(cls, path: Path) -> TrainingRun:
        return cls.from_dict(json.loads(Path(path).read_text()), str(path))


def _known(cls: type, raw: dict[str, Any]) -> dict[str, Any]:
    """The keys of `raw` that are fields of `cls` (a record may carry notes older readers never used)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in raw.items() if k in names}
