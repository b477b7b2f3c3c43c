"""Sliding-window ranking: listwise rankers over lists longer than they can see at once (as rank_llm does it).

Listwise prompts label candidates A..Z, so a listwise ranker sees at most
`LISTWISE_CAPACITY` (26) candidates at once. `SlidingWindowRanker(inner, window, stride)`
ranks a longer list in windows of `window` candidates, moving up by `stride`:

    [n - window, n), [n - window - stride, n - stride), ..., [0, window)

Each window's candidates, in the current order, are ranked by the inner ranker
(`RankingSample.window(ids)`), and that segment of the list is replaced by the
inner ranking. The last window clamps to start 0.

Why bottom-up: the first-stage list puts most relevant passages near the top, but
the best one may sit near the bottom. Each window can carry a candidate up by up
to `window - stride` places into the next window (they overlap by that much), so
a single pass from the bottom can bring the best candidate all the way to the
top; top-down passes could only push candidates down. Cost per sample of n > window
candidates: ceil((n - window) / stride) + 1 windows (n = 100, 20/10: 9 windows).

Windows are batched across samples: pass t ranks the t-th window of every sample
that still has one in one `inner.rank` call.

Whether a sample needs a window (`needs_window`) depends on whether the ranker
sees the list: modes "fast" and "reasoning" do, and so does "score" mode with a
scorer that is not context free ("pointer"); context-free scorers
(query-likelihood, candidate-likelihood) score each candidate alone and rank any
number, as do the non-LLM baselines. `check_capacity` fails before any model is
loaded when a sample is longer than the ranker can rank and no window is set.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from components.config.sections import window_problem
from components.prompts import ranker_name
from components.rankers.base import LLM_RANKERS, LLMRankerConfig, Progress
from components.schema import LISTWISE_CAPACITY, Ranking, RankingSample
from components.scorers import get_scorer, resolve_scorers, scorer_name

LISTWISE_MODES = ("fast", "reasoning")
DEFAULT_WINDOW, DEFAULT_STRIDE = 20, 10


class CapacityError(ValueError):
    """A sample is longer than the ranker can rank at once and no sliding window is set (or the window is invalid)."""


def window_cost(n: int, window: int, stride: int) -> int:
    """Inner-ranker windows one sample of n candidates takes (1 when it fits in one window)."""
    return 1 if n <= window else math.ceil((n - window) / stride) + 1


def window_starts(n: int, window: int, stride: int) -> list[int]:
    """Start positions of the windows, bottom first: n - window, n - window - stride, ..., 0."""
    if n <= window:
        return [0]
    starts, s = [], n - window
    while s > 0:
        starts.append(s)
        s -= stride
    return starts + [0]


def is_listwise(sample: RankingSample, mode: str | None, scorers: Mapping[str, str] | None) -> bool:
    """Whether a ranker in `mode` sees the sample's candidates together (and so needs labels A..Z)."""
    if mode in LISTWISE_MODES:
        return True
    if mode == "score":
        return not get_scorer(scorer_name(sample, resolve_scorers(scorers))).context_free
    return False  # None: a non-LLM ranker


def needs_window(sample: RankingSample, mode: str | None, scorers: Mapping[str, str] | None,
                 window: int = LISTWISE_CAPACITY) -> bool:
    """True when the ranker sees the list (listwise for it) and the sample has more than `window` candidates."""
    return len(sample.candidates) > window and is_listwise(sample, mode, scorers)


