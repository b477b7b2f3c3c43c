"""RL training for IRanker and DRanker: TRL GRPO, and an exact expected-reward trainer for score and fast mode.

Both read only the train split, build prompts with the same `build_prompt` the
evaluation uses (the template hash is saved with the model), score with the
rewards of `components.rewards` (weights from params.yaml), and save a loadable
folder: weights (LoRA merged), tokenizer and `ranker_config.json`.

- `algo="grpo"` (reasoning or answer-only generation): TRL's `GRPOTrainer`;
  IRanker data are elimination steps at every pool size, DRanker data full lists.
- `algo="expected-reward"` (fast mode): the action is one label out of the
  remaining candidates, so the expected reward sum_a pi(a|x) r(a) and its exact
  gradient come from one forward pass per prompt; pi is the softmax of the
  next-token logits restricted to the remaining labels after `<answer>`. A KL
  term to the frozen reference keeps the policy close. No sampling: GRPO's group
  is a Monte-Carlo estimate of the same gradient at several times the cost.
  `objective="soft-target"` fits pi instead to q(a) ~ exp(r(a)/target_tau), the
  optimum of the entropy-regularized one-step problem (cross-entropy -sum q log pi).
  Its logit gradient pi - q does not vanish when pi sits on one label, which the
  expected reward's p_a (r_a - E[r]) does: SmolLM2 starts by naming one letter
  for almost every prompt, and there the expected reward barely moves.
  `objective="keep-target"` (score mode) fits the candidate to keep, softmax(s /
  score_tau), to softmax(-r/target_tau): with one gold item -log softmax(s)[gold],
  the listwise loss of the pool's last elimination, whose gradient keeps lifting
  the gold score until it tops the pool.
- `mode="score"` (the default for expected-reward): the same exact gradient, with
  the pool's logits -s_i / score_tau from each candidate's scorer score
  (`components.scorers`): the gradient flows through the scores into LoRA on the
  upper layers and, for the pointer scorer, its zero-initialised head, which is
  saved beside the weights. The pointer's gradient stops at the hidden states
  unless `pointer_trains_lora`, so routing cannot pull the likelihood scorers.
  A context-free scorer's scores do not depend on the pool, so a sample's pools
  are one batch item scored once.

Health monitors (every logged step): per-reward mean/std, the share of groups
whose rewards all tie (no learning signal), invalid / no-answer rates,
completion and think lengths, KL. Sustained no-signal or a rising invalid rate
warns and, when `stop_early`, stops the run with a message that says why. A step
whose loss or any trainable weight is NaN or infinite stops the run at once with
`TrainingDiverged` (naming the step), before that step's checkpoint: no final
model is written.

Held-out check (expected-reward trainer, `validation.groups` > 0): whole groups
(users, queries) of the train split are kept out of training, and every
`validation.every` steps the argmax label's reward on their prompts is logged
next to a uniform pick's (`val/...`), with how often the candidate the policy
would keep is the pool's best (`val/keep_best/...`). A training batch's reward rises too when
the model memorises its rows; this curve rises only when what it learned carries
to prompts it never saw. The test split is never read.

Modules: `config` (TrainConfig and its checks), `data` (train split, rows,
reward tables), `policy` (model, LoRA, loss, final model), `monitors` (health),
`checkpoints`, `runs` (run.json: which run owns the output folder, whether it
finished, what --resume may continue), `expected_reward` (ExpectedRewardTrainer)
and `grpo`. The metrics
go to MLflow through `components.tracking.log_training_metrics`.
"""

from __future__ import annotations

from typing import Any

from components.training.config import (
    ALGOS,
    AUTOCAST,
    OBJECTIVES,
    TRAIN_MODES,
    LoraSettings,
    MonitorSettings,
    TrainConfig,
    TrainingConfigError,
    ValidationSettings,
    autocast_dtype,
    build_train_config,
    check_fits_context,
    model_context,
)
from components.training.data import build_rows, load_train_samples, load_validation_samples
from components.training.expected_reward import ExpectedRewardTrainer, train_expected_reward
from components.training.grpo import train_grpo
from components.training.monitors import THINK_RE, HealthMonitor, ParseStats, ParseStatsReward, TrainingDiverged
from components.training.policy import apply_lora, load_policy, lora_config, objective_loss, save_final

__all__ = [
    "ALGOS", "AUTOCAST", "OBJECTIVES", "THINK_RE", "TRAIN_MODES",
    "ExpectedRewardTrainer", "HealthMonitor", "LoraSettings", "MonitorSettings", "ParseStats", "ParseStatsReward",
    "TrainConfig", "TrainingConfigError", "TrainingDiverged", "ValidationSettings",
    "apply_lora", "autocast_dtype", "build_rows", "build_train_config", "check_fits_context", "load_policy",
    "load_train_samples", "load_validation_samples", "lora_config", "model_context", "objective_loss", "save_final",
    "train", "train_expected_reward", "train_grpo",
]


def train(cfg: TrainConfig, resume: bool = False, progress=None, overwrite: bool = False) -> dict[str, Any]:
    """Train as `cfg.algo` says. `resume`: only the run the output folder's run.json names, with the same settings;
    `overwrite`: a fresh run deletes the folder's earlier run first (`runs`)."""
    if cfg.algo == "grpo":
        return train_grpo(cfg, resume, overwrite)
    return train_expected_reward(cfg, resume, progress, overwrite)
