"""Rewards: properties over random candidate sets, the reference's mistakes as regressions, pickling."""

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.prompts import make_labels
from components.rewards import (
    DEFAULT_REWARDS,
    REWARDS,
    ExclusionReward,
    FormatReward,
    RankingReward,
    build_rewards,
    score_completion,
)

ranking_reward, exclusion_reward, format_reward = RankingReward(), ExclusionReward(), FormatReward()


@st.composite
def pools(draw, min_size=2, max_size=9):
    """A candidate pool with graded relevance holding at least one grade > 0."""
    n = draw(st.integers(min_size, max_size))
    grades = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n).filter(lambda g: max(g) > 0))
    labels = make_labels(n)
    return {"labels": labels, "candidate_ids": [f"c{i}" for i in range(n)], "grades": [float(g) for g in grades]}


def cols(pool, k):
    return {key: [value] * k for key, value in pool.items()}


def ideal_labels(pool):
    order = sorted(range(len(pool["labels"])), key=lambda i: -pool["grades"][i])
    return [pool["labels"][i] for i in order]


def answer(labels, think=True):
    body = f"<answer>{' > '.join(labels)}</answer>"
    return f"<think>ranking by relevance</think>\n{body}" if think else body


@settings(max_examples=60, deadline=None)
@given(pools(), st.randoms(use_true_random=False))
def test_ranking_reward_extremes_and_order(pool, rnd):
    ideal = ideal_labels(pool)
    shuffled = ideal[:]
    rnd.shuffle(shuffled)
    perfect, reversed_, random_ = ranking_reward([answer(ideal), answer(ideal[::-1]), answer(shuffled)], **cols(pool, 3))
    assert perfect == pytest.approx(1.0)
    assert reversed_ <= random_ + 1e-12 <= perfect + 2e-12


@settings(max_examples=60, deadline=None)
@given(pools(), st.data())
def test_swapping_items_of_different_grade_changes_reward(pool, data):
    g = pool["grades"]
    pairs = [(i, j) for i in range(len(g)) for j in range(i + 1, len(g)) if g[i] != g[j]]
    if not pairs:
        return
    i, j = data.draw(st.sampled_from(pairs))
    labels = list(pool["labels"])
    swapped = labels[:]
    swapped[i], swapped[j] = swapped[j], swapped[i]
    a, b = ranking_reward([answer(labels), answer(swapped)], **cols(pool, 2))
    assert a != pytest.approx(b)


@settings(max_examples=60, deadline=None)
@given(pools())
def test_eliminating_gold_never_beats_eliminating_a_non_gold(pool):
    g = pool["grades"]
    top = max(g)
    rewards = exclusion_reward([answer([lab]) for lab in pool["labels"]], **cols(pool, len(g)))
    gold = [r for r, grade in zip(rewards, g) if grade == top]
    rest = [r for r, grade in zip(rewards, g) if grade < top]
    if rest:
        assert max(gold) <= min(rest)
        assert min(gold) == 0.0 and max(rest) == 1.0
    assert all(0.0 <= r <= 1.0 for r in rewards)


@settings(max_examples=40, deadline=None)
@given(pools(), st.text(max_size=200))
def test_prompt_prefix_never_changes_any_reward(pool, prefix):
    completions = [answer(ideal_labels(pool)), answer(pool["labels"][:1]), "no tags"]
    for fn in (ranking_reward, exclusion_reward, format_reward):
        plain = fn(completions, prompts=["P"] * 3, reasoning=[True] * 3, **cols(pool, 3))
        prefixed = fn(completions, prompts=[prefix + "<answer>A</answer><think>x</think>P"] * 3, reasoning=[True] * 3, **cols(pool, 3))
        assert plain == prefixed


