"""Held-out rec users outside the test split: a second place to read a trained rec ranker's gain.

`prepare` caps rec train users (`max_train`, a seeded choice), so most train-split users never
reach training. This script rebuilds a rec task with every train-split user and one window each
(the last item, as the test split has), drops the users the prepared samples already use (in
train or test), and writes a seeded choice of `--n` of the rest as `<out>/<task>/test.jsonl`:
samples drawn like the test split's but from users no run trained on. Evaluate them with
`r1ranker evaluate --samples <out>`, base and trained, `--compare` for the paired p.

This is a diagnostic beside the test split, never instead of it: the test split stays the only
place a training gain counts (docs/RESULTS.md). It fails if the rebuilt test split differs from
the prepared one (other params or data than the samples were made with). No model runs. Not run
by CI.

    python bench/rec_unseen_users.py --tasks rec-music --n 200 --out artifacts/bench/samples_music_unseen
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.params import load_params  # noqa: E402
from components.datasets import load_task  # noqa: E402
from components.evaluation import load_eval_samples  # noqa: E402
from components.io import write_jsonl  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="rec-music", help="comma-separated rec tasks")
    ap.add_argument("--n", type=int, default=200, help="unseen users per task (fewer if fewer exist)")
    ap.add_argument("--samples", default="artifacts/bench/samples", help="the prepared samples whose users are excluded")
    ap.add_argument("--params", default="params.yaml", help="the configuration the samples were prepared with")
    ap.add_argument("--seed", type=int, default=0, help="which unseen users are chosen")
    ap.add_argument("--out", default="artifacts/bench/samples_unseen")
    args = ap.parse_args()

    tasks = args.tasks.split(",")
    # through the sample contract, each split read once for all tasks
    prepared = {split: load_eval_samples(Path(args.samples), tasks, split) for split in ("train", "test")}
    chosen = {}
    for task in tasks:  # every task checked and chosen before any file is written
        params = load_params(args.params, overrides={f"prepare.tasks.{task}.max_train": None,
                                                      f"prepare.tasks.{task}.train_windows": 1})
        rebuilt = load_task(task, params.prepare)
        if sorted(s.sample_id for s in rebuilt.splits["test"]) != sorted(s.sample_id for s in prepared["test"][task]):
            raise SystemExit(f"{task}: the test split rebuilt from {args.params} differs from "
                             f"{args.samples}/{task}/test.jsonl; pass the params the samples were prepared with")
        used = {s.group for by_task in prepared.values() for s in by_task[task]}
        unseen = [s for s in rebuilt.splits["train"] if s.group not in used]
        random.Random(args.seed).shuffle(unseen)
        chosen[task] = (unseen[: args.n], len(unseen))
    for task, (samples, available) in chosen.items():
        path = Path(args.out) / task / "test.jsonl"
        n = write_jsonl(path, (s.to_dict() for s in samples))  # temp file, then rename
        print(f"{task}: {n} of {available} unseen train-split users (last item each) -> {path}")

if __name__ == "__main__":
    main()
