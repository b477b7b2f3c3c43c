"""Shared recipe for the three recommendation tasks (the paper's, on this data).

For each user: history = items before the target in time order (the most recent
`history_len`), target = the next item, candidates = target + (n-1) items drawn
at random (seeded per user) from the catalogue, excluding every item the user
saw before the target and any item whose normalised title equals one already
chosen, then shuffled. The source modules only turn their files into
`UserSequence`s.

With `train_windows` = w > 1, each *train* user also gives up to w-1 earlier
windows from their own history: target = history[-k], history = history[:-k]
(its most recent `history_len`), k = 1..w-1, skipping windows with an empty
history. Every window excludes the user's whole known sequence from its
negatives (so a later positive is never a negative), keeps the user as its
group (so one user's windows stay in one split) and gets sample id
`task:user:wk`; the k = 0 window keeps `task:user`. `max_train` caps users
before the expansion. Test users keep one sample, the last item.
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
    # cap users before building (Games has 50k of them), and so before the train windows
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
        seen = set(seq.history) | {seq.target}  # the whole known sequence: never a negative
        n_windows = cfg.train_windows if assignment[seq.user] == "train" else 1
        for k in range(n_windows):
            if k == 0:
                history, target, rng = seq.history, seq.target, ctx.rng("user", seq.user)
            elif k < len(seq.history):
                history, target, rng = seq.history[:-k], seq.history[-k], ctx.rng("user", seq.user, f"w{k}")
            else:  # the window's history would be empty
                break
            negatives = draw_negatives(
                catalogue,
                n_cand - 1,
                exclude=seen,
                text_of=titles.__getitem__,
                taken_texts={normalise_text(titles[target])},
                rng=rng,
            )
            if negatives is None:
                dropped["catalogue too small for negatives"] += 1
                continue
            ids = [target, *negatives]
            rng.shuffle(ids)
            recent = history[-ctx.history_len :]
            meta = {"history_ids": list(recent), "history_len": len(recent), "full_history_len": len(history)}
            if k:  # the k = 0 sample stays byte-identical to the one-window recipe
                meta["window"] = k
            samples.append(
                RankingSample(
                    sample_id=f"{ctx.task}:{seq.user}" + (f":w{k}" if k else ""),
                    task=ctx.task,
                    scenario="rec",
                    query="\n".join(titles[i] for i in recent),
                    candidates=tuple(Candidate(i, titles[i]) for i in ids),
                    relevance={target: 1.0},
                    group=seq.user,
                    meta=meta,
                )
            )
    # users are capped above; the windows of a capped user all stay
    return finish_task(ctx.task, samples, assignment, cfg, ctx, dropped, caps=False)

