"""What `r1ranker` prints: the consoles, and the tables and summaries of its commands (rendering only)."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from components.report import EvalReport

err_console = Console(stderr=True, soft_wrap=True)  # never wrap paths and ids mid-line
# tables need room: when output is not a terminal (CI logs, pipes) rich would assume 80 columns
console = Console(width=shutil.get_terminal_size((140, 24)).columns)


def print_datacard(card: dict[str, Any], tasks: list[str], folder: Any) -> None:
    """`r1ranker prepare`: samples, groups, candidates and drops per task."""
    table = Table(title=f"datacard ({folder})")
    for col in ("task", "train", "test", "test groups", "cands", "overlap", "dropped"):
        table.add_column(col)
    for name in tasks:
        c = card[name]
        table.add_row(
            name, str(c["train"]["samples"]), str(c["test"]["samples"]), str(c["test"]["groups"]),
            str(c["test"]["candidates_per_sample"].get("max", "-")), str(c["group_overlap"]),
            str(sum(c["dropped"].values())),
        )
    console.print(table)


def print_report(report: EvalReport) -> None:
    """`r1ranker evaluate`: metrics per task, then the paired tests against `--compare`."""
    table = Table(title=f"{report.system.label}: MRR x 100 (95% CI)")
    for col in ("task", "n", "MRR", "NDCG@10", "Hit@1", "invalid", "no answer", "calls/sample", "s/sample", "skipped"):
        table.add_column(col)
    for task, rep in report.tasks.items():
        m = rep.metrics
        if m is None:
            table.add_row(task, "0", "-", "-", "-", "-", "-", "-", "-", str(rep.n_skipped))
            continue
        mrr = m.mrr
        table.add_row(
            task, str(rep.n), f"{100 * mrr.mean:.1f} [{100 * mrr.ci95[0]:.1f}, {100 * mrr.ci95[1]:.1f}]",
            f"{100 * m.values['ndcg@10'].mean:.1f}", f"{100 * m.values['hit@1'].mean:.1f}",
            f"{100 * rep.parse.invalid_rate:.1f}%", f"{100 * rep.parse.no_answer_rate:.1f}%",
            f"{rep.cost.llm_calls_per_sample:.1f}", f"{rep.cost.seconds_per_sample:.2f}", str(rep.n_skipped),
        )
    console.print(table)
    for task, rep in report.tasks.items():  # TREC DL reranking: the field's numbers, beside the input run's
        given = rep.metrics.values.get("input_ndcg@10") if rep.metrics else None
        if given is not None:
            v = rep.metrics.values
            excluded = sum((rep.extra.get("prepare_dropped") or {}).values())
            console.print(f"  {task}: nDCG@10 {100 * v['ndcg@10'].mean:.2f} (input run {100 * given.mean:.2f}), "
                          f"MRR@10 {100 * v['mrr@10'].mean:.2f} (grade >= 2), R@100 {100 * v['recall@100'].mean:.2f}, "
                          f"{rep.n} queries" + (f", {excluded} excluded at prepare" if excluded else ""), highlight=False)
    for task, cmp in (report.compare.tasks.items() if report.compare is not None else ()):
        if cmp.p_value is not None:
            console.print(f"  {task}: MRR {cmp.mrr:.3f} vs {cmp.other_mrr:.3f} "
                          f"(diff {cmp.mean_diff:+.3f}, paired p = {cmp.p_value:.4f}, n = {cmp.n})")
        if cmp.ndcg10:
            g = cmp.ndcg10
            console.print(f"  {task}: nDCG@10 {g['ndcg10']:.3f} vs {g['other_ndcg10']:.3f} "
                          f"(diff {g['mean_diff']:+.3f}, paired p = {g['p_value']:.4f}, n = {int(g['n'])} queries)")


def print_train_step(step: int, total: int, metrics: dict) -> None:
    """`r1ranker train`: one line per logged step (the trainer's progress callback)."""
    console.print(f"step {step}/{total}: expected reward {metrics['reward/expected_mean']:.3f}, "
                  f"no-signal {metrics['health/no_signal_frac']:.0%}, {metrics['seconds_per_step']:.1f}s/step",
                  highlight=False)


def print_pipeline(result: dict) -> None:
    """`r1ranker pipeline`: every system's MRR per task, the promotion decision, and where to look closer."""
    summary, decision = result["evaluate"], result["register"]
    tasks = [t for t in summary["candidate"] if t != "mean_mrr"]
    table = Table(title="MRR x 100 on the test suite (95% CI); candidate = the model this run trained")
    table.add_column("system")
    for task in tasks:
        table.add_column(task)
    table.add_column("invalid answers (max)")
    for system, entry in summary.items():
        if system == "mlflow_run_id":
            continue
        cells = []
        for task in tasks:
            e = entry[task]
            cell = "-" if e["mrr"] is None else f"{100 * e['mrr']:.1f} [{100 * e['mrr_ci95'][0]:.1f}, {100 * e['mrr_ci95'][1]:.1f}]"
            if "vs_base" in e:
                cell += f" p={e['vs_base']['p_value']:.2f}"
            cells.append(cell)
        table.add_row(system, *cells, f"{100 * max(entry[t]['invalid_rate'] for t in tasks):.1f}%")
    console.print(table)
    verdict = "[green]PROMOTED to @champion[/]" if decision["promote"] else "[yellow]NOT PROMOTED[/] (stays @challenger)"
    console.print(f"{decision['name']} v{decision['version']}: {verdict}: {decision['reason']}")
    uri = decision["tracking_uri"]
    console.print("Look closer:")
    console.print(f"  mlflow ui --backend-store-uri {uri}    # runs, metrics, model versions, aliases" if uri.startswith("sqlite:")
                  else f"  MLflow: {uri}", highlight=False)
    console.print("  prefect server start                  # then open http://127.0.0.1:4200 for flow runs and artifacts",
                  highlight=False)
    console.print("  artifacts/eval/<system>/              # metrics.json, rankings.jsonl (every trace), mrr_by_task.png",
                  highlight=False)


def print_demo_plan(evaluate: dict, train: dict) -> None:
    """`r1ranker demo`: how long it takes and what it runs, from the `evaluate` and `train` sections."""
    console.rule("r1-ranker demo: about 10 minutes on 2 CPU cores (at most 30)")
    console.print(f"The Prefect `pipeline` flow, profile `demo`: pull data (DVC) -> prepare -> validate (Great Expectations) "
                  f"-> build prompts -> train SmolLM2-135M as an IRanker ({train.get('algo')}, {train.get('max_steps')} steps on "
                  f"{', '.join(train.get('tasks', []))}) -> evaluate it and {', '.join(evaluate.get('references', []))} on "
                  f"{evaluate.get('limit')} test samples of {', '.join(evaluate.get('tasks', []))} -> register in MLflow and promote.",
                  highlight=False)


def print_config_keys(rows: list[dict[str, Any]]) -> None:
    """`r1ranker config --explain`: one row per key; a value that differs from its default is bold."""
    import json

    from rich.text import Text

    table = Table(title="configuration: every key (params.yaml, profile and --set applied)")
    for name in ("key", "type", "default", "value", "help"):
        table.add_column(name, overflow="fold")
    show = lambda v: v if isinstance(v, str) else json.dumps(v)  # noqa: E731
    for r in rows:
        default = "(required)" if r["required"] else show(r["default"])
        value = Text(show(r["value"]), style="bold" if r["value"] != r["default"] else "")
        table.add_row(Text(r["key"]), Text(r["type"]), Text(default), value, Text(r["help"]))
    console.print(table)
