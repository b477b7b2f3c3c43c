"""Score mode: rank by per-candidate scores read where the model knows the candidates.

Fast mode reads one letter token after `<answer>`; a small model puts almost all
of that on one letter whatever the candidates. Score mode gives every remaining
candidate i a score s_i instead: IRanker eliminates the lowest, DRanker sorts,
and the elimination policy the RL trains is pi(i | S) = softmax over S of -s_i / tau.

The `SCORERS` registry (one scorer per scenario by default, `DEFAULT_SCORERS`,
overridable per scenario or per task):

- `query-likelihood` (passage, custom): mean log p(query | passage + instruction).
  The model reads each passage and judges how likely the query is as a question
  about it: query likelihood, the classic language-model retrieval score.
- `candidate-likelihood` (rec): mean log p(candidate | history + instruction).
  The history is one prefix: its KV cache is computed once per sample and every
  candidate continues it, so a 20-candidate sample costs one history plus 20 titles.
- `pointer` (router; any scenario): a linear head (zero-initialised, trained,
  saved with the model as `score_head.safetensors`) over the last hidden state at
  the end of each candidate's line in the listwise IRanker prompt. It sees the
  other candidates, so an IRanker re-scores the remaining list after every
  elimination (reusing the KV cache of the prefix the prompts share).

A scorer that does not see the other candidates (`context_free`) gives each
candidate the same score in every pool, so eliminating the lowest score n-1 times
is sorting once: such samples are ranked in one pass (n scored continuations, not
n-1 rounds), for IRanker and DRanker alike.

User text is tokenised on its own with special-token strings kept as plain text
(`prompts.user_ids`), so a candidate cannot close the chat turn or forge structure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.prompts import SCORER_TEXT, PromptConfig, PromptTooLong, mode_template_hash
from components.schema import RankingSample
from components.scorers.forward import (
    PAD_STATS,
    SCORE_CHUNK,
    HiddenCache,
    PadStats,
    continuation_scores,
    hidden_states,
    hidden_states_cached,
    left_pad,
    length_chunks,
    score_rows,
    token_positions,
)
from components.scorers.head import HEAD_FILE, ScoreHead
from components.scorers.likelihood import LikelihoodScorer
from components.scorers.pointer import PointerScorer

DEFAULT_SCORERS = {"passage": "query-likelihood", "custom": "query-likelihood",
                   "rec": "candidate-likelihood", "router": "pointer"}


class UnknownScorerError(ValueError):
    """A scorer name that is not in `SCORERS`; the message lists the valid ones."""


SCORERS: dict[str, Any] = {
    "query-likelihood": LikelihoodScorer("query-likelihood"),
    "candidate-likelihood": LikelihoodScorer("candidate-likelihood"),
    "pointer": PointerScorer(),
}


def get_scorer(name: str):
    if name not in SCORERS:
        raise UnknownScorerError(f"unknown scorer {name!r}; valid scorers: {sorted(SCORERS)}")
    return SCORERS[name]


def scorers_help() -> str:
    """The scorers and the scenario defaults, for help texts (read off the registry, so a new scorer is listed)."""
    defaults = ", ".join(f"{scenario} {name}" for scenario, name in DEFAULT_SCORERS.items())
    return f"scorers: {', '.join(SCORERS)}; defaults: {defaults}"


def resolve_scorers(raw: Mapping[str, str] | None) -> dict[str, str]:
    """The scenario defaults overlaid with `raw` (keys: a scenario or a task name); names checked.

    >>> resolve_scorers({"rec-movie": "pointer"})["rec-movie"], resolve_scorers(None)["passage"]
    ('pointer', 'query-likelihood')
    """
    out = {**DEFAULT_SCORERS, **dict(raw or {})}
    for key, name in out.items():
        if name not in SCORERS:
            raise UnknownScorerError(f"scorer for {key!r}: unknown scorer {name!r}; valid scorers: {sorted(SCORERS)}")
    return out


def has_head(scorers: Mapping[str, str] | None) -> bool:
    """Whether any of these scorers carries a trained head (each scorer declares `has_head`)."""
    return any(get_scorer(name).has_head for name in (scorers or {}).values())


def template_hash(tokenizer, role: str, prompt: PromptConfig, mode: str, scorers: Mapping[str, str] | None) -> str:
    """The template hash of a ranker role in `mode`; in score mode over its scorers, whether one has a head, and
    the wording of the text scorers in use (a built-in one's is always covered, as `SCORER_TEXT`)."""
    if mode != "score":
        return mode_template_hash(tokenizer, role, prompt, mode)
    in_use = {name: get_scorer(name) for name in (scorers or {}).values()}
    texts = {name: s.text for name, s in in_use.items()
             if getattr(s, "text", None) is not None and s.text != SCORER_TEXT.get(name)}
    return mode_template_hash(tokenizer, role, prompt, mode, dict(scorers or {}), head=has_head(scorers), texts=texts)


def scorer_name(sample: RankingSample, scorers: Mapping[str, str]) -> str:
    """A task's own scorer if one is set, else its scenario's."""
    return scorers.get(sample.task) or scorers.get(sample.scenario) or DEFAULT_SCORERS[sample.scenario]


def check_sample(sample: RankingSample, scorers: Mapping[str, str], tok, cfg: PromptConfig) -> int:
    """Prompt tokens the sample's scorer needs; PromptTooLong when it cannot fit the budget."""
    try:
        return get_scorer(scorer_name(sample, scorers)).check(sample, tok, cfg)
    except PromptTooLong:
        raise
    except ValueError as err:  # e.g. a sample with fewer than 2 candidates
        raise PromptTooLong(str(err)) from err


__all__ = ["DEFAULT_SCORERS", "HEAD_FILE", "PAD_STATS", "SCORERS", "SCORE_CHUNK", "HiddenCache", "LikelihoodScorer",
           "PadStats", "PointerScorer", "ScoreHead", "UnknownScorerError", "check_sample", "continuation_scores",
           "get_scorer", "has_head", "hidden_states", "hidden_states_cached", "left_pad", "length_chunks", "resolve_scorers", "scorers_help",
           "score_rows", "scorer_name", "template_hash", "token_positions"]
