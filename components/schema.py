"""The one data model that flows through the project.

A `RankingSample` is the bring-your-own-dataset contract (see docs/data-format.md):
a query, a list of candidates with unique ids, graded relevance per candidate id,
the group used as the split unit, and free `meta`. Gold candidates are those with
the highest grade, provided that grade is > 0. `record_problems` is the contract,
written once: every reader (`components.io.read_samples`), `validate`, serving
and samples built in code check it.

Records are frozen dataclasses so that a sample cannot be mutated between the
stage that produced it and the stage that consumes it. `from_dict` raises
`SampleError` listing every field at fault; file readers add the file and line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

SCENARIOS = ("rec", "router", "passage", "custom")
REQUIRED_FIELDS = ("sample_id", "task", "scenario", "query", "candidates", "relevance", "group")
OPTIONAL_FIELDS = ("meta",)
# The contract's ceiling on candidates per sample, a bound on memory for every reader; what a ranker can rank
# at once is its own capacity (`components.rankers.window`): listwise prompts label candidates A..Z
# (`LISTWISE_CAPACITY`) and rank longer lists in sliding windows, context-free scorers rank any number.
MAX_CANDIDATES = 10_000
LISTWISE_CAPACITY = 26
ROUTING_FIELDS = ("perf", "cost", "score")  # meta.routing[candidate id] for router samples (routing utility)


class SampleError(ValueError):
    """A record breaks the RankingSample contract; `problems` holds one line per violated field."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def routing_problems(routing: Any, candidate_ids: list[str]) -> list[str]:
    """What is wrong with a `meta.routing` mapping (every candidate needs finite perf, cost and score)."""
    if not isinstance(routing, dict):
        return [f"field 'meta.routing' must be an object of candidate id -> {{{', '.join(ROUTING_FIELDS)}}}"]
    problems = []
    for cid in candidate_ids:
        entry = routing.get(cid)
        if not isinstance(entry, dict):
            problems.append(f"field 'meta.routing': no entry for candidate {cid!r}")
            continue
        bad = [f for f in ROUTING_FIELDS if not (_is_number(entry.get(f)) and math.isfinite(entry[f]))]
        if bad:
            problems.append(f"field 'meta.routing.{cid}': {bad} must be finite numbers")
    return problems


