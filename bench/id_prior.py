"""How far a content-free prior gets: rank test candidates by their id's mean grade in the train split.

No model and no text: each candidate id (an LLM on the router tasks, an item on
the recommendation tasks) is scored by the mean relevance grade it had in the
train samples it appeared in (ids never seen in train score 0, then keep their
input order). It is the headroom check for RL training: a trained ranker that
reads the candidates should at least learn what this lookup knows.

    python bench/id_prior.py                                   # router and rec tasks, first 160 test samples
    python bench/id_prior.py --tasks router-performance --max-train-samples 200 --limit 160

Seconds on CPU; not run by CI.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.io import read_samples, write_json  # noqa: E402
from components.metrics import summarise  # noqa: E402
from components.report import Metrics  # noqa: E402

TASKS = "router-performance,router-balance,router-cost,rec-movie,rec-music,rec-game"


def id_prior(train) -> dict[str, float]:
    grades: dict[str, list[float]] = defaultdict(list)
    for sample in train:
        for cid, grade in sample.relevance.items():
            grades[cid].append(float(grade))
    return {cid: sum(v) / len(v) for cid, v in grades.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default=TASKS)
    ap.add_argument("--samples", default="artifacts/samples")
    ap.add_argument("--limit", type=int, default=160, help="first N test samples per task (the training bench's slice)")
    ap.add_argument("--max-train-samples", type=int, default=200,
                    help="the seeded random subset of the train split the training bench uses (0: all)")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    result = {"command": "python " + " ".join(sys.argv), "tasks": {}}
    for task in args.tasks.split(","):
        train = read_samples(Path(args.samples) / task / "train.jsonl")
        if args.max_train_samples:  # the same subset training.load_train_samples draws
            train = random.Random(f"{args.seed}:{task}").sample(train, min(args.max_train_samples, len(train)))
        test = read_samples(Path(args.samples) / task / "test.jsonl")[: args.limit]
        prior = id_prior(train)
        orders = [sorted((c.id for c in s.candidates), key=lambda cid: -prior.get(cid, 0.0)) for s in test]
        seen = sum(c.id in prior for s in test for c in s.candidates) / max(1, sum(len(s.candidates) for s in test))
        mrr = Metrics.from_dict(summarise(orders, test, args.seed)).mrr  # the metrics block of a task's report
        print(f"{task}: id-prior MRR x 100 {100 * mrr.mean:.1f} [{100 * mrr.ci95[0]:.1f}-{100 * mrr.ci95[1]:.1f}] "
              f"on {len(test)} test samples, {len(train)} train samples; {100 * seen:.0f}% of test candidate ids seen in train")
        result["tasks"][task] = {"mrr": mrr.mean, "ci95": list(mrr.ci95), "n": len(test), "train": len(train), "seen": seen}
    write_json(Path("artifacts/bench/id_prior.json"), result)  # read by bench/results_table.py


if __name__ == "__main__":
    main()