class SlidingWindowRanker:
    """Wraps a ranker: samples longer than `window` (and listwise for it) are ranked in bottom-up windows.

    Everything else (`name`, `backend`, `config`, `identity`, ...) is the inner ranker's: reads
    fall through to it and so do writes, so `wrapper.identity = ...` sets the inner ranker's.
    An inner ranker without a `config` is taken to be listwise.
    """

    _OWN = ("inner", "window", "stride")

    def __init__(self, inner, window: int = DEFAULT_WINDOW, stride: int = DEFAULT_STRIDE):
        problem = window_problem(window, stride) if window else "window must be set (>= 2) for a sliding-window ranker"
        if problem:
            raise CapacityError(problem)
        object.__setattr__(self, "inner", inner)
        object.__setattr__(self, "window", window)
        object.__setattr__(self, "stride", stride)

    def __getattr__(self, name):  # only called for attributes the wrapper does not have
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __setattr__(self, name, value):
        if name in self._OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self.inner, name, value)

    def __repr__(self) -> str:
        return f"SlidingWindowRanker({self.inner!r}, window={self.window}, stride={self.stride})"

    def _needs(self, sample: RankingSample) -> bool:
        config = getattr(self.inner, "config", None)
        if config is None:
            return len(sample.candidates) > self.window
        return needs_window(sample, config.mode, getattr(config, "scorers", None), self.window)

    def rank(self, samples: Sequence[RankingSample], progress: Progress | None = None) -> list[Ranking]:
        samples = list(samples)
        long = [i for i, s in enumerate(samples) if self._needs(s)]
        if not long:
            return self.inner.rank(samples, progress=progress)
        results: list[Ranking | None] = [None] * len(samples)
        short = [i for i in range(len(samples)) if i not in set(long)]
        if short:
            for i, r in zip(short, self.inner.rank([samples[i] for i in short], progress=progress)):
                results[i] = r
        for i, r in zip(long, self._rank_windows([samples[i] for i in long], progress)):
            results[i] = r
        return results  # type: ignore[return-value]

    def _rank_windows(self, samples: list[RankingSample], progress: Progress | None) -> list[Ranking]:
        def calls_only(calls: int, finished: int) -> None:  # inner samples are windows, not samples
            if progress and calls:
                progress(calls, 0)

        orders = [list(s.candidate_ids) for s in samples]
        starts = [window_starts(len(o), self.window, self.stride) for o in orders]
        steps: list[list] = [[] for _ in samples]
        repaired = [False] * len(samples)
        skipped: list[str | None] = [None] * len(samples)
        for t in range(max(len(st) for st in starts)):
            active = [k for k in range(len(samples)) if skipped[k] is None and t < len(starts[k])]
            if not active:
                break
            spans = {k: (starts[k][t], starts[k][t] + self.window) for k in active}
            views = [samples[k].window(orders[k][slice(*spans[k])]) for k in active]
            rankings = self.inner.rank(views, progress=calls_only if progress else None)
            for k, view, r in zip(active, views, rankings):
                lo, hi = spans[k]
                steps[k].extend(r.steps)
                repaired[k] = repaired[k] or r.repaired
                if r.skipped is not None:  # the inner reason as it is: skips are counted by their reason
                    skipped[k] = r.skipped
                elif sorted(r.order) != sorted(view.candidate_ids):
                    skipped[k] = f"window: ranking of [{lo}, {hi}) is not a permutation of its candidates"
                else:
                    orders[k][lo:hi] = r.order
                if progress and (skipped[k] is not None or t == len(starts[k]) - 1):
                    progress(0, 1)
        return [Ranking(sample_id=s.sample_id, order=() if skipped[k] else tuple(orders[k]), steps=tuple(steps[k]),
                        repaired=repaired[k], skipped=skipped[k]) for k, s in enumerate(samples)]


def check_capacity(samples_by_task: Mapping[str, Sequence[RankingSample]], ranker: str, mode: str | None,
                   scorers: Mapping[str, str] | None, window: int | None, stride: int | None = None) -> None:
    """Raise CapacityError, before any model is loaded, when a sample is longer than `ranker` can rank.

    Listwise rankers (modes fast/reasoning, score mode with a scorer that is not context free) see at most
    `LISTWISE_CAPACITY` candidates at once; with a `window` they rank any number. Context-free score mode
    and the non-LLM rankers have no limit beyond the sample contract's `MAX_CANDIDATES`. An invalid
    window/stride raises too (`stride` None: not checked here).
    """
    problem = window_problem(window, stride)
    if problem:
        raise CapacityError(problem)
    key = ranker_name(ranker)
    if key not in LLM_RANKERS or window:
        return
    mode = mode or LLMRankerConfig.mode
    over = [(task, s) for task, samples in samples_by_task.items() for s in samples
            if needs_window(s, mode, scorers, LISTWISE_CAPACITY)]
    if not over:
        return
    task, s = over[0]
    how = f"{key} ranker in {mode} mode"
    if mode == "score":
        how += f" with the {scorer_name(s, resolve_scorers(scorers))} scorer"
    more = f" ({len(over) - 1} more sample(s) too)" if len(over) > 1 else ""
    raise CapacityError(
        f"task {task}, sample {s.sample_id}: {len(s.candidates)} candidates, more than the {LISTWISE_CAPACITY} "
        f"the {how} sees at once{more}; rank it in sliding windows with --window {DEFAULT_WINDOW} "
        f"(evaluate.window), or use score mode with a context-free scorer")


__all__ = ["DEFAULT_STRIDE", "DEFAULT_WINDOW", "LISTWISE_MODES", "CapacityError", "SlidingWindowRanker",
           "check_capacity", "is_listwise", "needs_window", "window_cost", "window_problem", "window_starts"]
