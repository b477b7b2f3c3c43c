"""The `validate` stage: Great Expectations suites over prepared samples.

Every file is read with the one sample reader (`components.io.read_sample_folder`),
so `validate` passes exactly what `evaluate`, `train` and serving accept: a record that
breaks the contract fails here with file, line and field, all of them in one run.
The records are then summarised into one row per sample with the facts the data
suites care about (candidate count per task, distinct texts, text lengths, groups
that leak across splits, routing meta of prepared router tasks). Each (task, split)
is one batch validated against one suite in an ephemeral GX context. `validate`
raises `ValidationFailed` listing every failure, and always writes the report
(JSON + HTML) under the report folder first.
"""

from __future__ import annotations

import html
import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.config import PrepareConfig, ValidateConfig
from components.datasets.common import normalise_text
from components.io import DataError, atomic_write, read_sample_folder, write_json
from components.schema import RankingSample

log = logging.getLogger(__name__)

class ValidationFailed(RuntimeError):
    """One or more expectations failed; `failures` holds one line per failure."""

    def __init__(self, failures: list[str], report: Path):
        self.failures = failures
        self.report = report
        super().__init__(
            f"{len(failures)} validation failure(s) (report: {report}):\n" + "\n".join(failures)
        )


@dataclass(frozen=True)
class Failure:
    task: str
    split: str
    expectation: str
    column: str
    sample_ids: list[str]
    count: int

    def line(self) -> str:
        ids = ", ".join(self.sample_ids) or "-"
        return f"{self.task}/{self.split}: {self.expectation}({self.column}) failed for {self.count} sample(s): {ids}"


def _summarise(sample: RankingSample, split: str) -> dict[str, Any]:
    """One row of facts about a sample (it already meets the contract) for the data suites."""
    texts = [c.text for c in sample.candidates]
    norm = [normalise_text(t) for t in texts]
    routing = sample.routing
    return {
        "sample_id": sample.sample_id,
        "task": sample.task,
        "scenario": sample.scenario,
        "split": split,
        "group": sample.group,
        "n_candidates": len(texts),
        "candidate_texts_distinct": len(set(norm)) == len(norm),
        "query_chars": len(sample.query),
        "min_candidate_chars": min(len(t) for t in texts),
        "max_candidate_chars": max(len(t) for t in texts),
        # the contract checks routing meta where it is given; here: is it given (prepared router tasks need it)
        "routing_meta_complete": routing is not None and all(cid in routing for cid in sample.candidate_ids),
    }


def sample_files(samples_dir: Path, tasks: tuple[str, ...] = ()) -> list[Path]:
    """Every `*.jsonl` under `samples_dir` (or under its `<task>/` folders only)."""
    roots = [Path(samples_dir) / t for t in tasks] or [Path(samples_dir)]
    missing = [str(r) for r in roots if not r.is_dir()]
    if missing:
        raise DataError(f"no prepared samples in {missing}; run `r1ranker prepare` first")
    files = sorted(f for r in roots for f in r.rglob("*.jsonl"))
    if not files:
        raise DataError(f"{samples_dir}: no .jsonl files found; run `r1ranker prepare` first or pass --samples")
    return files


