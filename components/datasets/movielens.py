"""Rec-Movie from MovieLens-100K in RecBole atomic files (`ml-100k.inter`, `ml-100k.item`).

The target is each user's last rated movie (ties in timestamp broken by item id,
so the order is deterministic); titles carry the release year, as in the paper.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from components.config import TaskConfig
from components.datasets.common import LoadContext, PreparedTask
from components.datasets.recommendation import UserSequence, build_rec_task
from components.io import DataError, read_table


def load_movielens(cfg: TaskConfig, ctx: LoadContext) -> PreparedTask:
    folder = ctx.resolve(cfg.path, "movielens-100k")
    item_path, inter_path = folder / "ml-100k.item", folder / "ml-100k.inter"
    titles = {}
    for row in read_table(item_path, ["item_id", "movie_title", "release_year"], delimiter="\t"):
        year = row["release_year"].strip()
        titles[row["item_id"]] = f"{row['movie_title'].strip()} ({year})" if year else row["movie_title"].strip()
    events = defaultdict(list)
    for i, row in enumerate(read_table(inter_path, ["user_id", "item_id", "timestamp"], delimiter="\t"), start=2):
        try:
            ts = float(row["timestamp"])
        except ValueError as err:
            raise DataError(f"{inter_path}:{i}: timestamp {row['timestamp']!r} is not a number") from err
        events[row["user_id"]].append((ts, int(row["item_id"]) if row["item_id"].isdigit() else 0, row["item_id"]))
    dropped: Counter = Counter()
    sequences = []
    for user in sorted(events, key=lambda u: (len(u), u)):
        items = [item for _, _, item in sorted(events[user])]
        unknown = [it for it in items if it not in titles]
        if unknown:
            dropped["item without a title"] += 1
            continue
        sequences.append(UserSequence(user=user, history=tuple(items[:-1]), target=items[-1]))
    return build_rec_task(sequences, titles, cfg, ctx, dropped)
