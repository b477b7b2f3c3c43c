"""One dataclass per params.yaml section the data and registry stages read (prepare, validate, evaluate, register).

The prompts section is `components.prompts.PromptConfig`, the train section `components.training.TrainConfig`.
Every field carries its default and a one-line help; `__post_init__` collects every value problem of a
section and raises them together.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.config.checks import ConfigError, build_section, check, setting, task_name_problem
from components.schema import LISTWISE_CAPACITY


@dataclass(frozen=True)
class TaskConfig:
    """How one task's samples are built and split (see docs/data-format.md)."""

    source: str = setting(help="the dataset source: movielens, amazon-cds, amazon-games, routerbench, msmarco, trec-run, trec-dl, jsonl")
    path: str = setting("", "relative to the data root, or absolute; the source's default when empty")
    test_groups: int = setting(200, "users/queries held out for test (rec, passage, custom single file)")
    max_train: int | None = setting(None, "cap on train samples (null: no cap)")
    max_test: int | None = setting(None, "cap on test samples (null: no cap)")
    samples_per_query: int = setting(4, "passage: samples drawn per query")
    train_windows: int = setting(1, "rec: samples per train user (the last item + earlier next-item windows); test keeps 1")
    n_candidates: int | None = setting(None, "passage: 5/7/9; rec: defaults to prepare.rec_candidates")
    weights: tuple[float, float] = setting((1.0, 0.0), "router: (a, b) in s = a*perf - b*cost_norm")
    qrels: str = setting("", "trec-run: the qrels file ({qid: {docid: grade}} JSON or TREC qrels), relative to the data root")
    depth: int = setting(100, "trec-run: candidates per query, the top of the first-stage run")

    def __post_init__(self) -> None:
        problems = []
        if self.test_groups < 0:
            problems.append(f"test_groups must be >= 0, got {self.test_groups}")
        for name in ("max_train", "max_test"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name} must be >= 1 or null (no cap), got {value}")
        if self.samples_per_query < 1:
            problems.append(f"samples_per_query must be >= 1, got {self.samples_per_query}")
        if self.train_windows < 1:
            problems.append(f"train_windows must be >= 1 (1: one sample per user), got {self.train_windows}")
        if self.n_candidates is not None and self.n_candidates < 2:
            problems.append(f"n_candidates must be >= 2, got {self.n_candidates}")
        if not 2 <= self.depth <= 10_000:
            problems.append(f"depth must be between 2 and 10000, got {self.depth}")
        if len(self.weights) != 2:
            problems.append(f"weights must be [a, b], got {self.weights}")
        check("", problems)
        object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))


@dataclass(frozen=True)
class PrepareConfig:
    """The `prepare` stage: raw files -> ranking samples."""

    seed: int = setting(42, "seed of every split and sampled negative")
    data_root: str = setting("data", "the DVC-tracked raw datasets (data.dvc)")
    out: str = setting("artifacts/samples", "where the samples are written: <out>/<task>/<split>.jsonl")
    history_len: int = setting(20, "rec: most recent items kept in the history")
    rec_candidates: int = setting(20, "rec: the next item + this many minus one random negatives")
    tasks: dict[str, TaskConfig] = setting(factory=dict, help="the tasks to build, by name")
    select: tuple[str, ...] = setting((), "prepare only these tasks (profiles use it); empty: all of `tasks`")
    allow_modified_data: bool = setting(False, "prepare even when files under data_root differ from data.dvc "
                                               "(recorded in the datacard); false: refused, naming the files")

    def __post_init__(self) -> None:
        problems = []
        if self.history_len < 1:
            problems.append(f"history_len must be >= 1, got {self.history_len}")
        if self.rec_candidates < 2:
            problems.append(f"rec_candidates must be >= 2, got {self.rec_candidates}")
        unknown = sorted(set(self.select) - set(self.tasks or {}))
        if unknown:
            problems.append(f"select names unknown task(s) {unknown}; configured: {sorted(self.tasks or {})}")
        tasks = {}
        for name, raw in (self.tasks or {}).items():
            problem = task_name_problem(name)  # the key becomes <out>/<task>/: it must stay inside `out`
            if problem:
                problems.append(f"tasks: {problem}")
                continue
            try:
                tasks[name] = raw if isinstance(raw, TaskConfig) else build_section(TaskConfig, raw, f"tasks.{name}")
            except ConfigError as err:
                problems += [p if p.startswith("tasks.") else f"tasks.{name}.{p}" for p in str(err).splitlines()]
        check("prepare", problems)
        object.__setattr__(self, "select", tuple(self.select))
        object.__setattr__(self, "tasks", tasks)


