"""IRanker: rank by repeatedly eliminating the least likely candidate.

The batched engine: every active sample advances one elimination per batched
model call, finished samples drop out, and n-1 eliminations give a full
ranking (the eliminated order reversed, the survivor first).

- `fast` mode: no generation. The prompt (reasoning off) is primed with
  `<answer>`, and the eliminated candidate is the remaining label with the
  highest next-token log-probability: one forward pass per step, always valid.
  With the prefix cache (the CPU default) each sample runs its eliminations one
  prompt at a time and reuses the KV cache up to the first token that changed
  (where the eliminated candidate was): same rankings, fewer tokens computed.
  Every sample starts from the KV cache of the chat template's head.
- `score` mode (the CPU default): each remaining candidate gets a score from
  its scenario's scorer (`components.scorers`) and the lowest is eliminated;
  see `components.rankers.score_mode` (context-free scorers rank in one pass).
- `reasoning` mode: generate `<think>...</think><answer>X</answer>` (greedy by
  default), parse the completion. When the answer is not a remaining
  candidate, the step is recorded with its status and the *last* remaining
  candidate in input order is eliminated instead, and the ranking is marked
  `repaired`, so the rate is reported, never hidden.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from components.parsing import parse_answer
from components.prompts import PromptTooLong, build_prompt
from components.rankers.backend import ANSWER_OPEN
from components.rankers.score_mode import rank_by_scores
from components.rankers.base import LLMRanker, Progress, batches, head_cache, skipped, uses_prefix_cache
from components.schema import Ranking, RankingSample, RankingStep


@dataclass
class _State:
    sample: RankingSample
    remaining: list[str]
    eliminated: list[str] = field(default_factory=list)
    steps: list[RankingStep] = field(default_factory=list)
    repaired: bool = False


class IterativeRanker(LLMRanker):
    name = "iranker"

    def _prompt(self, state: _State):
        return build_prompt(state.sample, "iranker", self.backend.tok, self.prompt_cfg, remaining=state.remaining)

    def rank(self, samples: Sequence[RankingSample], progress: Progress | None = None) -> list[Ranking]:
        if self.config.mode == "score":
            return rank_by_scores(self.backend, self.config, samples, iterative=True, progress=progress,
                                  memo=self.score_memo)
        results: dict[str, Ranking] = {}
        active: list[_State] = []
        for s in samples:
            if len(s.candidates) < 2:
                results[s.sample_id] = skipped(s, "fewer than 2 candidates")
                continue
            state = _State(s, list(s.candidate_ids))
            try:
                self._prompt(state)  # the first step has the longest prompt
            except PromptTooLong as err:
                results[s.sample_id] = skipped(s, f"prompt too long: {err}")
                continue
            active.append(state)
        if progress and results:
            progress(0, len(results))
        if uses_prefix_cache(self.config, self.backend) and active:
            head = head_cache(self.backend, self.prompt_cfg)
            for st in active:
                self._run_cached(st, progress, head)
                results[st.sample.sample_id] = self._ranking(st)
            active = []
        while active:
            for chunk in batches(active, self.config.batch_size):
                self._step(chunk)
                finished = sum(len(st.remaining) == 1 for st in chunk)
                if progress:
                    progress(len(chunk), finished)
            for st in [st for st in active if len(st.remaining) == 1]:
                results[st.sample.sample_id] = self._ranking(st)
            active = [st for st in active if len(st.remaining) > 1]
        return [results[s.sample_id] for s in samples]

    @staticmethod
    def _ranking(st: _State) -> Ranking:
        return Ranking(st.sample.sample_id, (st.remaining[0], *reversed(st.eliminated)), tuple(st.steps), st.repaired)

    def _run_cached(self, st: _State, progress: Progress | None, head) -> None:
        """All of one sample's eliminations in fast mode, each reusing the previous prompt's KV cache.

        The first starts from a copy of `head`, the chat head's cache, never from another sample's.
        """
        cache = head.copy() if head is not None else None
        while len(st.remaining) > 1:
            p = self._prompt(st)
            started = time.perf_counter()
            scores, cache, reused = self.backend.label_logprobs_cached(p.text + ANSWER_OPEN, list(p.labels), cache)
            label = max(scores, key=scores.get)
            self._eliminate(st, p, p.labels[label], RankingStep(
                p.prompt_hash, label, [label], "ok", p.n_tokens + 1, 0, time.perf_counter() - started, reused))
            if progress:
                progress(1, int(len(st.remaining) == 1))

    def _step(self, chunk: list[_State]) -> None:
        prompts = [self._prompt(st) for st in chunk]
        started = time.perf_counter()
        if self.config.mode == "fast":
            texts = [p.text + ANSWER_OPEN for p in prompts]
            scores = self.backend.label_logprobs(texts, [list(p.labels) for p in prompts])
            seconds = (time.perf_counter() - started) / len(chunk)
            for st, p, sc in zip(chunk, prompts, scores):
                label = max(sc, key=sc.get)
                self._eliminate(st, p, p.labels[label], RankingStep(
                    p.prompt_hash, label, [label], "ok", p.n_tokens + 1, 0, seconds))
            return
        gens = self.backend.generate([p.text for p in prompts], self.config.max_new_tokens,
                                     self.config.temperature, self.config.top_p, self.config.seed)
        seconds = (time.perf_counter() - started) / len(chunk)
        for st, p, gen in zip(chunk, prompts, gens):
            by_id = {c.id: c.text for c in st.sample.candidates}
            parsed = parse_answer(gen.text, p.labels, "single", by_id, self.config.repair)
            if parsed.valid:
                victim = parsed.ids[0]
            else:
                victim, st.repaired = st.remaining[-1], True
            self._eliminate(st, p, victim, RankingStep(
                p.prompt_hash, gen.text, parsed.labels, parsed.status, gen.tokens_in, gen.tokens_out, seconds))

    @staticmethod
    def _eliminate(st: _State, prompt, victim: str, step: RankingStep) -> None:
        st.remaining.remove(victim)
        st.eliminated.append(victim)
        st.steps.append(step)
