"""Rec-Game (Amazon Games-6k, RecBole files) and Rec-Music (Amazon CDs & Vinyl CSV).

CDs & Vinyl has one row per (user, next item) with the history so far; we keep
each user's last row (the longest history). About 30 catalogue titles are HTML
debris (`<span ...`): rows whose history or target has one are dropped and
counted, and such titles never serve as negatives.
"""

from __future__ import annotations

import ast
from collections import Counter

from components.config import TaskConfig
from components.datasets.common import LoadContext, PreparedTask
from components.datasets.recommendation import UserSequence, build_rec_task
from components.io import DataError, read_table, read_text


def is_html_debris(title: str) -> bool:
    """True for scraped markup in place of a title.

    >>> is_html_debris('<span class="a-size-medium">'), is_html_debris('Kansas')
    (True, False)
    """
    return title.lstrip().startswith("<")


def load_amazon_games(cfg: TaskConfig, ctx: LoadContext) -> PreparedTask:
    folder = ctx.resolve(cfg.path, "amazon-games")
    titles = {r["item_id"]: r["title"].strip() for r in read_table(folder / "Games-6k.item", ["item_id", "title"], "\t")}
    inter_path = folder / "Games-6k.valid.inter"
    dropped: Counter = Counter()
    sequences = []
    for row in read_table(inter_path, ["user_id", "item_id_list", "item_id"], "\t"):
        history = tuple(row["item_id_list"].split())
        if any(i not in titles for i in (*history, row["item_id"])):
            dropped["item without a title"] += 1
            continue
        sequences.append(UserSequence(user=row["user_id"], history=history, target=row["item_id"]))
    return build_rec_task(sequences, titles, cfg, ctx, dropped)


def _literal_list(value: str, path: object, user: str, column: str) -> list:
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError) as err:
        raise DataError(f"{path}: user {user}: column {column!r} is not a Python list literal") from err
    if not isinstance(parsed, list):
        raise DataError(f"{path}: user {user}: column {column!r} is not a list")
    return parsed


def load_amazon_cds(cfg: TaskConfig, ctx: LoadContext) -> PreparedTask:
    folder = ctx.resolve(cfg.path, "amazon-cds")
    items_path = folder / "CDs_and_Vinyl.items.txt"
    titles = {}
    for lineno, line in enumerate(read_text(items_path).splitlines(), start=1):
        if not line.strip():
            continue
        title, sep, item_id = line.rpartition("\t")
        if not sep:
            raise DataError(f"{items_path}:{lineno}: expected 'title<TAB>item_id'")
        if not is_html_debris(title):
            titles[item_id.strip()] = title.strip()
    csv_path = folder / "CDs_and_Vinyl.valid.csv"
    dropped: Counter = Counter()
    last_row: dict[str, tuple[int, UserSequence]] = {}
    for row in read_table(csv_path, ["user_id", "history_item_id", "item_id", "history_item_title", "item_title"]):
        user = row["user_id"]
        hist_titles = _literal_list(row["history_item_title"], csv_path, user, "history_item_title")
        if is_html_debris(row["item_title"]) or any(is_html_debris(str(t)) for t in hist_titles):
            dropped["HTML debris in history or target title"] += 1
            continue
        history = tuple(str(i) for i in _literal_list(row["history_item_id"], csv_path, user, "history_item_id"))
        target = row["item_id"].strip()
        if any(i not in titles for i in (*history, target)):
            dropped["item without a title"] += 1
            continue
        seq = UserSequence(user=user, history=history, target=target)
        if user not in last_row or len(history) >= last_row[user][0]:
            if user in last_row:
                dropped["earlier row of a user (longest history kept)"] += 1
            last_row[user] = (len(history), seq)
        else:
            dropped["earlier row of a user (longest history kept)"] += 1
    return build_rec_task([seq for _, seq in last_row.values()], titles, cfg, ctx, dropped)
