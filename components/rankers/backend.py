"""LLM backends: batched generation and next-token label scores.

`TransformersBackend` is the default everywhere. It left-pads batches,
generates under `torch.inference_mode()`, stops at `</answer>`, and scores
labels with one forward pass (the log-softmax of the last position, gathered at
each label's token). `label_logprobs_cached` scores one prompt at a time and
keeps its KV cache, so the next prompt of the same sample (one candidate fewer)
recomputes only the tokens after the longest common token prefix; every sample
starts from the cache of the chat template's head (`prefix_cache`), computed once,
so a sample's scores never depend on the samples before it. `VLLMBackend` is used for generation when vLLM is
installed on a CUDA machine (prefix caching on); label scores still come from
a transformers forward pass there.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from components.scorers.forward import common_prefix, full_attention

log = logging.getLogger(__name__)

ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"


@dataclass
class PrefixCache:
    """The token ids a sample's last prompt had and the model's KV cache for them."""

    ids: list[int]
    kv: Any

    def copy(self) -> "PrefixCache":
        """An independent copy: scoring crops and extends the cache it is given in place."""
        import copy

        return PrefixCache(list(self.ids), copy.deepcopy(self.kv))


@dataclass(frozen=True)
class Generation:
    text: str
    tokens_in: int
    tokens_out: int


class TransformersBackend:
    name = "transformers"

    def __init__(self, model, tokenizer):
        self.model, self.tok = model, tokenizer
        self.device = next(model.parameters()).device
        self._label_ids: dict[str, int] = {}

    def _encode(self, prompts: Sequence[str]):
        self.tok.padding_side = "left"  # generation continues from the last position of every row
        enc = self.tok(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False)
        return {k: v.to(self.device) for k, v in enc.items()}

    def generate(self, prompts: Sequence[str], max_new_tokens: int, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int = 0) -> list[Generation]:
        import torch

        enc = self._encode(prompts)
        kwargs = {"do_sample": temperature > 0}
        if temperature > 0:
            torch.manual_seed(seed)
            kwargs.update(temperature=temperature, top_p=top_p)
        with torch.inference_mode():
            out = self.model.generate(
                **enc, max_new_tokens=max_new_tokens, stop_strings=[ANSWER_CLOSE], tokenizer=self.tok,
                pad_token_id=self.tok.pad_token_id, **kwargs,
            )
        new = out[:, enc["input_ids"].shape[1]:]
        tokens_in = enc["attention_mask"].sum(dim=1).tolist()
        results = []
        for row, n_in in zip(new, tokens_in):
            ids = row.tolist()
            # tokens up to and including the first end/pad token
            end = next((i + 1 for i, t in enumerate(ids) if t in (self.tok.eos_token_id, self.tok.pad_token_id)), len(ids))
            results.append(Generation(self.tok.decode(ids[:end], skip_special_tokens=True), int(n_in), end))
        return results

    def label_token(self, label: str) -> int:
        """The token the model emits for `label` right after `<answer>`."""
        if label not in self._label_ids:
            base = self.tok(ANSWER_OPEN, add_special_tokens=False)["input_ids"]
            ids = self.tok(ANSWER_OPEN + label, add_special_tokens=False)["input_ids"]
            if ids[: len(base)] != base or len(ids) == len(base):
                raise ValueError(f"label {label!r} does not tokenize as a continuation of {ANSWER_OPEN!r}")
            self._label_ids[label] = ids[len(base)]
        return self._label_ids[label]

    def label_logprobs(self, prompts: Sequence[str], labels: Sequence[Sequence[str]]) -> list[dict[str, float]]:
        """Log-probability of each label as the first answer token, one forward pass per batch.

        Each prompt must already end with `<answer>`.
        """
        import torch

        enc = self._encode(prompts)
        with torch.inference_mode():
            # only the last position's logits: the full [batch, seq, vocab] tensor would dominate time and memory
            logits = self.model(**enc, logits_to_keep=1).logits[:, -1, :]  # [batch, vocab]
            logp = torch.log_softmax(logits.float(), dim=-1)
        return [self._label_scores(row, labs) for row, labs in zip(logp, labels)]

    def _label_scores(self, logp, labels: Sequence[str]) -> dict[str, float]:
        """Each label's log-probability from one row of next-token log-probs."""
        tokens = [self.label_token(lab) for lab in labels]
        if len(set(tokens)) != len(tokens):
            raise ValueError(f"labels {list(labels)} share first tokens; fast mode needs distinct ones")
        return {lab: float(logp[t]) for lab, t in zip(labels, tokens)}

    def label_logprobs_cached(self, prompt: str, labels: Sequence[str],
                              cache: PrefixCache | None) -> tuple[dict[str, float], PrefixCache, int]:
        """Label log-probabilities for one prompt, reusing `cache` for the common token prefix.

        Returns (scores, the cache for this prompt, tokens reused). On CPU this is
        faster than padded batches even without reuse: no pad tokens are computed.
        """
        import torch

        ids = self.tok(prompt, add_special_tokens=False)["input_ids"]
        reused = 0
        kv = None
        if cache is not None and full_attention(cache.kv):
            # at least one token must be computed: its logits are the answer
            reused = min(common_prefix(cache.ids, ids), len(ids) - 1)
            if reused > 0:
                kv = cache.kv
                kv.crop(reused - kv.get_seq_length())  # a negative count removes that many tokens from the end
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids[reused:]], device=self.device), cache=kv,
                             use_cache=True, logits_to_keep=1)
            logp = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
        return self._label_scores(logp, labels), PrefixCache(ids, out.cache), reused

    def prefix_cache(self, text: str) -> PrefixCache:
        """The KV cache of `text` alone: a start for every prompt that begins with it."""
        import torch

        ids = self.tok(text, add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids], device=self.device), use_cache=True, logits_to_keep=1)
        return PrefixCache(ids, out.cache)

    def count_tokens(self, text: str) -> int:
        return len(self.tok(text, add_special_tokens=False)["input_ids"])


class VLLMBackend(TransformersBackend):
    """Generation through vLLM (prefix caching on); label scores via the transformers model."""

    name = "vllm"

    def __init__(self, model, tokenizer, model_path: str):
        super().__init__(model, tokenizer)
        from vllm import LLM  # noqa: PLC0415 - optional dependency

        self.llm = LLM(model=model_path, enable_prefix_caching=True, dtype="bfloat16")

    def generate(self, prompts, max_new_tokens, temperature=0.0, top_p=1.0, seed=0):
        from vllm import SamplingParams

        params = SamplingParams(max_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed,
                                stop=[ANSWER_CLOSE], include_stop_str_in_output=True)
        outs = self.llm.generate(list(prompts), params, use_tqdm=False)
        return [Generation(o.outputs[0].text, len(o.prompt_token_ids), len(o.outputs[0].token_ids)) for o in outs]


def vllm_available() -> bool:
    try:
        import torch
        import vllm  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


def build_backend(model, tokenizer, model_path: str | None = None, prefer_vllm: bool = True):
    if prefer_vllm and model_path and vllm_available():
        log.info("using the vLLM backend (prefix caching on)")
        return VLLMBackend(model, tokenizer, model_path)
    return TransformersBackend(model, tokenizer)
