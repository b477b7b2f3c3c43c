"""DRanker: one generation outputs the whole ranking.

- `reasoning` mode: generate, parse the ranking; candidates the answer left out
  are appended in input order and the ranking is marked `repaired`.
- `score` mode: candidates sorted by their scorer's scores (`components.rankers.score_mode`).
- `fast` mode: one forward pass; candidates are ordered by the next-token
  log-probability of their label right after `<answer>` (the model's belief in
  each being ranked first). Always valid.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from components.parsing import parse_answer
from components.prompts import PromptTooLong, build_prompt
from components.rankers.backend import ANSWER_OPEN
from components.rankers.score_mode import rank_by_scores
from components.rankers.base import LLMRanker, Progress, batches, head_cache, skipped, uses_prefix_cache
from components.schema import Ranking, RankingSample, RankingStep


class DirectRanker(LLMRanker):
    name = "dranker"

    def rank(self, samples: Sequence[RankingSample], progress: Progress | None = None) -> list[Ranking]:
        if self.config.mode == "score":
            return rank_by_scores(self.backend, self.config, samples, iterative=False, progress=progress,
                                  memo=self.score_memo)
        results: dict[str, Ranking] = {}
        todo = []
        for s in samples:
            if len(s.candidates) < 2:
                results[s.sample_id] = skipped(s, "fewer than 2 candidates")
                continue
            try:
                todo.append((s, build_prompt(s, "dranker", self.backend.tok, self.prompt_cfg)))
            except PromptTooLong as err:
                results[s.sample_id] = skipped(s, f"prompt too long: {err}")
        if progress and results:
            progress(0, len(results))
        one_by_one = uses_prefix_cache(self.config, self.backend)  # one prompt at a time: no padding
        # each prompt starts from the KV cache of the chat head all prompts share, computed once
        head = head_cache(self.backend, self.prompt_cfg) if one_by_one and todo else None
        for chunk in batches(todo, 1 if one_by_one else self.config.batch_size):
            started = time.perf_counter()
            if self.config.mode == "fast":
                texts, shown = [p.text + ANSWER_OPEN for _, p in chunk], [list(p.labels) for _, p in chunk]
                if one_by_one:
                    start = head.copy() if head is not None else None
                    scores = [self.backend.label_logprobs_cached(texts[0], shown[0], start)[0]]
                else:
                    scores = self.backend.label_logprobs(texts, shown)
                seconds = (time.perf_counter() - started) / len(chunk)
                for (s, p), sc in zip(chunk, scores):
                    labels = sorted(sc, key=lambda lab: -sc[lab])
                    step = RankingStep(p.prompt_hash, " > ".join(labels), labels, "ok", p.n_tokens + 1, 0, seconds)
                    results[s.sample_id] = Ranking(s.sample_id, tuple(p.labels[lab] for lab in labels), (step,))
            else:
                gens = self.backend.generate([p.text for _, p in chunk], self.config.max_new_tokens,
                                             self.config.temperature, self.config.top_p, self.config.seed)
                seconds = (time.perf_counter() - started) / len(chunk)
                for (s, p), gen in zip(chunk, gens):
                    by_id = {c.id: c.text for c in s.candidates}
                    parsed = parse_answer(gen.text, p.labels, "ranking", by_id, self.config.repair)
                    order = parsed.ids + [cid for cid in s.candidate_ids if cid not in parsed.ids]
                    step = RankingStep(p.prompt_hash, gen.text, parsed.labels, parsed.status, gen.tokens_in, gen.tokens_out, seconds)
                    results[s.sample_id] = Ranking(s.sample_id, tuple(order), (step,), repaired=parsed.status != "ok")
            if progress:
                progress(len(chunk), len(chunk))
        return [results[s.sample_id] for s in samples]