@dataclass(frozen=True)
class ValidateConfig:
    """The `validate` stage: the sample contract, then the Great Expectations suites."""

    samples: str = setting("artifacts/samples", "the prepared samples to check")
    report: str = setting("artifacts/validation", "where report.json and report.html go")
    query_chars: tuple[int, int] = setting((1, 20000), "[min, max] characters of a query")
    candidate_chars: tuple[int, int] = setting((1, 5000), "[min, max] characters of a candidate text")
    max_listed_ids: int = setting(10, "sample ids listed per failed expectation")

    def __post_init__(self) -> None:
        problems = []
        for name in ("query_chars", "candidate_chars"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                problems.append(f"{name} must be [min, max] with 0 <= min <= max, got {[lo, hi]}")
            object.__setattr__(self, name, (int(lo), int(hi)))
        check("validate", problems)


def window_problem(window: int | None, stride: int | None) -> str | None:
    """What is wrong with a (window, stride) setting; None when it is fine (window None/0: no window)."""
    if not window:
        return None
    if not 2 <= window <= LISTWISE_CAPACITY:
        return (f"window must be between 2 and {LISTWISE_CAPACITY} (the labels A..Z a listwise prompt has), "
                f"or 0/None for no window; got {window}")
    if stride is not None and not 1 <= stride < window:
        return f"stride must be >= 1 and smaller than the window ({window}), got {stride}"
    return None



EVALUATE_REFERENCES = ("random", "identity", "bm25", "dense", "base")


@dataclass(frozen=True)
class EvaluateConfig:
    """The `evaluate` stage: the trained model (and references) on the frozen suite."""

    tasks: list[str] | None = setting(None, "test tasks to evaluate (null: the train tasks)")
    limit: int | None = setting(None, "first N test samples per task: the frozen suite promotion compares on")
    batch_size: int = setting(8, "samples per model call")
    references: list[str] = setting(factory=list, help=f"also evaluated, for context: {', '.join(EVALUATE_REFERENCES)} "
                                                        "(base = the untrained model, same mode)")
    out: str = setting("artifacts/eval", "where each system's metrics.json and rankings.jsonl go")
    window: int | None = setting(20, "listwise rankers: lists longer than this are ranked in sliding windows, bottom up "
                                     "(rank_llm's 20); 0 or null: no window, and a longer list is an error")
    stride: int = setting(10, "listwise rankers: how far each window moves up")

    def __post_init__(self) -> None:
        problems = []
        problem = window_problem(self.window, self.stride)
        if problem:
            problems.append(problem)
        if self.limit is not None and self.limit < 1:
            problems.append(f"limit must be >= 1 or null (all test samples), got {self.limit}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        unknown = sorted(set(self.references) - set(EVALUATE_REFERENCES))
        if unknown:
            problems.append(f"references: unknown {unknown}; valid: {list(EVALUATE_REFERENCES)}")
        check("evaluate", problems)


@dataclass(frozen=True)
class RegisterConfig:
    """The `register` stage: MLflow registry, champion/challenger aliases."""

    name: str | None = setting(None, "registered model name (null: iranker or dranker after the trained ranker)")
    alpha: float = setting(0.05, "promotion needs a paired permutation test at p < alpha")
    tolerance: float = setting(0.02, "... and no task dropping by more than this much MRR")
    out: str = setting("artifacts/registry", "where decision.json goes")

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.alpha < 1:
            problems.append(f"alpha must be in (0, 1), got {self.alpha}")
        if self.tolerance < 0:
            problems.append(f"tolerance must be >= 0, got {self.tolerance}")
        check("register", problems)
