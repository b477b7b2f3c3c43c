"""The pointer scorer: a trained head over each candidate line's last hidden state in the listwise prompt."""

from __future__ import annotations

from collections.abc import Sequence

from components.prompts import PromptConfig, build_prompt
from components.schema import RankingSample
from components.scorers.forward import hidden_states, token_positions


class PointerScorer:
    """The head over each candidate line's last hidden state in the listwise IRanker prompt."""

    name = "pointer"
    context_free = False  # re-scored after every elimination: it sees the remaining list
    has_head = True  # a ScoreHead, trained and saved beside the model; pools are scored in batches (`batch_scores`)

    def check(self, sample: RankingSample, tok, cfg: PromptConfig) -> int:
        return build_prompt(sample, "iranker", tok, cfg.for_mode("score")).n_tokens

    def prompt_ids(self, tok, sample: RankingSample, remaining: Sequence[str], cfg: PromptConfig):
        """(ids, candidate ids in listing order, the token index ending each candidate's line)."""
        p = build_prompt(sample, "iranker", tok, cfg.for_mode("score"), remaining=remaining)
        labels = list(p.labels)
        ids, at = token_positions(tok, p.text, [p.line_ends[lab] for lab in labels])
        return ids, [p.labels[lab] for lab in labels], at

    def scores(self, model, head, tok, sample: RankingSample, remaining: Sequence[str], cfg: PromptConfig,
               use_cache: bool = True):
        """(scores aligned with `remaining`, prompt tokens, 0 reused): one forward pass of the prompt showing them."""
        scores, tokens = self.batch_scores(model, head, tok, [(sample, remaining)], cfg)
        return scores[0], tokens, 0

    def batch_scores(self, model, head, tok, pools: Sequence[tuple[RankingSample, Sequence[str]]], cfg: PromptConfig,
                     grad_features: bool = True):
        """One left-padded batch over several pools: a score tensor per pool, aligned with its ids.

        `grad_features=False` computes the hidden states without a graph: only the head gets a gradient.
        """
        import contextlib

        import torch

        built = [self.prompt_ids(tok, s, rem, cfg) for s, rem in pools]
        with contextlib.nullcontext() if grad_features else torch.no_grad():
            hidden, pads = hidden_states(model, [ids for ids, _, _ in built], tok.pad_token_id)
        out = []
        for b, ((ids, order, at), (_, rem)) in enumerate(zip(built, pools)):
            s = head(hidden[b, [pads[b] + a for a in at]])
            where = {cid: k for k, cid in enumerate(order)}
            out.append(s[[where[c] for c in rem]])
        return out, sum(len(ids) for ids, _, _ in built)
