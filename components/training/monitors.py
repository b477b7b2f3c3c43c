"""Health monitors: parse statistics of sampled completions and the early-stopping health series.

Every logged step goes to `<output>/health.jsonl` (and the active MLflow run): per-reward
mean/std, the share of groups whose rewards all tie (no learning signal), invalid /
no-answer rates, completion and think lengths, KL. Sustained no-signal or a rising
invalid rate warns and, when `stop_early`, stops the run with a message that says why.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from components.parsing import completion_text, parse_answer
from components.training.config import MonitorSettings

log = logging.getLogger(__name__)

THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL)


class ParseStats:
    """Counts parse statuses and lengths of the completions seen since the last read."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.n = self.invalid = self.no_answer = 0
        self.lengths: list[int] = []
        self.think_lengths: list[int] = []

    def add(self, completion: str, status: str) -> None:
        self.n += 1
        self.invalid += status in ("invalid", "duplicate", "missing")
        self.no_answer += status == "no_answer"
        self.lengths.append(len(completion))
        match = THINK_RE.search(completion)
        self.think_lengths.append(len(match.group(1)) if match else 0)

    def read(self) -> dict[str, float]:
        n = max(self.n, 1)
        out = {"health/invalid_rate": self.invalid / n, "health/no_answer_rate": self.no_answer / n,
               "health/completion_chars": sum(self.lengths) / max(len(self.lengths), 1),
               "health/think_chars": sum(self.think_lengths) / max(len(self.think_lengths), 1)}
        self.reset()
        return out


class ParseStatsReward:
    """A weight-0 reward that only records parse statuses for the health monitor (returns 0.0)."""

    def __init__(self, stats: ParseStats, mode: str):
        self.__name__ = "parse_probe"
        self.stats, self.mode = stats, mode

    def __call__(self, completions, labels, candidate_ids, **_: Any) -> list[float]:
        for i, completion in enumerate(completions):
            text = completion_text(completion)
            parsed = parse_answer(text, dict(zip(labels[i], candidate_ids[i])), self.mode)
            self.stats.add(text, parsed.status)
        return [0.0] * len(completions)


class TrainingDiverged(ValueError):
    """A step made the loss or a trainable weight NaN or infinite: the run stops there, and no final model is saved."""


def diverged(step: int, what: str, out: Path) -> TrainingDiverged:
    """The error for a step that went non-finite; it says that no final model was written (and whose one is there)."""
    final = Path(out) / "final"
    earlier = f" (the {final} there is an earlier run's)" if final.exists() else ""
    return TrainingDiverged(f"step {step}: {what}; training stopped, no final/ written{earlier}; "
                            "lower train.learning_rate")


def first_non_finite(named) -> str | None:
    """The name of the first tensor of `(name, tensor)` pairs holding a NaN or an infinity; None when all are finite.

    One device sync for all of them (a flag per tensor, stacked), so it is cheap enough for every step."""
    import torch

    named = list(named)
    if not named:
        return None
    finite = torch.stack([torch.isfinite(t.detach()).all().to(named[0][1].device) for _, t in named])
    if bool(finite.all()):
        return None
    return named[int((~finite).nonzero()[0, 0])][0]


class HealthMonitor:
    """Keeps the health series, warns and decides whether to stop early."""

    def __init__(self, settings: MonitorSettings, path: Path):
        self.settings, self.path = settings, Path(path)
        self.streak = 0
        self.stop_reason: str | None = None
        self.history: list[dict[str, float]] = []

    def update(self, step: int, metrics: dict[str, float]) -> bool:
        """Record one logged step; True when training should stop."""
        row = {"step": step, **{k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}}
        self.history.append(row)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        no_signal = row.get("health/no_signal_frac", 0.0)
        self.streak = self.streak + 1 if no_signal > self.settings.no_signal_threshold else 0
        reason = None
        if self.streak >= self.settings.patience:
            reason = (f"no learning signal: {no_signal:.0%} of groups had tied rewards for {self.streak} logged steps "
                      f"(threshold {self.settings.no_signal_threshold:.0%}); raise the temperature or group size, "
                      "or make the task harder/easier")
        elif row.get("health/invalid_rate", 0.0) > self.settings.max_invalid_rate:
            reason = (f"invalid answers at {row['health/invalid_rate']:.0%} exceed {self.settings.max_invalid_rate:.0%}; "
                      "check the prompt format, raise max_completion_length, or raise the format reward weight")
        if reason:
            log.warning("step %d: %s", step, reason)
            if self.settings.stop_early:
                self.stop_reason = reason
                return True
        return False
