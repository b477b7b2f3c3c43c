"""The `prepare` stage: raw files -> `<out>/<task>/<split>.jsonl` + `datacard.json`.

Every requested task is loaded and checked in memory before anything is
written, so a bad input file leaves the previous outputs untouched; each file
is then written atomically. Output is canonical JSON (sorted keys), so the same
params and data give byte-identical files.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from components.config import PrepareConfig
from components.datasets import SPLITS, PreparedTask, load_task, select_tasks
from components.io import load_json, write_json, write_jsonl
from components.data_check import verify_data

log = logging.getLogger(__name__)

DATACARD = "datacard.json"


def _stats(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    return {"min": min(values), "max": max(values), "mean": round(statistics.fmean(values), 3)}


def describe(prepared: PreparedTask) -> dict[str, Any]:
    """The datacard entry of one task."""
    card: dict[str, Any] = {"dropped": dict(sorted(prepared.dropped.items()))}
    for split in SPLITS:
        samples = prepared.splits[split]
        entry: dict[str, Any] = {
            "samples": len(samples),
            "groups": len({s.group for s in samples}),
            "candidates_per_sample": _stats([len(s.candidates) for s in samples]),
        }
        hist = [s.meta["history_len"] for s in samples if "history_len" in s.meta]
        if hist:
            entry["history_len"] = _stats(hist)
        card[split] = entry
    groups = [{s.group for s in prepared.splits[split]} for split in SPLITS]
    card["group_overlap"] = len(set.intersection(*groups))
    return card


def prepare(cfg: PrepareConfig, tasks: Iterable[str] | None = None, out: Path | None = None,
            data_root: Path | None = None) -> dict[str, Any]:
    """Prepare the requested tasks (all configured ones by default); return the datacard.

    `data_root` is checked against its `.dvc` pointer first (`data_check.verify_data`): modified files are
    refused unless `cfg.allow_modified_data`, and each task's card records what was read (`data`).
    """
    out = Path(out or cfg.out)
    names = select_tasks(cfg, tasks or cfg.select or None)
    data = verify_data(Path(data_root or cfg.data_root), cfg.allow_modified_data).record()
    loaded = {}
    for name in names:
        log.info("preparing %s", name)
        loaded[name] = load_task(name, cfg, data_root)
    card_path = out / DATACARD
    card = load_json(card_path) if card_path.exists() else {}
    for name, prepared in loaded.items():
        for split in SPLITS:
            path = out / name / f"{split}.jsonl"
            if prepared.splits[split]:
                write_jsonl(path, (s.to_dict() for s in prepared.splits[split]))
            else:  # a test-only task (TREC DL) has no train file: an empty file would break the sample contract
                path.unlink(missing_ok=True)
        card[name] = {**describe(prepared), "data": data}
    card = {k: card[k] for k in sorted(card)}
    write_json(card_path, card)
    return card
