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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.prompts import PromptConfig, PromptTooLong, ScoreInputs, build_prompt, build_score_inputs
from components.schema import RankingSample

HEAD_FILE = "score_head.safetensors"
DEFAULT_SCORERS = {"passage": "query-likelihood", "custom": "query-likelihood",
                   "rec": "candidate-likelihood", "router": "pointer"}


class UnknownScorerError(ValueError):
    """A scorer name that is not in `SCORERS`; the message lists the valid ones."""


# ---------------------------------------------------------------- the model computations


def _left_pad(seqs: Sequence[Sequence[int]], pad: int, offset: int, device):
    """Left-padded [n, L] ids, their attention mask and position ids (starting at `offset`)."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, width - len(s):] = torch.tensor(list(s))
            mask[i, width - len(s):] = 1
    positions = (offset + mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


def _device(model):
    return next(model.parameters()).device


SCORE_CHUNK = 16  # rows per forward pass in `continuation_scores`: bounds memory whatever the candidate count


@dataclass
class PadStats:
    """Token positions `continuation_scores` ran through the model since the last `reset()`.

    `computed`: real tokens (each row's own tokens, plus a cached shared prefix once per call);
    `padded`: left-padding positions. `fraction` = padded / (computed + padded).
    """

    computed: int = 0
    padded: int = 0

    def reset(self) -> None:
        self.computed = self.padded = 0

    @property
    def fraction(self) -> float:
        total = self.computed + self.padded
        return self.padded / total if total else 0.0


PAD_STATS = PadStats()


def score_rows(inputs: ScoreInputs, use_cache: bool = True) -> tuple[list[int], list[list[int]]]:
    """(the shared prefix computed once and cached, each candidate's row of ids the batch computes).

    With `use_cache` the prefix is all of `shared` but its last token, which every row repeats so its
    output predicts the first continuation token; without it the prefix is empty and rows hold everything.
    """
    shared = list(inputs.shared)
    prefix, last = (shared[:-1], shared[-1:]) if shared else ([], [])
    rows = [last + ctx + cont for ctx, cont in zip(inputs.contexts, inputs.continuations)]
    if prefix and not use_cache:
        return [], [prefix + r for r in rows]
    return prefix, rows


MAX_PAD_SHARE = 0.1  # a row joins a chunk only if it is at least 90% as long as the chunk's longest


def length_chunks(lengths: Sequence[int], chunk_size: int | None = None) -> list[list[int]]:
    """Row indices sorted longest first, cut into chunks of at most `chunk_size` (default `SCORE_CHUNK`) rows.

    A chunk also closes before a row shorter than (1 - MAX_PAD_SHARE) of its longest row, so padding stays
    under 10% of the positions computed whatever the spread of lengths (a first-stage run's passages vary a lot).

    >>> length_chunks([100, 50, 95, 48, 47], 2)
    [[0, 2], [1, 3], [4]]
    >>> length_chunks([3, 9, 1], 1000)
    [[1], [0], [2]]
    """
    size = max(int(chunk_size or SCORE_CHUNK), 1)
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])  # stable: ties keep the input order
    chunks: list[list[int]] = []
    for i in order:
        if chunks and len(chunks[-1]) < size and lengths[i] >= (1 - MAX_PAD_SHARE) * lengths[chunks[-1][0]]:
            chunks[-1].append(i)
        else:
            chunks.append([i])
    return chunks


def _repeat_cache(kv, m: int):
    """A copy of the prefix cache `kv` repeated to `m` rows; `kv` itself is left as it was.

    `batch_repeat_interleave` and the forward pass's cache update rebind each layer's tensors, so shallow
    copies of the cache and its layers suffice (the new tensors are new graph nodes: gradients still flow).
    """
    import copy

    out = copy.copy(kv)
    out.layers = [copy.copy(layer) for layer in kv.layers]
    out.batch_repeat_interleave(m)
    return out


def continuation_scores(model, inputs: ScoreInputs, pad_id: int, use_cache: bool = True,
                        chunk_size: int | None = None):
    """Mean log p(continuation_i | shared + context_i) for every candidate, in the input order: [n].

    Rows (see `score_rows`) are sorted longest first and computed in left-padded chunks of at most
    `chunk_size` rows (default `SCORE_CHUNK`), so memory is bounded whatever the candidate count and
    each chunk pads little; every continuation ends in the last column and only the chunk's last
    max(len(continuation)) + 1 positions' logits are kept. With `use_cache` the shared prefix is
    computed once and its KV cache repeated to each chunk's row count. Differentiable when grads are
    on (the chunks' scores are concatenated, then put back in the input order).

    Padding accounting: every call adds to the module's `PAD_STATS` (`computed` real tokens, `padded`
    pad positions; `PAD_STATS.reset()`, `PAD_STATS.fraction`).
    """
    import torch

    device = _device(model)
    prefix, rows = score_rows(inputs, use_cache)
    kv, offset = None, 0
    if prefix:
        out = model(input_ids=torch.tensor([prefix], device=device), use_cache=True, logits_to_keep=1)
        kv, offset = out.cache, len(prefix)
        PAD_STATS.computed += len(prefix)
    chunks = length_chunks([len(r) for r in rows], chunk_size)
    parts = []
    for chunk in chunks:
        m = len(chunk)
        conts = [inputs.continuations[i] for i in chunk]
        ids, mask, positions = _left_pad([rows[i] for i in chunk], pad_id, offset, device)
        real = sum(len(rows[i]) for i in chunk)
        PAD_STATS.computed += real
        PAD_STATS.padded += ids.numel() - real
        cache = None
        if kv is not None:
            cache = _repeat_cache(kv, m)
            mask = torch.cat([torch.ones((m, offset), dtype=mask.dtype, device=device), mask], dim=1)
        width = max(len(c) for c in conts)  # the positions predicting the continuations' tokens
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
                       use_cache=cache is not None, logits_to_keep=width + 1).logits[:, :width].float()
        targets = torch.zeros((m, width), dtype=torch.long)
        valid = torch.zeros((m, width), dtype=torch.bool)
        for j, cont in enumerate(conts):
            if cont:
                targets[j, width - len(cont):] = torch.tensor(cont)
                valid[j, width - len(cont):] = True
        targets, valid = targets.to(device), valid.to(device)
        logp = logits.gather(-1, targets[..., None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)  # [m, width]
        lengths = torch.tensor([len(c) for c in conts], dtype=logp.dtype, device=device)
        parts.append(torch.where(valid, logp, torch.zeros_like(logp)).sum(-1) / lengths)
    flat = torch.cat(parts)  # in the sorted order
    where = torch.empty(len(rows), dtype=torch.long)
    where[[i for chunk in chunks for i in chunk]] = torch.arange(len(rows))
    return flat[where.to(device)]


def token_positions(tokenizer, text: str, char_ends: Sequence[int]) -> tuple[list[int], list[int]]:
    """(the ids of `text`, for each character offset in `char_ends` the index of the token ending there)."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    starts = [a for a, _ in enc["offset_mapping"]]
    import bisect

    return enc["input_ids"], [bisect.bisect_left(starts, end) - 1 for end in char_ends]


def hidden_states(model, seqs: Sequence[Sequence[int]], pad_id: int):
    """The last layer's hidden states of each sequence, left-padded in one batch: [n, L, H], and the pads."""
    ids, mask, positions = _left_pad(seqs, pad_id, 0, _device(model))
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, output_hidden_states=True,
                logits_to_keep=1)
    width = ids.shape[1]
    return out.hidden_states[-1], [width - len(s) for s in seqs]


@dataclass
class HiddenCache:
    """One sample's last prompt: its ids, KV cache and last-layer hidden states (pointer IRanker on CPU)."""

    ids: list[int]
    kv: Any
    hidden: Any  # [len(ids), H]


def hidden_states_cached(model, ids: list[int], cache: HiddenCache | None) -> tuple[Any, HiddenCache, int]:
    """Hidden states of `ids` [L, H], recomputing only what follows the common prefix with `cache`."""
    import torch

    from components.rankers.backend import _full_attention, common_prefix

    reused, kv = 0, None
    if cache is not None and _full_attention(cache.kv):
        reused = min(common_prefix(cache.ids, ids), len(ids) - 1)
        if reused > 0:
            kv = cache.kv
            kv.crop(reused - kv.get_seq_length())
    out = model(input_ids=torch.tensor([ids[reused:]], device=_device(model)), cache=kv, use_cache=True,
                output_hidden_states=True, logits_to_keep=1)
    new = out.hidden_states[-1][0]
    hidden = torch.cat([cache.hidden[:reused], new]) if reused else new
    return hidden, HiddenCache(ids, out.cache, hidden), reused


class ScoreHead:
    """A linear map from a hidden state to a score, zero-initialised: every candidate starts tied."""

    def __init__(self, hidden_size: int, device=None):
        import torch

        self.linear = torch.nn.Linear(hidden_size, 1, device=device)
        torch.nn.init.zeros_(self.linear.weight)
        torch.nn.init.zeros_(self.linear.bias)

    def __call__(self, h):
        return self.linear(h.float()).squeeze(-1)

    def parameters(self):
        return self.linear.parameters()

    def save(self, folder: Path) -> Path:
        from safetensors.torch import save_file

        path = Path(folder) / HEAD_FILE
        save_file({k: v.detach().cpu().contiguous() for k, v in self.linear.state_dict().items()}, str(path))
        return path

    @classmethod
    def load(cls, folder: Path, hidden_size: int, device=None) -> "ScoreHead":
        """The head saved in `folder`, or a zero head when there is none (an untrained model)."""
        head = cls(hidden_size, device)
        path = Path(folder) / HEAD_FILE if folder else None
        if path is not None and path.exists():
            from safetensors.torch import load_file

            state = load_file(str(path), device=str(device or "cpu"))
            bad = next((k for k, v in state.items() if not v.isfinite().all()), None)
            if bad is not None:  # as for the model's weights: a NaN head never ranks
                from components.io import DataError

                raise DataError(f"{path}: tensor {bad!r} of the score head is not finite; this model cannot rank")
            head.linear.load_state_dict(state)
        return head


# ---------------------------------------------------------------- scorers


class LikelihoodScorer:
    """Mean log-likelihood of a text continuation (see the module doc); context-free."""

    context_free = True

    def __init__(self, name: str):
        self.name = name

    def check(self, sample: RankingSample, tok, cfg: PromptConfig) -> int:
        """Tokens of the longest scored sequence; raises PromptTooLong when the sample cannot fit."""
        return build_score_inputs(sample, self.name, tok, cfg).n_tokens

    def scores(self, model, head, tok, sample: RankingSample, remaining: Sequence[str], cfg: PromptConfig,
               use_cache: bool = True, chunk_size: int | None = None):
        """(scores aligned with `remaining`, prompt tokens of the sequences scored, of those reused from the cache).

        Rows are computed in length-sorted chunks of at most `chunk_size` (default `SCORE_CHUNK`): see
        `continuation_scores`, which also counts padding in `PAD_STATS`.
        """
        inputs = build_score_inputs(sample, self.name, tok, cfg, remaining)
        scores = continuation_scores(model, inputs, tok.pad_token_id, use_cache, chunk_size)  # the sample's order
        if remaining is not None and tuple(remaining) != inputs.ids:
            where = {cid: k for k, cid in enumerate(inputs.ids)}
            scores = scores[[where[c] for c in remaining]]
        tokens = sum(len(inputs.shared) + len(c) + len(t) for c, t in zip(inputs.contexts, inputs.continuations))
        # the shared prefix but its last token is computed once instead of once per candidate
        reused = max(len(inputs.shared) - 1, 0) * (len(inputs.contexts) - 1) if use_cache else 0
        return scores, tokens, reused


class PointerScorer:
    """The head over each candidate line's last hidden state in the listwise IRanker prompt."""

    name = "pointer"
    context_free = False

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


SCORERS: dict[str, Any] = {
    "query-likelihood": LikelihoodScorer("query-likelihood"),
    "candidate-likelihood": LikelihoodScorer("candidate-likelihood"),
    "pointer": PointerScorer(),
}


def get_scorer(name: str):
    if name not in SCORERS:
        raise UnknownScorerError(f"unknown scorer {name!r}; valid scorers: {sorted(SCORERS)}")
    return SCORERS[name]


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


def scorer_name(sample: RankingSample, scorers: Mapping[str, str]) -> str:
    """A task's own scorer if one is set, else its scenario's."""
    return scorers.get(sample.task) or scorers.get(sample.scenario) or DEFAULT_SCORERS[sample.scenario]


def uses_head(scorers: Mapping[str, str]) -> bool:
    return "pointer" in set(scorers.values())


def check_sample(sample: RankingSample, scorers: Mapping[str, str], tok, cfg: PromptConfig) -> int:
    """Prompt tokens the sample's scorer needs; PromptTooLong when it cannot fit the budget."""
    try:
        return get_scorer(scorer_name(sample, scorers)).check(sample, tok, cfg)
    except PromptTooLong:
        raise
    except ValueError as err:  # e.g. a sample with fewer than 2 candidates
        raise PromptTooLong(str(err)) from err
