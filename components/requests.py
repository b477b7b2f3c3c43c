"""What a caller sends to be reranked: a query and documents, no labels.

Why separate from `RankingSample`: the evaluation contract needs gold grades, a group and a task; a
service, `r1ranker rank --query` or a first-stage run has none of them. A `RerankRequest` is checked with
the same kind of clear errors (field and row named, values never echoed at length) and becomes a sample
only inside the ranker, with a placeholder grade that no ranker reads (rankers see query and texts only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components.schema import SCENARIOS, Candidate, RankingSample

MAX_DOCUMENTS = 1000  # per request (the contract allows more; a request this large is a batch job: `rerank`)
MAX_DOCUMENT_CHARS = 20_000


class RequestError(ValueError):
    """A request that cannot be ranked; the message names the field (and row)."""


@dataclass(frozen=True)
class RerankRequest:
    query: str
    documents: tuple[Candidate, ...]  # ids the caller gave, else the position ("0", "1", ...)
    scenario: str = "passage"
    request_id: str = "q0"

    def to_sample(self) -> RankingSample:
        """The ranker's input. The contract wants a gold grade: the first document gets a placeholder one."""
        return RankingSample(self.request_id, "rerank", self.scenario, self.query, self.documents,
                             {self.documents[0].id: 1.0}, self.request_id)

    @classmethod
    def from_record(cls, record: Any, where: str = "request", max_documents: int = MAX_DOCUMENTS,
                    max_chars: int = MAX_DOCUMENT_CHARS) -> RerankRequest:
        """From `{"query", "documents": [str | {"id"?, "text"}], "scenario"?, "id"?}`, or a `RequestError`.

        >>> RerankRequest.from_record({"query": "q", "documents": ["a", {"id": "d9", "text": "b"}]}).documents
        (Candidate(id='0', text='a'), Candidate(id='d9', text='b'))
        >>> RerankRequest.from_record({"query": "q", "documents": ["a", None]})
        Traceback (most recent call last):
        ...
        components.requests.RequestError: request, field 'documents[1]': expected a string or an object with 'text', got null
        """
        if not isinstance(record, Mapping):
            raise RequestError(f"{where}: expected a JSON object with 'query' and 'documents'")
        query = record.get("query")
        if not isinstance(query, str) or not query.strip():
            raise RequestError(f"{where}, field 'query': expected a non-empty string, got {_kind(query)}")
        if len(query) > max_chars:
            raise RequestError(f"{where}, field 'query': {len(query)} characters, the limit is {max_chars}")
        scenario = record.get("scenario", "passage")
        if scenario not in SCENARIOS:
            raise RequestError(f"{where}, field 'scenario': expected one of {list(SCENARIOS)}")
        return cls(query.strip(), documents(record.get("documents"), where, max_documents, max_chars), scenario,
                   str(record.get("id", "q0")))


def documents(value: Any, where: str, max_documents: int = MAX_DOCUMENTS,
              max_chars: int = MAX_DOCUMENT_CHARS, name: str = "documents") -> tuple[Candidate, ...]:
    """Documents as strings or `{"id"?, "text"}` objects, checked one by one (null, numbers, empties refused);
    `name` is the field the messages name (MLflow's /invocations calls them `candidates`)."""
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise RequestError(f"{where}, field '{name}': expected a list of strings or {{\"text\"}} objects, "
                           f"got {_kind(value)}")
    if not value:
        raise RequestError(f"{where}, field '{name}': the list is empty")
    if len(value) > max_documents:
        raise RequestError(f"{where}, field '{name}': {len(value)} documents, the limit is {max_documents}")
    out, seen = [], set()
    for i, doc in enumerate(value):
        field = f"{where}, field '{name}[{i}]'"
        if isinstance(doc, Mapping):
            text, doc_id = doc.get("text"), doc.get("id", str(i))
            if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool):
                raise RequestError(f"{field}.id: expected a string, got {_kind(doc_id)}")
            doc_id = str(doc_id)
        else:
            text, doc_id = doc, str(i)
        if not isinstance(text, str):
            raise RequestError(f"{field}: expected a string or an object with 'text', got {_kind(text)}")
        if not text.strip():
            raise RequestError(f"{field}: empty text")
        if len(text) > max_chars:
            raise RequestError(f"{field}: {len(text)} characters, the limit is {max_chars}")
        if doc_id in seen:
            raise RequestError(f"{field}.id: {doc_id[:80]!r} appears twice")
        seen.add(doc_id)
        out.append(Candidate(doc_id, text))
    return tuple(out)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
