"""Shared recipe for the three recommendation tasks (the paper's, on this data).

For each user: history = items before the target in time order (the most recent
`history_len`), target = the next item, candidates = target + (n-1) items drawn
at random (seeded per user) from the catalogue, excluding every item the user
saw before the target and any item whose normalised title equals one already
chosen, then shuffled. The source modules only turn their files into
`UserSequence`s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from components.config import TaskConfig
from components.datasets.common import (
    LoadContext,
    cap,
    PreparedTask,
    draw_negatives,
    finish_task,
    normalise_text,
    split_groups,
)
from components.schema import Candidate, RankingSample


@dataclass(frozen=True)
class UserSequence:
    user: str
    history: tuple[str, ...]  # item ids, oldest first, everything before the target
    target: str


def build_rec_task(
    sequences: Sequence[UserSequence],
    titles: dict[str, str],
    cfg: TaskConfig,
    ctx: LoadContext,
    dropped: Counter,
) -> PreparedTask:
    n_cand = cfg.n_candidates or ctx.rec_candidates
    catalogue = sorted(titles)
    assignment = split_groups([s.user for s in sequences], cfg.test_groups, ctx.rng("split"))
    # one sample per user: cap users before building (Games has 50k of them)
    sequences = [
        seq
        for split, limit in (("train", cfg.max_train), ("test", cfg.max_test))
        for seq in cap([q for q in sequences if assignment[q.user] == split], limit, ctx.rng("cap", split))
    ]
    samples = []
    for seq in sequences:
        if not seq.history:
            dropped["empty history"] += 1
            continue
        rng = ctx.rng("user", seq.user)
        negatives = draw_negatives(
            catalogue,
            n_cand - 1,
            exclude=set(seq.history) | {seq.target},
            text_of=titles.__getitem__,
            taken_texts={normalise_text(titles[seq.target])},
            rng=rng,
        )
        if negatives is None:
            dropped["catalogue too small for negatives"] += 1
            continue
        ids = [seq.target, *negatives]
        rng.shuffle(ids)
        history = seq.history[-ctx.history_len :]
        samples.append(
            RankingSample(
                sample_id=f"{ctx.task}:{seq.user}",
                task=ctx.task,
                scenario="rec",
                query="\n".join(titles[i] for i in history),
                candidates=tuple(Candidate(i, titles[i]) for i in ids),
                relevance={seq.target: 1.0},
                group=seq.user,
                meta={"history_ids": list(history), "history_len": len(history), "full_history_len": len(seq.history)},
            )
        )
    return finish_task(ctx.task, samples, assignment, cfg, ctx, dropped)

