"""Helpers every dataset source shares: seeded group splits, text normalisation,
negative sampling, and the `PreparedTask` record a loader returns."""

from __future__ import annotations

import random
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from components.config import TaskConfig
from components.schema import RankingSample

SPLITS = ("train", "test")


@dataclass
class PreparedTask:
    """A loader's output: samples per split plus the rows it dropped, by reason."""

    splits: dict[str, list[RankingSample]]
    dropped: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class LoadContext:
    """What a loader needs besides its task config."""

    task: str
    data_root: Path
    seed: int
    history_len: int
    rec_candidates: int

    def resolve(self, path: str, default: str) -> Path:
        """A task path: absolute, else under the data root, else relative to the current folder."""
        p = Path(path or default)
        if p.is_absolute() or not (self.data_root / p).exists() and p.exists():
            return p
        return self.data_root / p

    def rng(self, *parts: object) -> random.Random:
        """A generator seeded by the run seed and a key: independent of iteration order."""
        return random.Random(":".join(str(p) for p in (self.seed, self.task, *parts)))

    def shared_rng(self, *parts: object) -> random.Random:
        """Like `rng`, but independent of the task name, so tasks built from one source
        split their groups the same way (key it by the source, e.g. `shared_rng("trec-dl", "split")`)."""
        return random.Random(":".join(str(p) for p in (self.seed, *parts)))


def normalise_text(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form used for duplicate checks.

    >>> normalise_text("  Toy  Story (1995)! ")
    'toy story 1995'
    """
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def split_groups(groups: Sequence[str], n_test: int, rng: random.Random) -> dict[str, str]:
    """Assign each distinct group to one split: `n_test` groups to test, the rest to train."""
    distinct = sorted(set(groups))
    rng.shuffle(distinct)
    n_test = min(n_test, len(distinct))
    return {g: ("test" if i < n_test else "train") for i, g in enumerate(distinct)}


def cap(items: list, limit: int | None, rng: random.Random) -> list:
    """Keep at most `limit` items, a seeded choice, in their original order."""
    if limit is None or len(items) <= limit:
        return items
    keep = set(rng.sample(range(len(items)), limit))
    return [s for i, s in enumerate(items) if i in keep]


def draw_negatives(
    pool: Sequence[str],
    k: int,
    exclude: set[str],
    text_of: Callable[[str], str],
    taken_texts: set[str],
    rng: random.Random,
) -> list[str] | None:
    """Draw `k` ids from `pool` not in `exclude`, with pairwise distinct normalised texts.

    Returns None when the pool cannot supply `k` such items.
    """
    chosen: list[str] = []
    texts = set(taken_texts)
    tried: set[int] = set()
    # rejection sampling: cheap when the pool is much larger than k (catalogues of
    # thousands), exhaustive in the end, so a small pool still fails honestly
    while len(chosen) < k and len(tried) < len(pool):
        i = rng.randrange(len(pool))
        if i in tried:
            continue
        tried.add(i)
        cid = pool[i]
        if cid in exclude:
            continue
        norm = normalise_text(text_of(cid))
        if not norm or norm in texts:
            continue
        chosen.append(cid)
        texts.add(norm)
    return chosen if len(chosen) == k else None


def finish_task(
    task: str,
    samples: list[RankingSample],
    assignment: dict[str, str],
    cfg: TaskConfig,
    ctx: LoadContext,
    dropped: Counter,
    *,
    caps: bool = True,
) -> PreparedTask:
    """Route samples to their group's split, then apply the per-split caps.

    `caps=False` skips the caps, for a loader that already capped groups (the rec
    recipe caps users, then expands each train user into several windows).
    """
    splits: dict[str, list[RankingSample]] = {s: [] for s in SPLITS}
    for sample in samples:
        splits[assignment[sample.group]].append(sample)
    if caps:
        splits["train"] = cap(splits["train"], cfg.max_train, ctx.rng("cap", "train"))
        splits["test"] = cap(splits["test"], cfg.max_test, ctx.rng("cap", "test"))
    return PreparedTask(splits=splits, dropped=dropped)
