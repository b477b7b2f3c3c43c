"""`metrics.json` as typed records: evaluation writes it, and every reader reads it, through `EvalReport`.

Why: each reader (registry, tracking, pipeline, bench) indexed the dict evaluation writes by string keys, so a
renamed or missing key failed far from its writer or read silently as a default (STYLE.md item 18). Here it is
typed, with properties for what callers computed by hand (`report.mrr(task)`, `report.identity`), and the layout
on disk is unchanged (`dvc metrics`, older files): `EvalReport.from_dict(d).to_dict() == d`. A key added later
(`parse.first_answer_top`, `system.identity`, ...) reads as None from an older file; unknown keys are kept
(`extra`) and written back; a key every report has had, missing, is a `ReportError` naming the file and the key.

>>> d = {"system": {"label": "bm25", "mode": None}, "wall_seconds": 0.5, "tasks": {"t": {
...     "n": 1, "n_skipped": 0, "skipped_reasons": {}, "sample_ids_hash": "ab12", "per_sample_mrr": {"s1": 0.5},
...     "metrics": {"n": 1, "mrr": {"mean": 0.5, "ci95": [0.5, 0.5]}}}}}
>>> report = EvalReport.from_dict(d)
>>> report.mrr("t"), report.tasks["t"].per_sample_mrr, report.system.label, report.identity
(0.5, {'s1': 0.5}, 'bm25', None)
>>> report.to_dict() == d
True
>>> try:
...     EvalReport.from_dict({"system": {}, "tasks": {"t": {"n": 1}}}, "old/metrics.json")
... except ReportError as err:
...     print(err)
old/metrics.json: required key 'tasks.t.n_skipped' is missing
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from components.io import DataError, atomic_write, load_json


class ReportError(DataError):
    """A report lacks a key every report has (or a block is not an object); the message names file and key."""

def _plain(value: Any) -> Any:
    """JSON-ready copy: blocks become dicts, tuples lists; nothing shares state with the report."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _object(d: Any, source: str, where: str, required: tuple[str, ...] = ()) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise ReportError(f"{source}: {f'key {where[:-1]!r}' if where else 'the report'} is not a JSON object")
    for key in required:
        if key not in d:
            raise ReportError(f"{source}: required key {where + key!r} is missing")
    return d


def _blocks(cls: Any) -> Any:  # loader of a {name: block} mapping (tasks, compared tasks)
    return lambda d, source, where: {k: cls.from_dict(v, source, f"{where}{k}.") for k, v in _object(d, source, where).items()}


@dataclass(frozen=True, kw_only=True)
class _Block:
    """A JSON object: a field without a default is required, a None field is left out, unknown keys are `extra`."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    _load: ClassVar[Mapping[str, Any]] = {}  # field -> loader(value, source, where) for nested blocks

    @classmethod
    def from_dict(cls, d: Any, source: str = "<report>", where: str = ""):
        known = {f.name: f for f in fields(cls) if f.name != "extra"}
        d = _object(d, source, where, tuple(k for k, f in known.items() if f.default is f.default_factory is MISSING))
        kw = {k: cls._load[k](v, source, f"{where}{k}.") if k in cls._load else v for k, v in d.items() if k in known}
        return cls(**kw, extra={k: v for k, v in d.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: _plain(getattr(self, f.name)) for f in fields(self)
               if f.name != "extra" and getattr(self, f.name) is not None}
        return {**out, **_plain(self.extra)}


@dataclass(frozen=True, kw_only=True)
class MetricCI(_Block):
    mean: float
    ci95: tuple[float, float]
    _load: ClassVar = {"ci95": lambda v, source, where: tuple(v)}


@dataclass(frozen=True, kw_only=True)
class Routing(_Block):
    """Mean perf, cost and score of the top-1 model and the oracle's (router tasks); `n` and absences are newer."""
    n: int | None = None
    routing_absent: int | None = None
    perf: float | None = None
    cost: float | None = None
    score: float | None = None
    oracle_perf: float | None = None
    oracle_cost: float | None = None
    oracle_score: float | None = None


@dataclass(frozen=True)
class Metrics:
    """`metrics.summarise`: n, then mean and 95% CI per metric (`mrr`, `ndcg@k`, `hit@k`), and routing utility."""
    n: int
    values: Mapping[str, MetricCI]
    routing: Routing | None = None

    @property
    def mrr(self) -> MetricCI:
        return self.values["mrr"]

    @classmethod
    def from_dict(cls, d: Any, source: str = "<report>", where: str = "") -> Metrics:
        d = _object(d, source, where, ("n", "mrr"))
        values = {k: MetricCI.from_dict(v, source, f"{where}{k}.") for k, v in d.items() if k not in ("n", "routing")}
        routing = Routing.from_dict(d["routing"], source, f"{where}routing.") if "routing" in d else None
        return cls(d["n"], values, routing)

    def to_dict(self) -> dict[str, Any]:
        out = {"n": self.n, **_plain(self.values)}
        return {**out, "routing": self.routing.to_dict()} if self.routing is not None else out


