"""The `Ranker` protocol and what LLM rankers share: config, skips, step traces."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from components.config.sections import window_problem
from components.prompts import ROLES, PromptConfig, chat_head
from components.schema import Ranking, RankingSample
from components.scorers import resolve_scorers

MODES = ("reasoning", "fast", "score")
LLM_RANKERS = ROLES  # the LLM rankers' names are the prompt roles
Progress = Callable[[int, int], None]  # (model calls done in this update, samples finished in this update)


class Ranker(Protocol):
    name: str

    def rank(self, samples: Sequence[RankingSample], progress: Progress | None = None) -> list[Ranking]:
        """One ranking per sample, in order; a sample that cannot be ranked gets `skipped` set."""
        ...


@dataclass(frozen=True)
class LLMRankerConfig:
    mode: str = "fast"  # "fast": one forward pass per step, label read from next-token scores
    max_new_tokens: int = 256  # reasoning mode
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    batch_size: int = 8
    seed: int = 0
    repair: bool = False  # fuzzy-match answers to candidate texts (counted)
    # fast mode, one prompt at a time with the KV cache of the shared prefix reused across a sample's
    # eliminations (no pad tokens either). None: on when the model is on CPU, where that beats padded
    # batches (bench/eval_throughput.py); on CUDA, padded batches keep the GPU busy.
    prefix_cache: bool | None = None
    prompt: PromptConfig = field(default_factory=PromptConfig)
    # score mode: scorer per scenario or task name (components.scorers.DEFAULT_SCORERS fills the rest)
    scorers: dict[str, str] = field(default_factory=dict)
    # listwise samples longer than `window` are ranked in sliding windows, bottom up, moving by `stride`
    # (`components.rankers.window`); None/0: no window (a listwise ranker then sees at most 26 candidates)
    window: int | None = 20
    stride: int = 10

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; valid modes: {list(MODES)}")
        object.__setattr__(self, "scorers", resolve_scorers(self.scorers))
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        problem = window_problem(self.window, self.stride)
        if problem:
            raise ValueError(problem)


class LLMRanker:
    """What DRanker and IRanker share: the model backend, the config, the prompt settings of the mode, a score memo."""

    name = "llm"

    def __init__(self, backend, config: LLMRankerConfig = LLMRankerConfig()):
        self.backend = backend
        self.config = config
        self.prompt_cfg = config.prompt.for_mode(config.mode)
        self.score_memo: dict = {}  # context-free scores by (scorer, query, text): the weights are frozen in a ranker


def uses_prefix_cache(config: LLMRankerConfig, backend) -> bool:
    """Whether a fast-mode ranker scores prompts one at a time through `label_logprobs_cached`."""
    if config.mode != "fast" or not hasattr(backend, "label_logprobs_cached"):
        return False
    if config.prefix_cache is not None:
        return config.prefix_cache
    return str(getattr(backend, "device", "cpu")).startswith("cpu")


def head_cache(backend, prompt: PromptConfig):
    """The KV cache of the chat head every prompt starts with, computed once per `rank()` call."""
    return backend.prefix_cache(chat_head(backend.tok, prompt))


def skipped(sample: RankingSample, reason: str) -> Ranking:
    return Ranking(sample_id=sample.sample_id, order=(), steps=(), skipped=reason)


def batches(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]
