"""Score mode's likelihood-scorer inputs: their wording, token ids and budget."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from components.prompts.config import PromptConfig, PromptTooLong
from components.schema import RankingSample

SCORE_VERSION = "1"


@dataclass(frozen=True)
class ScorerText:
    """A likelihood scorer's wording: `before` + context + `after`, then the continuation whose mean
    log-likelihood is the score. Plain text, no chat template: the score is how likely the model finds the
    continuation, and a base LM's reading of text does not need the chat format.

    The continuation names what it holds, and so the layout: `{query}` (each candidate is the context and the
    query the continuation) or `{candidate}` (the query, a history, is one shared prefix that each candidate
    continues: its KV cache is computed once per sample).
    """

    before: str
    after: str
    continuation: str

    def __post_init__(self) -> None:
        if ("{query}" in self.continuation) == ("{candidate}" in self.continuation):
            raise ValueError(f"a scorer's continuation holds exactly one of {{query}} and {{candidate}}, "
                             f"got {self.continuation!r}")

    @property
    def candidate_is_context(self) -> bool:
        return "{query}" in self.continuation


# The wording of the built-in likelihood scorers (score version 1); every score-mode template hash covers it.
SCORER_TEXT = {
    # mean log p(query | passage): a passage that answers a question makes that question likely
    "query-likelihood": ScorerText("Passage: ", "\nPlease write a question based on this passage.\nQuestion:",
                                   " {query}"),
    # mean log p(item | history): the history is one prefix, computed once, that every candidate continues
    "candidate-likelihood": ScorerText("A user's history, oldest first:\n", "The next item this user chooses is:",
                                       " {candidate}"),
}


@dataclass(frozen=True)
class ScoreInputs:
    """Token ids a likelihood scorer computes, for the candidates asked for (in that order).

    Each candidate's sequence is `shared + contexts[i] + continuations[i]`; its score is the mean
    log-probability of the continuation's tokens. query-likelihood: nothing shared, the passage is the
    context and the query the continuation; candidate-likelihood: the history is shared and the
    candidate is the continuation.
    """

    ids: tuple[str, ...]  # candidate ids
    shared: list[int]
    contexts: list[list[int]]
    continuations: list[list[int]]
    cuts: int

    @property
    def n_tokens(self) -> int:
        """Tokens of the longest scored sequence (what the budget bounds)."""
        return len(self.shared) + max(len(c) + len(t) for c, t in zip(self.contexts, self.continuations))


def user_ids(tokenizer, text: str) -> list[int]:
    """Token ids of user text: special-token strings in it (`<|im_end|>`) stay plain text."""
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]


def build_score_inputs(sample: RankingSample, scorer: str | ScorerText, tokenizer, cfg: PromptConfig = PromptConfig(),
                       remaining: Sequence[str] | None = None) -> ScoreInputs:
    """The token ids a likelihood scorer (its wording, or a built-in one's name) scores `sample`'s candidates
    (all, or `remaining`) with, cut to the budget.

    Budget: every scored sequence fits `max_prompt_tokens`. With the candidate as context (query-likelihood)
    the candidate text is cut (never below `min_text_tokens`); with the query as a shared history
    (candidate-likelihood) the most recent `score_history_items` history items are kept (fewer, oldest
    dropped, when they do not fit) and each candidate is cut to `score_candidate_tokens`. What cannot fit
    raises PromptTooLong (a counted skip).
    """
    if isinstance(scorer, str) and scorer not in SCORER_TEXT:
        raise ValueError(f"scorer {scorer!r} has no text inputs; text scorers: {sorted(SCORER_TEXT)}")
    text = SCORER_TEXT[scorer] if isinstance(scorer, str) else scorer
    keep = set(sample.candidate_ids if remaining is None else remaining)
    cands = [c for c in sample.candidates if c.id in keep]
    before, after = user_ids(tokenizer, text.before), user_ids(tokenizer, text.after)
    budget, cuts = cfg.max_prompt_tokens, 0
    if text.candidate_is_context:
        query = user_ids(tokenizer, text.continuation.format(query=sample.query))
        room = budget - len(before) - len(after) - len(query)
        if room < cfg.min_text_tokens:
            raise PromptTooLong(f"sample {sample.sample_id!r}: the query takes {len(query)} tokens, leaving {room} "
                                f"for a passage within max_prompt_tokens {budget}; raise it or shorten the query")
        contexts = []
        for c in cands:
            ids = user_ids(tokenizer, c.text)
            cuts += len(ids) > room
            contexts.append(before + ids[:room] + after)
        return ScoreInputs(tuple(c.id for c in cands), [], contexts, [query] * len(cands), cuts)
    conts = []
    for c in cands:
        ids = user_ids(tokenizer, text.continuation.format(candidate=c.text))
        cuts += len(ids) > cfg.score_candidate_tokens
        conts.append(ids[: cfg.score_candidate_tokens])
    lines = [line for line in sample.query.splitlines() if line.strip()] or [sample.query]
    items = [user_ids(tokenizer, line + "\n") for line in lines[-cfg.score_history_items:]]
    cuts += len(lines) - len(items)
    room = budget - len(before) - len(after) - max(len(c) for c in conts)
    while items and sum(map(len, items)) > room:
        items, cuts = items[1:], cuts + 1
    if not items:
        raise PromptTooLong(f"sample {sample.sample_id!r}: not even the last history item fits max_prompt_tokens "
                            f"{budget} beside a candidate; raise it")
    shared = before + [t for item in items for t in item] + after
    return ScoreInputs(tuple(c.id for c in cands), shared, [[] for _ in cands], conts, cuts)