@dataclass(frozen=True, kw_only=True)
class FirstAnswer(_Block):
    """The label answered most often at a sample's first step and its share (near 1: a position bias)."""
    label: str
    share: float


@dataclass(frozen=True, kw_only=True)
class Parse(_Block):
    steps: int
    invalid_rate: float
    no_answer_rate: float
    repaired_step_rate: float
    repaired_ranking_rate: float
    status_counts: Mapping[str, int]
    first_answer_top: FirstAnswer | None = None
    _load: ClassVar = {"first_answer_top": FirstAnswer.from_dict}


@dataclass(frozen=True, kw_only=True)
class Cost(_Block):
    llm_calls_per_sample: float
    tokens_in_per_sample: float
    tokens_computed_per_sample: float | None = None  # newer: prompt tokens not served from a KV cache
    tokens_out_per_sample: float
    seconds_per_sample: float
    latency_p50: float
    latency_p95: float


@dataclass(frozen=True, kw_only=True)
class TaskReport(_Block):
    """One task: counts and skips always; metrics, per-sample MRR, parse rates and cost when a sample was ranked."""
    n: int
    n_skipped: int
    skipped_reasons: Mapping[str, int]
    sample_ids_hash: str
    samples_hash: str | None = None  # newer: the samples' content (labels, qrels, texts), recomputed at register
    metrics: Metrics | None = None
    per_sample_mrr: Mapping[str, float] | None = None
    per_sample_ndcg10: Mapping[str, float] | None = None  # tasks with full judgements (TREC DL): paired over queries
    parse: Parse | None = None
    cost: Cost | None = None
    _load: ClassVar = {"metrics": Metrics.from_dict, "parse": Parse.from_dict, "cost": Cost.from_dict}

    mrr = property(lambda self: None if self.metrics is None else float(self.metrics.mrr.mean))  # mean MRR or None

    @property
    def complete(self) -> bool:
        """Nothing skipped, and metrics and per-sample MRR present: what promotion compares."""
        return not self.n_skipped and self.metrics is not None and self.per_sample_mrr is not None

    @property
    def first_answer_top(self) -> FirstAnswer | None:
        return None if self.parse is None else self.parse.first_answer_top


@dataclass(frozen=True, kw_only=True)
class TaskComparison(_Block):
    """The paired permutation test of per-sample MRR against the compared run, or why there is none (`error`)."""
    error: str | None = None
    mean_diff: float | None = None
    p_value: float | None = None
    n: int | None = None
    same_suite: bool | None = None
    other_mrr: float | None = None
    mrr: float | None = None
    ndcg10: Mapping[str, float] | None = None  # TREC DL: the paired test of per-query nDCG@10 (mean_diff, p_value, n, ...)


@dataclass(frozen=True, kw_only=True)
class Comparison(_Block):
    system: Mapping[str, Any]  # the compared run's system block, as it was
    tasks: Mapping[str, TaskComparison]
    _load: ClassVar = {"tasks": _blocks(TaskComparison)}


@dataclass(frozen=True)
class SystemInfo:
    """What was evaluated and how: free-form (callers add their own keys, None values included), kept as given."""
    entries: Mapping[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        """A caller-specific key (the bench's `max_prompt_tokens`, ...); `default` only when it is absent."""
        return self.entries.get(key, default)

    # the keys evaluation and its callers write (None when absent); newer: device, dtype, prompt_version, identity
    label, ranker, mode, model, split, limit, scorers, device, dtype, prompt_version, identity = (
        property(lambda self, k=k: self.entries.get(k)) for k in (
            "label", "ranker", "mode", "model", "split", "limit", "scorers", "device", "dtype", "prompt_version", "identity"))

    @classmethod
    def from_dict(cls, d: Any, source: str = "<report>", where: str = "system.") -> SystemInfo:
        return cls(dict(_object(d, source, where)))

    def to_dict(self) -> dict[str, Any]:
        return _plain(self.entries)


@dataclass(frozen=True, kw_only=True)
class EvalReport(_Block):
    """`metrics.json`: the system block, one `TaskReport` per task (in ranking order), wall time, `--compare` block."""
    system: SystemInfo
    tasks: Mapping[str, TaskReport]
    wall_seconds: float | None = None
    compare: Comparison | None = None
    _load: ClassVar = {"system": SystemInfo.from_dict, "tasks": _blocks(TaskReport), "compare": Comparison.from_dict}

    @classmethod
    def read(cls, path: Path) -> EvalReport:
        """Read a `metrics.json`; unreadable JSON is a `DataError`, a missing required key a `ReportError`."""
        return cls.from_dict(load_json(Path(path)), str(path))

    def write(self, path: Path) -> None:
        """The exact text evaluation has always written (sorted keys, indent 2), atomically."""
        with atomic_write(Path(path)) as fh:
            fh.write(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    # what was evaluated (weights fingerprint, template hash, ranker, mode, scorers); None in older files
    identity = property(lambda self: self.system.identity)

    def mrr(self, task: str) -> float | None:
        """Mean MRR of `task` (None when no sample of it was ranked); KeyError for a task not in the report."""
        return self.tasks[task].mrr
