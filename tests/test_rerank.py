"""A reranker people can call: scores out, unlabeled requests in, TREC runs in and out, `/rerank` over HTTP."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from components.requests import RequestError
from components.trec import read_first_stage, read_run_lines
from tests.servers import BIN, free_port, stop, wait_http

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
DOCS = ["Mars has two small moons, Phobos and Deimos.", "Jupiter has ninety-five known moons.",
        "The Moon orbits the Earth.", "Bananas are rich in potassium."]


@pytest.fixture(scope="module")
def dl19(data_root) -> Path:
    return Path(data_root) / "trec-dl"


def test_python_one_liner_returns_index_score_pairs_best_first():
    from components import Reranker

    pairs = Reranker.load("bm25").rerank("how many moons does mars have", DOCS, top_n=2)
    assert len(pairs) == 2 and pairs[0][0] == 0 and pairs[0][1] >= pairs[1][1]
    full = Reranker.load("bm25").rerank("how many moons does mars have", [{"text": d} for d in DOCS])
    assert sorted(i for i, _ in full) == [0, 1, 2, 3] and [s for _, s in full] == sorted((s for _, s in full), reverse=True)


@pytest.mark.parametrize("documents, message", [
    (["a", None], "field 'documents[1]': expected a string or an object with 'text', got null"),
    (["a", 3], "field 'documents[1]': expected a string or an object with 'text', got int"),
    ([], "field 'documents': the list is empty"),
    ("a text", "field 'documents': expected a list of strings"),
    ([{"text": "  "}], "field 'documents[0]': empty text"),
])
def test_bad_documents_are_named(documents, message):
    from components import Reranker

    with pytest.raises(RequestError, match=message.replace("(", r"\(").replace("[", r"\[").replace("]", r"\]")):
        Reranker.load("identity").rerank("q", documents)


def test_rankings_carry_scores_aligned_with_the_order(prepared, tmp_path):
    from components.evaluation import evaluate_report, load_eval_samples
    from components.rankers import build_ranker

    by_task = load_eval_samples(prepared[0], ["passage-5"], "test", 5)
    evaluate_report(build_ranker("bm25"), by_task, tmp_path / "bm25", {"label": "bm25"}, show_progress=False)
    evaluate_report(build_ranker("random"), by_task, tmp_path / "random", {"label": "random"}, show_progress=False)
    for name, source in (("bm25", "ranker"), ("random", "rank")):
        for line in (tmp_path / name / "rankings.jsonl").read_text().splitlines():
            row = json.loads(line)
            assert row["scores_from"] == source and len(row["scores"]) == len(row["order"]) == 5
            assert row["scores"] == sorted(row["scores"], reverse=True)


def test_rerank_writes_a_trec_run_that_scores_the_published_bm25(dl19, tmp_path):
    out = tmp_path / "dl19.run"
    result = runner.invoke(app, ["rerank", "--run", str(dl19 / "dl19_bm25_top100.json"), "--ranker", "identity",
                                 "--out", str(out), "--qrels", str(dl19 / "dl19_qrels.json"), "--relevant-grade", "2"])
    assert result.exit_code == 0, result.output
    assert "ndcg@10: input 50.58 -> reranked 50.58" in result.output and "mrr@10: input 70.24" in result.output
    run = read_run_lines(out)
    assert len(run) == 43 and all(len(hits) == 100 for hits in run.values())
    first = out.read_text().splitlines()[0].split()
    assert first[1] == "Q0" and first[3] == "1" and first[5] == "r1ranker-identity"


def test_a_trec_run_file_round_trips_through_topics_and_corpus(dl19, tmp_path):
    stage = read_first_stage(dl19 / "dl19_bm25_top100.json", depth=20)
    requests = stage.requests[:5]
    (tmp_path / "topics.tsv").write_text("".join(f"{r.request_id}\t{r.query}\n" for r in requests))
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps({"docid": d.id, "text": d.text}) + "\n"
                                                   for r in requests for d in r.documents))
    first = tmp_path / "first.run"
    (tmp_path / "first.json").write_text(json.dumps([{"query": r.query, "hits": [
        {"qid": r.request_id, "docid": d.id, "content": d.text} for d in r.documents]} for r in requests]))
    args = ["rerank", "--ranker", "bm25", "--tag", "t"]
    assert runner.invoke(app, [*args, "--run", str(tmp_path / "first.json"), "--out", str(first)]).exit_code == 0
    again = tmp_path / "again.run"
    result = runner.invoke(app, [*args, "--run", str(first), "--topics", str(tmp_path / "topics.tsv"),
                                 "--corpus", str(tmp_path / "corpus.jsonl"), "--out", str(again)])
    assert result.exit_code == 0, result.output
    assert again.read_text() == first.read_text()  # BM25 over the same texts: the same run, line for line
    result = runner.invoke(app, [*args, "--run", str(first), "--out", str(tmp_path / "x.run")])
    assert result.exit_code == 1 and "pass --topics" in result.output and not (tmp_path / "x.run").exists()
    (tmp_path / "bad.run").write_text("q1 Q0 d1 1 0.5\n")
    result = runner.invoke(app, [*args, "--run", str(tmp_path / "bad.run"), "--topics", str(tmp_path / "topics.tsv"),
                                 "--corpus", str(tmp_path / "corpus.jsonl"), "--out", str(tmp_path / "y.run")])
    assert result.exit_code == 1 and f"{tmp_path / 'bad.run'}:1: expected 'qid Q0 docid rank score tag'" in result.output


def test_rank_takes_an_unlabeled_query_and_documents(tmp_path):
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(DOCS) + "\n")
    result = runner.invoke(app, ["rank", "--ranker", "bm25", "--query", "how many moons does mars have",
                                 "--documents", str(docs), "--top-n", "3"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output.strip().splitlines()[-1])
    assert [r["index"] for r in row["results"]][0] == 0 and len(row["results"]) == 3
    bad = tmp_path / "requests.jsonl"
    bad.write_text(json.dumps({"query": "q", "documents": ["a", None]}) + "\n")
    result = runner.invoke(app, ["rank", "--ranker", "bm25", "--input", str(bad)])
    assert result.exit_code == 1 and f"{bad}:1, field 'documents[1]'" in result.output


def post(url: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@pytest.mark.slow
def test_serve_answers_rerank_in_the_cohere_shape_with_clear_4xx_and_metrics(tmp_path):
    port = free_port()
    proc = subprocess.Popen([str(BIN / "r1ranker"), "serve", "--model", "random:tiny", "--port", str(port),
                             "--max-body-bytes", "20000"], start_new_session=True,
                            stdout=open(tmp_path / "serve.log", "wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/health", 180, proc)
        docs = [f"passage {i} about moons and planets number {i}" for i in range(30)]
        status, body = post(f"{base}/rerank", json.dumps({"query": "moons", "documents": docs, "top_n": 5}).encode())
        assert status == 200, body
        scores = [r["relevance_score"] for r in body["results"]]
        assert len(body["results"]) == 5 and scores == sorted(scores, reverse=True)
        assert len({r["index"] for r in body["results"]}) == 5 and body["model"] == "random:tiny"
        status, body = post(f"{base}/v1/rerank", json.dumps({"query": "moons", "return_documents": True,
                                                             "documents": [{"text": d} for d in docs[:4]]}).encode())
        assert status == 200 and body["results"][0]["document"]["text"] in docs[:4]
        for documents, field in ((["a", None], "documents[1]"), (["a", 7], "documents[1]"), ([], "documents")):
            status, body = post(f"{base}/rerank", json.dumps({"query": "q", "documents": documents}).encode())
            assert status == 422 and f"field '{field}'" in body["detail"], body
        status, body = post(f"{base}/rerank", json.dumps({"query": "q", "documents": ["x" * 30000]}).encode())
        assert status == 413 and "the limit is 20000" in body["detail"]
        status, body = post(f"{base}/rerank", b"{not json")
        assert status == 400

        def one(i):
            return post(f"{base}/rerank", json.dumps({"query": f"q{i}", "documents": docs[:3]}).encode())[0]

        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(one, range(50)))
        assert statuses == [200] * 50
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as resp:
            metrics = resp.read().decode()
        assert 'r1ranker_requests_total{route="/rerank",status="200"} 51.0' in metrics
        assert 'r1ranker_requests_total{route="/rerank",status="422"} 3.0' in metrics
        assert "r1ranker_batch_size_count" in metrics and proc.poll() is None
    finally:
        stop(proc)


@pytest.mark.parametrize("candidates, expected", [
    (["text", None], "row 0, field 'candidates[1]': expected a string or an object with 'text', got null"),
    ([{"id": "a", "text": "Mars"}, 3], "row 0, field 'candidates[1]': expected a string or an object with 'text', got int"),
    ([{"text": "Mars has moons"}, "Jupiter"], None),
])
def test_invocations_no_longer_turn_objects_and_nulls_into_characters(candidates, expected):
    """MLflow's Array(string) enforcement made ["text", null] into ["t", "n"] (HTTP 200, a ranking of letters)."""
    import pandas as pd
    from mlflow.exceptions import MlflowException
    from mlflow.models.utils import _enforce_schema

    from components.serving import RankerModel, signature

    model = RankerModel()
    model.cfg = {"max_candidates": 100, "max_text_chars": 5000}
    frame = _enforce_schema(pd.DataFrame([{"query": "q", "scenario": "passage", "candidates": candidates}]),
                            signature().inputs)
    if expected is None:
        [sample] = model._samples(frame)
        assert [c.text for c in sample.candidates] == ["Mars has moons", "Jupiter"]
        assert [c.id for c in sample.candidates] == ["0", "1"]
    else:
        with pytest.raises(MlflowException, match=expected.replace("[", r"\[").replace("]", r"\]")):
            model._samples(frame)
