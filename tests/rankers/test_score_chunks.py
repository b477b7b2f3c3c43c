"""Score mode over many candidates: length-sorted chunks give the unchunked scores, in order, with gradients."""

import random

import pytest
import torch

from components.models import load_model
from components.prompts import PromptConfig
from components.schema import Candidate, RankingSample
from components.scorers import PAD_STATS, SCORERS, length_chunks

CFG = PromptConfig(max_prompt_tokens=512)
WORDS = ("river bank loan interest rate water flood city bridge history museum train station coffee "
         "protein cell energy light speed law court judge election vote season game team").split()
UNCHUNKED = 1000


@pytest.fixture(scope="module")
def tiny():
    return load_model("random:tiny", device="cpu", seed=0)


def text(rng, lo, hi):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))).capitalize() + "."


def passage_sample(n=100, seed=0):
    rng = random.Random(seed)
    cands = tuple(Candidate(f"p{i:03d}", text(rng, 40, 110)) for i in range(n))
    return RankingSample("s-passage", "passage-test", "passage", "what is the interest rate of a bank loan",
                         cands, {"p000": 1.0}, "g0")


def rec_sample(n=100, seed=1):
    rng = random.Random(seed)
    history = "\n".join(f"{text(rng, 2, 6)} (199{k})" for k in range(8))
    cands = tuple(Candidate(f"m{i:03d}", text(rng, 1, 12)) for i in range(n))
    return RankingSample("s-rec", "rec-test", "rec", history, cands, {"m000": 1.0}, "g1")


CASES = [("query-likelihood", passage_sample), ("candidate-likelihood", rec_sample)]


def scores(tiny, name, sample, ids=None, **kw):
    model, tok = tiny
    return SCORERS[name].scores(model, None, tok, sample, sample.candidate_ids if ids is None else ids, CFG, **kw)[0]


def test_length_chunks_sorts_longest_first_and_bounds_the_chunk():
    assert length_chunks([30, 90, 10, 50, 70], 2) == [[1], [4], [3], [0], [2]]  # none within 10% of another
    assert length_chunks([100, 95, 99, 96, 97], 2) == [[0, 2], [4, 3], [1]]
    assert length_chunks([1, 1, 1], 1000) == [[0, 1, 2]]


@pytest.mark.parametrize("name, make", CASES)
def test_chunked_scores_equal_unchunked_in_the_input_order(tiny, name, make):
    sample = make()
    with torch.no_grad():
        chunked = scores(tiny, name, sample, chunk_size=7)
        whole = scores(tiny, name, sample, chunk_size=UNCHUNKED)
        uncached = scores(tiny, name, sample, chunk_size=7, use_cache=False)
        shuffled = list(reversed(sample.candidate_ids))
        reordered = scores(tiny, name, sample, shuffled, chunk_size=7)
        few = sample.candidate_ids[10:13]
        alone = torch.stack([scores(tiny, name, sample, [c], chunk_size=7)[0] for c in few])
    assert chunked.shape == (100,)
    assert torch.allclose(chunked, whole, atol=1e-4), (chunked - whole).abs().max()
    assert torch.allclose(chunked, uncached, atol=1e-4), (chunked - uncached).abs().max()
    assert torch.allclose(reordered, chunked.flip(0), atol=1e-4)  # aligned with the ids asked for
    assert torch.allclose(chunked[10:13], alone, atol=1e-4)  # each score is its own candidate's
    assert len(set(chunked.tolist())) > 50


@pytest.mark.parametrize("name, make", CASES)
def test_gradients_flow_through_the_chunks_and_match_unchunked(tiny, name, make):
    model, _ = tiny
    sample = make(n=12)
    grads = []
    for chunk in (5, UNCHUNKED):
        model.zero_grad(set_to_none=True)
        with torch.enable_grad():
            scores(tiny, name, sample, chunk_size=chunk).sum().backward()
        grads.append({k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None})
    chunked, whole = grads
    model.zero_grad(set_to_none=True)
    assert chunked and any(g.abs().sum() > 0 for g in chunked.values())
    assert chunked.keys() == whole.keys()
    for k in chunked:
        assert torch.allclose(chunked[k], whole[k], atol=1e-4, rtol=1e-3), k


def test_sorted_chunks_pad_under_ten_percent(tiny):
    sample = passage_sample()
    with torch.no_grad():
        PAD_STATS.reset()
        scores(tiny, "query-likelihood", sample)  # the default chunk size
        sorted_fraction = PAD_STATS.fraction
        assert PAD_STATS.computed > 0
        PAD_STATS.reset()
        scores(tiny, "query-likelihood", sample, chunk_size=UNCHUNKED)
        one_batch = PAD_STATS.fraction
        PAD_STATS.reset()
    assert sorted_fraction < 0.10, sorted_fraction
    assert one_batch > sorted_fraction  # the lengths do vary: one batch pads more
