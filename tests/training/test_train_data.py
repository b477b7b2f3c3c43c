"""What training reads and draws (`training/data.py`): the train split only, pool caps, draw weights, held-out groups."""

import dataclasses
from pathlib import Path

import pytest

from components import training
from components.training import ValidationSettings
from tests.training.helpers import config


@pytest.mark.slow  # prepares and trains on every task
def test_training_reads_only_the_train_split(prepared, tmp_path, monkeypatch):
    samples, _ = prepared
    read = []
    original = training.data.read_sample_folder
    monkeypatch.setattr(training.data, "read_sample_folder",
                        lambda folder, files: read.extend(Path(f).name for f in files) or original(folder, files))
    cfg = config(prepared, tmp_path, tasks=("passage-5", "rec-movie"), max_train_samples=None)
    from components.io import read_samples
    from components.models import load_tokenizer

    train = training.load_train_samples(cfg)
    rows = training.build_rows(train, cfg, load_tokenizer("random:tiny"))
    test = [s for t in cfg.tasks for s in read_samples(samples / t / "test.jsonl")]
    assert read == ["train.jsonl"] * 2
    assert rows and not {r["sample_id"] for r in rows} & {s.sample_id for s in test}
    # rec train users give several windows (ids task:user:wK): none of them is a test user's
    group = {s.sample_id: (s.task, s.group) for s in train}
    assert any(":w" in r["sample_id"] for r in rows)
    assert not {group[r["sample_id"]] for r in rows} & {(s.task, s.group) for s in test}


def test_max_pool_size_keeps_only_the_small_elimination_steps(prepared, tmp_path):
    from components.models import load_tokenizer

    tok = load_tokenizer("random:tiny")
    every = config(prepared, tmp_path, tasks=("rec-movie",), max_train_samples=3)
    small = dataclasses.replace(every, max_pool_size=4)
    pools = lambda cfg: sorted(len(r["labels"]) for r in training.build_rows(training.load_train_samples(cfg), cfg, tok))
    # 20 candidates: 19 steps (pools 20..2) per sample; with the cap, the 3 steps of pools 4, 3 and 2
    assert pools(every) == sorted(list(range(2, 21)) * 3)
    assert pools(small) == [2, 2, 2, 3, 3, 3, 4, 4, 4]


def test_max_pool_for_caps_each_scenario_or_task_on_its_own(prepared, tmp_path):
    from components.models import load_tokenizer

    tok = load_tokenizer("random:tiny")
    base = config(prepared, tmp_path, tasks=("passage-5", "rec-movie"), max_train_samples=2, max_pool_size=3)
    rows = lambda cfg: training.build_rows(training.load_train_samples(cfg), cfg, tok)
    biggest = lambda cfg: {t: max(len(r["labels"]) for r in rows(cfg) if r["task"] == t) for t in cfg.tasks}
    assert biggest(base) == {"passage-5": 3, "rec-movie": 3}
    # the scenario's entry lifts rec to its full 20-candidate pools; a task's own entry wins over its scenario's
    assert biggest(dataclasses.replace(base, max_pool_for={"rec": None})) == {"passage-5": 3, "rec-movie": 20}
    both = dataclasses.replace(base, max_pool_for={"rec": None, "rec-movie": 4, "passage": 5})
    assert biggest(both) == {"passage-5": 5, "rec-movie": 4}


def test_draw_weight_for_sets_each_tasks_share_of_batch_items(prepared, tmp_path):
    import random

    from components.training.expected_reward import ExpectedRewardTrainer

    cfg = config(prepared, tmp_path, tasks=("passage-5", "rec-movie"), max_train_samples=4, max_pool_size=3,
                 batch_size=1, draw_weight_for={"passage": 2, "passage-5": 8})
    trainer = ExpectedRewardTrainer(cfg)
    trainer.setup()
    task_of = lambda k: trainer.rows[trainer.items[k][0]]["task"]
    assert sorted(task_of(k) for k in range(len(trainer.items))) == ["passage-5"] * 4 + ["rec-movie"] * 4
    # the task's own entry (8) wins over its scenario's (2): 4 * 8 of 4 * 8 + 4 * 1 weight is passage-5's
    assert sorted(set(trainer.item_weights)) == [1.0, 8.0]
    rng = random.Random(0)
    draws = [task_of(k) for _ in range(4000) for k in trainer._draw(rng)]
    assert draws.count("passage-5") / len(draws) == pytest.approx(32 / 36, abs=0.02)
    # a batch never repeats an item, weighted or not
    trainer.cfg = dataclasses.replace(cfg, batch_size=5)
    assert all(len(set(batch)) == 5 for batch in (trainer._draw(rng) for _ in range(200)))
    trainer.cfg = dataclasses.replace(cfg, batch_size=8)
    assert all(sorted(trainer._draw(rng)) == list(range(8)) for _ in range(5))
    # without weights the draw is the plain seeded sample, so earlier runs' batches are unchanged
    trainer.item_weights = None
    assert trainer._draw(random.Random("42:3")) == random.Random("42:3").sample(range(8), 8)


def test_validation_holds_out_whole_train_groups(prepared, tmp_path):
    samples, _ = prepared
    from components.io import read_samples

    cfg = config(prepared, tmp_path, tasks=("passage-5", "rec-movie"), max_train_samples=None,
                 validation=ValidationSettings(groups=3))
    train, held = training.load_train_samples(cfg), training.load_validation_samples(cfg)
    split = {t: read_samples(samples / t / "train.jsonl") for t in cfg.tasks}
    for task, rows in split.items():
        held_groups = {s.group for s in held if s.task == task}
        assert len(held_groups) == 3  # passage-5: 3 of its queries with all their samples; rec-movie: 3 users
        assert {s.sample_id for s in held if s.task == task} == {s.sample_id for s in rows if s.group in held_groups}
        assert not held_groups & {s.group for s in train if s.task == task}
        assert len([s for s in train if s.task == task]) + len([s for s in held if s.task == task]) == len(rows)
    test_ids = {s.sample_id for t in cfg.tasks for s in read_samples(samples / t / "test.jsonl")}
    assert not {s.sample_id for s in held} & test_ids
    # validation off: the training subset is the one earlier runs drew
    plain = dataclasses.replace(cfg, validation=ValidationSettings())
    assert training.load_validation_samples(plain) == [] and len(training.load_train_samples(plain)) == len(train) + len(held)
