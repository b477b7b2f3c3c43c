"""First-stage runs in and TREC runs out: what `r1ranker rerank` reads and writes.

A first-stage run is either a TREC run file (`qid Q0 docid rank score tag`, with a topics TSV and a corpus
for the texts) or rank_llm's retrieve-results JSON (`[{"query": ..., "hits": [{"qid", "docid", "content"}]}]`,
the format of the team store's `trec-dl/*_bm25_top100.json`); they are told apart by content. Qrels come
from `datasets.trec_dl.read_qrels` (TREC qrels text or the store's `{qid: {docid: grade}}` JSON).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from components.datasets.trec_dl import ordered_hits
from components.io import DataError, atomic_write, loads
from components.requests import RequestError, RerankRequest, documents

csv.field_size_limit(sys.maxsize)  # passages can be long; the rows are still read one at a time


@dataclass(frozen=True)
class FirstStage:
    """One request per query, in the run's order, and what was left out (counted by reason)."""

    requests: list[RerankRequest]
    dropped: dict[str, int]


def is_json_run(path: Path) -> bool:
    """rank_llm's JSON starts with `[` (after whitespace); a TREC run is text lines."""
    with open(path, encoding="utf-8") as fh:
        head = fh.read(4096).lstrip()
    return head.startswith("[")


def read_run_lines(path: Path) -> dict[str, list[tuple[str, float]]]:
    """A TREC run file: per query, (docid, score) in rank order; a malformed line names the file and line."""
    by_query: dict[str, list[tuple[int, str, float]]] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 6:
                raise DataError(f"{path}:{lineno}: expected 'qid Q0 docid rank score tag' (6 fields), got {len(parts)}")
            qid, _, docid, rank, score, _ = parts
            try:
                by_query.setdefault(qid, []).append((int(rank), docid, float(score)))
            except ValueError as err:
                raise DataError(f"{path}:{lineno}: rank must be an integer and score a number") from err
    return {q: [(d, s) for _, d, s in sorted(hits, key=lambda h: (h[0], -h[2]))] for q, hits in by_query.items()}


