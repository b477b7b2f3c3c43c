"""IRanker training steps (elimination pools) and the reward columns a prompt's dataset row carries."""

from __future__ import annotations

import random
from dataclasses import dataclass

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


def reward_columns(labels: dict[str, str], sample: RankingSample, reasoning: bool) -> dict:
    """Dataset columns the rewards read (flat lists, so Arrow stores them without padding dicts)."""
    by_id = {c.id: c.text for c in sample.candidates}
    ids = list(labels.values())
    return {
        "labels": list(labels),
        "candidate_ids": ids,
        "candidate_texts": [by_id[i] for i in ids],
        "grades": [sample.grade(i) for i in ids],
        "reasoning": reasoning,
    }
