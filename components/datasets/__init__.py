"""Dataset sources and the nine paper tasks.

`SOURCES` maps a source name (the `source` key of a task in params.yaml) to the
loader that turns raw files into `RankingSample`s; `DATASETS` lists the task
names this project prepares by default. Adding a source is one module and one
line here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from components.config import PrepareConfig, TaskConfig
from components.datasets.amazon import load_amazon_cds, load_amazon_games
from components.datasets.common import SPLITS, LoadContext, PreparedTask
from components.datasets.jsonl import load_jsonl
from components.datasets.movielens import load_movielens
from components.datasets.routerbench import load_routerbench
from components.datasets.msmarco import load_msmarco
from components.datasets.trec_dl import load_trec_dl, load_trec_run
from components.io import DataError

Loader = Callable[[TaskConfig, LoadContext], PreparedTask]

SOURCES: dict[str, Loader] = {
    "movielens": load_movielens,
    "amazon-games": load_amazon_games,
    "amazon-cds": load_amazon_cds,
    "routerbench": load_routerbench,
    "msmarco": load_msmarco,
    "trec-run": load_trec_run,
    "trec-dl": load_trec_dl,
    "jsonl": load_jsonl,
}

# The paper's nine tasks, in its table order.
DATASETS = (
    "rec-movie",
    "rec-music",
    "rec-game",
    "router-performance",
    "router-cost",
    "router-balance",
    "passage-5",
    "passage-7",
    "passage-9",
)
# The IR field's benchmark: reranking each query's BM25 top-100 (test only, nDCG@10 on graded qrels).
TREC_TASKS = ("trec-dl19", "trec-dl21")


class UnknownTaskError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def select_tasks(cfg: PrepareConfig, names: Iterable[str] | None) -> list[str]:
    """Resolve requested task names against the configured ones (all when None)."""
    configured = list(cfg.tasks)
    if not names:
        return configured
    unknown = [n for n in names if n not in cfg.tasks]
    if unknown:
        raise UnknownTaskError(f"unknown task(s) {unknown}; configured tasks: {configured}")
    return list(dict.fromkeys(names))


def load_task(name: str, cfg: PrepareConfig, data_root: Path | None = None) -> PreparedTask:
    task_cfg = cfg.tasks[name]
    loader = SOURCES.get(task_cfg.source)
    if loader is None:
        raise UnknownTaskError(f"task {name}: unknown source {task_cfg.source!r}; valid sources: {sorted(SOURCES)}")
    ctx = LoadContext(
        task=name,
        data_root=Path(data_root or cfg.data_root),
        seed=cfg.seed,
        history_len=cfg.history_len,
        rec_candidates=cfg.rec_candidates,
    )
    prepared = loader(task_cfg, ctx)
    for split in SPLITS:
        prepared.splits.setdefault(split, [])
    for split, samples in prepared.splits.items():
        for s in samples:
            if s.task != name:
                raise DataError(f"task {name}: loader produced sample {s.sample_id!r} with task {s.task!r}")
    return prepared


__all__ = ["DATASETS", "TREC_TASKS", "SOURCES", "SPLITS", "PreparedTask", "UnknownTaskError", "load_task", "select_tasks"]
