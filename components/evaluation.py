"""Honest evaluation: metrics with CIs, invalid/repaired/no-answer rates, cost, and traces.

`evaluate` runs one ranker over samples grouped by task and writes, into one
folder swapped in atomically (a crash never leaves partial files):

- `metrics.json`: per task n, skipped (with reasons), MRR / NDCG@k / Hit@k with
  95% CIs, routing utility (router tasks), parse-status rates, LLM calls,
  tokens and seconds per sample, p50/p95 latency, a hash of the sample ids,
  per-sample MRR (for paired tests), and the paired test against `--compare`;
- `rankings.jsonl`: every ranking with its full trace (reasoning text included);
- `mrr_by_task.png`: MRR per task with CI bars, beside the compared system.

`metrics.json` is written and read through `components.report.EvalReport` (its layout is documented there).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from components.io import DataError, atomic_dir, dumps_line, load_json, read_sample_folder
from components.metrics import DEFAULT_METRICS, TREC_METRICS, judgements, paired_test, per_sample_metrics, summarise
from components.report import Comparison, Cost, EvalReport, Metrics, Parse, SystemInfo, TaskComparison, TaskReport
from components.schema import Ranking, RankingSample
from components.suite import ids_hash, samples_hash
from components.views import plot_mrr
from components.preparation import DATACARD
from components.prompts import PROMPT_VERSION

log = logging.getLogger(__name__)

BAD_STATUSES = ("invalid", "duplicate", "missing")


def load_eval_samples(samples_dir: Path, tasks: Iterable[str] | None = None, split: str = "test",
                      limit: int | None = None) -> dict[str, list[RankingSample]]:
    """Samples by task from `<dir>/<task>/<split>.jsonl`, or from any folder of contract JSONL.

    In a folder of arbitrary files, a file named after a split other than
    `split` is left out; every other file is read and grouped by its samples'
    `task`. `limit` keeps the first N samples of each task.
    """
    samples_dir = Path(samples_dir)
    if not samples_dir.is_dir():
        raise DataError(f"{samples_dir}: not a folder of samples; run `r1ranker prepare` or pass --samples")
    by_task: dict[str, list[RankingSample]] = defaultdict(list)
    files = sorted(samples_dir.rglob("*.jsonl"))
    known_splits = {"train", "test", "valid"}
    files = [p for p in files if not (p.stem in known_splits and p.stem != split)]
    for samples in read_sample_folder(samples_dir, files).values():
        for s in samples:
            by_task[s.task].append(s)
    if not by_task:
        raise DataError(f"{samples_dir}: no {split} samples found (looked for *.jsonl)")
    wanted = list(tasks) if tasks else sorted(by_task)
    unknown = [t for t in wanted if t not in by_task]
    if unknown:
        raise DataError(f"unknown task(s) {unknown} in {samples_dir}; available: {sorted(by_task)}")
    return {t: by_task[t][:limit] if limit else by_task[t] for t in wanted}


def prepare_dropped(samples_dir: Path) -> dict[str, dict[str, int]]:
    """What `prepare` left out of each task, by reason (`datacard.json`; empty for a folder without one).

    Evaluation shows it beside the task's metrics: a TREC query excluded for lack of judgements is
    counted where its numbers are read, as trec_eval's query count shows it.
    """
    path = Path(samples_dir) / DATACARD
    if not path.exists():
        return {}
    card = load_json(path)
    if not isinstance(card, dict):
        raise DataError(f"{path}: expected an object of task -> datacard entry")
    out = {}
    for task, entry in card.items():
        dropped = entry.get("dropped") if isinstance(entry, dict) else None
        if not isinstance(dropped, dict) or not all(isinstance(v, int) for v in dropped.values()):
            raise DataError(f"{path}: task {task!r}: 'dropped' must map reasons to counts")
        out[task] = dropped
    return out


def _rates(rankings: Sequence[Ranking]) -> dict[str, float]:
    steps = [st for r in rankings for st in r.steps]
    counts = Counter(st.status for st in steps)
    n_steps = max(len(steps), 1)
    return {
        "steps": len(steps),
        "invalid_rate": sum(counts[s] for s in BAD_STATUSES) / n_steps,
        "no_answer_rate": counts["no_answer"] / n_steps,
        "repaired_step_rate": counts["repaired"] / n_steps,
        "repaired_ranking_rate": sum(r.repaired for r in rankings) / max(len(rankings), 1),
        "status_counts": dict(sorted(counts.items())),
        **_first_answer(rankings),
    }


def _first_answer(rankings: Sequence[Ranking]) -> dict[str, Any]:
    """The label answered most often at a sample's first step, and how often.

    A share near 1 means the model gives the same label whatever the candidates
    (SmolLM2 in fast mode names `B`, the format example's label, almost always):
    its ranking is position, not content.
    """
    firsts = Counter(r.steps[0].parsed[0] for r in rankings if r.steps and r.steps[0].parsed)
    if not firsts:
        return {}
    label, count = firsts.most_common(1)[0]
    return {"first_answer_top": {"label": label, "share": count / sum(firsts.values())}}


def _cost(rankings: Sequence[Ranking]) -> dict[str, float]:
    n = max(len(rankings), 1)
    per_sample_seconds = np.array([sum(st.seconds for st in r.steps) for r in rankings] or [0.0])
    return {
        "llm_calls_per_sample": sum(len(r.steps) for r in rankings) / n,
        "tokens_in_per_sample": sum(st.tokens_in for r in rankings for st in r.steps) / n,
        "tokens_computed_per_sample": sum(st.tokens_in - st.tokens_cached for r in rankings for st in r.steps) / n,
        "tokens_out_per_sample": sum(st.tokens_out for r in rankings for st in r.steps) / n,
        "seconds_per_sample": float(per_sample_seconds.mean()),
        "latency_p50": float(np.percentile(per_sample_seconds, 50)),
        "latency_p95": float(np.percentile(per_sample_seconds, 95)),
    }


def measure_task(samples: Sequence[RankingSample], rankings: Sequence[Ranking], seed: int = 0) -> TaskReport:
    """One task's block of metrics.json: counts and skips, and metrics, per-sample MRR, rates and cost when any was ranked."""
    done = [(s, r) for s, r in zip(samples, rankings) if r.skipped is None]
    skipped = Counter(r.skipped.split(":")[0] for r in rankings if r.skipped)
    counts = dict(n=len(done), n_skipped=sum(skipped.values()), skipped_reasons=dict(skipped),
                  sample_ids_hash=ids_hash(samples), samples_hash=samples_hash(samples))
    if not done:
        return TaskReport(**counts)
    ok_samples, ok_rankings = [s for s, _ in done], [r for _, r in done]
    orders = [list(r.order) for r in ok_rankings]
    relevances, judged = [s.relevance for s in ok_samples], judgements(ok_samples)
    names = DEFAULT_METRICS + (TREC_METRICS if judged else ())
    values = per_sample_metrics(orders, relevances, names, **judged)
    summary = summarise(orders, ok_samples, seed, values)
    per_sample_ndcg10 = None
    if judged:  # TREC DL: the input run's own nDCG@10 beside the reranker's, and per-query nDCG@10 for paired tests
        given = per_sample_metrics([s.candidate_ids for s in ok_samples], relevances, ("ndcg@10",), **judged)
        summary["input_ndcg@10"] = summarise(orders, ok_samples, seed, {"input_ndcg@10": given["ndcg@10"]})["input_ndcg@10"]
        per_sample_ndcg10 = {s.sample_id: float(v) for s, v in zip(ok_samples, values["ndcg@10"])}
    return TaskReport(
        **counts, metrics=Metrics.from_dict(summary),
        per_sample_mrr={s.sample_id: float(v) for s, v in zip(ok_samples, values["mrr"])},
        per_sample_ndcg10=per_sample_ndcg10,
        parse=Parse.from_dict(_rates(ok_rankings)), cost=Cost.from_dict(_cost(ok_rankings)))




def compare_reports(ours: EvalReport, theirs: EvalReport) -> Comparison:
    """Paired permutation test of per-sample MRR on the samples both runs ranked."""
    out = {}
    for task, mine in ours.tasks.items():
        other = theirs.tasks.get(task)
        if other is None or other.per_sample_mrr is None or mine.per_sample_mrr is None:
            out[task] = TaskComparison(error="task missing from the compared run")
            continue
        common = sorted(set(mine.per_sample_mrr) & set(other.per_sample_mrr))
        if not common:
            out[task] = TaskComparison(error="no common samples")
            continue
        a = [mine.per_sample_mrr[i] for i in common]
        b = [other.per_sample_mrr[i] for i in common]
        ndcg10 = None
        if mine.per_sample_ndcg10 and other.per_sample_ndcg10:  # TREC DL's headline metric, paired over queries
            shared = sorted(set(mine.per_sample_ndcg10) & set(other.per_sample_ndcg10))
            test = paired_test([mine.per_sample_ndcg10[i] for i in shared], [other.per_sample_ndcg10[i] for i in shared])
            ndcg10 = {**test, "ndcg10": float(np.mean([mine.per_sample_ndcg10[i] for i in shared])),
                      "other_ndcg10": float(np.mean([other.per_sample_ndcg10[i] for i in shared]))}
        out[task] = TaskComparison(**paired_test(a, b), same_suite=mine.sample_ids_hash == other.sample_ids_hash,
                                   other_mrr=float(np.mean(b)), mrr=float(np.mean(a)), ndcg10=ndcg10)
    return Comparison(system=theirs.system.to_dict(), tasks=out)


def evaluate_report(ranker, samples_by_task: dict[str, list[RankingSample]], out_dir: Path, system: dict[str, Any],
                    compare: Path | None = None, seed: int = 0, show_progress: bool = True,
                    dropped: dict[str, dict[str, int]] | None = None) -> EvalReport:
    """Rank every task's samples, then write metrics.json, rankings.jsonl and the plot atomically.

    `dropped` (`prepare_dropped`): what preparation excluded per task, written as the task's `prepare_dropped`.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    other = EvalReport.read(compare) if compare else None  # fail before any model work if it is unreadable
    backend = getattr(ranker, "backend", None)
    if backend is not None:  # the precision behind the numbers: auto picks bf16 on some CPUs
        weights = next(backend.model.parameters())
        system = {**system, "device": str(weights.device), "dtype": str(weights.dtype).removeprefix("torch."),
                  "prompt_version": PROMPT_VERSION}  # numbers from different prompt layouts are not comparable
    # what was evaluated, exactly: `register` accepts this evaluation only for the model it names
    system = {**system, "identity": getattr(ranker, "identity", None) or {"ranker": ranker.name}}
    total = sum(len(v) for v in samples_by_task.values())
    tasks: dict[str, TaskReport] = {}
    all_rankings: list[tuple[str, Ranking]] = []
    started = time.perf_counter()
    calls = 0
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} samples"),
        TextColumn("{task.fields[rate]:.1f} model calls/s"), TimeElapsedColumn(), TimeRemainingColumn(),
        disable=not show_progress, transient=False,
    ) as progress:
        bar = progress.add_task("evaluate", total=total, rate=0.0)
        for task, samples in samples_by_task.items():
            progress.update(bar, description=f"{system.get('label', ranker.name)} · {task}")

            def on_progress(n_calls: int, n_finished: int) -> None:
                nonlocal calls
                calls += n_calls
                progress.update(bar, advance=n_finished, rate=calls / max(time.perf_counter() - started, 1e-9))

            rankings = ranker.rank(samples, progress=on_progress)
            tasks[task] = measure_task(samples, rankings, seed)
            if (dropped or {}).get(task):
                tasks[task] = dataclasses.replace(tasks[task], extra={**tasks[task].extra, "prepare_dropped": dropped[task]})
            all_rankings.extend((task, r) for r in rankings)
    report = EvalReport(system=SystemInfo(system), tasks=tasks, wall_seconds=time.perf_counter() - started)
    if other is not None:
        report = dataclasses.replace(report, compare=compare_reports(report, other))
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        with open(tmp / "rankings.jsonl", "w", encoding="utf-8") as fh:
            for task, r in all_rankings:
                fh.write(dumps_line({"task": task, **r.to_dict()}))
        report.write(tmp / "metrics.json")
        plot_mrr(tmp / "mrr_by_task.png", [report] + ([other] if other else []))
    return report


