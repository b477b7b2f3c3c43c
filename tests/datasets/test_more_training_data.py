"""More training data where the split allows it: rec train windows, a joint passage split."""

import dataclasses
from collections import Counter
from pathlib import Path

import pytest

from components.config import ConfigError, TaskConfig
from components.params import load_params
from components.datasets import load_task
from components.datasets.common import LoadContext
from components.datasets.recommendation import UserSequence, build_rec_task

ROOT = Path(__file__).resolve().parents[2]
PASSAGE = ("passage-5", "passage-7", "passage-9")


def load(params, data_root, name, **changes):
    """One task from the real files, with its config changed (small caps keep it fast)."""
    cfg = dataclasses.replace(params.prepare, tasks={name: dataclasses.replace(params.prepare.tasks[name], **changes)})
    return load_task(name, cfg, data_root).splits


def test_passage_split_is_joint(params, data_root):
    splits = {t: load(params, data_root, t) for t in PASSAGE}
    groups = {t: {split: {s.group for s in samples} for split, samples in splits[t].items()} for t in PASSAGE}
    # MS MARCO v1.1: test = the validation queries, train = the train queries, for every k; a query short of
    # unselected passages for a larger k is absent from that task, never moved to the other split
    test_sets = [groups[t]["test"] for t in PASSAGE]
    assert test_sets[0] and test_sets[2] <= test_sets[1] <= test_sets[0]
    for a in PASSAGE:
        for b in PASSAGE:
            assert not groups[a]["train"] & groups[b]["test"], f"{a} trains on {b} test queries"


@pytest.mark.parametrize("task", ["rec-movie", "rec-music", "rec-game"])
def test_rec_train_windows(params, data_root, task):
    one = load(params, data_root, task, max_train=20, max_test=20, train_windows=1)
    four = load(params, data_root, task, max_train=20, max_test=20, train_windows=4)

    # train_windows = 1 is the one-sample recipe: the k = 0 windows, and the test split, unchanged
    assert [s.to_dict() for s in four["test"]] == [s.to_dict() for s in one["test"]]
    assert [s.to_dict() for s in four["train"] if "window" not in s.meta] == [s.to_dict() for s in one["train"]]
    assert all(s.sample_id == f"{task}:{s.group}" for s in one["train"])

    # test: one sample per user, the last item, and no test user trains
    test_users = [s.group for s in four["test"]]
    assert len(test_users) == len(set(test_users)) == 20
    assert all(s.sample_id == f"{task}:{s.group}" and "window" not in s.meta for s in four["test"])
    assert not set(test_users) & {s.group for s in four["train"]}

    # train: max_train caps users, each gives up to 4 windows of its own history
    by_user: dict[str, list] = {}
    for s in four["train"]:
        by_user.setdefault(s.group, []).append(s)
    assert len(by_user) == 20 and len(four["train"]) > len(one["train"])
    ids = [s.sample_id for s in four["train"]]
    assert len(ids) == len(set(ids))
    for user, samples in by_user.items():
        assert 1 <= len(samples) <= 4
        last = samples[0]
        assert last.sample_id == f"{task}:{user}" and "window" not in last.meta
        seen = set(last.meta["history_ids"]) | set(last.gold_ids)
        for s in samples[1:]:
            k = s.meta["window"]
            assert s.sample_id == f"{task}:{user}:w{k}" and 1 <= k <= 3
            assert s.gold_ids == [last.meta["history_ids"][-k]], "window k's target is the k-th last history item"
            earlier = last.meta["history_ids"][:-k]  # non-empty: the window exists, so k < history length
            assert earlier and s.meta["history_ids"][-len(earlier):] == earlier
            assert s.meta["full_history_len"] == last.meta["full_history_len"] - k
            negatives = set(s.candidate_ids) - set(s.gold_ids)
            assert len(s.candidates) == params.prepare.rec_candidates
            assert not negatives & seen, "an item the user saw (later positives included) is a negative"


def test_rec_windows_on_a_tiny_catalogue():
    """Every item but the user's own sequence is a negative, so a later positive never is one."""
    titles = {f"i{j}": f"Item {j}" for j in range(13)}
    users = [
        UserSequence("long", tuple(f"i{j}" for j in range(9)), "i9"),
        UserSequence("short", ("i0", "i1"), "i2"),  # only one earlier window has a history
    ]
    cfg = TaskConfig(source="movielens", test_groups=0, n_candidates=4, train_windows=4)
    ctx = LoadContext(task="t", data_root=Path("."), seed=1, history_len=20, rec_candidates=4)
    train = build_rec_task(users, titles, cfg, ctx, Counter()).splits["train"]
    got = {s.sample_id: (s.gold_ids, s.meta["history_ids"], set(s.candidate_ids) - set(s.gold_ids)) for s in train}
    unseen = {"i10", "i11", "i12"}
    assert got == {
        "t:long": (["i9"], [f"i{j}" for j in range(9)], unseen),
        "t:long:w1": (["i8"], [f"i{j}" for j in range(8)], unseen),
        "t:long:w2": (["i7"], [f"i{j}" for j in range(7)], unseen),
        "t:long:w3": (["i6"], [f"i{j}" for j in range(6)], unseen),
        "t:short": (["i2"], ["i0", "i1"], got["t:short"][2]),
        "t:short:w1": (["i1"], ["i0"], got["t:short:w1"][2]),
    }
    for sid in ("t:short", "t:short:w1"):
        assert not got[sid][2] & {"i0", "i1", "i2"}
    assert {s.group for s in train if s.sample_id.startswith("t:long")} == {"long"}


def test_train_windows_must_be_positive():
    with pytest.raises(ConfigError, match="train_windows must be >= 1"):
        TaskConfig(source="movielens", train_windows=0)
    with pytest.raises(ConfigError, match="train_windows must be >= 1"):
        load_params(ROOT / "params.yaml", overrides={"prepare.tasks.rec-movie.train_windows": 0})