def record_problems(record: Any) -> list[str]:
    """Every way a decoded JSON record breaks the contract, one line per field (empty: the record is valid).

    >>> record_problems({"sample_id": " ", "task": "t", "scenario": "web", "query": "q", "group": "g",
    ...     "candidates": [{"id": "a", "text": "A"}], "relevance": {"a": float("inf")}})
    ["field 'sample_id' is blank", "field 'scenario': 'web' is not one of rec, router, passage, custom", "field 'relevance.a': grade inf is not a finite number >= 0"]
    """
    if not isinstance(record, dict):
        return [f"expected a JSON object, got {type(record).__name__}"]
    problems = []
    missing = [k for k in REQUIRED_FIELDS if k not in record]
    if missing:
        problems.append(f"missing field(s) {missing}")
    unknown = sorted(set(record) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        problems.append(f"unknown field(s) {unknown}; allowed: {list(REQUIRED_FIELDS + OPTIONAL_FIELDS)}")
    for key in ("sample_id", "task", "scenario", "query", "group"):
        if key not in record:
            continue
        if not isinstance(record[key], str):
            problems.append(f"field {key!r} must be a string, got {type(record[key]).__name__}")
        elif key != "group" and not record[key].strip():
            problems.append(f"field {key!r} is blank")
    if isinstance(record.get("scenario"), str) and record["scenario"].strip() and record["scenario"] not in SCENARIOS:
        problems.append(f"field 'scenario': {record['scenario']!r} is not one of {', '.join(SCENARIOS)}")
    ids: list[str] = []
    cands = record.get("candidates")
    if "candidates" in record and not isinstance(cands, list):
        problems.append("field 'candidates' must be a list of {id, text} objects")
    elif isinstance(cands, list):
        if not cands:
            problems.append("field 'candidates' is empty")
        if len(cands) > MAX_CANDIDATES:
            problems.append(f"field 'candidates': {len(cands)} candidates, the limit is {MAX_CANDIDATES}")
        for i, cand in enumerate(cands):
            where = f"field 'candidates[{i}]'"
            if not isinstance(cand, dict) or set(cand) != {"id", "text"}:
                problems.append(f"{where} must be an object with exactly 'id' and 'text'")
                continue
            for key in ("id", "text"):
                if not isinstance(cand[key], str):
                    problems.append(f"{where}.{key} must be a string, got {type(cand[key]).__name__}")
                elif not cand[key].strip():
                    problems.append(f"{where}.{key} is blank")
            if isinstance(cand["id"], str):
                ids.append(cand["id"])
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            problems.append(f"field 'candidates': duplicate ids {dupes}")
    rel = record.get("relevance")
    if "relevance" in record and not isinstance(rel, dict):
        problems.append("field 'relevance' must map candidate ids to grades")
    elif isinstance(rel, dict):
        bad_grades = [cid for cid, g in rel.items() if not (_is_number(g) and math.isfinite(g) and g >= 0)]
        problems += [f"field 'relevance.{cid}': grade {rel[cid]!r} is not a finite number >= 0" for cid in bad_grades]
        if isinstance(cands, list) and not bad_grades:
            unknown_ids = sorted(set(rel) - set(ids))
            if unknown_ids:
                problems.append(f"field 'relevance' names ids that are not candidates: {unknown_ids}")
            if not any(g > 0 for c, g in rel.items() if c in ids) and not unknown_ids:
                problems.append("field 'relevance': no gold candidate (no candidate has a grade > 0)")
    meta = record.get("meta", {})
    if not isinstance(meta, dict):
        problems.append("field 'meta' must be an object")
    else:
        if "routing" in meta and ids:
            problems.extend(routing_problems(meta["routing"], ids))
        if "qrels" in meta:
            problems.extend(qrels_problems(meta["qrels"], rel if isinstance(rel, dict) else {}))
        grade = meta.get("relevant_grade")
        if "relevant_grade" in meta and not (_is_number(grade) and math.isfinite(grade) and grade > 0):
            problems.append(f"field 'meta.relevant_grade' must be a finite number > 0, got {grade!r}")
    return problems


def qrels_problems(qrels: Any, relevance: dict) -> list[str]:
    """What is wrong with `meta.qrels`: every judged passage of the query, candidate or not, -> grade.

    nDCG's ideal ranking comes from it (trec_eval's convention), so it must agree with `relevance`
    on every candidate it judges.
    """
    if not isinstance(qrels, dict) or not qrels:
        return ["field 'meta.qrels' must be a non-empty object of passage id -> grade"]
    bad = [d for d, g in qrels.items() if not (_is_number(g) and math.isfinite(g) and g >= 0)]
    if bad:
        return [f"field 'meta.qrels.{bad[0]}': grade {qrels[bad[0]]!r} is not a finite number >= 0"
                + (f" ({len(bad) - 1} more)" if len(bad) > 1 else "")]
    clash = sorted(c for c, g in relevance.items() if _is_number(g) and g > 0 and qrels.get(c) != g)
    if clash:
        return [f"field 'meta.qrels' disagrees with 'relevance' on candidate(s) {clash[:5]}"]
    return []


@dataclass(frozen=True)
class Candidate:
    id: str
    text: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "text": self.text}


