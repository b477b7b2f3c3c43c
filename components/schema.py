"""The one data model that flows through the project.

A `RankingSample` is the bring-your-own-dataset contract (see docs/data-format.md):
a query, a list of candidates with unique ids, graded relevance per candidate id,
the group used as the split unit, and free `meta`. Gold candidates are those with
the highest grade, provided that grade is > 0.

Records are frozen dataclasses so that a sample cannot be mutated between the
stage that produced it and the stage that consumes it. `from_dict` checks the
contract and raises `SampleError` naming the field at fault; file readers add
the file and line (see `components.io`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCENARIOS = ("rec", "router", "passage", "custom")


class SampleError(ValueError):
    """A record breaks the RankingSample contract."""


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
        where = f"sample {self.sample_id!r}"
        if self.scenario not in SCENARIOS:
            raise SampleError(f"{where}: scenario {self.scenario!r} is not one of {', '.join(SCENARIOS)}")
        ids = [c.id for c in self.candidates]
        if not ids:
            raise SampleError(f"{where}: 'candidates' is empty")
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise SampleError(f"{where}: duplicate candidate ids {dupes}")
        empty = [c.id for c in self.candidates if not c.text.strip()]
        if empty:
            raise SampleError(f"{where}: empty text for candidate ids {empty}")
        unknown = sorted(set(self.relevance) - set(ids))
        if unknown:
            raise SampleError(f"{where}: 'relevance' names ids that are not candidates: {unknown}")
        if not self.gold_ids:
            raise SampleError(f"{where}: no gold candidate (no candidate has a relevance grade > 0)")

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
        """Build a sample from a decoded JSON object, checking every field.

        >>> s = RankingSample.from_dict({"sample_id": "s1", "task": "t", "scenario": "custom",
        ...     "query": "q", "candidates": [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}],
        ...     "relevance": {"b": 1}, "group": "g"})
        >>> s.gold_ids
        ['b']
        """
        if not isinstance(record, dict):
            raise SampleError(f"expected a JSON object, got {type(record).__name__}")
        required = ("sample_id", "task", "scenario", "query", "candidates", "relevance", "group")
        missing = [k for k in required if k not in record]
        if missing:
            raise SampleError(f"missing field(s) {missing}")
        unknown = sorted(set(record) - set(required) - {"meta"})
        if unknown:
            raise SampleError(f"unknown field(s) {unknown}; allowed: {list(required) + ['meta']}")
        for key in ("sample_id", "task", "scenario", "query", "group"):
            if not isinstance(record[key], str):
                raise SampleError(f"field {key!r} must be a string, got {type(record[key]).__name__}")
        if not isinstance(record["candidates"], list):
            raise SampleError("field 'candidates' must be a list of {id, text} objects")
        candidates = []
        for i, cand in enumerate(record["candidates"]):
            if not isinstance(cand, dict) or set(cand) != {"id", "text"}:
                raise SampleError(f"candidates[{i}] must be an object with exactly 'id' and 'text'")
            if not isinstance(cand["id"], str) or not isinstance(cand["text"], str):
                raise SampleError(f"candidates[{i}]: 'id' and 'text' must be strings")
            candidates.append(Candidate(cand["id"], cand["text"]))
        relevance = record["relevance"]
        if not isinstance(relevance, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in relevance.values()
        ):
            raise SampleError("field 'relevance' must map candidate ids to numeric grades")
        meta = record.get("meta", {})
        if not isinstance(meta, dict):
            raise SampleError("field 'meta' must be an object")
        return cls(
            sample_id=record["sample_id"],
            task=record["task"],
            scenario=record["scenario"],
            query=record["query"],
            candidates=tuple(candidates),
            relevance={str(k): float(v) for k, v in relevance.items()},
            group=record["group"],
            meta=meta,
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample_id": self.sample_id,
            "order": list(self.order),
            "repaired": self.repaired,
            "skipped": self.skipped,
            "steps": [s.__dict__ for s in self.steps],
        }
