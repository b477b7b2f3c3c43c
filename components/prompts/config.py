"""Prompt settings (`prompts` in params.yaml), the prompt version and the ranker roles."""

from __future__ import annotations

from dataclasses import dataclass, replace

from components.config import ConfigError, check, setting, unknown_keys

# 2: cuts decided on the full candidate set, kept for every IRanker subset
# 3: the task and answer format come before the candidate list, so the list ends the prompt
# 4: user text cannot forge prompt structure (`plain_text`)
PROMPT_VERSION = "4"
ROLES = ("dranker", "iranker")  # the two LLM rankers: one name each, to train, evaluate, register and serve
LABEL_POSITIONS = ("before", "after")
# names the LLM rankers had before one name each; still read from older files and flags, never written
FORMER_NAMES = {"direct": "dranker", "iterative": "iranker"}


def ranker_name(name: str) -> str:
    """A ranker's one name: a former name maps to it, every other name is returned as it is.

    >>> ranker_name("iterative"), ranker_name("iranker"), ranker_name("bm25")
    ('iranker', 'iranker', 'bm25')
    """
    return FORMER_NAMES.get(name, name)


def role_of(ranker: str) -> str:
    """The LLM ranker `ranker` names (a former name included); a ValueError for any other name."""
    name = ranker_name(ranker)
    if name not in ROLES:
        raise ValueError(f"not an LLM ranker: {ranker!r}; valid: {list(ROLES)}")
    return name


class PromptTooLong(ValueError):
    """A sample cannot fit the token budget even with every text cut to the minimum."""


@dataclass(frozen=True)
class PromptConfig:
    """The `prompts` section: how every DRanker/IRanker prompt and scorer input is built."""

    reasoning: bool = setting(True, "<think> then <answer>; false: <answer> only")
    max_prompt_tokens: int = setting(1024, "histories and long texts are cut to fit, cuts marked and counted")
    min_text_tokens: int = setting(12, "a text is never cut below this many tokens")
    stable_labels: bool = setting(False, "routing: each LLM keeps one letter across samples (see the module doc)")
    label_position: str = setting("before", "\"[A] text\" (before) or \"text [A]\" (after); see the module doc")
    score_history_items: int = setting(15, "score mode, candidate-likelihood: the rec history keeps its N most recent items")
    score_candidate_tokens: int = setting(48, "score mode, candidate-likelihood: a scored item title is cut to N tokens")
    system: str = setting("You are a careful ranking assistant. You follow the answer format exactly.",
                          "the system message of every chat prompt")

    def for_mode(self, mode: str) -> "PromptConfig":
        """The prompt a ranker mode uses: fast mode reads the label right away, so it never asks to think."""
        return replace(self, reasoning=mode == "reasoning" and self.reasoning)

    def __post_init__(self) -> None:
        problems = []
        if self.max_prompt_tokens < 64:
            problems.append(f"max_prompt_tokens must be >= 64, got {self.max_prompt_tokens}")
        if self.min_text_tokens < 1:
            problems.append(f"min_text_tokens must be >= 1, got {self.min_text_tokens}")
        if self.score_history_items < 1 or self.score_candidate_tokens < 1:
            problems.append("score_history_items and score_candidate_tokens must be >= 1, got "
                            f"{self.score_history_items} and {self.score_candidate_tokens}")
        if self.label_position not in LABEL_POSITIONS:
            problems.append(f"label_position must be one of {list(LABEL_POSITIONS)}, got {self.label_position!r}")
        check("", problems)


def prompt_config(raw: dict | None) -> PromptConfig:
    """PromptConfig from the `prompts` section of params.yaml; unknown keys are an error."""
    raw = dict(raw or {})
    problem = unknown_keys(PromptConfig, raw, "prompts")
    if problem:
        raise ConfigError(problem)
    return PromptConfig(**raw)
