"""The champion rule: when a challenger's evaluation promotes it over the champion, and when a champion regressed.

Pure decisions over evaluation reports (`metrics.json`), no registry calls: `registry.promote` reads the reports
from MLflow and applies `decide`; `pipeline.champion_check` re-evaluates a champion and applies `regressions`.
The rule itself is described in `components.registry`'s module doc.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from components.audit import check_consistent
from components.config import RegisterConfig
from components.metrics import paired_test
from components.report import EvalReport, TaskComparison

EVAL_ARTIFACT = "evaluation/metrics.json"


class ChampionRegressed(RuntimeError):
    """The champion ranks the frozen suite significantly worse than when it was registered."""


class PromotionRefused(RuntimeError):
    """The challenger cannot be compared (no challenger, missing or incomplete evaluation)."""


# The promotion rule's numbers (alpha, tolerance) are the register section's: one definition, one check.
PromotionConfig = RegisterConfig


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    challenger: str
    champion: str | None
    challenger_mrr: float | None = None
    champion_mrr: float | None = None
    p_value: float | None = None
    worst_task_drop: float | None = None

    def tags(self) -> dict[str, str]:
        return {f"promotion.{k}": str(v) for k, v in asdict(self).items()}


def check_complete(report: EvalReport | None, reference: EvalReport | None, who: str,
                   reference_name: str = "the champion") -> None:
    """Refuse an evaluation with skips or missing metrics, or one of another suite than `reference`'s."""
    if report is None:
        raise PromotionRefused(f"{who} has no evaluation ({EVAL_ARTIFACT} missing in its run)")
    tasks = report.tasks
    if not tasks:
        raise PromotionRefused(f"{who}'s evaluation has no tasks")
    for name, task in tasks.items():
        if not task.complete:
            raise PromotionRefused(f"{who}'s evaluation of {name} is incomplete "
                                   f"({task.n_skipped} skipped, metrics present: {task.metrics is not None})")
    if reference is not None:
        missing = sorted(set(reference.tasks) - set(tasks))
        if missing:
            raise PromotionRefused(f"{who}'s evaluation lacks task(s) {missing} of the frozen suite")
        for name, ref in reference.tasks.items():
            if tasks[name].sample_ids_hash != ref.sample_ids_hash:
                raise PromotionRefused(f"{who} was evaluated on other {name} samples than {reference_name} "
                                       f"(ids hash {tasks[name].sample_ids_hash} vs {ref.sample_ids_hash})")


def worse_than_base(challenger: EvalReport, base: EvalReport, alpha: float) -> str | None:
    """The first task on which the challenger ranks significantly worse than the untrained base, as a reason."""
    check_complete(base, challenger, "the untrained base", "the challenger")
    for task in sorted(challenger.tasks):
        a, b = _paired(challenger, base, task, "the untrained base")
        test = paired_test(a, b)
        if test["mean_diff"] < 0 and test["p_value"] < alpha:
            return (f"{task}: MRR {np.mean(a):.4f} is significantly below the untrained base's {np.mean(b):.4f} "
                    f"(p = {test['p_value']:.4f} < {alpha})")
    return None


def _paired(challenger: EvalReport, reference: EvalReport, task: str, who: str) -> tuple[list[float], list[float]]:
    """Per-sample MRR of both on the reference's samples of `task`, in one order (refused when they differ)."""
    mine, theirs = challenger.tasks[task].per_sample_mrr, reference.tasks[task].per_sample_mrr
    if set(mine) != set(theirs):
        raise PromotionRefused(f"{who}: {task}: the per-sample MRR covers other samples than the comparison's")
    ids = sorted(theirs)
    return [mine[i] for i in ids], [theirs[i] for i in ids]


def decide(challenger: EvalReport | None, champion: EvalReport | None, cfg: PromotionConfig,
           challenger_version: str = "?", champion_version: str | None = None,
           base: EvalReport | None = None) -> Decision:
    """The promotion decision from evaluation reports (metrics.json): challenger, champion and untrained base.

    Every number comes from the per-sample MRR (checked against the stored means first): the means compared
    and the paired test are of the same values, and only a positive, significant difference promotes.
    """
    who = f"challenger v{challenger_version}"
    check_complete(challenger, champion, who)
    check_consistent(challenger, f"{who}'s evaluation")
    ch_tasks = challenger.tasks
    ch_mean = float(np.mean([v for t in ch_tasks.values() for v in t.per_sample_mrr.values()]))
    if base is not None:
        check_consistent(base, "the untrained base's evaluation")
        worse = worse_than_base(challenger, base, cfg.alpha)
        if worse:
            return Decision(False, f"base rule: {worse}", challenger_version, champion_version, ch_mean)
    base_note = ("not significantly worse than the untrained base on any task" if base is not None
                 else "no base evaluation registered: base rule not applied")
    if champion is None:
        return Decision(True, f"first version: no champion yet; {base_note}", challenger_version, None, ch_mean)
    check_consistent(champion, f"champion v{champion_version}'s evaluation")
    a, b, drops = [], [], {}
    for t in sorted(champion.tasks):
        mine, theirs = _paired(challenger, champion, t, who)
        a, b = a + mine, b + theirs
        drops[t] = float(np.mean(theirs) - np.mean(mine))
    test = paired_test(a, b)
    ch_mean, cp_mean, p = float(np.mean(a)), float(np.mean(b)), test["p_value"]
    worst_task, worst = max(drops.items(), key=lambda kv: kv[1])
    common = dict(challenger=challenger_version, champion=champion_version, challenger_mrr=ch_mean,
                  champion_mrr=cp_mean, p_value=p, worst_task_drop=worst)
    if test["mean_diff"] <= 0:
        return Decision(False, f"mean MRR {ch_mean:.4f} over {len(a)} samples is not above the champion's {cp_mean:.4f}",
                        **common)
    if p >= cfg.alpha:
        return Decision(False, f"mean MRR {ch_mean:.4f} > {cp_mean:.4f} but not significant (p = {p:.4f} >= {cfg.alpha})", **common)
    if worst > cfg.tolerance:
        return Decision(False, f"{worst_task} drops by {worst:.4f} MRR (tolerance {cfg.tolerance})", **common)
    return Decision(True, f"mean MRR {ch_mean:.4f} > {cp_mean:.4f}, p = {p:.4f}, worst task drop {worst:.4f}; {base_note}",
                    **common)


def decision_dict(decision: Decision) -> dict[str, Any]:
    return asdict(decision)


def regressions(compared: Mapping[str, TaskComparison], alpha: float, tolerance: float) -> list[str]:
    """Tasks whose MRR fell by more than `tolerance` with a paired test at p < alpha (or that could not be compared)."""
    found = []
    for task, c in compared.items():
        if c.p_value is None:
            found.append(f"{task}: {c.error if c.error is not None else 'not comparable'}")
        elif c.mean_diff < -tolerance and c.p_value < alpha:
            found.append(f"{task}: MRR {c.mrr:.4f} vs {c.other_mrr:.4f} at registration (p = {c.p_value:.4f})")
    return found
