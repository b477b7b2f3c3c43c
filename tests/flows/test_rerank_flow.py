"""The rerank flow on a real Dask LocalCluster: 20 queries in shards over 2 worker processes give the same TREC run
as `r1ranker rerank` in one process; a restart reranks only the shards that have no run file yet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from components.io import DataError

pytestmark = pytest.mark.slow  # a Prefect API and a Dask cluster of two processes

runner = CliRunner()


@pytest.fixture(scope="module")
def run20(data_root, tmp_path_factory) -> Path:
    """The first 20 DL19 queries' BM25 top 8, as rank_llm's JSON."""
    entries = json.loads((Path(data_root) / "trec-dl" / "dl19_bm25_top100.json").read_text())[:20]
    path = tmp_path_factory.mktemp("run") / "run20.json"
    path.write_text(json.dumps([{**e, "hits": e["hits"][:8]} for e in entries]))
    return path


def test_the_dask_flow_equals_the_single_process_run_and_restarts_by_shard(harness, run20, tmp_path):
    from flows.rerank import rerank_flow

    single = tmp_path / "single.run"
    args = ["--model", "random:tiny", "--mode", "score", "--top-k", "8", "--tag", "t"]
    result = runner.invoke(app, ["rerank", "--run", str(run20), "--out", str(single), *args])
    assert result.exit_code == 0, result.output

    out = tmp_path / "dask.run"
    kw = dict(model="random:tiny", mode="score", top_k=8, workers=2, shards=4, tag="t")
    summary = rerank_flow(str(run20), str(out), **kw)
    assert summary["queries"] == 20 and summary["shards"] == 4
    assert out.read_text() == single.read_text() and summary["lines"] == 160

    shards = sorted(Path(f"{out}.shards").glob("shard-*.run"))
    assert len(shards) == 4
    kept = {p: p.stat().st_mtime_ns for p in shards[1:]}
    shards[0].unlink()
    out.unlink()
    rerank_flow(str(run20), str(out), **kw)  # the restart: only shard 0 is reranked again
    assert out.read_text() == single.read_text() and shards[0].exists()
    assert {p: p.stat().st_mtime_ns for p in shards[1:]} == kept

    with pytest.raises(DataError, match="holds shards of another run or other settings"):
        rerank_flow(str(run20), str(out), **{**kw, "top_k": 5})


def test_rerank_with_workers_runs_the_flow_and_scores_its_run(harness, run20, data_root, tmp_path):
    out = tmp_path / "identity.run"
    result = runner.invoke(app, ["rerank", "--run", str(run20), "--out", str(out), "--ranker", "identity", "--top-k", "8",
                                 "--workers", "2", "--qrels", str(Path(data_root) / "trec-dl" / "dl19_qrels.json")])
    assert result.exit_code == 0, result.output
    line = next(l for l in result.output.splitlines() if l.startswith("ndcg@10"))
    before, after = line.split("input ")[1].split(" -> reranked ")
    assert before == after.strip()  # the identity: the written run scores as its input
    assert len(out.read_text().splitlines()) == 160
