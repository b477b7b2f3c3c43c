"""The README's "Where to add" list, done in this file alone: a scorer, a reward, a dataset source and a stage are
each one class (or function) and one registry line, and the rest of the project picks them up."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from components import datasets, rewards, scorers
from components.datasets.common import PreparedTask
from components.params import load_params
from components.pipeline import STAGES
from components.rankers import LLMRankerConfig, build_ranker
from components.schema import Candidate, RankingSample

ROOT = Path(__file__).resolve().parents[1]


def sample(i: int, texts: list[str], task: str = "passage-5") -> RankingSample:
    cands = tuple(Candidate(f"c{k}", t) for k, t in enumerate(texts))
    return RankingSample(f"s{i}", task, "passage", f"query {i}", cands, {"c0": 1.0}, f"g{i}")


class ShortestFirst:
    """A toy context-free scorer: shorter texts score higher. No model output is read."""

    name = "shortest-first"
    context_free = True
    has_head = False

    def check(self, sample, tok, cfg) -> int:
        return max(len(c.text) for c in sample.candidates)

    def scores(self, model, head, tok, sample, remaining, cfg, use_cache=True, chunk_size=None):
        text = {c.id: c.text for c in sample.candidates}
        return torch.tensor([-float(len(text[c])) for c in remaining]), sum(len(text[c]) for c in remaining), 0


def test_a_scorer_is_one_class_and_one_registry_line(monkeypatch):
    monkeypatch.setitem(scorers.SCORERS, ShortestFirst.name, ShortestFirst())  # the registry line
    cfg = LLMRankerConfig(mode="score", scorers={"passage": "shortest-first"}, batch_size=2)
    ranker = build_ranker("iranker", "random:tiny", cfg, device="cpu")
    texts = ["a much longer passage text", "mid length", "tiny", "the longest passage of them all, really"]
    [ranking] = ranker.rank([sample(0, texts)])
    assert ranking.skipped is None
    assert ranking.order == ("c2", "c1", "c0", "c3")  # by length: the toy scorer ranked, not the model


def test_a_scorer_declares_its_head_and_the_template_hash_follows(monkeypatch, tokenizer):
    """Whether a scorer carries a trained head is its own declaration, not a name check elsewhere: the same
    scorer name with and without a head gives two template hashes."""
    from components.prompts import PromptConfig

    chosen = {"passage": ShortestFirst.name, "router": ShortestFirst.name}
    hashes = []
    for has_head in (False, True):
        toy = type("Toy", (ShortestFirst,), {"has_head": has_head})()
        monkeypatch.setitem(scorers.SCORERS, ShortestFirst.name, toy)
        assert scorers.has_head(chosen) is has_head
        hashes.append(scorers.template_hash(tokenizer, "iranker", PromptConfig(), "score", chosen))
    assert hashes[0] != hashes[1]


def test_a_text_scorer_is_its_wording_and_one_registry_line(monkeypatch, tokenizer):
    """A likelihood scorer with its own wording is one `LikelihoodScorer(name, ScorerText(...))` and one registry
    line. It ranks; registering it changes no existing model's template hash; its wording is in the hash of a
    model that uses it."""
    from components.prompts import PromptConfig, ScorerText, build_score_inputs, user_ids

    def hash_of(chosen):
        return scorers.template_hash(tokenizer, "iranker", PromptConfig(), "score", scorers.resolve_scorers(chosen))

    default_hash = hash_of(None)
    text = ScorerText("Text: ", "\nA question this text answers:", " {query}")
    monkeypatch.setitem(scorers.SCORERS, "answer-likelihood", scorers.LikelihoodScorer("answer-likelihood", text))
    assert hash_of(None) == default_hash
    inputs = build_score_inputs(sample(0, ["alpha", "beta"]), text, tokenizer)
    assert inputs.contexts[0][: len(user_ids(tokenizer, "Text: "))] == user_ids(tokenizer, "Text: ")
    cfg = LLMRankerConfig(mode="score", scorers={"passage": "answer-likelihood"}, batch_size=2)
    [ranking] = build_ranker("iranker", "random:tiny", cfg, device="cpu").rank([sample(1, ["a b", "c d", "e f"])])
    assert ranking.skipped is None and sorted(ranking.order) == ["c0", "c1", "c2"]
    used = hash_of({"passage": "answer-likelihood"})
    reworded = ScorerText("Passage text: ", "\nA question this text answers:", " {query}")
    monkeypatch.setitem(scorers.SCORERS, "answer-likelihood", scorers.LikelihoodScorer("answer-likelihood", reworded))
    assert hash_of({"passage": "answer-likelihood"}) != used and hash_of(None) == default_hash


def test_a_scorer_wording_names_its_layout():
    from components.prompts import ScorerText

    assert ScorerText("", "", " {query}").candidate_is_context and not ScorerText("", "", "{candidate}").candidate_is_context
    with pytest.raises(ValueError, match="exactly one of"):
        ScorerText("", "", " no placeholder")


def test_an_unknown_scorer_is_refused_before_any_model_loads():
    with pytest.raises(scorers.UnknownScorerError, match="shortest-first"):
        LLMRankerConfig(mode="score", scorers={"passage": "shortest-first"})


class LengthReward:
    """A toy reward in TRL's contract: the completion's length over 100, capped at 1."""

    def __init__(self, cap: float = 1.0):
        self.__name__ = "length_reward"
        self.cap = cap

    def __call__(self, completions, **_):
        return [min(self.cap, len(str(c)) / 100) for c in completions]


def test_a_reward_is_one_class_and_one_registry_line(monkeypatch, tmp_path):
    monkeypatch.setitem(rewards.REWARDS, "length_reward", LengthReward)  # the registry line
    scored = rewards.score_completion("x" * 50, {}, {"length_reward": {"weight": 2.0, "cap": 0.4}})
    assert scored == {"rewards": {"length_reward": 0.4}, "total": 0.8}
    # and params.yaml takes it under rewards:, checked at load like the built-in ones
    params = load_params(ROOT / "params.yaml", "tiny", {"rewards.iranker.length_reward": {"weight": 0.5}})
    assert "length_reward" in params.train.reward_spec
    with pytest.raises(Exception, match="no_such_reward"):
        load_params(ROOT / "params.yaml", "tiny", {"rewards.iranker.no_such_reward": {"weight": 0.5}})


def load_toy(task_cfg, ctx) -> PreparedTask:
    """A toy source: three test samples, no files read."""
    made = [sample(i, ["gold text", "other text", "third text"], ctx.task) for i in range(3)]
    return PreparedTask(splits={"train": [], "test": made})


def test_a_dataset_source_is_one_loader_and_one_registry_line(monkeypatch, tmp_path):
    monkeypatch.setitem(datasets.SOURCES, "toy", load_toy)  # the registry line
    params = load_params(ROOT / "params.yaml", None, {"prepare.tasks": {"passage-5": {"source": "toy"}}})
    prepared = datasets.load_task("passage-5", params.prepare, tmp_path)
    assert [s.sample_id for s in prepared.splits["test"]] == ["s0", "s1", "s2"]


def test_an_unknown_source_is_refused_at_load_naming_the_key():
    with pytest.raises(Exception, match=r"prepare\.tasks\.passage-5\.source: unknown source 'no-such-source'"):
        load_params(ROOT / "params.yaml", None, {"prepare.tasks.passage-5.source": "no-such-source"})


def test_every_stage_is_one_registry_entry_that_dvc_runs():
    """`STAGES` is the one list: dvc.yaml has a stage per entry, each running `r1ranker stage <name>`."""
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert list(dvc) == list(STAGES)
    assert {name: stage["cmd"].split()[:3] for name, stage in dvc.items()} == {
        name: ["r1ranker", "stage", name] for name in STAGES}
