"""Bring-your-own dataset: contract-format JSONL (see docs/data-format.md).

`path` is either a folder holding `train.jsonl` and/or `test.jsonl` (used as
given), or a single `.jsonl` file whose groups are split with the seeded group
split (`test_groups` groups go to test). Samples keep their own `task` field
only if it matches the task name they are prepared under; otherwise the
mismatch is an error, so a file is never silently relabelled.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from components.config import TaskConfig
from components.datasets.common import SPLITS, LoadContext, PreparedTask, cap, finish_task, split_groups
from components.io import DataError, read_sample_folder, read_samples


def _check_task(samples, task: str, path: Path):
    for s in samples:
        if s.task != task:
            raise DataError(f"{path}: sample {s.sample_id!r} has task {s.task!r}, expected {task!r}")
    return samples


def load_jsonl(cfg: TaskConfig, ctx: LoadContext) -> PreparedTask:
    if not cfg.path:
        raise DataError(f"task {ctx.task}: source 'jsonl' needs 'path' (a .jsonl file or a folder)")
    path = ctx.resolve(cfg.path, "")
    if path.is_dir():
        splits = {}
        read = read_sample_folder(path, [path / f"{split}.jsonl" for split in SPLITS if (path / f"{split}.jsonl").exists()])
        for split in SPLITS:
            f = path / f"{split}.jsonl"
            samples = _check_task(read.get(f, []), ctx.task, f)
            limit = cfg.max_train if split == "train" else cfg.max_test
            splits[split] = cap(samples, limit, ctx.rng("cap", split))
        if not any(splits.values()):
            raise DataError(f"{path}: no train.jsonl or test.jsonl with samples")
        overlap = {s.group for s in splits["train"]} & {s.group for s in splits["test"]}
        if overlap:
            raise DataError(f"{path}: groups in both train.jsonl and test.jsonl: {sorted(overlap)[:10]}")
        return PreparedTask(splits=splits, dropped=Counter())
    samples = _check_task(read_samples(path), ctx.task, path)
    if not samples:
        raise DataError(f"{path}: no samples")
    assignment = split_groups([s.group for s in samples], cfg.test_groups, ctx.rng("split"))
    return finish_task(ctx.task, samples, assignment, cfg, ctx, Counter())
