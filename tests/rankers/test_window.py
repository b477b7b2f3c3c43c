"""Sliding-window ranking (`components.rankers.window`): windows, batching, capacity checks, the real rankers."""

import pytest

from components.models import load_model
from components.rankers import LLMRankerConfig, build_ranker
from components.rankers.window import (CapacityError, SlidingWindowRanker, check_capacity, needs_window,
                                       window_cost, window_starts)
from components.schema import Candidate, Ranking, RankingSample


def make_sample(n: int, gold: int = 0, sid: str = "s", task: str = "t", scenario: str = "passage") -> RankingSample:
    cands = tuple(Candidate(f"{sid}-c{i}", f"passage number {i} about topic {i % 7}") for i in range(n))
    return RankingSample(sample_id=sid, task=task, scenario=scenario, query="which passage is about topic 3?",
                         candidates=cands, relevance={cands[gold].id: 1.0}, group=sid)


class Spy:
    """Records the window id lists it is given; ranks a planted gold first, otherwise keeps the order."""

    name = "spy"

    def __init__(self, gold: set[str]):
        self.gold, self.calls = gold, []

    def rank(self, samples, progress=None):
        self.calls.append([s.candidate_ids for s in samples])
        out = []
        for s in samples:
            ids = s.candidate_ids
            out.append(Ranking(s.sample_id, tuple([i for i in ids if i in self.gold] + [i for i in ids if i not in self.gold])))
            if progress:
                progress(1, 1)
        return out


@pytest.fixture(scope="module")
def tiny():
    return load_model("random:tiny", device="cpu", seed=0)


@pytest.mark.parametrize("name", ["iranker", "dranker"])
def test_real_ranker_in_windows_gives_a_full_permutation(tiny, name):
    sample = make_sample(60, gold=37)
    ranker = build_ranker(name, config=LLMRankerConfig(mode="fast", window=20, stride=10), loaded=tiny)
    assert isinstance(ranker, SlidingWindowRanker) and ranker.name == name
    assert ranker.identity["ranker"] == name and ranker.config.mode == "fast"  # passed through
    r = ranker.rank([sample])[0]
    assert r.skipped is None
    assert sorted(r.order) == sorted(sample.candidate_ids) and len(set(r.order)) == 60


def test_windows_run_bottom_up_and_carry_the_gold_to_the_top():
    sample = make_sample(60, gold=59)
    gold = sample.candidate_ids[59]
    spy = Spy({gold})
    seen = []
    r = SlidingWindowRanker(spy, window=20, stride=10).rank([sample], progress=lambda c, f: seen.append((c, f)))[0]
    windows = [call[0] for call in spy.calls]
    assert all(len(call) == 1 for call in spy.calls)
    assert [len(w) for w in windows] == [20] * 5 == [20] * window_cost(60, 20, 10)
    # replay the list: each window is positions [40,60), [30,50), [20,40), [10,30), [0,20) of the current order
    order = list(sample.candidate_ids)
    for (lo, hi), w in zip([(40, 60), (30, 50), (20, 40), (10, 30), (0, 20)], windows):
        assert w == order[lo:hi]
        order[lo:hi] = [i for i in w if i == gold] + [i for i in w if i != gold]
    assert list(r.order) == order and r.order[0] == gold
    assert sorted(r.order) == sorted(sample.candidate_ids)
    assert sum(f for _, f in seen) == 1 and sum(c for c, _ in seen) == 5


def test_window_starts_clamp_to_zero():
    assert window_starts(60, 20, 10) == [40, 30, 20, 10, 0]
    assert window_starts(25, 20, 10) == [5, 0] and window_cost(25, 20, 10) == 2
    assert window_starts(20, 20, 10) == [0] and window_cost(100, 20, 10) == 9


def test_short_samples_go_to_the_inner_ranker_unchanged_in_one_call():
    samples = [make_sample(5, sid="a"), make_sample(20, sid="b")]
    spy = Spy(set())
    rankings = SlidingWindowRanker(spy, window=20, stride=10).rank(samples)
    assert spy.calls == [[s.candidate_ids for s in samples]]
    assert [list(r.order) for r in rankings] == [s.candidate_ids for s in samples]


