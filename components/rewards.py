"""Reward functions in TRL's contract: `fn(completions, **dataset_columns) -> list[float | None]`.

Each reward is a small callable class with a fixed `__name__`, so it pickles
(multi-process training) and logs under a stable key. Rewards read only the
completion and the dataset columns built by `prompts.reward_columns`
(`labels`, `candidate_ids`, `candidate_texts`, `grades`, `reasoning`); the
prompt is never parsed, so nothing in it (its example tags included) can move a
reward. The weights and options come from the `rewards` section of params.yaml.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from components.metrics import ndcg_per_sample
from components.parsing import completion_text, parse_answer

THINK_ANSWER_RE = re.compile(r"\s*<think>(?P<think>.+?)</think>\s*<answer>(?P<answer>.+?)</answer>\s*", re.DOTALL)
ANSWER_ONLY_RE = re.compile(r"\s*<answer>(?P<answer>.+?)</answer>\s*", re.DOTALL)
TAGS = ("<think>", "</think>", "<answer>", "</answer>")


def _column(values: Sequence[Any] | None, i: int, default: Any = None) -> Any:
    return default if values is None else values[i]


class FormatReward:
    """1.0 for the exact shape, 0.5 for a closed answer block in the wrong shape, 0.0 otherwise.

    The shape is `<think>...</think><answer>...</answer>` with reasoning on and
    `<answer>...</answer>` alone with reasoning off, each tag exactly once.

    >>> r = FormatReward()
    >>> r(["<think>a</think>\\n<answer>B</answer>", "<answer>B</answer>", "B"], reasoning=[True] * 3)
    [1.0, 0.5, 0.0]
    >>> r(["<answer>B</answer>", "<think>a</think><answer>B</answer>"], reasoning=[False, False])
    [1.0, 0.5]
    """

    def __init__(self, default_reasoning: bool = True):
        self.__name__ = "format_reward"
        self.default_reasoning = default_reasoning

    def __call__(self, completions, reasoning: Sequence[bool] | None = None, **_: Any) -> list[float]:
        out = []
        for i, completion in enumerate(completions):
            text = completion_text(completion)
            think = bool(_column(reasoning, i, self.default_reasoning))
            counts_ok = all(text.count(t) == (1 if think or "answer" in t else 0) for t in TAGS)
            pattern = THINK_ANSWER_RE if think else ANSWER_ONLY_RE
            if counts_ok and pattern.fullmatch(text):
                out.append(1.0)
            elif re.search(r"<answer>.+?</answer>", text, re.DOTALL):
                out.append(0.5)
            else:
                out.append(0.0)
        return out


class ExclusionReward:
    """IRanker step reward for eliminating one candidate from the remaining pool.

    With g the grades of the remaining candidates and e the eliminated one:

        r = (max(g) - g[e]) / (max(g) - min(g))   for a valid answer (1.0 if all grades tie)
        r = invalid                                 when the answer names no remaining candidate
                                                    (or several), default -0.5
        r = no_answer                               when there is no <answer> block, default -1.0

    Eliminating a least relevant candidate earns 1, a gold one 0; the paper's
    single-gold 1 / 0 / -0.5 is the special case with grades in {0, 1}.

    >>> r = ExclusionReward()
    >>> cols = dict(labels=[["A", "B", "C"]] * 4, candidate_ids=[["a", "b", "c"]] * 4, grades=[[0, 1, 2]] * 4)
    >>> r(["<answer>A</answer>", "<answer>C</answer>", "<answer>Z</answer>", "none"], **cols)
    [1.0, 0.0, -0.5, -1.0]
    """

    def __init__(self, invalid: float = -0.5, no_answer: float = -1.0, repair: bool = False):
        if not no_answer <= invalid < 0:
            raise ValueError(f"need no_answer <= invalid < 0, got no_answer={no_answer}, invalid={invalid}")
        self.__name__ = "exclusion_reward"
        self.invalid, self.no_answer, self.repair = invalid, no_answer, repair

    def __call__(self, completions, labels, candidate_ids, grades, candidate_texts=None, **_: Any) -> list[float]:
        out = []
        for i, completion in enumerate(completions):
            label_map = dict(zip(labels[i], candidate_ids[i]))
            grade = dict(zip(candidate_ids[i], map(float, grades[i])))
            texts = dict(zip(candidate_ids[i], candidate_texts[i])) if candidate_texts is not None else None
            parsed = parse_answer(completion_text(completion), label_map, "single", texts, self.repair)
            if parsed.status == "no_answer":
                out.append(self.no_answer)
            elif not parsed.valid:
                out.append(self.invalid)
            else:
                hi, lo = max(grade.values()), min(grade.values())
                out.append(1.0 if hi == lo else (hi - grade[parsed.ids[0]]) / (hi - lo))
        return out


class RankingReward:
    """DRanker reward: NDCG of the parsed ranking minus `penalty` per missing, duplicated or invented label.

        r = clip(NDCG(parsed order, grades) - penalty * (#missing + #duplicates + #invented), -1, 1)
        r = no_answer (default -1.0) when there is no <answer> block

    NDCG is `metrics.ndcg_per_sample`, the function the evaluation reports. With
    penalty >= 1 any defective answer scores <= 0, below every complete
    permutation (whose NDCG is > 0 since a gold item is in it).

    >>> r = RankingReward()
    >>> cols = dict(labels=[["A", "B"]] * 3, candidate_ids=[["a", "b"]] * 3, grades=[[1, 0]] * 3)
    >>> [round(x, 4) for x in r(["<answer>A > B</answer>", "<answer>B > A</answer>", "<answer>A</answer>"], **cols)]
    [1.0, 0.6309, 0.0]
    """

    def __init__(self, penalty: float = 1.0, no_answer: float = -1.0, repair: bool = False):
        if penalty < 0:
            raise ValueError(f"penalty must be >= 0, got {penalty}")
        self.__name__ = "ranking_reward"
        self.penalty, self.no_answer, self.repair = penalty, no_answer, repair

    def __call__(self, completions, labels, candidate_ids, grades, candidate_texts=None, **_: Any) -> list[float]:
        parsed, relevances = [], []
        for i, completion in enumerate(completions):
            label_map = dict(zip(labels[i], candidate_ids[i]))
            texts = dict(zip(candidate_ids[i], candidate_texts[i])) if candidate_texts is not None else None
            parsed.append(parse_answer(completion_text(completion), label_map, "ranking", texts, self.repair))
            relevances.append(dict(zip(candidate_ids[i], map(float, grades[i]))))
        ndcg = ndcg_per_sample([p.ids for p in parsed], relevances)
        out = []
        for p, gain in zip(parsed, ndcg):
            if p.status == "no_answer":
                out.append(self.no_answer)
                continue
            defects = len(p.missing) + p.duplicates + len(p.invented)
            out.append(float(min(1.0, max(-1.0, gain - self.penalty * defects))))
        return out


REWARDS = {"format_reward": FormatReward, "exclusion_reward": ExclusionReward, "ranking_reward": RankingReward}
DEFAULT_REWARDS = {
    "dranker": {"format_reward": {"weight": 0.2}, "ranking_reward": {"weight": 1.0, "penalty": 1.0}},
    "iranker": {"format_reward": {"weight": 0.2}, "exclusion_reward": {"weight": 1.0, "invalid": -0.5}},
}


def build_rewards(spec: Mapping[str, Mapping[str, Any]]) -> tuple[list, list[float]]:
    """Reward callables and their weights from `{name: {weight, **options}}`.

    >>> fns, weights = build_rewards({"format_reward": {"weight": 0.5}})
    >>> [f.__name__ for f in fns], weights
    (['format_reward'], [0.5])
    """
    fns, weights = [], []
    for name, options in spec.items():
        if name not in REWARDS:
            raise ValueError(f"unknown reward {name!r}; valid rewards: {sorted(REWARDS)}")
        options = dict(options or {})
        weight = float(options.pop("weight", 1.0))
        if not math.isfinite(weight):
            raise ValueError(f"reward {name!r}: weight must be a finite number, got {weight}")
        weights.append(weight)
        try:
            fns.append(REWARDS[name](**options))
        except TypeError as err:
            raise ValueError(f"reward {name!r}: bad option(s) {sorted(options)}: {err}") from err
    return fns, weights


def score_completion(completion: str, columns: Mapping[str, Any], spec: Mapping[str, Mapping[str, Any]]) -> dict:
    """Every configured reward of one completion, and their weighted total."""
    fns, weights = build_rewards(spec)
    batch = {k: [v] for k, v in columns.items()}
    values = {fn.__name__: fn([completion], **batch)[0] for fn in fns}
    total = sum(w * values[fn.__name__] for fn, w in zip(fns, weights))
    return {"rewards": values, "total": total}
