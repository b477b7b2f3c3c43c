"""`r1ranker serve`: the reranker over HTTP in the shape Cohere, Jina, vLLM and Infinity share.

    POST /rerank (also /v1/rerank)
      {"query": str, "documents": [str | {"text": str}], "top_n"?: int, "return_documents"?: bool}
    -> {"id", "model", "results": [{"index", "relevance_score", "document"?: {"text"}}], "usage": {...}}
    GET /health  -> {"status": "ok", "model": ...}
    GET /metrics -> Prometheus text: requests by route and status, latency and batch-size histograms

The body is parsed here, not by a schema library, so every 4xx names the field the way the CLI does (413 for
a body over the limit, 400 for JSON that does not parse, 422 for a field). Requests that arrive together are
ranked in one call (`Batcher`: up to `max_batch` requests gathered for at most `batch_window_ms`), which
listwise modes batch on the model; the model runs on one worker thread, so calls never overlap.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import Request  # at module level: FastAPI resolves the (string) annotations of routes here

from components.requests import MAX_DOCUMENT_CHARS, MAX_DOCUMENTS, RequestError, RerankRequest
from components.reranker import Reranker, results


@dataclass(frozen=True)
class ServerLimits:
    max_body_bytes: int = 8 * 1024 * 1024
    max_documents: int = MAX_DOCUMENTS
    max_chars: int = MAX_DOCUMENT_CHARS
    max_batch: int = 8
    batch_window_ms: float = 5.0


class Batcher:
    """Gathers requests that arrive together and ranks them in one `rank_requests` call on one thread."""

    def __init__(self, reranker: Reranker, max_batch: int, window_s: float, on_batch=None):
        self.reranker, self.max_batch, self.window_s, self.on_batch = reranker, max_batch, window_s, on_batch
        self.queue: asyncio.Queue | None = None
        self.worker: asyncio.Task | None = None

    def start(self) -> None:
        self.queue = asyncio.Queue()
        self.worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    async def submit(self, request: RerankRequest):
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((request, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = loop.time() + self.window_s
            while len(batch) < self.max_batch:
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), max(deadline - loop.time(), 0)))
                except TimeoutError:
                    break
            if self.on_batch:
                self.on_batch(len(batch))
            try:  # one thread for the model: the event loop keeps answering /health and /metrics meanwhile
                rankings = await asyncio.to_thread(self.reranker.rank_requests, [r for r, _ in batch])
            except Exception as err:  # noqa: BLE001 - every waiting request gets the error, the worker lives on
                for _, future in batch:
                    if not future.done():
                        future.set_exception(err)
                continue
            for (_, future), ranking in zip(batch, rankings):
                if not future.done():
                    future.set_result(ranking)


def create_app(reranker: Reranker, limits: ServerLimits = ServerLimits(), model_name: str | None = None):
    """The ASGI app (FastAPI on Starlette); `uvicorn.run(create_app(...))` serves it."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, Response
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

    registry = CollectorRegistry()  # per app: two apps in one process never share counters
    requests_total = Counter("r1ranker_requests_total", "HTTP requests by route and status", ["route", "status"],
                             registry=registry)
    latency = Histogram("r1ranker_request_seconds", "Latency of /rerank requests", ["route"], registry=registry,
                        buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
    batch_size = Histogram("r1ranker_batch_size", "Requests ranked in one model call", registry=registry,
                           buckets=(1, 2, 4, 8, 16, 32))
    batcher = Batcher(reranker, limits.max_batch, limits.batch_window_ms / 1000, batch_size.observe)
    name = model_name or reranker.name
    counter = iter(range(1, 1 << 62))

    @asynccontextmanager
    async def lifespan(app):
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="r1-ranker", lifespan=lifespan)

    def answer(route: str, status: int, body: dict[str, Any]):
        requests_total.labels(route, str(status)).inc()
        return JSONResponse(body, status_code=status)

    async def rerank(request: Request, route: str):
        started = time.perf_counter()
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limits.max_body_bytes:
            return answer(route, 413, {"detail": f"body of {declared} bytes, the limit is {limits.max_body_bytes}"})
        raw = b""
        async for chunk in request.stream():  # counted as it arrives: a body without Content-Length is bounded too
            raw += chunk
            if len(raw) > limits.max_body_bytes:
                return answer(route, 413, {"detail": f"body over {limits.max_body_bytes} bytes, the limit is {limits.max_body_bytes}"})
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            return answer(route, 400, {"detail": "the body is not valid JSON"})
        try:
            req, top_n, with_docs = parse_body(body, limits, f"r{next(counter)}")
            ranking = await batcher.submit(req)
            pairs = results(req, ranking, top_n)
        except RequestError as err:
            return answer(route, 422, {"detail": str(err)})
        out = [{"index": i, "relevance_score": s, **({"document": {"text": req.documents[i].text}} if with_docs else {})}
               for i, s in pairs]
        tokens = sum(st.tokens_in for st in ranking.steps)
        latency.labels(route).observe(time.perf_counter() - started)
        return answer(route, 200, {"id": str(uuid.uuid4()), "model": name, "results": out,
                                   "usage": {"total_tokens": tokens, "documents": len(req.documents)}})

    @app.post("/rerank")
    async def rerank_route(request: Request):
        return await rerank(request, "/rerank")

    @app.post("/v1/rerank")
    async def rerank_v1(request: Request):
        return await rerank(request, "/v1/rerank")

    @app.get("/health")
    async def health():
        return answer("/health", 200, {"status": "ok", "model": name})

    @app.get("/metrics")
    async def metrics():
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def parse_body(body: Any, limits: ServerLimits, request_id: str) -> tuple[RerankRequest, int | None, bool]:
    """The Cohere/Jina request: (the request, top_n, return_documents), or a `RequestError` naming the field."""
    if not isinstance(body, dict):
        raise RequestError("body: expected a JSON object with 'query' and 'documents'")
    top_n, with_docs = body.get("top_n"), body.get("return_documents", False)
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1):
        raise RequestError("field 'top_n': expected a positive integer")
    if not isinstance(with_docs, bool):
        raise RequestError("field 'return_documents': expected true or false")
    record = {"query": body.get("query"), "documents": body.get("documents"), "id": request_id,
              "scenario": body.get("scenario", "passage")}
    request = RerankRequest.from_record(record, "body", limits.max_documents, limits.max_chars)
    return request, top_n, with_docs


def serve(reranker: Reranker, host: str = "127.0.0.1", port: int = 8080, limits: ServerLimits = ServerLimits(),
          model_name: str | None = None) -> None:
    import uvicorn

    uvicorn.run(create_app(reranker, limits, model_name), host=host, port=port, log_level="info")
