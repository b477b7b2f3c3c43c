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
from components.io import DataError, load_json
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
