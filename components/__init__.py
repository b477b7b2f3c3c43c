"""r1-ranker domain library: importable, Prefect-free, tested on its own."""

__all__ = ["Reranker"]


def __getattr__(name: str):
    """`from components import Reranker` without importing torch or MLflow for every other import."""
    if name == "Reranker":
        from components.reranker import Reranker

        return Reranker
    raise AttributeError(f"module 'components' has no attribute {name!r}")
