"""Score mode for both LLM rankers: order candidates by their scorer's scores.

A context-free scorer (query-, candidate-likelihood) is run once per sample and
the candidates sorted, best first: eliminating the lowest score n-1 times gives
the same order. The pointer scorer sees the listed candidates, so IRanker runs
n-1 rounds, re-scoring the remaining list after each elimination (on CPU one
prompt at a time, reusing the KV cache and hidden states of the prefix the
rounds share), while DRanker sorts the scores of one pass over the full list.
Ties keep the listing order. Each step records the eliminated (IRanker) or
ranked (DRanker) labels worst or best first, tokens computed and reused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from components.prompts import PromptTooLong, chat_head, shown_labels
from components.rankers.base import Progress, skipped
from components.schema import Ranking, RankingSample, RankingStep
from components.scorers import HiddenCache, check_sample, get_scorer, hidden_states_cached, scorer_name


def _labels(sample: RankingSample, ids: Sequence[str], stable: bool) -> list[str]:
    by_id = {cid: lab for lab, cid in shown_labels(sample, None, stable).items()}
    return [by_id[c] for c in ids]


MEMO_LIMIT = 200_000  # memoised context-free scores kept per ranker (a few MB); cleared when full


def _context_free_scores(backend, scorer, sample: RankingSample, ids: list[str], cfg, memo: dict | None):
    """(scores aligned with `ids`, tokens computed, tokens reused), scoring only what `memo` lacks.

    A context-free score depends on the query and the candidate text alone, so the same pair met again
    (Passage-5/7/9 list the same query's passages; a reranked run repeats) is not recomputed.
    """
    text = {c.id: c.text for c in sample.candidates}
    key = lambda cid: (scorer.name, sample.query, text[cid])  # noqa: E731
    todo = ids if memo is None else [c for c in ids if key(c) not in memo]
    got: dict[str, float] = {}
    tokens = reused = 0
    if todo:
        t, tokens, reused = scorer.scores(backend.model, backend.score_head, backend.tok, sample, todo, cfg)
        got = dict(zip(todo, t.tolist()))
    if memo is not None:
        if len(memo) + len(got) > MEMO_LIMIT:
            memo.clear()
        memo.update({key(c): v for c, v in got.items()})
        got = {c: got[c] if c in got else memo[key(c)] for c in ids}
    return [got[c] for c in ids], tokens, reused


def rank_by_scores(backend, config, samples: Sequence[RankingSample], iterative: bool,
                   progress: Progress | None = None, memo: dict | None = None) -> list[Ranking]:
    """One ranking per sample (see the module doc); a sample whose scorer input cannot fit is a counted skip.

    `memo` (the ranker's, over frozen weights) keeps context-free scores by (scorer, query, candidate text).
    """
    import torch

    tok, cfg = backend.tok, config.prompt
    results: dict[str, Ranking] = {}
    todo = []
    for s in samples:  # every budget is checked before the first model call
        if len(s.candidates) < 2:
            results[s.sample_id] = skipped(s, "fewer than 2 candidates")
            continue
        try:
            check_sample(s, config.scorers, tok, cfg)
        except PromptTooLong as err:
            results[s.sample_id] = skipped(s, f"prompt too long: {err}")
            continue
        todo.append(s)
    if progress and results:
        progress(0, len(results))
    one_by_one = str(backend.device).startswith("cpu")
    head_state = None
    with torch.inference_mode():
        for s in todo:
            scorer = get_scorer(scorer_name(s, config.scorers))
            if iterative and not scorer.context_free:
                if one_by_one and head_state is None:
                    head_ids = tok(chat_head(tok, cfg), add_special_tokens=False)["input_ids"]
                    head_state = hidden_states_cached(backend.model, head_ids, None)[1]
                results[s.sample_id] = _eliminate(backend, scorer, s, cfg, head_state if one_by_one else None, progress)
                continue
            started = time.perf_counter()
            ids = list(s.candidate_ids)
            scores, tokens, reused = _context_free_scores(backend, scorer, s, ids, cfg, memo)
            order = sorted(range(len(ids)), key=lambda i: -scores[i])  # stable: ties keep listing order
            best_first = [ids[i] for i in order]
            shown = best_first[::-1] if iterative else best_first  # IRanker's trace: eliminated first
            # the scores are the ranking's own (Ranking.scores, rankings.jsonl's `scores`), not the step's text
            step = RankingStep(_hash(s, scorer.name), "",
                               _labels(s, shown, cfg.stable_labels), "ok", tokens, 0, time.perf_counter() - started, reused)
            results[s.sample_id] = Ranking(s.sample_id, tuple(best_first), (step,),
                                           scores=tuple(float(scores[i]) for i in order))
            if progress:
                progress(1, 1)
    return [results[s.sample_id] for s in samples]


def _hash(sample: RankingSample, scorer: str) -> str:
    import hashlib

    return hashlib.sha256(f"{scorer}:{sample.sample_id}".encode()).hexdigest()[:16]


def _eliminate(backend, scorer, sample: RankingSample, cfg, head_state, progress) -> Ranking:
    """n-1 rounds: score the remaining list, eliminate the lowest (ties: the last listed)."""
    remaining, eliminated, steps = list(sample.candidate_ids), [], []
    state = None if head_state is None else _copy_state(head_state)
    while len(remaining) > 1:
        started = time.perf_counter()
        if state is not None:
            ids, order, at = scorer.prompt_ids(backend.tok, sample, remaining, cfg)
            hidden, state, reused = hidden_states_cached(backend.model, ids, state)
            by_id = dict(zip(order, backend.score_head(hidden[at]).tolist()))
            scores, n_in = [by_id[c] for c in remaining], len(ids)
        else:
            t, n_in, reused = scorer.scores(backend.model, backend.score_head, backend.tok, sample, remaining, cfg)
            scores = t.tolist()
        low = min(scores)
        victim = remaining[max(i for i, v in enumerate(scores) if v == low)]
        label = _labels(sample, [victim], cfg.stable_labels)
        steps.append(RankingStep(_hash(sample, f"{scorer.name}:{len(remaining)}"),
                                 json.dumps({c: round(v, 4) for c, v in zip(remaining, scores)}),
                                 label, "ok", n_in, 0, time.perf_counter() - started, reused))
        remaining.remove(victim)
        eliminated.append(victim)
        if progress:
            progress(1, int(len(remaining) == 1))
    return Ranking(sample.sample_id, (remaining[0], *reversed(eliminated)), tuple(steps))


def _copy_state(state):
    import copy

    return HiddenCache(list(state.ids), copy.deepcopy(state.kv), state.hidden)
