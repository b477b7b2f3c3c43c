"""Recompute an evaluation from what it ranked, before anything is decided on it.

Why: promotion used to read its numbers from `metrics.json` as written, so a hand-edited mean or per-sample
MRR could make any model champion. `verify_evaluation` rebuilds every task's numbers from the evaluation's own
`rankings.jsonl` and the samples it ranked (found by the ids hash and, in newer reports, a hash of their
content) with the same code evaluation uses (`measure_task`), and refuses a report whose counts, per-sample
values or means differ. Registration calls it for the model's evaluation and the base's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from components.io import DataError, loads
from components.report import EvalReport, TaskReport
from components.schema import Ranking
from components.suite import samples_hash
from components.evaluation import ids_hash, load_eval_samples, measure_task

TOLERANCE = 1e-9  # the same code on the same inputs: anything beyond float noise is an edit


class EvaluationNotReproduced(DataError):
    """`metrics.json` says something its `rankings.jsonl` and samples do not give; the message names the first difference."""


def read_rankings(path: Path) -> dict[str, dict[str, Ranking]]:
    """`rankings.jsonl` by task and sample id: order and skip reason (the trace is not needed to recompute)."""
    if not path.exists():
        raise EvaluationNotReproduced(f"{path}: missing; an evaluation is registered only with the rankings it "
                                      "measured (evaluate again)")
    out: dict[str, dict[str, Ranking]] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = loads(line)
            except ValueError as err:
                raise EvaluationNotReproduced(f"{where}: not valid JSON ({str(err)[:80]})") from err
            if not isinstance(row, dict):
                raise EvaluationNotReproduced(f"{where}: expected a JSON object")
            task, sid, order, skipped = row.get("task"), row.get("sample_id"), row.get("order"), row.get("skipped")
            if not isinstance(task, str) or not isinstance(sid, str):
                raise EvaluationNotReproduced(f"{where}: 'task' and 'sample_id' must be strings")
            if not isinstance(order, list) or not all(isinstance(c, str) for c in order):
                raise EvaluationNotReproduced(f"{where}: 'order' must be a list of candidate ids")
            if skipped is not None and not isinstance(skipped, str):
                raise EvaluationNotReproduced(f"{where}: 'skipped' must be a string or null")
            if sid in out.setdefault(task, {}):
                raise EvaluationNotReproduced(f"{where}: sample {sid[:80]!r} of {task[:80]!r} is ranked twice")
            out[task][sid] = Ranking(sid, tuple(order), skipped=skipped)
    return out


def _differences(stored: TaskReport, fresh: TaskReport) -> list[str]:
    """What the stored block says that the recomputed one does not (counts, per-sample values, means)."""
    found = []
    for key in ("n", "n_skipped", "sample_ids_hash"):
        if getattr(stored, key) != getattr(fresh, key):
            found.append(f"{key} is {getattr(stored, key)!r}, recomputed {getattr(fresh, key)!r}")
    for key in ("per_sample_mrr", "per_sample_ndcg10"):
        mine, theirs = getattr(stored, key) or {}, getattr(fresh, key) or {}
        if set(mine) != set(theirs):
            found.append(f"{key} covers {len(mine)} samples, recomputed {len(theirs)}")
            continue
        bad = [sid for sid in sorted(theirs) if not _close(mine[sid], theirs[sid])]
        if bad:
            found.append(f"{key} of {len(bad)} sample(s) differ (first {bad[0][:80]!r}: {mine[bad[0]]!r}, "
                         f"recomputed {theirs[bad[0]]!r})")
    if fresh.metrics is not None:
        stored_values = stored.metrics.values if stored.metrics is not None else {}
        for name, value in fresh.metrics.values.items():
            if name not in stored_values or not _close(stored_values[name].mean, value.mean):
                was = stored_values[name].mean if name in stored_values else "missing"
                found.append(f"mean {name} is {was!r}, recomputed {value.mean!r}")
    return found


def _close(a, b) -> bool:
    return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(float(a) - float(b)) <= TOLERANCE


def verify_evaluation(eval_dir: Path, samples_dir: Path | None = None, who: str = "the evaluation") -> EvalReport:
    """The report of `eval_dir`, after recomputing every task from its rankings and samples; else `EvaluationNotReproduced`.

    `samples_dir` defaults to the folder the evaluation recorded (`system.samples`).
    """
    eval_dir = Path(eval_dir)
    report = EvalReport.read(eval_dir / "metrics.json")
    recorded = report.system.get("samples")
    folder = Path(samples_dir) if samples_dir is not None else Path(recorded) if isinstance(recorded, str) else None
    if folder is None:
        raise EvaluationNotReproduced(f"{eval_dir}/metrics.json does not record which samples {who} ranked: pass "
                                      "--samples with the folder it was evaluated on")
    rankings = read_rankings(eval_dir / "rankings.jsonl")
    # the suite is the samples the rankings name (a --limit need not be recorded); its ids hash must be the report's
    available = load_eval_samples(folder, list(report.tasks), report.system.split or "test")
    for task, stored in report.tasks.items():
        ranked = rankings.get(task, {})
        suite = [s for s in available[task] if s.sample_id in ranked]
        unknown = sorted(set(ranked) - {s.sample_id for s in suite})
        if unknown:
            raise EvaluationNotReproduced(f"{eval_dir}/rankings.jsonl: {task}: {len(unknown)} ranked sample(s) are not "
                                          f"in {folder} (first {unknown[0][:80]!r}); pass --samples with the folder "
                                          "it was evaluated on")
        if ids_hash(suite) != stored.sample_ids_hash:
            raise EvaluationNotReproduced(f"{eval_dir}: {task}: the samples rankings.jsonl ranks ({len(suite)}) are not "
                                          f"the suite metrics.json names (ids hash {stored.sample_ids_hash} vs "
                                          f"{ids_hash(suite)}); evaluate again")
        content = stored.samples_hash
        if content is not None and content != samples_hash(suite):
            raise EvaluationNotReproduced(f"{eval_dir}/metrics.json: {task}: the samples in {folder} changed since "
                                          f"the evaluation (content hash {content} vs {samples_hash(suite)}); "
                                          "evaluate again on the current samples")
        for s in suite:
            r = ranked[s.sample_id]
            if r.skipped is None and sorted(r.order) != sorted(s.candidate_ids):
                raise EvaluationNotReproduced(f"{eval_dir}/rankings.jsonl: {task}: the order of sample "
                                              f"{s.sample_id[:80]!r} is not a permutation of its candidates")
        fresh = measure_task(suite, [ranked[s.sample_id] for s in suite])
        found = _differences(stored, fresh)
        if found:
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            raise EvaluationNotReproduced(
                f"{eval_dir}/metrics.json: {task}: {found[0]}{more}; the stored numbers are not what its "
                f"rankings.jsonl gives on {folder}, so {who} is refused (edited or stale: evaluate again)")
    return report


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_consistent(report: EvalReport, who: str) -> None:
    """Each task's stored mean MRR is the mean of its per-sample MRR: what promotion reads must agree with itself."""
    import numpy as np

    for task, block in report.tasks.items():
        values: Mapping[str, float] | None = block.per_sample_mrr
        if block.mrr is None or not values:
            continue
        if not all(isinstance(v, (int, float)) and np.isfinite(v) and 0 <= v <= 1 for v in values.values()):
            raise EvaluationNotReproduced(f"{who}: {task}: per-sample MRR must be finite numbers in [0, 1]")
        if len(values) != block.n or abs(float(np.mean(list(values.values()))) - block.mrr) > TOLERANCE:
            raise EvaluationNotReproduced(f"{who}: {task}: mean MRR {block.mrr!r} over n = {block.n} is not the mean "
                                          f"of its {len(values)} per-sample values; refused as edited")