def collect_rows(samples_dir: Path, tasks: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Read every sample file with the project's one reader (`DataError` lists every contract violation), then
    summarise each sample.

    The split is the file's stem when it is a known split name (train/test),
    otherwise the file's relative path, so any folder of contract files works.
    """
    by_file = read_sample_folder(Path(samples_dir), sample_files(samples_dir, tasks))
    rows = []
    for path, samples in by_file.items():
        split = path.stem if path.stem in ("train", "test", "valid") else str(path.relative_to(samples_dir))
        rows += [_summarise(s, split) for s in samples]
    return rows


def _expected_candidates(task: str, scenario: str, prepare: PrepareConfig | None) -> int | None:
    cfg = prepare.tasks.get(task) if prepare else None
    if cfg is None:
        return None
    if cfg.n_candidates:
        return cfg.n_candidates
    if scenario == "rec":
        return prepare.rec_candidates
    return None


def build_suite(task: str, scenario: str, cfg: ValidateConfig, prepare: PrepareConfig | None):
    import great_expectations as gx

    E = gx.expectations
    n_expected = _expected_candidates(task, scenario, prepare)
    task_cfg = prepare.tasks.get(task) if prepare else None
    reranks_a_run = task_cfg is not None and task_cfg.source == "trec-run"
    if reranks_a_run:  # a first-stage run's top `depth`: fewer only when the run holds fewer hits
        lo_n, hi_n = 2, task_cfg.depth
    else:
        lo_n, hi_n = (n_expected, n_expected) if n_expected else (2, None)
    expectations = [
        # unique ids, non-blank texts, a gold, finite grades: the sample contract, checked before the suites
        E.ExpectColumnValuesToBeBetween(column="n_candidates", min_value=lo_n, max_value=hi_n),
        E.ExpectColumnValuesToBeInSet(column="group_in_other_split", value_set=[False]),
        E.ExpectColumnValuesToBeBetween(column="query_chars", min_value=cfg.query_chars[0], max_value=cfg.query_chars[1]),
        E.ExpectColumnValuesToBeBetween(column="min_candidate_chars", min_value=cfg.candidate_chars[0]),
        E.ExpectColumnValuesToBeBetween(column="max_candidate_chars", max_value=cfg.candidate_chars[1]),
    ]
    if not reranks_a_run:  # a reranked run is kept as retrieved: its corpus has duplicate passages (DL21: many)
        expectations.append(E.ExpectColumnValuesToBeInSet(column="candidate_texts_distinct", value_set=[True]))
    if scenario == "router" and prepare is not None and task in prepare.tasks:
        # routing meta is optional in the contract; tasks this project prepares always carry it
        expectations.append(E.ExpectColumnValuesToBeInSet(column="routing_meta_complete", value_set=[True]))
    return gx.ExpectationSuite(name=f"{task}-samples", expectations=expectations)


def _gx_context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def run_suites(rows: list[dict[str, Any]], cfg: ValidateConfig, prepare: PrepareConfig | None) -> tuple[list[Failure], list[dict[str, Any]]]:
    import pandas as pd

    # group_in_other_split: a group (user / query) seen in another split of the same task
    splits_of = defaultdict(set)
    for r in rows:
        splits_of[(r["task"], r["group"])].add(r["split"])
    for r in rows:
        r["group_in_other_split"] = len(splits_of[(r["task"], r["group"])]) > 1

    context = _gx_context()
    source = context.data_sources.add_pandas("samples")
    asset = source.add_dataframe_asset("summaries")
    batch_def = asset.add_batch_definition_whole_dataframe("whole")
    by_batch = defaultdict(list)
    for r in rows:
        by_batch[(r["task"], r["split"])].append(r)

    failures, summary = [], []
    for (task, split), batch_rows in sorted(by_batch.items()):
        scenario = batch_rows[0]["scenario"]
        df = pd.DataFrame(batch_rows)
        batch = batch_def.get_batch(batch_parameters={"dataframe": df})
        suite = build_suite(task, scenario, cfg, prepare)
        result = batch.validate(
            suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["sample_id"]}
        )
        n_failed = 0
        for res in result.results:
            if res.success:
                continue
            n_failed += 1
            conf = res.expectation_config
            info = res.result or {}
            ids = [str(x.get("sample_id")) for x in info.get("unexpected_index_list") or [] if isinstance(x, dict)]
            ids = list(dict.fromkeys(ids))
            failures.append(
                Failure(
                    task=task,
                    split=split,
                    expectation=conf.type,
                    column=str(conf.kwargs.get("column", "")),
                    sample_ids=ids[: cfg.max_listed_ids],
                    count=int(info.get("unexpected_count") or len(ids)),
                )
            )
        summary.append({"task": task, "split": split, "samples": len(batch_rows),
                        "expectations": len(result.results), "failed": n_failed})
    return failures, summary


def _write_html(path: Path, summary: list[dict[str, Any]], failures: list[Failure]) -> None:
    rows = "".join(
        f"<tr class={'bad' if s['failed'] else 'ok'}><td>{html.escape(s['task'])}</td><td>{html.escape(s['split'])}</td>"
        f"<td>{s['samples']}</td><td>{s['expectations']}</td><td>{s['failed']}</td></tr>"
        for s in summary
    )
    fails = "".join(f"<li>{html.escape(f.line())}</li>" for f in failures) or "<li>none</li>"
    with atomic_write(path) as fh:
        fh.write(
            "<!doctype html><meta charset=utf-8><title>r1-ranker validation</title>"
            "<style>body{font-family:sans-serif}td,th{padding:2px 8px}.bad{background:#fdd}.ok{background:#dfd}</style>"
            "<h1>Sample validation (Great Expectations)</h1><table><tr><th>task</th><th>split</th><th>samples</th>"
            f"<th>expectations</th><th>failed</th></tr>{rows}</table><h2>Failures</h2><ul>{fails}</ul>"
        )


def validate(samples_dir: Path, cfg: ValidateConfig, prepare: PrepareConfig | None = None,
             report_dir: Path | None = None, tasks: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Validate every sample file under `samples_dir` (only `tasks` when given); raise `ValidationFailed` on any failure."""
    report_dir = Path(report_dir or cfg.report)
    try:
        rows = collect_rows(Path(samples_dir), tuple(tasks))
    except DataError as err:
        write_json(report_dir / "report.json", {"success": False, "error": str(err)})
        raise ValidationFailed([f"the samples break the contract: {err}"], report_dir / "report.json") from err
    failures, summary = run_suites(rows, cfg, prepare)
    write_json(
        report_dir / "report.json",
        {"success": not failures, "batches": summary, "failures": [f.__dict__ for f in failures]},
    )
    _write_html(report_dir / "report.html", summary, failures)
    if failures:
        raise ValidationFailed([f.line() for f in failures], report_dir / "report.json")
    return summary
