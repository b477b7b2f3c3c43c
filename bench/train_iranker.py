"""Training benchmark (not run by CI): does RL make SmolLM2 a better IRanker on held-out data?

Trains the IRanker (`train.mode: score`, the default: the policy is a softmax over the
candidates' scorer scores; `fast`: over the label tokens) with the exact
expected-reward gradient (LoRA on the upper layers, plus the pointer head in score
mode) on the train splits of `train.tasks` within a wall-clock budget (`train.max_seconds`), then
evaluates the base and the trained model on the same test samples, with paired
permutation tests, and writes artifacts/bench/train_iranker.json (read by
bench/results_table.py into docs/RESULTS.md), the reward curve and both
evaluations.

The settings are the pipeline's own: a profile of params.yaml (`--profile`, default `bench-joint`) and
`--set KEY=VALUE` overrides, checked by `load_params` as every stage's are; this script adds only what an
evaluation needs (tasks, limits, dtype, where to write).

    python bench/train_iranker.py                                    # bench-joint: 90 minutes, the issue's default
    python bench/train_iranker.py --profile bench-passage --eval-tasks passage-5,passage-7,passage-9,trec-dl19
    python bench/train_iranker.py --set train.max_seconds=2400 --eval-limit 50
    python bench/train_iranker.py --base-from artifacts/bench/zeroshot_score/metrics.json   # reuse a base evaluation

The table pairs base and trained on the samples both ranked (`mrr`/`other_mrr` of the paired test).

Prompt length decides the cost of every step and every evaluation call
(about 500 prompt tokens/s for SmolLM2 fp32 on 2 cores), so the prompt budget is
a knob here; base and trained model are always evaluated with the same prompts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.config import ConfigError, parse_override  # noqa: E402
from bench.records import TrainingRun  # noqa: E402
from components.params import load_params  # noqa: E402
from components.evaluation import evaluate_report, load_eval_samples  # noqa: E402
from components.io import read_jsonl, write_json  # noqa: E402
from components.views import write_curves  # noqa: E402
from components.rankers import LLMRankerConfig, build_ranker  # noqa: E402
from components.report import EvalReport  # noqa: E402
from components.training import train  # noqa: E402

TRAIN_TASKS = "passage-5,rec-movie,router-performance"
PASSAGE_TASKS = "passage-5,passage-7,passage-9"  # MS MARCO v1.1; trec-dl19/trec-dl21 are test-only reranking tasks
ALL_TASKS = ("passage-5,passage-7,passage-9,rec-movie,rec-music,rec-game,"
             "router-performance,router-balance,router-cost")


def _timed(report: EvalReport, seconds: float) -> EvalReport:
    """The report with the seconds its evaluation took (`eval_seconds`, kept in the file where it is written)."""
    return dataclasses.replace(report, extra={**report.extra, "eval_seconds": seconds})


def _evaluate(job: dict) -> EvalReport:
    """One fast-IRanker evaluation (run in its own process), with the seconds it took."""
    limits = job.get("limits") or {}
    by_task = load_eval_samples(Path(job["samples"]), [t for t in job["tasks"] if t not in limits], "test", job["limit"])
    for task in [t for t in job["tasks"] if t in limits]:  # a task's own limit (--eval-limit-for)
        by_task.update(load_eval_samples(Path(job["samples"]), [task], "test", limits[task]))
    llm = LLMRankerConfig(mode=job["mode"], batch_size=8, prompt=job["prompt"], seed=job["seed"])
    ranker = build_ranker("iranker", model=job["model"], config=llm, dtype=job["dtype"], seed=job["seed"])
    started = time.perf_counter()
    report = evaluate_report(
        ranker, by_task, job["out"],
        {"label": f"iranker-{job['mode']} ({job['label']})", "ranker": "iranker", "mode": job["mode"],
         "model": job["model"], "split": "test", "limit": job["limit"],
         "max_prompt_tokens": job["prompt"].max_prompt_tokens, "stable_labels": job["prompt"].stable_labels,
         "label_position": job["prompt"].label_position},
        compare=job["compare"], seed=job["seed"])
    return _timed(report, time.perf_counter() - started)


def _task_limits(raw: list[str], tasks: list[str]) -> dict[str, int]:
    """--eval-limit-for TASK=N values, checked before any work."""
    out = {}
    for item in raw:
        task, sep, n = item.partition("=")
        if not sep or not n.isdigit() or int(n) < 1:
            raise SystemExit(f"--eval-limit-for {item!r}: expected TASK=N with N >= 1")
        if task not in tasks:
            raise SystemExit(f"--eval-limit-for {item!r}: {task!r} is not an --eval-tasks task ({','.join(tasks)})")
        out[task] = int(n)
    return out


def _mean_gap(health: list[dict]) -> float | None:
    gaps = [h["reward/greedy_mean"] - h["reward/uniform_mean"] for h in health if "reward/greedy_mean" in h]
    return sum(gaps) / len(gaps) if gaps else None


def _held_out(health: list[dict]) -> dict | None:
    checks = [h for h in health if "val/greedy_mean" in h]
    if not checks:
        return None
    per_task = lambda h, prefix: {k.rsplit("/", 1)[1]: v for k, v in h.items() if k.startswith(prefix)}
    gains = lambda h: per_task(h, "val/greedy_over_uniform/")
    keep = lambda h: per_task(h, "val/keep_best/")  # the top score is the pool's best candidate (older runs lack it)
    return {"first_step": checks[0]["step"], "last_step": checks[-1]["step"],
            "first": gains(checks[0]), "last": gains(checks[-1]),
            "keep_best_first": keep(checks[0]), "keep_best_last": keep(checks[-1])}


def _reusable_base(path: Path, cfg, args) -> EvalReport | None:
    """The base model's earlier evaluation, when it measured what this run would (it does not depend on training)."""
    from components.prompts import PROMPT_VERSION

    if not path.exists():
        return None
    report = EvalReport.read(path)
    system, prompt = report.system, cfg.prompt
    same = (system.model == cfg.model and system.limit == args.eval_limit
            and system.prompt_version == PROMPT_VERSION and set(args.eval_tasks.split(",")) <= set(report.tasks)
            and system.get("max_prompt_tokens", prompt.max_prompt_tokens) == prompt.max_prompt_tokens  # older files lack it
            and system.get("stable_labels", False) == prompt.stable_labels
            and system.get("label_position", "before") == prompt.label_position)
    if not same:
        print(f"not reusing {path}: it was run with other settings ({ {k: system.get(k) for k in ('model', 'limit', 'prompt_version', 'max_prompt_tokens', 'stable_labels', 'label_position')} })")
        return None
    return dataclasses.replace(report, tasks={t: report.tasks[t] for t in args.eval_tasks.split(",")})