@settings(max_examples=60, deadline=None)
@given(pools(), st.text(max_size=60))
def test_malformed_answers_score_below_every_valid_one(pool, junk):
    labels = pool["labels"]
    valid_floor = ranking_reward([answer(ideal_labels(pool)[::-1])], **cols(pool, 1))[0]
    bad = [
        junk,  # malformed, no answer block
        "<answer></answer>",  # empty
        answer(labels + labels[:1]),  # duplicate
        answer(labels + ["ZZZ"]),  # invented
        answer(labels[:-1]),  # missing one
    ]
    for reward in ranking_reward(bad, **cols(pool, len(bad))):
        assert reward < valid_floor
    single_bad = exclusion_reward([junk, "<answer></answer>", answer(["ZZZ"]), answer(labels[:2])], **cols(pool, 4))
    assert all(r < 0 for r in single_bad)


def test_reference_mistake_order_is_not_ignored():
    """Mistake 1: '4,2,1,3,5' and '1,2,3,4,5' scored the same."""
    pool = {"labels": list("ABCDE"), "candidate_ids": list("12345"), "grades": [3.0, 2.0, 1.0, 0.0, 0.0]}
    a, b = ranking_reward(["<answer>D,B,A,C,E</answer>", "<answer>A,B,C,D,E</answer>"], **cols(pool, 2))
    assert b == pytest.approx(1.0) and a < b


def test_reference_mistake_one_per_line_is_perfect():
    """Mistake 1b: a perfect answer written one item per line scored 0.63."""
    pool = {"labels": list("ABCDE"), "candidate_ids": list("12345"), "grades": [0.0, 1.0, 0.0, 0.0, 0.0]}
    assert ranking_reward(["<answer>\nB\nA\nC\nD\nE\n</answer>"], **cols(pool, 1)) == [1.0]


def test_reference_mistake_prompt_tags_never_counted():
    """Mistake 2: format rewards on prompt + completion; the prompt's example tags counted."""
    prompt = "... for example <think> </think> <answer>B</answer>"
    good, missing_think = "<think>x</think><answer>A</answer>", "<answer>A</answer>"
    assert format_reward([good, missing_think], prompts=[prompt] * 2, reasoning=[True, True]) == [1.0, 0.5]
    # the reference's bug, for contrast: scoring prompt + completion would penalise the perfect one
    assert format_reward([prompt + good], reasoning=[True]) == [0.5]


def test_reference_mistake_no_answer_is_lowest():
    """Mistake 3: no answer must not be read as an (empty) answer."""
    pool = {"labels": list("AB"), "candidate_ids": list("ab"), "grades": [1.0, 0.0]}
    no_answer, empty = ranking_reward(["I pick A", "<answer> </answer>"], **cols(pool, 2))
    assert no_answer == -1.0 and empty <= 0.0
    assert exclusion_reward(["I pick A"], **cols(pool, 1)) == [-1.0]


@pytest.mark.parametrize("name", sorted(REWARDS))
def test_every_reward_pickles_and_round_trips(name):
    fn = REWARDS[name]()
    clone = pickle.loads(pickle.dumps(fn))
    assert clone.__name__ == fn.__name__ == name
    pool = {"labels": list("ABC"), "candidate_ids": list("abc"), "grades": [0.0, 2.0, 1.0], "reasoning": True}
    completions = ["<think>t</think><answer>B > C > A</answer>", "<answer>A</answer>", "x"]
    assert clone(completions, **cols(pool, 3)) == fn(completions, **cols(pool, 3))


def test_build_rewards_from_config():
    fns, weights = build_rewards(DEFAULT_REWARDS["iranker"])
    assert [f.__name__ for f in fns] == ["format_reward", "exclusion_reward"] and weights == [0.2, 1.0]
    with pytest.raises(ValueError, match=r"unknown reward 'bleu_reward'; valid rewards: \['exclusion_reward'"):
        build_rewards({"bleu_reward": {}})
    with pytest.raises(ValueError, match="reward 'ranking_reward': bad option"):
        build_rewards({"ranking_reward": {"weight": 1, "temperature": 2}})


def test_score_completion_total():
    pool = {"labels": list("AB"), "candidate_ids": list("ab"), "grades": [1.0, 0.0], "reasoning": True}
    out = score_completion("<think>t</think><answer>B</answer>", pool, DEFAULT_REWARDS["iranker"])
    assert out["rewards"] == {"format_reward": 1.0, "exclusion_reward": 1.0}
    assert out["total"] == pytest.approx(1.2)
