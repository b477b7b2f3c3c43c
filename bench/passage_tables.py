"""The passage section of docs/RESULTS.md: Passage-5/7/9 on MS MARCO v1.1 and TREC DL top-100 reranking.

Reads `metrics.json` files of evaluations (`r1ranker evaluate ... --out DIR`) and prints two Markdown tables:
MRR x 100 on Passage-5/7/9 beside the paper's numbers, and nDCG@10 x 100 on TREC DL19/DL21 beside published
rerankers. A system whose file is missing is left out, a task a file lacks shows "-". With `--trained` and
`--base`, the paired tests of trained against base (per-sample MRR; per-query nDCG@10 on TREC DL) follow.
Not run by CI.

    python bench/passage_tables.py --system BM25=artifacts/bench/passage/bm25 \\
        --system "SmolLM2 score, zero-shot=artifacts/bench/base_passage" --base artifacts/bench/base_passage \\
        --trained artifacts/bench/passage_v1/eval-trained
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.metrics import paired_test  # noqa: E402
from components.report import EvalReport  # noqa: E402

PASSAGE = ("passage-5", "passage-7", "passage-9")
TREC = ("trec-dl19", "trec-dl21")
PAPER = {  # MRR x 100, the paper's table (Qwen2.5-3B backbone)
    "paper: BM25": (53.63, 44.95, 39.69),
    "paper: Qwen2.5-3B iterative, no RL": (57.74, 43.47, 39.40),
    "paper: IRanker-3B (RL)": (60.98, 53.22, 49.96),
}
# DL19 nDCG@10 x 100 reranking BM25's top 100, from the RankGPT paper's table (Sun et al., EMNLP 2023)
PUBLISHED_DL19 = {"BM25 (Anserini)": 50.58, "monoBERT-large": 70.50, "monoT5-3B": 71.83,
                  "RankGPT-3.5 (gpt-3.5-turbo)": 65.80, "RankGPT-4 (gpt-4)": 75.59}


def _read(folder: str) -> EvalReport | None:
    path = Path(folder) / "metrics.json"
    return EvalReport.read(path) if path.exists() else None


def _cell(report: EvalReport | None, task: str, metric: str) -> str:
    rep = report.tasks.get(task) if report else None
    if rep is None or rep.metrics is None or metric not in rep.metrics.values:
        return "-"
    m = rep.metrics.values[metric]
    return f"{100 * m.mean:.1f} [{100 * m.ci95[0]:.1f}, {100 * m.ci95[1]:.1f}] (n {rep.n})"


def _paired(trained: EvalReport, base: EvalReport, task: str) -> str | None:
    t, b = trained.tasks.get(task), base.tasks.get(task)
    if t is None or b is None or not t.per_sample_mrr or not b.per_sample_mrr:
        return None
    ndcg = task in TREC and t.per_sample_ndcg10 and b.per_sample_ndcg10
    mine, other = (t.per_sample_ndcg10, b.per_sample_ndcg10) if ndcg else (t.per_sample_mrr, b.per_sample_mrr)
    common = sorted(set(mine) & set(other))
    test = paired_test([mine[i] for i in common], [other[i] for i in common])
    a = sum(other[i] for i in common) / len(common)
    name = "nDCG@10" if ndcg else "MRR"
    return (f"| {task} | {name} | {len(common)} | {100 * a:.1f} | {100 * (a + test['mean_diff']):.1f} | "
            f"{100 * test['mean_diff']:+.1f} | {test['p_value']:.4f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--system", action="append", default=[], metavar="LABEL=DIR",
                    help="a row: the label and the folder holding its metrics.json (repeatable, in row order)")
    ap.add_argument("--base", help="the zero-shot base's evaluation folder (paired tests)")
    ap.add_argument("--trained", help="the trained model's evaluation folder (a row, and paired tests against --base)")
    args = ap.parse_args()
    rows = []
    for item in args.system + ([f"SmolLM2 score, trained={args.trained}"] if args.trained else []):
        label, sep, folder = item.partition("=")
        if not sep:
            raise SystemExit(f"--system {item!r}: expected LABEL=DIR")
        rows.append((label, _read(folder)))
    print("| MRR x 100 (95% CI) | " + " | ".join(PASSAGE) + " |")
    print("|---|" + "---|" * len(PASSAGE))
    for label, report in rows:
        if report is not None:
            print(f"| {label} | " + " | ".join(_cell(report, t, "mrr") for t in PASSAGE) + " |")
    for label, values in PAPER.items():
        print(f"| {label} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    print()
    print("| nDCG@10 x 100 (95% CI), BM25 top 100 reranked | " + " | ".join(TREC) + " |")
    print("|---|" + "---|" * len(TREC))
    first = next((r for _, r in rows if r is not None and any(t in r.tasks for t in TREC)), None)
    if first is not None:
        print("| the input run (BM25) | " + " | ".join(_cell(first, t, "input_ndcg@10") for t in TREC) + " |")
    for label, report in rows:
        if report is not None and any(t in report.tasks for t in TREC):
            print(f"| {label} | " + " | ".join(_cell(report, t, "ndcg@10") for t in TREC) + " |")
    for label, value in PUBLISHED_DL19.items():
        print(f"| published: {label} | {value:.2f} | - |")
    base, trained = (_read(args.base) if args.base else None), (_read(args.trained) if args.trained else None)
    if base is not None and trained is not None:
        print()
        print("| task | metric | n | base | trained | diff | paired p |")
        print("|---|---|---|---|---|---|---|")
        for task in PASSAGE + TREC:
            line = _paired(trained, base, task)
            if line:
                print(line)


if __name__ == "__main__":
    main()
