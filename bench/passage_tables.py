"""The passage section of docs/RESULTS.md: Passage-5/7/9 on MS MARCO v1.1 and TREC DL top-100 reranking.

Reads `metrics.json` files of evaluations (`r1ranker evaluate ... --out DIR`) and prints two Markdown tables:
MRR x 100 on Passage-5/7/9 beside the paper's numbers, and nDCG@10 x 100 on TREC DL19/DL21 beside published
rerankers. A system whose file is missing is left out, a task a file lacks shows "-". With `--trained` and
`--base`, the paired tests of trained against base (per-sample MRR; per-query nDCG@10 on TREC DL) follow.
Not run by CI.

    python bench/passage_tables.py          # the evaluations docs/RESULTS.md shows (DEFAULT_ROWS)
    python bench/passage_tables.py --system BM25=artifacts/eval/bm25 --base DIR --trained DIR
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


HEADING = "## Passage ranking on the paper's data (MS MARCO v1.1) and TREC DL top-100 reranking"
# the section in docs/RESULTS.md: these evaluations, when this machine has them (bench/results_table.py)
DEFAULT_ROWS = (("BM25 (bm25s, within each sample's candidates)", "artifacts/bench/passage/bm25"),
                ("dense (all-MiniLM-L6-v2)", "artifacts/bench/passage/dense"),
                ("SmolLM2 score mode, zero-shot (query-likelihood)", "artifacts/bench/base_passage"))
DEFAULT_BASE, DEFAULT_TRAINED = "artifacts/bench/base_passage", "artifacts/bench/passage_v2/eval-trained"


def tables(rows: list[tuple[str, str]], base: str | None, trained: str | None) -> list[str]:
    """The Markdown lines: Passage-5/7/9 MRR, TREC DL nDCG@10, and the paired tests of trained against base."""
    lines = []
    read = [(label, _read(folder)) for label, folder in rows + ([("SmolLM2 score mode, trained", trained)] if trained else [])]
    lines += ["| MRR x 100 (95% CI) | " + " | ".join(PASSAGE) + " |", "|---|" + "---|" * len(PASSAGE)]
    lines += [f"| {label} | " + " | ".join(_cell(r, t, "mrr") for t in PASSAGE) + " |"
              for label, r in read if r is not None and any(t in r.tasks for t in PASSAGE)]
    lines += [f"| {label} | " + " | ".join(f"{v:.2f}" for v in values) + " |" for label, values in PAPER.items()]
    lines += ["", "| nDCG@10 x 100 (95% CI), BM25 top 100 reranked | " + " | ".join(TREC) + " |",
              "|---|" + "---|" * len(TREC)]
    with_trec = [(label, r) for label, r in read if r is not None and any(t in r.tasks for t in TREC)]
    if with_trec:
        lines.append("| the input run (BM25, Anserini) | " + " | ".join(_cell(with_trec[0][1], t, "input_ndcg@10") for t in TREC) + " |")
    lines += [f"| {label} | " + " | ".join(_cell(r, t, "ndcg@10") for t in TREC) + " |" for label, r in with_trec]
    lines += [f"| published: {label} | {value:.2f} | - |" for label, value in PUBLISHED_DL19.items()]
    b, t = (_read(base) if base else None), (_read(trained) if trained else None)
    if b is not None and t is not None:
        lines += ["", "| task | metric | n | base | trained | diff | paired p |", "|---|---|---|---|---|---|---|"]
        lines += [line for task in PASSAGE + TREC if (line := _paired(t, b, task))]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--system", action="append", default=[], metavar="LABEL=DIR",
                    help="a row: the label and the folder holding its metrics.json (repeatable, in row order; "
                         "default: the evaluations docs/RESULTS.md shows)")
    ap.add_argument("--base", default=DEFAULT_BASE, help="the zero-shot base's evaluation folder (paired tests)")
    ap.add_argument("--trained", default=DEFAULT_TRAINED,
                    help="the trained model's evaluation folder (a row, and paired tests against --base)")
    args = ap.parse_args()
    rows = []
    for item in args.system:
        label, sep, folder = item.partition("=")
        if not sep:
            raise SystemExit(f"--system {item!r}: expected LABEL=DIR")
        rows.append((label, folder))
    print("\n".join(tables(rows or list(DEFAULT_ROWS), args.base, args.trained)))


if __name__ == "__main__":
    main()
