"""The model computations score mode runs: continuations scored in length-sorted chunks over a shared KV cache,
hidden states at chosen positions, and the prefix cache reused across an IRanker's rounds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from components.prompts import ScoreInputs


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token id lists.

    >>> common_prefix([1, 2, 3], [1, 2, 4, 5])
    2
    """
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def full_attention(kv) -> bool:
    """Only full-attention layers keep every past state, so only they can be cut back to a prefix."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(kv, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def left_pad(seqs: Sequence[Sequence[int]], pad: int, offset: int, device):
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


def model_device(model):
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

    device = model_device(model)
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
        ids, mask, positions = left_pad([rows[i] for i in chunk], pad_id, offset, device)
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
    ids, mask, positions = left_pad(seqs, pad_id, 0, model_device(model))
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


    reused, kv = 0, None
    if cache is not None and full_attention(cache.kv):
        reused = min(common_prefix(cache.ids, ids), len(ids) - 1)
        if reused > 0:
            kv = cache.kv
            kv.crop(reused - kv.get_seq_length())
    out = model(input_ids=torch.tensor([ids[reused:]], device=model_device(model)), cache=kv, use_cache=True,
                output_hidden_states=True, logits_to_keep=1)
    new = out.hidden_states[-1][0]
    hidden = torch.cat([cache.hidden[:reused], new]) if reused else new
    return hidden, HiddenCache(ids, out.cache, hidden), reused
