"""All nine tasks from the real files: sizes, splits, determinism and the recipes."""

import hashlib

import pytest

from components.datasets import DATASETS, TREC_TASKS
from components.io import read_samples
from components.preparation import prepare


def test_all_nine_tasks_are_configured(params):
    assert sorted(params.prepare.tasks) == sorted(DATASETS + TREC_TASKS)


def test_datacard_shows_non_trivial_test_sets(prepared):
    _, card = prepared
    for task in DATASETS:
        test = card[task]["test"]
        if task.startswith(("rec-", "router-")):
            assert test["samples"] >= 100, task
        else:
            assert test["groups"] >= 15 and test["samples"] >= 40, task
        assert card[task]["train"]["samples"] > 0, task
        assert card[task]["group_overlap"] == 0, task


def test_no_group_in_two_splits(prepared):
    out, _ = prepared
    for task in DATASETS:
        train = {s.group for s in read_samples(out / task / "train.jsonl")}
        test = {s.group for s in read_samples(out / task / "test.jsonl")}
        assert train and test and not train & test, task


@pytest.mark.slow  # prepares all nine tasks again
def test_prepare_is_byte_identical(prepared, params, data_root, tmp_path):
    out, _ = prepared
    prepare(params.prepare, out=tmp_path, data_root=data_root)
    for task in DATASETS:
        for split in ("train", "test"):
            a = (out / task / f"{split}.jsonl").read_bytes()
            b = (tmp_path / task / f"{split}.jsonl").read_bytes()
            assert hashlib.sha256(a).digest() == hashlib.sha256(b).digest(), (task, split)


def test_rec_recipe(prepared, params):
    out, card = prepared
    for task in ("rec-movie", "rec-music", "rec-game"):
        for s in read_samples(out / task / "test.jsonl"):
            assert len(s.candidates) == params.prepare.rec_candidates
            assert len(s.gold_ids) == 1
            history = set(s.meta["history_ids"])
            assert not history & set(s.candidate_ids), "a seen item is a candidate"
            assert 1 <= s.meta["history_len"] <= params.prepare.history_len
            assert len(s.query.splitlines()) == s.meta["history_len"]
    assert card["rec-music"]["dropped"]["HTML debris in history or target title"] > 0
    for s in read_samples(out / "rec-music" / "test.jsonl"):
        assert not any(c.text.startswith("<") for c in s.candidates)
        assert "<span" not in s.query


def test_router_scores_follow_the_formula(prepared):
    out, _ = prepared
    weights = {"router-performance": (1.0, 0.0), "router-balance": (0.5, 0.5), "router-cost": (0.2, 0.8)}
    for task, (a, b) in weights.items():
        samples = read_samples(out / task / "test.jsonl")
        assert len(samples) >= 100
        for s in samples[:50]:
            routing = s.meta["routing"]
            assert len(s.candidates) == 11 and set(routing) == set(s.candidate_ids)
            gold = s.gold_ids
            assert len(gold) == 1
            best = max(v["score"] for v in routing.values())
            assert routing[gold[0]]["score"] == best
            tied = [m for m, v in routing.items() if v["score"] == best]
            assert routing[gold[0]]["cost"] == min(routing[m]["cost"] for m in tied), "ties go to the cheaper model"
            for v in routing.values():
                if b == 0:
                    assert v["score"] == pytest.approx(a * v["perf"])
                else:  # cost_norm in [0, 1]
                    cost_norm = (a * v["perf"] - v["score"]) / b
                    assert -1e-9 <= cost_norm <= 1 + 1e-9


def test_passage_recipe(prepared):
    """The paper's recipe on MS MARCO v1.1: one selected passage + k-1 unselected ones, distinct texts."""
    out, card = prepared
    for k, n_test in ((5, 490), (7, 430), (9, 220)):
        test = read_samples(out / f"passage-{k}" / "test.jsonl")
        assert len(test) >= n_test, k
        for s in test + read_samples(out / f"passage-{k}" / "train.jsonl"):
            assert len(s.candidates) == k and len(s.gold_ids) == 1 and set(s.relevance.values()) == {1.0}
            assert len({c.text for c in s.candidates}) == k
        assert card[f"passage-{k}"]["train"]["samples"] > 50, k


def test_no_test_text_in_a_train_sample(prepared):
    out, _ = prepared
    test_texts = set()
    for k in (5, 7, 9):
        for s in read_samples(out / f"passage-{k}" / "test.jsonl"):
            test_texts |= {s.query, *(c.text for c in s.candidates)}
    for k in (5, 7, 9):
        for s in read_samples(out / f"passage-{k}" / "train.jsonl"):
            assert not {s.query, *(c.text for c in s.candidates)} & test_texts, s.sample_id