@dataclass(frozen=True)
class RankingSample:
    sample_id: str
    task: str
    scenario: str
    query: str
    candidates: tuple[Candidate, ...]
    relevance: dict[str, float]
    group: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Samples built in code (datasets, tests) meet the same contract as samples read from files.
        problems = record_problems(self.to_dict())
        if problems:
            raise SampleError([f"sample {self.sample_id!r}: {p}" for p in problems])

    @property
    def candidate_ids(self) -> list[str]:
        return [c.id for c in self.candidates]

    @property
    def gold_ids(self) -> list[str]:
        """Candidates with the highest grade, when that grade is > 0."""
        top = max(self.relevance.values(), default=0.0)
        if top <= 0:
            return []
        return [cid for cid in self.candidate_ids if self.relevance.get(cid, 0.0) == top]

    @property
    def routing(self) -> dict[str, dict[str, float]] | None:
        """Per-candidate perf/cost/score when the sample carries them (router samples may not)."""
        routing = self.meta.get("routing")
        return routing if isinstance(routing, dict) and routing else None

    @property
    def qrels(self) -> dict[str, float] | None:
        """Every judged passage of the query (`meta.qrels`), candidates or not; None when the sample has none."""
        qrels = self.meta.get("qrels")
        return {str(k): float(v) for k, v in qrels.items()} if isinstance(qrels, dict) and qrels else None

    def window(self, ids: Sequence[str]) -> "RankingSample":
        """This sample listing only `ids`, in that order, for a ranker that sees a window of a long list.

        Not checked against the contract: a window may hold no relevant candidate, and nobody scores it
        (rankers never read relevance); the caller assembles the full ranking.
        """
        by_id = {c.id: c for c in self.candidates}
        view = object.__new__(RankingSample)
        for name, value in (("sample_id", self.sample_id), ("task", self.task), ("scenario", self.scenario),
                            ("query", self.query), ("candidates", tuple(by_id[i] for i in ids)),
                            ("relevance", {i: g for i, g in self.relevance.items() if i in set(ids)}),
                            ("group", self.group), ("meta", self.meta)):
            object.__setattr__(view, name, value)
        return view

    def grade(self, candidate_id: str) -> float:
        return float(self.relevance.get(candidate_id, 0.0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample_id": self.sample_id,
            "task": self.task,
            "scenario": self.scenario,
            "query": self.query,
            "candidates": [c.to_dict() for c in self.candidates],
            "relevance": dict(self.relevance),
            "group": self.group,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, record: Any) -> "RankingSample":
        """Build a sample from a decoded JSON object; `SampleError` lists every violated field.

        >>> s = RankingSample.from_dict({"sample_id": "s1", "task": "t", "scenario": "custom",
        ...     "query": "q", "candidates": [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}],
        ...     "relevance": {"b": 1}, "group": "g"})
        >>> s.gold_ids
        ['b']
        """
        problems = record_problems(record)
        if problems:
            raise SampleError(problems)
        return cls(
            sample_id=record["sample_id"],
            task=record["task"],
            scenario=record["scenario"],
            query=record["query"],
            candidates=tuple(Candidate(c["id"], c["text"]) for c in record["candidates"]),
            relevance={str(k): float(v) for k, v in record["relevance"].items()},
            group=record["group"],
            meta=record.get("meta", {}),
        )


@dataclass(frozen=True)
class RankingStep:
    """One model call of a ranker: what it saw, said, and what was parsed."""

    prompt_hash: str
    completion: str
    parsed: list[str]
    status: str
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0
    tokens_cached: int = 0  # prompt tokens whose KV cache was reused from the previous step (not recomputed)


@dataclass(frozen=True)
class Ranking:
    """A ranker's output for one sample: candidate ids best first, plus its trace.

    `repaired` is set when the ranker had to fill in for the model (an invalid
    elimination replaced, a partial ranking completed); `skipped` holds the
    reason when the sample could not be ranked at all (then `order` is empty).
    """

    sample_id: str
    order: tuple[str, ...]
    steps: tuple[RankingStep, ...] = ()
    repaired: bool = False
    skipped: str | None = None
    scores: tuple[float, ...] | None = None  # the ranker's own, aligned with `order`; None: see relevance_scores

    def __post_init__(self) -> None:
        if self.scores is not None and len(self.scores) != len(self.order):
            raise ValueError(f"ranking of {self.sample_id!r}: {len(self.scores)} scores for {len(self.order)} candidates")

    @property
    def relevance_scores(self) -> tuple[float, ...]:
        """One score per candidate of `order`, higher is better: the ranker's own (score mode's scorer, BM25,
        dense), else derived from the rank for listwise rankers: (n - i) / n for the i-th, 1 for the top.

        >>> Ranking("s", ("b", "a", "c")).relevance_scores
        (1.0, 0.6666666666666666, 0.3333333333333333)
        """
        if self.scores is not None:
            return self.scores
        n = len(self.order)
        return tuple((n - i) / n for i in range(n))

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample_id": self.sample_id,
            "order": list(self.order),
            "scores": list(self.relevance_scores),
            "scores_from": "ranker" if self.scores is not None else "rank",
            "repaired": self.repaired,
            "skipped": self.skipped,
            "steps": [s.__dict__ for s in self.steps],
        }