def read_topics(path: Path) -> dict[str, str]:
    """`qid<TAB>query` per line."""
    out = {}
    with open(path, encoding="utf-8", newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if not row:
                continue
            if len(row) < 2 or not row[1].strip():
                raise DataError(f"{path}:{lineno}: expected 'qid<TAB>query'")
            out[row[0]] = row[1].strip()
    return out


def read_corpus(path: Path) -> dict[str, str]:
    """JSONL `{"docid", "text"}` (also `id` / `contents`, pyserini's names) or TSV `docid<TAB>text`."""
    out = {}
    with open(path, encoding="utf-8", newline="") as fh:
        first = fh.read(1)
        fh.seek(0)
        if first == "{":
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    rec = loads(line)
                except ValueError as err:
                    raise DataError(f"{path}:{lineno}: not valid JSON") from err
                docid = rec.get("docid", rec.get("id")) if isinstance(rec, dict) else None
                text = rec.get("text", rec.get("contents")) if isinstance(rec, dict) else None
                if docid is None or not isinstance(text, str):
                    raise DataError(f"{path}:{lineno}: expected {{\"docid\", \"text\"}}")
                out[str(docid)] = text
        else:
            for lineno, row in enumerate(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
                if not row:
                    continue
                if len(row) < 2:
                    raise DataError(f"{path}:{lineno}: expected 'docid<TAB>text'")
                out[row[0]] = row[1]
    return out


def _request(qid: str, query: str, hits: list[tuple[str, str]], where: str, depth: int,
             dropped: dict[str, int]) -> RerankRequest | None:
    docs, seen = [], set()
    for docid, text in hits:
        if docid in seen:
            dropped["hit repeated within a query"] = dropped.get("hit repeated within a query", 0) + 1
            continue
        if not text.strip():
            dropped["hit without text"] = dropped.get("hit without text", 0) + 1
            continue
        seen.add(docid)
        docs.append({"id": docid, "text": text})
        if len(docs) == depth:
            break
    if not docs:
        dropped["query without hits"] = dropped.get("query without hits", 0) + 1
        return None
    try:
        return RerankRequest(query.strip(), documents(docs, where, max_documents=depth, max_chars=10**7), "passage", qid)
    except RequestError as err:
        raise DataError(str(err)) from err


def read_first_stage(run: Path, depth: int = 100, topics: Path | None = None, corpus: Path | None = None) -> FirstStage:
    """The top `depth` hits of every query of a first-stage run, as requests (see the module doc)."""
    run = Path(run)
    dropped: dict[str, int] = {}
    requests, qids = [], set()
    if is_json_run(run):
        try:
            entries = loads(run.read_text(encoding="utf-8"))
        except ValueError as err:
            raise DataError(f"{run}: not valid JSON ({str(err)[:80]})") from err
        if not isinstance(entries, list):
            raise DataError(f"{run}: expected a list of {{query, hits}} objects")
        for i, entry in enumerate(entries):
            where = f"{run}: entry {i}"
            if not isinstance(entry, dict) or not isinstance(entry.get("query"), str) or "hits" not in entry:
                raise DataError(f"{where}: expected {{\"query\": str, \"hits\": [...]}}")
            hits = ordered_hits(entry, where)  # the trec-run task's reader of the same format
            qid = str(hits[0]["qid"]) if hits else f"entry{i}"
            if qid in qids:
                raise DataError(f"{where}: query {qid} appears twice in the run")
            qids.add(qid)
            req = _request(qid, entry["query"], [(str(h["docid"]), str(h["content"])) for h in hits], where, depth, dropped)
            if req is not None:
                requests.append(req)
    else:
        if topics is None or corpus is None:
            raise DataError(f"{run}: a TREC run file lists ids only: pass --topics (qid<TAB>query) and --corpus "
                            "(JSONL {docid, text} or TSV) for the texts")
        queries, texts = read_topics(topics), read_corpus(corpus)
        for qid, hits in read_run_lines(run).items():
            if qid not in queries:
                raise DataError(f"{run}: query {qid} is not in {topics}")
            missing = [d for d, _ in hits[:depth] if d not in texts]
            if missing:
                raise DataError(f"{run}: query {qid}: {len(missing)} docid(s) not in {corpus} (first {missing[0][:80]!r})")
            req = _request(qid, queries[qid], [(d, texts[d]) for d, _ in hits], f"{run}: query {qid}", depth, dropped)
            if req is not None:
                requests.append(req)
    if not requests:
        raise DataError(f"{run}: no query with hits to rerank")
    return FirstStage(requests, dropped)


def run_lines(rows: Iterable[tuple[str, list[str], list[float]]], tag: str) -> Iterator[str]:
    """`qid Q0 docid rank score tag` lines, rank 1 first, from (qid, ids best first, scores)."""
    for qid, ids, scores in rows:
        for rank, (docid, score) in enumerate(zip(ids, scores), start=1):
            yield f"{qid} Q0 {docid} {rank} {score:.6f} {tag}\n"


def write_run(path: Path, rows: Iterable[tuple[str, list[str], list[float]]], tag: str) -> int:
    """Write a TREC run atomically; the number of lines."""
    if not tag or any(ch.isspace() for ch in tag):
        raise DataError(f"run tag {tag!r}: a non-empty word without spaces")
    n = 0
    with atomic_write(Path(path)) as fh:
        for line in run_lines(rows, tag):
            fh.write(line)
            n += 1
    return n


def run_json(requests: list[RerankRequest]) -> str:
    """rank_llm's JSON for requests (tests and users converting a run)."""
    return json.dumps([{"query": r.query, "hits": [{"qid": r.request_id, "docid": d.id, "content": d.text, "rank": i + 1}
                                                   for i, d in enumerate(r.documents)]} for r in requests])
