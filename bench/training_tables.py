"""The training sections of docs/RESULTS.md: one training benchmark run in full, the table of every run, and the
content-free headroom check beside them.

Each reads the typed `TrainingRun` record that `bench/train_iranker.py` writes (`result.json`); `results_table.py`
places these sections in the file. `previous_sections` reads the current RESULTS.md so that rows and sections
measured on another machine are kept.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.records import RunSettings, TrainingRun  # noqa: E402

OBJECTIVE_TEXT = {"expected": "the expected reward",
                  "soft-target": "the cross-entropy to softmax(reward / {tau}) (objective soft-target)",
                  "keep-target": "the cross-entropy of the candidate to keep, softmax(score), to softmax(-reward / {tau}) "
                                 "(objective keep-target: -log softmax(score)[gold] over each pool)"}


def _first(top: dict | None) -> str:
    return f"{top['label']} {100 * top['share']:.0f}%" if top else "n/a"


def id_prior_section(path: Path) -> list[str]:
    """The content-free headroom check (bench/id_prior.py) next to the training results."""
    if not path.exists():
        return []
    r = json.loads(path.read_text())
    cells = ", ".join(f"{t} {100 * v['mrr']:.1f} [{100 * v['ci95'][0]:.1f}–{100 * v['ci95'][1]:.1f}]"
                      for t, v in r["tasks"].items())
    return ["", f"Headroom, no model: ranking each test candidate by its id's mean grade in the train samples "
            f"(`{r['command']}`) gives MRR x 100 {cells}. Compare with the LLM rows above: what this lookup knows is "
            "in the training data, and a trained ranker that reads the candidate lines could learn it."]


RUNS_HEADING = "### Every training run"
HISTORY_HEADING = "## Experiment history"


def previous_sections(path: Path) -> dict[str, list[str]]:
    """The current file's body under each `##`/`###` heading, without its blank edge lines."""
    sections: dict[str, list[str]] = {}
    body: list[str] | None = None
    for line in path.read_text().splitlines() if path.exists() else []:
        if line.startswith(("## ", "### ")):
            body = sections.setdefault(line, [])
        elif body is not None:
            body.append(line)
    for body in sections.values():
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
    return sections


def training_runs(paths: list[Path], previous: list[str] | None = None) -> list[str]:
    """One line per training benchmark run (each writes <out>/result.json): what was tried and what it gave.

    Rows of `previous` (the table's earlier lines) whose run is not among `paths` come first, as they were.
    """
    names = {f"`{path.parent.name}`" for path in paths}
    earlier = [row for row in (previous or []) if row.startswith("| `") and row.split(" | ")[0][2:] not in names]
    if not paths and not earlier:
        return []
    lines = ["", RUNS_HEADING, "",
             "| run | train tasks | objective | lr | KL | LoRA layers | letters | steps | s/step | held-out MRR x 100 diff (p) |",
             "|---|---|---|---|---|---|---|---|---|---|", *earlier]
    for path in paths:
        r = TrainingRun.read(path)
        st = r.settings
        diffs = ", ".join(f"{t} {100 * v.diff:+.1f} ({v.p_value:.2g})" for t, v in r.tasks.items())
        lines.append(f"| `{path.parent.name}` | {', '.join(r.train_tasks)} | {st.objective} "
                     f"| {st.learning_rate} | {st.beta} | top {st.top_layers} "
                     f"| {'stable router' if st.stable_labels else 'listing'}, {st.label_position} text"
                     f"{_pool_caps(st, ', pools <= {}', ', {} pools <= {}')}"
                     f"{', pointer: head only' if st.pointer_trains_lora is False else ''} "
                     f"| {r.steps} "
                     f"| {r.seconds_per_step:.1f} | {diffs} |")
    return lines


def _trained_parts(st: RunSettings) -> str:
    """What score-mode training moved (runs before `pointer_trains_lora` trained both from every task)."""
    if st.pointer_trains_lora is False:
        return "LoRA trained through the likelihood scores, the pointer head on hidden states it does not backpropagate into"
    return "LoRA and the pointer head trained"


def _pool_caps(st: RunSettings, cap: str, own: str) -> str:
    """The pool cap (`--max-pool`) in `cap`'s words, then each scenario's or task's own (`--max-pool-for`) in `own`'s."""
    text = cap.format(st.max_pool) if st.max_pool else ""
    text += "".join(own.format(*item.split("=", 1)) for item in st.max_pool_for or [])  # 'KEY=N', as typed
    weights = ["x{1} {0}".format(*item.split("=", 1)) for item in st.draw_weight_for or []]  # 'KEY=W', as typed
    return text + (", drawn " + ", ".join(weights) if weights else "")


