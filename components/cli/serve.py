"""Serving command: `rank`, what a consuming service does with a registered model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from components.cli.core import app, command, scorer_flags
from components.cli.views import console


@app.command()
def rank(
    model: Annotated[str, typer.Option(help="An MLflow model URI, e.g. models:/iranker@champion.")] = "models:/iranker@champion",
    input: Annotated[Path, typer.Option("--input", help="Contract-format JSONL samples to rank.")] = Path("samples.jsonl"),
    out: Annotated[Optional[Path], typer.Option(help="Where to write rankings JSONL (default: stdout).")] = None,
    mode: Annotated[Optional[str], typer.Option(
        help="Assert the mode the registered model ranks in (it always ranks in its own; a different one is an error).")] = None,
    scorer: Annotated[Optional[list[str]], typer.Option(
        "--scorer", help="Assert its score-mode scorers, SCENARIO=NAME or TASK=NAME (a different one is an error).")] = None,
) -> None:
    """Rank contract-format samples with a registered model (what a consuming service does)."""
    from components.io import dumps_line, read_samples, write_jsonl

    with command():
        samples = read_samples(input)
        from components.serving import rank_samples  # imports MLflow: only once the input reads

        rows = rank_samples(model, samples, mode=mode, scorers=scorer_flags(scorer) or None)
    if out:
        write_jsonl(out, rows)
        console.print(f"wrote {len(rows)} rankings to {out}")
    else:
        for row in rows:
            typer.echo(dumps_line(row), nl=False)
