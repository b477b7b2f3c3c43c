"""Where a trained rec ranker gained or lost: MRR change split by the kind of gold title.

Reads the base and trained evaluations' rankings.jsonl of training runs (`bench/train_iranker.py
--out artifacts/bench/<run>`) and the test samples, and prints, per run and task, the mean change
in reciprocal rank x 100 on the samples whose gold title is a compilation ("best of", "greatest
hits", "collection", ...) and on the others, and how often the base's and the trained ranker's top
item is a compilation; first, per task and split, the share of gold titles and of the other
candidates that are compilations. No model runs. Not run by CI.

    python bench/rec_gold_kinds.py score_v4 score_v5 --base artifacts/bench/score_v3/eval-base/rankings.jsonl
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.evaluation import load_eval_samples  # noqa: E402
from components.io import read_jsonl  # noqa: E402
from components.metrics import per_sample_metrics  # noqa: E402

# a title that names a compilation rather than one album: music's generic, highly predictable titles
COMPILATION = re.compile(r"best|greatest|hits|collection|essential|gold|anthology|definitive|ultimate", re.I)


def rankings(path: Path, task: str) -> dict[str, list[str]]:
    """Ranked candidate ids by sample id, for `task`'s rows of an evaluation's rankings.jsonl."""
    return {r["sample_id"]: r["order"] for r in read_jsonl(path) if r["task"] == task}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run folders under --bench (each with eval-trained/rankings.jsonl)")
    ap.add_argument("--bench", default="artifacts/bench")
    ap.add_argument("--base", default=None, help="the base's rankings.jsonl (default: each run's eval-base)")
    ap.add_argument("--samples", default="artifacts/bench/samples")
    ap.add_argument("--tasks", default="rec-music,rec-movie,rec-game")
    args = ap.parse_args()

    tasks = args.tasks.split(",")
    # each split's files read once for all tasks (load_eval_samples reads the whole folder)
    by_split = {split: load_eval_samples(Path(args.samples), tasks, split) for split in ("train", "test")}
    for task in tasks:
        for split, by_task in by_split.items():
            split_samples = by_task[task]
            kinds: dict[bool, list[bool]] = {True: [], False: []}  # gold or not -> is a compilation
            for sample in split_samples:
                gold = set(sample.gold_ids)
                for c in sample.candidates:
                    kinds[c.id in gold].append(bool(COMPILATION.search(c.text)))
            print(f"{task} {split}: compilations among gold titles {statistics.mean(kinds[True]):.3f}, "
                  f"among the other candidates {statistics.mean(kinds[False]):.3f}")
        samples = {s.sample_id: s for s in by_split["test"][task]}
        for run in args.runs:
            folder = Path(args.bench) / run
            base = rankings(Path(args.base) if args.base else folder / "eval-base" / "rankings.jsonl", task)
            trained = rankings(folder / "eval-trained" / "rankings.jsonl", task)
            ranked = [samples[sid] for sid in trained]
            relevances = [s.relevance for s in ranked]
            rr_trained = per_sample_metrics(list(trained.values()), relevances, ("mrr",))["mrr"]
            rr_base = per_sample_metrics([base[s.sample_id] for s in ranked], relevances, ("mrr",))["mrr"]
            diffs: dict[bool, list[float]] = {True: [], False: []}
            tops, base_tops = [], []
            for sample, order, change in zip(ranked, trained.values(), rr_trained - rr_base):
                titles = {c.id: c.text for c in sample.candidates}
                diffs[bool(COMPILATION.search(titles[sample.gold_ids[0]]))].append(100 * change)
                tops.append(bool(COMPILATION.search(titles[order[0]])))
                base_tops.append(bool(COMPILATION.search(titles[base[sample.sample_id][0]])))
            parts = [f"{'compilation' if kind else 'other'} gold n={len(d)} {statistics.mean(d):+.1f}"
                     for kind, d in diffs.items() if d]
            print(f"{task} {run}: " + ", ".join(parts) + f"; top item a compilation: base {statistics.mean(base_tops):.2f}, "
                  f"trained {statistics.mean(tops):.2f}")


if __name__ == "__main__":
    main()
