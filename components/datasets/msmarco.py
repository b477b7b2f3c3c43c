"""Passage-5 / Passage-7 / Passage-9 from MS MARCO v1.1, the paper's own data and recipe.

Each query comes with the passages Bing returned for it, one marked selected.
A sample is the selected passage plus k-1 of the query's unselected passages
(a seeded draw with pairwise distinct normalised texts), shuffled; a query with
fewer than k-1 usable unselected passages gives no sample for that k (counted).

- train: `train.jsonl` (up to 5 passages a query, so it feeds Passage-5) and
  `train-raw-200.json` (raw v1.1 rows, up to 10 passages), deduplicated by
  normalised query text. In a raw row with several selected passages one is
  kept as the positive (seeded) and the others are never used as negatives; a
  row with none is skipped.
- test: `validation.jsonl`, the v1.1 validation split.
- A train query whose text, or any of whose passages, also appears in the test
  split is dropped (counted), so no test text is ever trained on.

Candidate ids are assigned here from the passage text (`p` + 12 hex digits of its
sha256). The files' `doc_id` spells the label (`..._pos_1`, `..._neg_3`): it is
never read, so it can reach neither a model nor an id.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from components.config import TaskConfig
from components.datasets.common import LoadContext, PreparedTask, draw_negatives, finish_task, normalise_text
from components.io import DataError, load_json, read_text
from components.schema import Candidate, RankingSample

TRAIN_FILES = ("train.jsonl", "train-raw-200.json")
TEST_FILE = "validation.jsonl"


@dataclass(frozen=True)
class Pool:
    """One query's passages: the selected one and the unselected ones (texts, in file order)."""

    qid: str
    query: str
    positive: str
    negatives: tuple[str, ...]


def passage_id(text: str) -> str:
    """The project's id of a passage: from its text only, never from the source's label-bearing doc_id.

    >>> passage_id("A passage.")
    'p694f7ec934dc'
    """
    return "p" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _text(value, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: expected a non-empty string, got {type(value).__name__}")
    return value


def read_candidate_rows(path: Path) -> list[Pool]:
    """`{query_id, query, candidates: [{text, label}]}` lines; exactly one label 1 each (file and line named)."""
    pools = []
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{where}: invalid JSON ({err.msg})") from err
        if not isinstance(row, dict) or not isinstance(row.get("candidates"), list):
            raise DataError(f"{where}: expected an object with 'query_id', 'query' and a 'candidates' list")
        positives, negatives = [], []
        for i, cand in enumerate(row["candidates"]):
            if not isinstance(cand, dict) or cand.get("label") not in (0, 1):
                raise DataError(f"{where}: candidates[{i}] needs 'text' and a 'label' of 0 or 1")
            text = _text(cand.get("text"), f"{where}: candidates[{i}].text")
            (positives if cand["label"] == 1 else negatives).append(text)
        if len(positives) != 1:
            raise DataError(f"{where}: expected exactly one candidate with label 1, found {len(positives)}")
        qid = str(row.get("query_id", "")).strip()
        if not qid:
            raise DataError(f"{where}: field 'query_id' is missing or blank")
        pools.append(Pool(qid, _text(row.get("query"), f"{where}: query"), positives[0], tuple(negatives)))
    return pools


def read_raw_rows(path: Path, ctx: LoadContext, dropped: Counter) -> list[Pool]:
    """Raw v1.1 rows: `{query_id, query, passages: {is_selected, passage_text}}` (entry index named on error)."""
    rows = load_json(path)
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON list of raw MS MARCO v1.1 rows")
    pools = []
    for i, row in enumerate(rows):
        where = f"{path}: entry {i}"
        passages = row.get("passages") if isinstance(row, dict) else None
        if not isinstance(passages, dict):
            raise DataError(f"{where}: expected an object with 'query_id', 'query' and 'passages'")
        selected, texts = passages.get("is_selected"), passages.get("passage_text")
        if not isinstance(selected, list) or not isinstance(texts, list) or len(selected) != len(texts):
            raise DataError(f"{where}: 'passages.is_selected' and 'passages.passage_text' must be lists of one length")
        texts = [_text(t, f"{where}: passages.passage_text[{j}]") for j, t in enumerate(texts)]
        chosen = [t for t, sel in zip(texts, selected) if sel == 1]
        if not chosen:
            dropped["raw row without a selected passage"] += 1
            continue
        qid = str(row.get("query_id"))
        positive = ctx.rng("positive", qid).choice(chosen)  # the others are relevant too: never negatives
        pools.append(Pool(qid, _text(row.get("query"), f"{where}: query"), positive,
                          tuple(t for t, sel in zip(texts, selected) if sel != 1)))
    return pools


def _dedupe(pools: list[Pool], dropped: Counter) -> list[Pool]:
    seen, out = set(), []
    for pool in pools:
        key = normalise_text(pool.query)
        if key in seen:
            dropped["train query repeated across the train files"] += 1
            continue
        seen.add(key)
        out.append(pool)
    return out


def _texts(pool: Pool) -> set[str]:
    return {normalise_text(t) for t in (pool.positive, *pool.negatives)}


def load_msmarco(cfg: TaskConfig, ctx: LoadContext) -> PreparedTask:
    folder = ctx.resolve(cfg.path, "msmarco-v1.1")
    k = cfg.n_candidates or 5
    dropped: Counter = Counter()
    test = read_candidate_rows(folder / TEST_FILE)
    train = _dedupe(read_candidate_rows(folder / TRAIN_FILES[0]) + read_raw_rows(folder / TRAIN_FILES[1], ctx, dropped),
                    dropped)
    test_queries = {normalise_text(p.query) for p in test}
    test_texts = set().union(*(_texts(p) for p in test))
    clean_train = []
    for pool in train:
        if normalise_text(pool.query) in test_queries or _texts(pool) & test_texts:
            dropped["train query sharing its text or a passage with the test split"] += 1
            continue
        clean_train.append(pool)
    assignment: dict[str, str] = {}
    samples = []
    for split, pools in (("train", clean_train), ("test", test)):
        for pool in pools:
            group = f"{split}:{pool.qid}"
            assignment[group] = split
            sample = _sample(pool, group, k, ctx)
            if sample is None:
                dropped[f"{split} query with fewer than {k - 1} distinct unselected passages"] += 1
                continue
            samples.append(sample)
    return finish_task(ctx.task, samples, assignment, cfg, ctx, dropped)


def _sample(pool: Pool, group: str, k: int, ctx: LoadContext) -> RankingSample | None:
    rng = ctx.rng("query", group)
    negatives = list(dict.fromkeys(pool.negatives))
    drawn = draw_negatives(negatives, k - 1, {pool.positive}, str, {normalise_text(pool.positive)}, rng)
    if drawn is None:
        return None
    texts = [pool.positive, *drawn]
    rng.shuffle(texts)
    ids = [passage_id(t) for t in texts]
    return RankingSample(
        sample_id=f"{ctx.task}:{group}",
        task=ctx.task,
        scenario="passage",
        query=pool.query.strip(),
        candidates=tuple(Candidate(i, t) for i, t in zip(ids, texts)),
        relevance={passage_id(pool.positive): 1.0},
        group=group,
        meta={"qid": pool.qid},
    )
