"""Training data: the train split (without the held-out groups), one row per prompt, and each row's rewards.

Only `<samples>/<task>/train.jsonl` is read; the test split never is. Every draw is
seeded (`random.Random` keyed by the seed and the task), so runs and resumed runs
see the same rows in the same order.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from components.io import read_sample_folder
from components.prompts import REWARD_COLUMNS, build_prompt, expand_elimination_steps, reward_columns, shown_labels
from components.rewards import build_rewards
from components.schema import RankingSample
from components.training.config import TrainConfig, TrainingConfigError
from components.scorers import check_sample


def load_train_samples(cfg: TrainConfig) -> list[RankingSample]:
    """The train split only: `<samples>/<task>/train.jsonl`, capped per task, without the held-out groups."""
    return split_train(cfg)[0]


def load_validation_samples(cfg: TrainConfig) -> list[RankingSample]:
    """The held-out groups of the train split (`validation.groups` per task); empty when validation is off."""
    return split_train(cfg)[1]


def split_train(cfg: TrainConfig) -> tuple[list[RankingSample], list[RankingSample]]:
    train, held = [], []
    paths = [Path(cfg.samples) / task / "train.jsonl" for task in cfg.tasks]
    for task, path in zip(cfg.tasks, paths):
        if not path.exists():
            raise TrainingConfigError(f"{path}: no train split for task {task!r}; run `r1ranker prepare -t {task}` "
                                      "(test-only tasks such as trec-dl19 and trec-dl21 have none)")
    by_file = read_sample_folder(Path(cfg.samples), paths)  # the one contract; ids unique across the tasks' files
    for task, path in zip(cfg.tasks, paths):
        rows = by_file[path]
        if cfg.validation.groups:
            # whole groups, so no user or query is on both sides; at most a quarter of them (Passage-5 has 18)
            groups = sorted({s.group for s in rows})
            n = min(cfg.validation.groups, len(groups) // 4)
            out = set(random.Random(f"{cfg.seed}:{task}:validation").sample(groups, n))
            held += [s for s in rows if s.group in out]
            rows = [s for s in rows if s.group not in out]
        if cfg.max_train_samples:
            rows = random.Random(f"{cfg.seed}:{task}").sample(rows, min(cfg.max_train_samples, len(rows)))
        train.extend(rows)
    return train, held


def build_rows(samples: Sequence[RankingSample], cfg: TrainConfig, tokenizer) -> list[dict[str, Any]]:
    """One row per prompt: the prompt text, the reward columns and the sample id (for audits)."""
    prompt_cfg = cfg.effective_prompt
    score_mode = cfg.ranking_mode == "score"
    rows = []
    for s in samples:
        if cfg.ranker == "iranker":
            cap = cfg.pool_cap(s.task, s.scenario)
            pools = [step.remaining for step in expand_elimination_steps(s, cfg.seed)
                     if cap is None or len(step.remaining) <= cap]
        else:
            pools = [tuple(s.candidate_ids)]
        if score_mode:
            check_sample(s, cfg.scorers, tokenizer, cfg.prompt)  # PromptTooLong now, not mid-training
        for remaining in pools:
            if score_mode:  # the scorer reads the sample itself; the columns are aligned with the listing order
                labels, text = shown_labels(s, remaining, prompt_cfg.stable_labels), ""
            else:
                p = build_prompt(s, cfg.ranker, tokenizer, prompt_cfg, remaining=remaining)
                labels, text = p.labels, p.text
            rows.append({"prompt": text, "sample_id": s.sample_id, "task": s.task,
                         **reward_columns(labels, s, prompt_cfg.reasoning)})
    random.Random(cfg.seed).shuffle(rows)
    return rows


def exclusion_table(rows: Sequence[dict], cfg: TrainConfig) -> list[list[float]]:
    """r(a) for every remaining label a of every row: the configured, weighted rewards of `<answer>a</answer>`."""
    fns, weights = build_rewards(cfg.reward_spec)
    table = []
    for row in rows:
        completions = [f"<answer>{lab}</answer>" for lab in row["labels"]]
        cols = {k: [row[k]] * len(completions) for k in REWARD_COLUMNS}
        total = [0.0] * len(completions)
        for fn, w in zip(fns, weights):
            for i, v in enumerate(fn(completions, **cols)):
                total[i] += w * (v or 0.0)
        table.append(total)
    return table


def validation_rows(held: Sequence[RankingSample], cfg: TrainConfig, tokenizer) -> list[dict[str, Any]]:
    """Prompts of the held-out groups, built as the training rows are; at most `validation.max_rows` per task."""
    rows = build_rows(held, cfg, tokenizer)
    by_task: dict[str, list[dict[str, Any]]] = {}
    for row in rows:  # build_rows shuffled them (seeded): the first max_rows of a task are a seeded subset
        if len(by_task.setdefault(row["task"], [])) < cfg.validation.max_rows:
            by_task[row["task"]].append(row)
    return [row for task in sorted(by_task) for row in by_task[task]]