def settings_of(cfg, args) -> dict:
    """The run's settings under the keys every recorded run has (docs/RESULTS.md's tables read them)."""
    per_key = lambda d: [f"{k}={v}" for k, v in d.items()]  # noqa: E731 - 'KEY=N', as the older records hold them
    return {"budget_minutes": (cfg.max_seconds or 0) / 60, "learning_rate": cfg.learning_rate,
            "batch_size": cfg.batch_size, "beta": cfg.beta, "objective": cfg.objective, "target_tau": cfg.target_tau,
            "lora_r": cfg.lora.r, "top_layers": cfg.lora.top_layers, "max_prompt_tokens": cfg.prompt.max_prompt_tokens,
            "score_tau": cfg.score_tau, "stable_labels": cfg.prompt.stable_labels,
            "label_position": cfg.prompt.label_position, "max_train_samples": cfg.max_train_samples,
            "max_pool": cfg.max_pool_size, "max_pool_for": per_key(cfg.max_pool_for),
            "draw_weight_for": per_key(cfg.draw_weight_for), "val_groups": cfg.validation.groups,
            "eval_limit": args.eval_limit, "eval_limit_for": args.eval_limit_for,
            "pointer_trains_lora": cfg.pointer_trains_lora, "eval_dtype": args.eval_dtype, "autocast": cfg.autocast}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="bench-joint",
                    help="the research settings: a profile of params.yaml (bench-joint: score_v7's, bench-passage: "
                         "passage_v2's); every train.* and prompts.* key the pipeline has, nothing re-declared here")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override one key, as `r1ranker --set` does (repeatable), e.g. train.learning_rate=5e-4, "
                         "train.max_seconds=2400 (the wall-clock budget), prompts.max_prompt_tokens=512")
    ap.add_argument("--params", default="params.yaml", help="the params file the profile is in")
    ap.add_argument("--base-from", default=None,
                    help="a metrics.json of the base model in the same mode: its tasks are not evaluated again")
    ap.add_argument("--eval-tasks", default=TRAIN_TASKS, help=f"held-out tasks to compare on (all nine: {ALL_TASKS}; "
                                                             "TREC DL reranking: trec-dl19,trec-dl21)")
    ap.add_argument("--eval-limit", type=int, default=50, help="first N test samples per task")
    ap.add_argument("--eval-limit-for", action="append", default=[], metavar="TASK=N",
                    help="a task's own first-N (repeatable), e.g. router-cost=30: the pointer IRanker re-scores "
                         "after every elimination, so routing costs ~10x a rec sample")
    ap.add_argument("--eval-dtype", default="auto", help="auto: bf16 on CUDA and CPUs with AMX (2.6x faster there), else fp32")
    ap.add_argument("--out", default="artifacts/bench/train_iranker")
    ap.add_argument("--skip-train", action="store_true", help="evaluate an existing <out>/train/final again")
    ap.add_argument("--reuse-base", action="store_true",
                    help="keep <out>/eval-base when it holds the same model, limit, prompt settings and all eval tasks")
    args = ap.parse_args()
    eval_limits = _task_limits(args.eval_limit_for, args.eval_tasks.split(","))  # before any training

    out = Path(args.out)
    try:
        overrides = dict(parse_override(text) for text in args.overrides)
        params = load_params(args.params, args.profile, {**overrides, "train.output_dir": str(out / "train")})
    except ConfigError as err:
        raise SystemExit(f"error: {err}") from err
    cfg = params.train  # the pipeline's own config: the same checks, the same keys, one definition
    if cfg.algo != "expected-reward" or cfg.ranker != "iranker":
        raise SystemExit(f"this bench trains the IRanker with the expected-reward trainer; profile {args.profile} "
                         f"sets algo {cfg.algo!r}, ranker {cfg.ranker!r}")
    prompt = cfg.prompt
    summary_path = out / "train" / "summary.json"
    if args.skip_train:
        summary = json.loads(summary_path.read_text())
    else:
        def progress(step: int, total: int, m: dict) -> None:
            print(f"step {step}: expected reward {m['reward/expected_mean']:.3f} "
                  f"(std {m['reward/expected_std']:.3f}), argmax {m['reward/greedy_mean']:.3f}, "
                  f"uniform {m['reward/uniform_mean']:.3f}, KL {m['health/kl']:.4f}, {m['seconds_per_step']:.1f}s/step, "
                  f"{m['tokens_per_second']:.0f} tok/s", flush=True)

        summary = train(cfg, progress=progress)
    write_curves(out / "train")
    health = read_jsonl(out / "train" / "health.jsonl")

    reports = {}
    base = _reusable_base(out / "eval-base" / "metrics.json", cfg, args) if args.reuse_base else None
    if base is not None:
        print(f"reusing {out / 'eval-base'} (same model, tasks, limit and prompt settings)")
        reports["base"] = _timed(base, base.wall_seconds)
    given = EvalReport.read(Path(args.base_from)) if args.base_from else None
    eval_tasks = args.eval_tasks.split(",")
    for label, model in (("base", cfg.model), ("trained", str(out / "train" / "final"))):
        if label in reports:
            continue
        compare = out / "eval-base" / "metrics.json" if label == "trained" else None
        tasks_to_run = [t for t in eval_tasks if label != "base" or given is None or t not in given.tasks]
        if label == "base" and given is not None and given.system.mode != cfg.mode:
            raise SystemExit(f"--base-from {args.base_from} was evaluated in mode {given.system.mode!r}, not {cfg.mode!r}")
        if not tasks_to_run:  # every base task comes from --base-from
            write_json(out / "eval-base" / "metrics.json", given.to_dict())  # the bench's own writer, as before
            reports[label] = _timed(given, 0.0)
            continue
        job = dict(label=label, model=model, samples=cfg.samples, tasks=tasks_to_run, mode=cfg.mode,
                   limit=args.eval_limit, limits=eval_limits, prompt=prompt, dtype=args.eval_dtype, seed=cfg.seed,
                   out=out / f"eval-{label}", compare=compare)
        # a fresh process per evaluation, as a standalone `r1ranker evaluate` runs: nothing the training
        # left behind (threads, memory, autocast state) can touch the timing or the numbers. Slow
        # evaluations seen before came from sharing the 2 cores (oversubscribed OpenMP threads), not from this.
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            reports[label] = pool.submit(_evaluate, job).result()
        if label == "base" and given is not None:  # the given tasks beside the ones run now, in one file
            reports[label] = dataclasses.replace(reports[label], tasks={
                **{t: given.tasks[t] for t in eval_tasks if t in given.tasks}, **reports[label].tasks})
            write_json(out / "eval-base" / "metrics.json", reports[label].to_dict())
    by_task = {t: None for t in eval_tasks}

    tasks = {}
    for task in by_task:
        b, t = reports["base"].tasks[task], reports["trained"].tasks[task]
        c = reports["trained"].compare.tasks[task]
        # means on the samples both ranked (the base may come from a larger --base-from run)
        tasks[task] = {"n": c.n, "base_mrr": c.other_mrr, "base_ci95": list(b.metrics.mrr.ci95),
                       "trained_mrr": c.mrr, "trained_ci95": list(t.metrics.mrr.ci95),
                       "diff": c.mean_diff, "p_value": c.p_value,
                       # TREC DL: per-query nDCG@10 paired test (mean_diff, p_value, n, ndcg10, other_ndcg10)
                       "ndcg10": dict(c.ndcg10) if c.ndcg10 else None,
                       # the label named first most often and its share: near 1 is a position bias, not a ranking
                       "base_first": b.first_answer_top and b.first_answer_top.to_dict(),
                       "trained_first": t.first_answer_top and t.first_answer_top.to_dict()}
    result = {
        "command": "python " + " ".join(sys.argv),
        "machine": f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}",
        "model": cfg.model, "algo": "expected-reward", "mode": cfg.mode, "scorers": cfg.scorers if cfg.mode == "score" else None,
        "objective": cfg.objective, "train_tasks": cfg.tasks, "profile": args.profile, "overrides": args.overrides,
        "settings": settings_of(cfg, args),
        "steps": summary["steps"], "train_seconds": summary["seconds"],
        # held-out checks are in the budget, not in the cost of a step
        "seconds_per_step": (summary["seconds"] - summary.get("validation_seconds", 0.0)) / max(summary["steps"], 1),
        "tokens_per_second": health[-1].get("tokens_per_second") if health else None,
        "reward_first10": sum(h["reward/expected_mean"] for h in health[:10]) / max(len(health[:10]), 1),
        "reward_last10": sum(h["reward/expected_mean"] for h in health[-10:]) / max(len(health[-10:]), 1),
        # the argmax label's reward over a uniform pick, what the greedy evaluation sees (older runs lack it)
        "greedy_gain_first10": _mean_gap(health[:10]), "greedy_gain_last10": _mean_gap(health[-10:]),
        # the argmax pick's gain over uniform on held-out train groups, at the first and the last check
        "held_out": _held_out(health),
        "eval_seconds": {k: r.extra["eval_seconds"] for k, r in reports.items()},
        "tasks": tasks,
        "curve": str(out / "train" / "reward_curve.png"),
    }
    result["settings"]["eval_dtype"] = reports["base"].system.get("dtype", args.eval_dtype)  # what auto picked
    record = TrainingRun.from_dict(result)  # the typed record bench/results_table.py reads (bench/records.py)
    record.write(Path("artifacts/bench/train_iranker.json"))  # the latest run: docs/RESULTS.md's main table
    record.write(out / "result.json")  # every run: RESULTS.md's table of training runs
    for task, r in tasks.items():
        print(f"{task}: MRR {r['base_mrr']:.3f} -> {r['trained_mrr']:.3f} ({r['diff']:+.3f}, p = {r['p_value']:.4f}, n = {r['n']})")
        if r["ndcg10"]:
            g = r["ndcg10"]
            print(f"{task}: nDCG@10 {g['other_ndcg10']:.3f} -> {g['ndcg10']:.3f} ({g['mean_diff']:+.3f}, p = {g['p_value']:.4f})")
    print("wrote artifacts/bench/train_iranker.json; now: python bench/results_table.py")


if __name__ == "__main__":
    main()
