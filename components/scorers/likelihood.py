"""Likelihood scorers: a candidate's score is the mean log-likelihood of a text continuation (context free)."""

from __future__ import annotations

from collections.abc import Sequence

from components.prompts import SCORER_TEXT, PromptConfig, ScorerText, build_score_inputs
from components.schema import RankingSample
from components.scorers.forward import continuation_scores


class LikelihoodScorer:
    """Mean log-likelihood of a text continuation (see the module doc); context-free."""

    context_free = True  # a candidate's score does not depend on the others: ranked in one pass
    has_head = False  # nothing trained beside the model's own weights

    def __init__(self, name: str, text: ScorerText | None = None):
        """`text`: the scorer's wording and layout; a built-in scorer's (`SCORER_TEXT`) by default."""
        self.name = name
        self.text = text or SCORER_TEXT[name]

    def check(self, sample: RankingSample, tok, cfg: PromptConfig) -> int:
        """Tokens of the longest scored sequence; raises PromptTooLong when the sample cannot fit."""
        return build_score_inputs(sample, self.text, tok, cfg).n_tokens

    def scores(self, model, head, tok, sample: RankingSample, remaining: Sequence[str], cfg: PromptConfig,
               use_cache: bool = True, chunk_size: int | None = None):
        """(scores aligned with `remaining`, prompt tokens of the sequences scored, of those reused from the cache).

        Rows are computed in length-sorted chunks of at most `chunk_size` (default `SCORE_CHUNK`): see
        `continuation_scores`, which also counts padding in `PAD_STATS`.
        """
        inputs = build_score_inputs(sample, self.text, tok, cfg, remaining)
        scores = continuation_scores(model, inputs, tok.pad_token_id, use_cache, chunk_size)  # the sample's order
        if remaining is not None and tuple(remaining) != inputs.ids:
            where = {cid: k for k, cid in enumerate(inputs.ids)}
            scores = scores[[where[c] for c in remaining]]
        tokens = sum(len(inputs.shared) + len(c) + len(t) for c, t in zip(inputs.contexts, inputs.continuations))
        # the shared prefix but its last token is computed once instead of once per candidate
        reused = max(len(inputs.shared) - 1, 0) * (len(inputs.contexts) - 1) if use_cache else 0
        return scores, tokens, reused
