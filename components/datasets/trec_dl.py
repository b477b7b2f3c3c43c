"""Passage-5 / Passage-7 / Passage-9 from TREC DL (BM25 top-100 run + NIST qrels).

For each query with at least one passage judged >= 2 in the run and at least
k-1 passages judged 0 (hard negatives, they were retrieved by BM25): draw
`samples_per_query` samples, each one positive (cycling through the query's
positives in a seeded order) plus k-1 judged-0 hits drawn at random, with
pairwise distinct normalised texts, shuffled. Queries, not samples, are split,
so every sample of a query lands in the same split. The same loader reads other
years (DL20) given their run and qrels files through `path`.

The query split is joint across passage-5/7/9 (every task of this source): it
is seeded by the source, not the task name, and drawn over every query with a
positive, whatever k (the judged-0 requirement would make the set depend on k).
So a query is on the same side in all three tasks, and training on passage-7
or -9 never sees a passage-5 test query; a query too short of judged-0 hits for
one k is simply absent from that task.
"""

from __future__ import annotations

from collections import Counter

from components.config import TaskConfig
from components.datasets.common import (
    LoadContext,
    PreparedTask,
    draw_negatives,
    finish_task,
    normalise_text,
    split_groups,
)
from components.io import DataError, load_json, read_text
from components.schema import Candidate, RankingSample

RUN_FILE, QRELS_FILE = "dl19_bm25_top100.json", "dl19_qrels.json"


def load_trec_dl(cfg: TaskConfig, ctx: LoadContext) -> PreparedTask:
    folder = ctx.resolve(cfg.path, "trec-dl")
    k = cfg.n_candidates or 5
    run_path, qrels_path = _find(folder, "*top100.json", RUN_FILE), _find(folder, "*qrels.json", QRELS_FILE)
    run, qrels = load_json(run_path), load_json(qrels_path)
    if not isinstance(run, list):
        raise DataError(f"{run_path}: expected a list of {{query, hits}} objects")
    if not isinstance(qrels, dict):
        raise DataError(f"{qrels_path}: expected an object {{qid: {{docid: grade}}}}")
    dropped: Counter = Counter()
    eligible = []
    with_positive = []  # the split's universe: independent of k, so the split is the same for every k
    for i, entry in enumerate(run):
        if not isinstance(entry, dict) or "query" not in entry or "hits" not in entry:
            raise DataError(f"{run_path}: entry {i} lacks 'query' or 'hits'")
        hits = entry["hits"]
        if not hits:
            dropped["query without hits"] += 1
            continue
        try:
            qid = str(hits[0]["qid"])
            text = {str(h["docid"]): str(h["content"]) for h in hits}
        except KeyError as err:
            raise DataError(f"{run_path}: entry {i}: hit lacks field {err}") from err
        judged = {d: int(g) for d, g in qrels.get(qid, {}).items()}
        positives = sorted(d for d in text if judged.get(d, -1) >= 2)
        negatives = [str(h["docid"]) for h in hits if judged.get(str(h["docid"]), -1) == 0]
        if not positives:
            dropped["query without a passage judged >= 2 in the run"] += 1
            continue
        with_positive.append(qid)
        if len(negatives) < k - 1:
            dropped[f"query with fewer than {k - 1} judged-0 hits"] += 1
            continue
        eligible.append((qid, entry["query"], text, judged, positives, negatives))

    assignment = split_groups(with_positive, cfg.test_groups, ctx.shared_rng(cfg.source, "split"))
    samples = []
    for qid, query, text, judged, positives, negatives in eligible:
        rng = ctx.rng("query", qid)
        order = positives[:]
        rng.shuffle(order)
        for j in range(cfg.samples_per_query):
            pos = order[j % len(order)]
            negs = draw_negatives(negatives, k - 1, {pos}, text.__getitem__, {normalise_text(text[pos])}, rng)
            if negs is None:
                dropped["not enough distinct judged-0 passages"] += 1
                continue
            ids = [pos, *negs]
            rng.shuffle(ids)
            samples.append(
                RankingSample(
                    sample_id=f"{ctx.task}:{qid}:{j}",
                    task=ctx.task,
                    scenario="passage",
                    query=str(query),
                    candidates=tuple(Candidate(d, text[d]) for d in ids),
                    relevance={d: float(judged[d]) for d in ids if judged[d] > 0},
                    group=qid,
                    meta={"qid": qid},
                )
            )
    return finish_task(ctx.task, samples, assignment, cfg, ctx, dropped)


def _find(folder, pattern: str, default: str):
    """The folder's one file matching `pattern` (e.g. a DL20 run), else the DL19 default."""
    matches = sorted(folder.glob(pattern))
    if len(matches) > 1:
        names = [m.name for m in matches]
        raise DataError(f"{folder}: several files match {pattern!r} ({names}); keep one per folder")
    return matches[0] if matches else folder / default