def test_batches_windows_across_samples_and_keeps_order():
    samples = [make_sample(60, sid="long", gold=59), make_sample(4, sid="short"), make_sample(30, sid="mid", gold=29)]
    spy = Spy({samples[0].candidate_ids[59], samples[2].candidate_ids[29]})
    finished = []
    rankings = SlidingWindowRanker(spy, 20, 10).rank(samples, progress=lambda c, f: finished.append(f))
    assert [len(c) for c in spy.calls] == [1, 2, 2, 1, 1, 1]  # short alone, then passes over long + mid
    assert [r.sample_id for r in rankings] == ["long", "short", "mid"]
    assert rankings[0].order[0] == samples[0].candidate_ids[59] and rankings[2].order[0] == samples[2].candidate_ids[29]
    assert sum(finished) == len(samples)


def test_a_skipped_window_skips_the_sample():
    class Skipper(Spy):
        def rank(self, samples, progress=None):
            return [Ranking(s.sample_id, (), skipped="prompt too long") for s in samples]

    r = SlidingWindowRanker(Skipper(set()), 20, 10).rank([make_sample(30)])[0]
    assert r.skipped == "prompt too long" and r.order == ()


def test_needs_window():
    long = make_sample(30)
    assert needs_window(long, "fast", None) and needs_window(long, "reasoning", None)
    assert not needs_window(long, "score", None)  # passage: query-likelihood is context free
    assert needs_window(long, "score", {"passage": "pointer"})
    assert not needs_window(long, None, None) and not needs_window(make_sample(20), "fast", None, window=20)


def test_check_capacity():
    by_task = {"trec-dl19": [make_sample(10, sid="ok"), make_sample(30, sid="X", task="trec-dl19")]}
    with pytest.raises(CapacityError) as err:
        check_capacity(by_task, "iranker", "fast", None, None)
    msg = str(err.value)
    assert "26" in msg and "--window" in msg and "trec-dl19" in msg and "X" in msg and "30 candidates" in msg
    check_capacity(by_task, "iranker", "fast", None, 20)
    check_capacity(by_task, "iranker", "score", None, None)  # passage default: query-likelihood, context free
    check_capacity(by_task, "bm25", None, None, None)
    with pytest.raises(CapacityError, match="pointer"):
        check_capacity(by_task, "dranker", "score", {"passage": "pointer"}, 0)
    with pytest.raises(CapacityError, match="26"):
        check_capacity(by_task, "iranker", "fast", None, 27)
    with pytest.raises(CapacityError, match="stride"):
        check_capacity(by_task, "iranker", "fast", None, 20, stride=20)


def test_config_validates_window():
    assert LLMRankerConfig().window == 20 and LLMRankerConfig(window=None).window is None
    for bad in ({"window": 27}, {"window": 1}, {"window": 20, "stride": 0}, {"window": 10, "stride": 10}):
        with pytest.raises(ValueError):
            LLMRankerConfig(**bad)


def test_over_capacity_fails_in_the_cli_before_the_model_loads(tmp_path, monkeypatch):
    """No window and a 30-candidate sample: the error names the capacity and the option; no model loads and
    nothing is written."""
    import components.models

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(components.models, "load_model", no_load)
    from typer.testing import CliRunner

    from cli import app
    from components.io import write_jsonl

    from tests.conftest import ROOT

    folder = tmp_path / "samples"
    write_jsonl(folder / "long.jsonl", [make_sample(30, sid="long", task="long-list").to_dict()])
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["evaluate", "--ranker", "iranker", "--mode", "fast", "--model",
                                      "random:tiny", "--samples", str(folder), "--window", "0",
                                      "--out", str(out), "--params", str(ROOT / "params.yaml")])
    assert result.exit_code == 1, result.output
    assert "30 candidates, more than the 26" in result.output and "--window 20" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