def _own_limits(st: RunSettings) -> str:
    """A task's own first-N (`--eval-limit-for`), when the run set any."""
    own = st.eval_limit_for or []
    return f" ({', '.join(x.replace('=', ': first ') for x in own)})" if own else ""


def _first_to_last(first: dict, last: dict, spec: str) -> str:
    """'task first -> last, ...' for each task of the first check."""
    return ", ".join(f"{t} {first[t]:{spec}} -> {last.get(t, float('nan')):{spec}}" for t in first)


def _held_out_text(held: dict | None) -> str:
    """The held-out train groups' argmax gain over uniform, first and last check (older runs lack it)."""
    if not held:
        return ""
    gains = _first_to_last(held["first"], held["last"], "+.3f")
    text = (f"On train-split groups kept out of training, the argmax label's reward over a uniform pick went, from the "
            f"check at step {held['first_step']} to the one at step {held['last_step']}: {gains}. ")
    if held.get("keep_best_first"):  # runs since the keep side was logged
        keep = _first_to_last(held["keep_best_first"], held.get("keep_best_last", {}), ".2f")
        text += f"The top score was the pool's best candidate on a share of those prompts of: {keep}. "
    return text


def training_section(path: Path) -> list[str]:
    if not path.exists():
        return ["_Run `python bench/train_iranker.py` to fill this section._"]
    r = TrainingRun.read(path)
    st = r.settings
    pools = _pool_caps(st, ", elimination steps with at most {} candidates left", " ({}: at most {})")
    held = (f", after keeping up to {st.val_groups} train groups per task out for the held-out check"
            if st.val_groups else "")
    lines = [
        f"Command: `{r.command}` on {r.machine}. {r.mode.capitalize()}-mode IRanker"
        + (f" (scorers {', '.join(f'{k}: {v}' for k, v in sorted((r.scorers or {}).items()) if k in ('passage', 'rec', 'router'))}; "
           f"policy softmax(-score / {st.score_tau}), {_trained_parts(st)})" if r.mode == "score" else "")
        + ", exact gradient of "
        f"{OBJECTIVE_TEXT[st.objective].format(tau=st.target_tau)}, "
        f"LoRA r={st.lora_r} on the top {st.top_layers} layers, lr {st.learning_rate}, batch {st.batch_size}, "
        f"KL weight {st.beta}, prompts cut to {st.max_prompt_tokens} tokens, "
        f"{'stable router letters (each LLM one letter in every sample), ' if st.stable_labels else ''}"
        f"{'labels after each text, ' if st.label_position == 'after' else ''}up to {st.max_train_samples} train "
        f"samples per task of {', '.join(r.train_tasks)}"
        f"{pools}{held}.",
        "",
        f"{r.steps} steps in {r.train_seconds / 60:.1f} minutes ({r.seconds_per_step:.1f} s/step, "
        f"{r.tokens_per_second or 0:.0f} prompt tokens/s); mean expected reward of the training batches "
        f"{r.reward_first10:.3f} over the first 10 steps, {r.reward_last10:.3f} over the last 10 (batches differ, so "
        f"this is noisy: see the curve). "
        + (f"The argmax label, which the evaluated ranker eliminates, beat a uniform pick by {r.greedy_gain_first10:.3f} "
           f"over the first 10 steps and {r.greedy_gain_last10:.3f} over the last 10. "
           if r.greedy_gain_first10 is not None else "")
        + _held_out_text(r.held_out)
        + f"Reward curve: `{r.curve}`. Evaluation in "
        f"{st.eval_dtype or 'float32'} (training autocast: {st.autocast}), first {st.eval_limit} test samples per task{_own_limits(st)}, base and trained on the same samples.",
        "",
        "| task | n | base MRR x 100 (95% CI) | trained MRR x 100 (95% CI) | diff | paired p | first answer, base / trained |",
        "|---|---|---|---|---|---|---|",
    ]
    for task, t in r.tasks.items():
        lines.append(f"| {task} | {t.n} | {100 * t.base_mrr:.1f} [{100 * t.base_ci95[0]:.1f}–{100 * t.base_ci95[1]:.1f}] "
                     f"| {100 * t.trained_mrr:.1f} [{100 * t.trained_ci95[0]:.1f}–{100 * t.trained_ci95[1]:.1f}] "
                     f"| {100 * t.diff:+.1f} | {t.p_value:.4f} | {_first(t.base_first)} / {_first(t.trained_first)} |")
    wins = [t for t, v in r.tasks.items() if v.diff > 0 and v.p_value < 0.05]
    losses = [t for t, v in r.tasks.items() if v.diff < 0 and v.p_value < 0.05]
    lines += ["", f"Significant gains (p < 0.05): {', '.join(wins) or 'none'}; significant losses: {', '.join(losses) or 'none'}."]
    return lines
