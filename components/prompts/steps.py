"""IRanker training steps (elimination pools) and the reward columns a prompt's dataset row carries."""

from __future__ import annotations

import random
from dataclasses import dataclass, fields

from components.schema import RankingSample


@dataclass(frozen=True)
class EliminationStep:
    """One IRanker training step: a pool of remaining candidates that keeps a gold item."""

    sample: RankingSample
    remaining: tuple[str, ...]  # candidate ids, in the sample's order


def expand_elimination_steps(sample: RankingSample, seed: int) -> list[EliminationStep]:
    """Steps at every pool size from n down to 2, each a seeded random subset holding a gold item."""
    rng = random.Random(f"{seed}:{sample.sample_id}")
    ids = sample.candidate_ids
    gold = sample.gold_ids
    steps = []
    for size in range(len(ids), 1, -1):
        keep_gold = rng.choice(gold)
        others = [c for c in ids if c != keep_gold]
        chosen = {keep_gold, *rng.sample(others, size - 1)}
        steps.append(EliminationStep(sample=sample, remaining=tuple(c for c in ids if c in chosen)))
    return steps


@dataclass(frozen=True)
class RewardColumns:
    """The dataset columns every reward reads, one record: flat lists, so Arrow stores them without padding dicts.

    A reward that needs another column adds a field here; `REWARD_COLUMNS` and the trainer's exact reward table
    follow from the fields.
    """

    labels: list[str]  # the labels shown, in listing order
    candidate_ids: list[str]  # the candidate each label stands for
    candidate_texts: list[str]
    grades: list[float]
    reasoning: bool  # whether the prompt asked for <think> before <answer>

    @classmethod
    def of(cls, labels: dict[str, str], sample: RankingSample, reasoning: bool) -> RewardColumns:
        by_id = {c.id: c.text for c in sample.candidates}
        ids = list(labels.values())
        return cls(list(labels), ids, [by_id[i] for i in ids], [sample.grade(i) for i in ids], reasoning)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


REWARD_COLUMNS = tuple(f.name for f in fields(RewardColumns))


def reward_columns(labels: dict[str, str], sample: RankingSample, reasoning: bool) -> dict:
    """A training row's reward columns (`RewardColumns`) as the mapping a dataset row holds."""
    return RewardColumns.of(labels, sample, reasoning).to_dict()
