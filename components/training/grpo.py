"""Reasoning-mode training with TRL's `GRPOTrainer`: our prompts, rewards, health monitor and wall-clock budget.

IRanker data are elimination steps at every pool size, DRanker data full lists. A
weight-0 probe reward records parse statuses for the health monitor.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

from components.io import write_json
from components.rewards import build_rewards
from components.tracking import log_training_metrics
from components.training.config import TrainConfig, check_fits_context
from components.training.data import build_rows, load_train_samples
from components.training.monitors import HealthMonitor, ParseStats, ParseStatsReward, diverged, first_non_finite
from components.training.policy import lora_config, save_final
from components.training.runs import RUN_ID_FILE, RunRecord, check_resume, finish_run, start_run
from components.models import load_model, model_path, pick_device

log = logging.getLogger(__name__)


def train_grpo(cfg: TrainConfig, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """TRL GRPOTrainer with our rewards, prompts and health monitor.

    `resume`: only the run the output folder's run.json names; `overwrite`: a fresh run deletes the folder's earlier
    run first (`components.training.runs`)."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    check_fits_context(cfg)
    samples = load_train_samples(cfg)
    out = Path(cfg.output_dir)
    # read-only, in every process: another run's checkpoint is refused before the model loads
    resumed = check_resume(cfg) if resume else None

    model, tok = load_model(cfg.model, device=cfg.device, seed=cfg.seed, for_training=True)
    # TRL builds its frozen reference model from a path: give it one (random models are saved first)
    path = model_path(cfg.model)
    if path is None:
        path = str(out / "base-model")
        model.save_pretrained(path)
        tok.save_pretrained(path)
    model = path
    rows = build_rows(samples, cfg, tok)
    dataset = Dataset.from_list(rows)
    fns, weights = build_rewards(cfg.reward_spec)
    stats = ParseStats()
    probe = ParseStatsReward(stats, "single" if cfg.ranker == "iranker" else "ranking")
    monitor = HealthMonitor(cfg.monitor, out / "health.jsonl")  # start_run deleted an earlier run's
    on_cuda = pick_device(cfg.device).startswith("cuda")

    class Health(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs and not any(k.startswith("rewards/") for k in logs):
                return
            loss = logs.get("loss")
            if isinstance(loss, (int, float)) and not math.isfinite(loss):  # before this step's checkpoint is saved
                raise diverged(state.global_step, f"the loss is not finite ({loss})", out)
            metrics = {k: v for k, v in logs.items() if isinstance(v, (int, float))}
            metrics["health/no_signal_frac"] = float(logs.get("frac_reward_zero_std", 0.0))
            metrics["health/kl"] = float(logs.get("kl", 0.0))
            metrics.update(stats.read())
            log_training_metrics(metrics, state.global_step)
            if monitor.update(state.global_step, metrics):
                control.should_training_stop = True

        def on_step_end(self, args, state, control, **kwargs):
            model = kwargs.get("model")  # a NaN model never ships: stop before this step's checkpoint and final/
            bad = model is not None and first_non_finite((n, p) for n, p in model.named_parameters() if p.requires_grad)
            if bad:
                raise diverged(state.global_step, f"the trainable weight {bad!r} is not finite after the update", out)
            if cfg.max_seconds and time.perf_counter() - started >= cfg.max_seconds:
                log.info("step %d: wall-clock budget of %.0fs spent; stopping", state.global_step, cfg.max_seconds)
                control.should_training_stop = True

        def on_save(self, args, state, control, **kwargs):
            # TRL wrote checkpoint-<step>; the run id beside it lets --resume refuse another run's checkpoint
            if state.is_world_process_zero:
                (out / f"checkpoint-{state.global_step}" / RUN_ID_FILE).write_text(run_id + "\n", encoding="utf-8")

    args = GRPOConfig(
        output_dir=str(out), max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
        num_generations=cfg.num_generations, max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature, learning_rate=cfg.learning_rate, beta=cfg.beta,
        reward_weights=[*weights, 0.0], logging_steps=cfg.logging_steps, save_steps=cfg.save_steps,
        report_to="none", seed=cfg.seed, bf16=on_cuda, use_cpu=not on_cuda,
        gradient_checkpointing=cfg.gradient_checkpointing, remove_unused_columns=False, disable_dropout=True,
        dataloader_num_workers=0,
    )
    from transformers import AutoConfig

    n_layers = AutoConfig.from_pretrained(path).num_hidden_layers
    peft_config = lora_config(cfg.lora, n_layers) if cfg.lora.enabled else None
    trainer = GRPOTrainer(model=model, reward_funcs=[*fns, probe], args=args, train_dataset=dataset,
                          processing_class=tok, peft_config=peft_config, callbacks=[Health()])
    main = trainer.accelerator.is_main_process
    with trainer.accelerator.main_process_first():  # one run record: the main process writes it, the others read it
        run = start_run(cfg, resume, overwrite) if main else None
        record = run.record if run else RunRecord.read(out)
    run_id = record.run_id  # read by Health.on_save
    last = resumed.checkpoint if resumed else None
    started = time.perf_counter()  # read by Health.on_step_end for the wall-clock budget
    trainer.train(resume_from_checkpoint=str(last) if last else None)
    steps = trainer.state.global_step
    final = save_final(trainer.model, tok, cfg, out / "final", {"steps": steps, "run_id": run_id})
    summary = {"steps": steps, "final": str(final), "stopped_early": monitor.stop_reason, "rows": len(rows),
               "seconds": time.perf_counter() - started}
    write_json(out / "summary.json", summary)
    if main:
        finish_run(out, record)
    return summary
