"""The pictures people look at instead of reading numbers: the training reward curves and MRR per task."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from components.io import read_jsonl, write_text
from components.report import EvalReport


def plot_mrr(path: Path, reports: Sequence[EvalReport]) -> None:
    """Grouped bars of MRR per task, one colour per system, 95% CI as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(reports[0].tasks)
    width = 0.8 / len(reports)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(tasks) + 2), 4))
    for k, rep in enumerate(reports):
        means, errs = [], [[], []]
        for t in tasks:
            task = rep.tasks.get(t)
            mean, (lo, hi) = (task.metrics.mrr.mean, task.metrics.mrr.ci95) if task and task.metrics else (0.0, (0.0, 0.0))
            means.append(mean)
            errs[0].append(max(mean - lo, 0))
            errs[1].append(max(hi - mean, 0))
        xs = np.arange(len(tasks)) + (k - (len(reports) - 1) / 2) * width
        ax.bar(xs, means, width, yerr=errs, capsize=3, label=rep.system.get("label", f"system {k}"))
    ax.set_xticks(np.arange(len(tasks)), tasks, rotation=30, ha="right")
    ax.set_ylabel("MRR (95% CI)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("MRR per task")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def rolling_mean(values: list[float], window: int) -> list[float]:
    """Trailing mean over the last `window` values, skipping NaNs (steps that did not log the metric)."""
    out = []
    for i in range(len(values)):
        seen = [v for v in values[max(0, i - window + 1): i + 1] if v == v]
        out.append(sum(seen) / len(seen) if seen else float("nan"))
    return out


def write_curves(out: Path) -> Path:
    """health.jsonl -> curves.csv (DVC plots) and reward_curve.png (people)."""
    rows = read_jsonl(out / "health.jsonl")
    fields = ["step"] + sorted({k for r in rows for k in r} - {"step"})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: r.get(k, "") for k in fields})
    write_text(out / "curves.csv", buf.getvalue())
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    key = "reward/expected_mean" if any("reward/expected_mean" in r for r in rows) else "reward"
    steps = [r["step"] for r in rows]
    # per-batch rewards swing with the batch; past a few dozen steps the trend is the rolling mean
    window = max(1, len(rows) // 30)
    curves = [(key, key, 1.0),
              ("reward/greedy_mean", "argmax pick", 0.8),  # what the evaluated (argmax) ranker would get on the batch
              ("reward/uniform_mean", "uniform pick", 0.6)]  # chance level of the same batch: the gap is what was learned
    for i, (metric, name, alpha) in enumerate(curves):
        if i and not any(metric in r for r in rows):
            continue
        ax.plot(steps, rolling_mean([r.get(metric, float("nan")) for r in rows], window), alpha=alpha,
                marker="." if i == 0 and window == 1 else None,
                label=f"{name} (mean of {window} steps)" if window > 1 else name)
    held = [r for r in rows if "val/greedy_mean" in r]
    if held:  # held-out train groups: a batch curve that rises while this one stays flat is memorisation
        ax.plot([r["step"] for r in held], [r["val/greedy_mean"] for r in held], marker="o", color="black",
                label="argmax pick, held-out")
        ax.plot([r["step"] for r in held], [r["val/uniform_mean"] for r in held], marker="o", color="grey",
                linestyle="--", label="uniform pick, held-out")
    ax.legend(loc="best", fontsize=8)  # wherever it covers the fewest points
    ax.set_xlabel("step")
    ax.set_ylabel("reward")
    ax.set_title("training reward")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with tempfile.NamedTemporaryFile(suffix=".png", dir=out, delete=False) as tmp:
        fig.savefig(tmp.name, dpi=110)
    plt.close(fig)
    Path(tmp.name).replace(out / "reward_curve.png")
    return out / "curves.csv"


# ---------------------------------------------------------------- evaluate