# ---------------------------------------------------------------- reranking a first-stage run (trec-dl19, trec-dl21)


def read_qrels(path) -> dict[str, dict[str, float]]:
    """Graded judgements `{qid: {docid: grade}}`, from the team store's JSON or a TREC qrels file (`qid 0 docid grade`).

    Told apart by content; an error names the file and line.
    """
    text = read_text(path)
    if text.lstrip().startswith("{"):
        raw = load_json(path)
        out: dict[str, dict[str, float]] = {}
        for qid, judged in raw.items():
            if not isinstance(judged, dict):
                raise DataError(f"{path}: qrels of query {qid!r} must be an object of docid -> grade")
            try:
                out[str(qid)] = {str(d): float(g) for d, g in judged.items()}
            except (TypeError, ValueError) as err:
                raise DataError(f"{path}: query {qid!r}: a grade is not a number ({err})") from err
        return out
    out = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            qid, _, docid, grade = parts
            out.setdefault(qid, {})[docid] = float(grade)
        except ValueError as err:
            raise DataError(f"{path}:{lineno}: expected 'qid iteration docid grade', got {line.strip()[:80]!r}") from err
    return out


def ordered_hits(entry, where: str) -> list[dict]:
    hits = entry["hits"]
    if not isinstance(hits, list):
        raise DataError(f"{where}: 'hits' must be a list")
    for j, h in enumerate(hits):
        if not isinstance(h, dict) or not {"qid", "docid", "content"} <= set(h):
            raise DataError(f"{where}: hit {j} needs 'qid', 'docid' and 'content'")
    if all(isinstance(h.get("rank"), int) for h in hits):
        hits = sorted(hits, key=lambda h: h["rank"])  # stable: the file's order breaks rank ties
    return hits


def load_trec_run(cfg: TaskConfig, ctx: LoadContext) -> PreparedTask:
    """One test sample per query: the run's top `depth` hits in its order, graded by the qrels.

    `meta.qrels` carries every judged passage of the query (nDCG's ideal ranking comes from all of them, as
    in trec_eval, not only from the candidates) and `meta.relevant_grade` is 2, TREC DL's threshold for
    MRR and Hit. A query without judgements, or without a judged-relevant passage, is excluded and counted,
    as trec_eval does.
    """
    if not cfg.path or not cfg.qrels:
        raise DataError(f"task {ctx.task}: source 'trec-run' needs 'path' (the run JSON) and 'qrels'")
    run_path, qrels_path = ctx.resolve(cfg.path, ""), ctx.resolve(cfg.qrels, "")
    run, qrels = load_json(run_path), read_qrels(qrels_path)
    if not isinstance(run, list):
        raise DataError(f"{run_path}: expected a list of {{query, hits}} objects")
    dropped: Counter = Counter()
    samples = []
    seen_qids: set[str] = set()
    for i, entry in enumerate(run):
        where = f"{run_path}: entry {i}"
        if not isinstance(entry, dict) or "query" not in entry or "hits" not in entry:
            raise DataError(f"{where}: lacks 'query' or 'hits'")
        hits = ordered_hits(entry, where)
        if not hits:
            dropped["query without hits"] += 1
            continue
        qid = str(hits[0]["qid"])
        if qid in seen_qids:
            raise DataError(f"{where}: query {qid} appears twice in the run")
        seen_qids.add(qid)
        judged = qrels.get(qid)
        if not judged:
            dropped["query without judgements (excluded, as trec_eval does)"] += 1
            continue
        if not any(g > 0 for g in judged.values()):
            dropped["query without a judged-relevant passage (excluded, as trec_eval does)"] += 1
            continue
        cands, seen = [], set()
        for h in hits:
            docid, text = str(h["docid"]), str(h["content"])
            if docid in seen:
                dropped["hit repeated within a query"] += 1
                continue
            if not text.strip():
                dropped["hit without text"] += 1
                continue
            seen.add(docid)
            cands.append(Candidate(docid, text))
            if len(cands) == cfg.depth:
                break
        relevance = {c.id: judged[c.id] for c in cands if judged.get(c.id, 0) > 0}
        if not relevance:
            dropped[f"query with no judged-relevant passage in the run's top {cfg.depth}"] += 1
            continue
        samples.append(RankingSample(
            sample_id=f"{ctx.task}:{qid}", task=ctx.task, scenario="passage", query=str(entry["query"]).strip(),
            candidates=tuple(cands), relevance=relevance, group=qid,
            meta={"qid": qid, "qrels": judged, "relevant_grade": 2},
        ))
    return PreparedTask(splits={"train": [], "test": samples}, dropped=dropped)
