"""The pipeline's stages as plain functions: one entry point each, shared by the
Prefect tasks (`flows/`), `r1ranker stage <name>` and `dvc repro` (`dvc.yaml`).

prepare -> validate -> prompts -> train -> evaluate -> register (+ promote), and
`champion_check` for the weekly re-evaluation. Each takes the resolved `Params`
(params.yaml + profile + overrides), writes its outputs under `artifacts/`
atomically, and returns a small JSON-able summary that flows turn into Prefect
artifacts. Stages that talk to MLflow open one run each, nested under the
pipeline's run when a parent id is given.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from components.params import Params
from components.io import DataError, write_json, write_text
from components.promotion import ChampionRegressed, decision_dict, regressions
from components.report import EvalReport
from components.views import write_curves
from components.evaluation import evaluate_report, ids_hash, load_eval_samples, prepare_dropped
from components.models import load_tokenizer
from components.preparation import prepare
from components.prompts import PromptTooLong, build_prompt
from components.rankers import LLMRankerConfig, build_ranker, check_capacity
from components.registry import (
    CHAMPION, PromotionRefused, promote, register, registry_client, stored_evaluation, version_by_alias,
)
from components.scorers import check_sample
from components.tracking import configure, flat_metrics, log_evaluation, stage_run, tracking_uri, with_retries
from components.training import load_train_samples, train
from components.training.runs import check_start, check_trained
from components.validation import validate

log = logging.getLogger(__name__)

PROMPTS_REPORT = "artifacts/prompts/report.json"


# ---------------------------------------------------------------- helpers


def trained_model(params: Params) -> Path:
    """The train stage's final/, refused when its run did not finish or it is another run's (`runs.check_trained`)."""
    final = Path(params.train.output_dir) / "final"
    if not (final / "config.json").exists():
        raise DataError(f"{final}: no trained model; run the train stage first (`r1ranker stage train`)")
    check_trained(final)
    return final


# ---------------------------------------------------------------- data


def prepare_stage(params: Params) -> dict[str, Any]:
    card = prepare(params.prepare)
    return {"out": params.prepare.out,
            "tasks": {t: {"train": c["train"]["samples"], "test": c["test"]["samples"]} for t, c in card.items()}}


def validate_stage(params: Params) -> dict[str, Any]:
    # a profile that prepares some tasks validates those; older files of other tasks are not its business
    summary = validate(Path(params.validate.samples), params.validate, params.prepare, tasks=params.prepare.select)
    return {"batches": len(summary), "samples": sum(s["samples"] for s in summary), "report": params.validate.report}


def prompts_stage(params: Params) -> dict[str, Any]:
    """Build every prompt training and evaluation will use, once, and fail early if any cannot fit.

    IRanker's first step shows the whole pool, so it is the longest prompt a sample produces.
    Writes artifacts/prompts/report.json: template hash, and per task tokens and cuts.
    """
    cfg, ev = params.train, params.evaluate
    tok = load_tokenizer(cfg.model)
    prompt = cfg.effective_prompt
    groups: dict[str, list] = {}
    for s in load_train_samples(cfg):
        groups.setdefault(f"{s.task}/train", []).append(s)
    for task, samples in load_eval_samples(Path(params.prepare.out), ev.tasks, "test", ev.limit).items():
        groups[f"{task}/test"] = samples
    report: dict[str, Any] = {"model": cfg.model, "ranker": cfg.ranker, "mode": cfg.ranking_mode,
                              "max_prompt_tokens": prompt.max_prompt_tokens, "groups": {}}
    too_long, hashes = [], set()
    for name, samples in groups.items():
        tokens, cut = [], 0
        for s in samples:
            try:
                if cfg.ranking_mode == "score":  # the scorer's own inputs (its budget check)
                    tokens.append(check_sample(s, cfg.scorers, tok, cfg.prompt))
                    continue
                p = build_prompt(s, cfg.ranker, tok, prompt)
            except PromptTooLong as err:
                too_long.append(f"{name} {s.sample_id}: {err}")
                continue
            tokens.append(p.n_tokens)
            cut += p.cuts > 0
            hashes.add(p.template_hash)
        if cfg.ranking_mode == "score":
            hashes.add(cfg.template_hash_of(tok))
        report["groups"][name] = {"samples": len(samples), "prompt_tokens_median": statistics.median(tokens) if tokens else 0,
                                  "prompt_tokens_max": max(tokens, default=0), "samples_cut": cut}
    if too_long:
        raise DataError(f"{len(too_long)} prompt(s) cannot fit prompts.max_prompt_tokens={prompt.max_prompt_tokens}; "
                        "raise it or shorten the texts:\n" + "\n".join(too_long[:20]))
    report["template_hash"] = sorted(hashes)[0] if hashes else None
    write_json(Path(PROMPTS_REPORT), report)
    return report


# ---------------------------------------------------------------- train


def train_stage(params: Params, parent_run_id: str | None = None,
                progress: Callable[[int, int, dict], None] | None = None, resume: bool = False,
                overwrite: bool = True) -> dict[str, Any]:
    """RL training as the `train` section says.

    `resume`: continue the run in its output folder (its own last checkpoint, the same settings). Otherwise a fresh
    run, and `overwrite` says what happens to an earlier run there: deleted first (the pipeline, dvc and the flows
    rerun a stage by design, so stale checkpoints and final/ are never reused), or refused (`r1ranker train` without
    --overwrite). Both are checked before the tracking run opens or any model loads.
    """
    cfg = params.train  # checked when params.yaml was read, before any model loads
    check_start(cfg, resume, overwrite)
    config = {"train": {k: v for k, v in dataclasses.asdict(cfg).items() if k != "prompt"},
              "prompts": dataclasses.asdict(cfg.prompt), "profile": params.profile}
    with stage_run("train", config=config, parent_run_id=parent_run_id) as run:
        summary = train(cfg, resume=resume, progress=progress, overwrite=overwrite and not resume)
        curves = write_curves(Path(cfg.output_dir))
        import mlflow

        with_retries(lambda: mlflow.log_artifact(str(curves), "training"), "upload the reward curves")
        summary["mlflow_run_id"] = run.info.run_id
    return summary


def evaluate_stage(params: Params, parent_run_id: str | None = None) -> dict[str, Any]:
    """The trained model and the references on the frozen suite; summary.json (DVC metrics), mrr_by_task.csv (plots)."""
    cfg, ev = params.train, params.evaluate
    by_task = load_eval_samples(Path(params.prepare.out), ev.tasks, "test", ev.limit)  # bad tasks fail first
    final = trained_model(params)
    out = Path(ev.out)
    llm_cfg = LLMRankerConfig(mode=cfg.ranking_mode, max_new_tokens=cfg.max_completion_length,
                              batch_size=ev.batch_size, prompt=cfg.prompt, seed=cfg.seed, scorers=cfg.scorers,
                              window=ev.window, stride=ev.stride)
    check_capacity(by_task, cfg.ranker, cfg.ranking_mode, cfg.scorers, ev.window, ev.stride)  # before any model loads
    info = {"split": "test", "limit": ev.limit, "samples": params.prepare.out}  # register recomputes from them
    dropped = prepare_dropped(Path(params.prepare.out))
    reports = {}
    for ref in ev.references:
        if ref == "base":
            ranker = build_ranker(cfg.ranker, model=cfg.model, config=llm_cfg, seed=cfg.seed)
            system = {"label": "base", "ranker": cfg.ranker, "mode": cfg.ranking_mode, "model": cfg.model, **info}
        else:
            ranker = build_ranker(ref, config=llm_cfg, seed=cfg.seed)
            system = {"label": ref, "ranker": ref, "mode": None, "model": None, **info}
        reports[ref] = evaluate_report(ranker, by_task, out / ref, system, seed=cfg.seed, dropped=dropped)
    compare = out / "base" / "metrics.json" if "base" in ev.references else None
    ranker = build_ranker(cfg.ranker, model=str(final), config=llm_cfg, seed=cfg.seed)
    system = {"label": "candidate", "ranker": cfg.ranker, "mode": cfg.ranking_mode, "model": str(final), **info}
    reports["candidate"] = evaluate_report(ranker, by_task, out / "candidate", system, compare=compare, seed=cfg.seed,
                                           dropped=dropped)

    summary = summarise_reports(reports)
    write_json(out / "summary.json", summary)
    rows = [{"system": name, "task": task, "mrr": t.metrics.mrr.mean}
            for name, rep in reports.items() for task, t in rep.tasks.items() if t.metrics is not None]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["system", "task", "mrr"])
    writer.writeheader()
    writer.writerows(rows)
    write_text(out / "mrr_by_task.csv", buf.getvalue())
    config = {"evaluate": dataclasses.asdict(ev), "model": str(final), "mode": cfg.ranking_mode, "profile": params.profile}
    with stage_run("evaluate", config=config, parent_run_id=parent_run_id) as run:
        import mlflow

        log_evaluation(out / "candidate")
        refs = {f"reference.{name}.{k}": v for name, rep in reports.items() if name != "candidate"
                for k, v in flat_metrics(rep).items() if k.endswith(".mrr") or k == "mean_mrr"}
        if refs:
            with_retries(lambda: mlflow.log_metrics(refs), "log reference metrics")
        summary["mlflow_run_id"] = run.info.run_id
    return summary


def summarise_reports(reports: dict[str, EvalReport]) -> dict[str, Any]:
    """Flat numbers per system and task: what `dvc metrics show` prints and the results table shows."""
    out: dict[str, Any] = {}
    for name, rep in reports.items():
        entry: dict[str, Any] = {}
        for task, t in rep.tasks.items():
            m = t.metrics
            entry[task] = {"n": t.n, "skipped": t.n_skipped,
                           "mrr": round(m.mrr.mean, 4) if m is not None else None,
                           "mrr_ci95": [round(x, 4) for x in m.mrr.ci95] if m is not None else None,
                           "ndcg@10": round(m.values["ndcg@10"].mean, 4) if m is not None else None,
                           "invalid_rate": round(t.parse.invalid_rate if t.parse is not None else 0.0, 4),
                           "no_answer_rate": round(t.parse.no_answer_rate if t.parse is not None else 0.0, 4)}
        mrrs = [e["mrr"] for e in entry.values() if e["mrr"] is not None]
        entry["mean_mrr"] = round(sum(mrrs) / len(mrrs), 4) if mrrs else None
        for task, c in (rep.compare.tasks.items() if rep.compare is not None else ()):
            if c.p_value is not None:
                entry[task]["vs_base"] = {"diff": round(c.mean_diff, 4), "p_value": round(c.p_value, 4)}
        out[name] = entry
    return out


# ---------------------------------------------------------------- register


def register_stage(params: Params, parent_run_id: str | None = None) -> dict[str, Any]:
    """Register the trained model with its evaluation as @challenger, then promote by the rules in registry.py."""
    cfg, reg, ev = params.train, params.register, params.evaluate
    final = trained_model(params)
    name = reg.name or cfg.ranker
    eval_dir = Path(ev.out) / "candidate"
    config = {"name": name, "model": str(final), "mode": cfg.ranking_mode, "register": dataclasses.asdict(reg), "profile": params.profile}
    with stage_run("register", config=config, parent_run_id=parent_run_id) as run:
        base = Path(ev.out) / "base" if "base" in ev.references else None  # the base rule of promotion
        version = register(name, str(final), cfg.ranker, cfg.ranking_mode, eval_dir, cfg.prompt,
                           tags={"profile": str(params.profile)}, scorers=cfg.scorers, base_eval_dir=base)
        decision = promote(name, reg)
        run_id = run.info.run_id
    result = {"name": name, "version": version, **decision_dict(decision), "mlflow_run_id": run_id,
              "tracking_uri": tracking_uri(), "model_uri": f"models:/{name}/{version}"}
    write_json(Path(reg.out) / "decision.json", result)
    return result


def promote_only(params: Params, name: str | None = None) -> dict[str, Any]:
    """`r1ranker-promote`: re-decide the current challenger against the champion (no new version)."""
    reg = params.register
    name = name or reg.name or params.train.ranker
    configure()
    decision = promote(name, reg)
    return {"name": name, **decision_dict(decision)}


# ---------------------------------------------------------------- champion check


def champion_check(params: Params, name: str | None = None) -> dict[str, Any]:
    """Re-evaluate `models:/<name>@champion` on its frozen suite; raise ChampionRegressed on a significant drop."""
    import mlflow

    reg = params.register
    name = name or reg.name or params.train.ranker
    configure()
    version = version_by_alias(registry_client(), name, CHAMPION)
    if version is None:
        raise PromotionRefused(f"model {name!r} has no @{CHAMPION}; run the pipeline (or `r1ranker promote`) first")
    stored = stored_evaluation(version)
    if stored is None:
        raise PromotionRefused(f"{name} v{version.version} has no stored evaluation to compare against")
    system = stored.system
    by_task = load_eval_samples(Path(params.prepare.out), list(stored.tasks), system.get("split", "test"), system.get("limit"))
    for task, samples in by_task.items():
        if ids_hash(samples) != stored.tasks[task].sample_ids_hash:
            raise DataError(f"{task}: the prepared test samples differ from the champion's frozen suite "
                            f"(ids hash {ids_hash(samples)} vs {stored.tasks[task].sample_ids_hash}); "
                            "re-prepare with the params it was evaluated on")
    ranker = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}").unwrap_python_model().ranker
    out = Path(params.evaluate.out) / "champion"
    with tempfile.TemporaryDirectory() as tmp:
        reference = Path(tmp) / "registered.json"
        stored.write(reference)
        label = f"{name}@{CHAMPION} (v{version.version})"
        report = evaluate_report(ranker, by_task, out, {**system.to_dict(), "label": label}, compare=reference)
    compared = report.compare.tasks
    tasks = {task: {k: getattr(c, k) for k in ("mrr", "other_mrr", "mean_diff", "p_value", "n")} for task, c in compared.items()}
    found = regressions(compared, reg.alpha, reg.tolerance)
    result = {"name": name, "version": str(version.version), "tasks": tasks, "regressions": found}
    write_json(out / "check.json", result)
    if found:
        raise ChampionRegressed(f"{name} v{version.version} regressed on the frozen suite: " + "; ".join(found))
    return result


# The one registry of stages, in pipeline order: `r1ranker stage <name>` (and so every dvc.yaml command) runs
# `STAGES[name](params)`; the flows' tasks call the same functions.
STAGES: dict[str, Callable[..., dict[str, Any]]] = {
    "prepare": prepare_stage, "validate": validate_stage, "prompts": prompts_stage,
    "train": train_stage, "evaluate": evaluate_stage, "register": register_stage,
}
