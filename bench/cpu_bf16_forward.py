"""fp32 vs bf16 forward passes of SmolLM2 on this CPU (fast-mode IRanker batches).

Baseline: fp32. Prints prompt tokens per second for one batch of Passage-5 IRanker
prompts primed with `<answer>` (what fast mode runs), the ratio, and whether the
argmax next token agrees. On CPUs with AMX / AVX512-BF16, bf16 is much faster; the
project keeps fp32 as the CPU default until agreement is checked at scale.

    python bench/cpu_bf16_forward.py --batch 16
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from components.evaluation import load_eval_samples
from components.models import load_model
from components.prompts import PromptConfig, build_prompt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default="artifacts/bench/cpu_bf16.json")
    args = ap.parse_args()
    samples = load_eval_samples(Path("artifacts/samples"), ["passage-5"], "test", args.batch)["passage-5"]
    results = {}
    for dtype in ("float32", "bfloat16"):
        model, tok = load_model(dtype=dtype)
        tok.padding_side = "left"
        texts = [build_prompt(s, "iranker", tok, PromptConfig(reasoning=False)).text + "<answer>" for s in samples]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            model(**enc, logits_to_keep=1)  # warm-up
            started = time.perf_counter()
            for _ in range(args.repeats):
                logits = model(**enc, logits_to_keep=1).logits[:, -1].float()
            seconds = (time.perf_counter() - started) / args.repeats
        results[dtype] = (seconds, enc["input_ids"].numel() / seconds, logits.argmax(-1))
        print(f"{dtype:>9}: {seconds:.2f}s per batch of {len(texts)}, {results[dtype][1]:.0f} prompt tokens/s")
    agree = (results["float32"][2] == results["bfloat16"][2]).float().mean().item()
    speedup = results["float32"][0] / results["bfloat16"][0]
    print(f"bf16 / fp32 speed: {speedup:.2f}x; argmax agreement {100 * agree:.0f}%")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"batch": len(samples), "fp32_seconds": results["float32"][0],
                               "bf16_seconds": results["bfloat16"][0], "speedup": speedup, "argmax_agreement": agree,
                               "cores": os.cpu_count()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
