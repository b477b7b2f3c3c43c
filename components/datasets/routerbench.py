"""Router-Performance / Router-Balance / Router-Cost from RouterBench CSVs.

Candidates are the 11 LLMs of the CSV columns, each described by its public
profile (`llm_profiles.json`) plus its accuracy and mean cost on the *train*
split (so nothing about a test query leaks into a description).

Scoring, fixed for every routing task (GraphRouter's scenarios):

    cost_norm(m, q) = clip((cost(m, q) - c_min) / (c_max - c_min), 0, 1)
    s(m, q)         = a * perf(m, q) - b * cost_norm(m, q)

with c_min / c_max the min / max per-query cost over all models and queries of
the train split, perf in {0, 1}, and (a, b) = (1.0, 0.0) Performance First,
(0.5, 0.5) Balance, (0.2, 0.8) Cost First. Candidates are ordered by s, ties
broken toward the cheaper model; the graded relevance is n - position (gold =
n, the worst = 1), so the gold (the argmax) is unique. perf, cost and s of every
candidate are kept in `meta["routing"]` for the routing-utility metrics.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from components.config import TaskConfig
from components.datasets.common import LoadContext, PreparedTask, cap
from components.io import DataError, load_json, read_table
from components.schema import Candidate, RankingSample

TRAIN_FILES = ("arc_challenge_train.csv", "winograde_train.csv", "mbpp_train.csv")
TEST_FILES = ("arc_challenge_test.csv", "winograde_test.csv")


def _models(header_row: dict[str, str], path: Path) -> list[str]:
    models = sorted(k.split("|", 1)[0] for k in header_row if k.endswith("|total_cost"))
    if not models:
        raise DataError(f"{path}:1: no '<model>|total_cost' columns found")
    missing = [m for m in models if m not in header_row]
    if missing:
        raise DataError(f"{path}:1: missing correctness column(s) {missing}")
    return models


def _read_split(folder: Path, files: tuple[str, ...]) -> list[tuple[Path, int, dict[str, str]]]:
    rows = []
    for name in files:
        path = folder / name
        if not path.exists():
            continue
        for i, row in enumerate(read_table(path, ["sample_id", "prompt", "eval_name"]), start=2):
            rows.append((path, i, row))
    return rows


def _number(row: dict[str, str], column: str, path: Path, line: int) -> float:
    try:
        return float(row[column])
    except (KeyError, ValueError) as err:
        raise DataError(f"{path}:{line}: column {column!r} is missing or not a number: {row.get(column)!r}") from err


def _query_text(prompt: str) -> str:
    """RouterBench stores the prompt as a Python list literal of strings."""
    try:
        parsed = ast.literal_eval(prompt)
    except (ValueError, SyntaxError):
        return prompt.strip()
    if isinstance(parsed, list):
        return "\n".join(str(p) for p in parsed).strip()
    return str(parsed).strip()


def _parse_rows(rows, models: list[str], dropped: Counter) -> list[tuple[dict[str, str], dict[str, tuple[float, float]]]]:
    """(row, {model: (perf, cost)}) for rows with every cell filled; empty cells drop the row."""
    parsed = []
    for path, line, row in rows:
        cells = [row.get(m, "") for m in models] + [row.get(f"{m}|total_cost", "") for m in models]
        if any(not c.strip() for c in cells):
            dropped["empty correctness or cost cell"] += 1
            continue
        values = {m: (_number(row, m, path, line), _number(row, f"{m}|total_cost", path, line)) for m in models}
        parsed.append((row, values))
    return parsed


def load_routerbench(cfg: TaskConfig, ctx: LoadContext) -> PreparedTask:
    folder = ctx.resolve(cfg.path, "routerbench")
    a, b = cfg.weights
    raw_train, raw_test = _read_split(folder, TRAIN_FILES), _read_split(folder, TEST_FILES)
    if not raw_train:
        raise DataError(f"{folder}: no train CSV found (expected one of {list(TRAIN_FILES)})")
    models = _models(raw_train[0][2], raw_train[0][0])
    for path, _, row in (raw_train[:1] + raw_test[:1]):
        if _models(row, path) != models:
            raise DataError(f"{path}:1: model columns differ from {raw_train[0][0].name}")
    profiles = load_json(folder / "llm_profiles.json")
    dropped: Counter = Counter()
    train_rows, test_rows = _parse_rows(raw_train, models, dropped), _parse_rows(raw_test, models, dropped)
    costs = [v[1] for _, values in train_rows for v in values.values()]
    c_min, c_max = min(costs), max(costs)
    span = (c_max - c_min) or 1.0
    n = len(train_rows)
    accuracy = {m: sum(values[m][0] for _, values in train_rows) / n for m in models}
    mean_cost = {m: sum(values[m][1] for _, values in train_rows) / n for m in models}
    texts = {m: _describe(m, profiles.get(m, {}), accuracy[m], mean_cost[m]) for m in models}

    splits = {}
    for split, rows in (("train", train_rows), ("test", test_rows)):
        samples, seen = [], set()
        for row, values in rows:
            qid = row["sample_id"].strip()
            if qid in seen:
                dropped["duplicate sample_id"] += 1
                continue
            seen.add(qid)
            query = _query_text(row["prompt"])
            if not query:
                dropped["empty prompt"] += 1
                continue
            routing = {}
            for m, (perf, cost) in values.items():
                cost_norm = min(max((cost - c_min) / span, 0.0), 1.0)
                routing[m] = {"perf": perf, "cost": cost, "score": round(a * perf - b * cost_norm, 12)}
            ordered = sorted(models, key=lambda m: (-routing[m]["score"], routing[m]["cost"], m))
            relevance = {m: float(len(models) - pos) for pos, m in enumerate(ordered)}
            ids = list(models)
            ctx.rng("shuffle", qid).shuffle(ids)
            samples.append(
                RankingSample(
                    sample_id=f"{ctx.task}:{qid}",
                    task=ctx.task,
                    scenario="router",
                    query=query,
                    candidates=tuple(Candidate(m, texts[m]) for m in ids),
                    relevance=relevance,
                    group=qid,
                    meta={"routing": routing, "eval_name": row["eval_name"], "weights": [a, b]},
                )
            )
        limit = cfg.max_train if split == "train" else cfg.max_test
        splits[split] = cap(samples, limit, ctx.rng("cap", split))
    return PreparedTask(splits=splits, dropped=dropped)


def _describe(model: str, profile: dict, accuracy: float, mean_cost: float) -> str:
    parts = [model]
    if profile.get("provider"):
        parts.append(f"by {profile['provider']}")
    parts.append("open weights" if profile.get("open_weights") else "closed weights")
    if profile.get("parameters_b"):
        parts.append(f"{profile['parameters_b']}B parameters")
    text = ", ".join(parts) + "."
    if profile.get("notes"):
        notes = profile["notes"].rstrip(".")
        text += f" {notes[:1].upper()}{notes[1:]}."
    return text + f" Train-split accuracy {accuracy:.0%}, mean cost ${mean_cost:.5f} per query."
