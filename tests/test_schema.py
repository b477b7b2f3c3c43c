import pytest

from components.schema import RankingSample, SampleError


def record(**overrides):
    base = {
        "sample_id": "s1", "task": "t", "scenario": "passage", "query": "q",
        "candidates": [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}],
        "relevance": {"a": 2, "b": 0}, "group": "g", "meta": {"x": 1},
    }
    base.update(overrides)
    return base


def test_round_trip():
    s = RankingSample.from_dict(record())
    assert RankingSample.from_dict(s.to_dict()) == s
    assert s.gold_ids == ["a"] and s.grade("b") == 0.0 and s.candidate_ids == ["a", "b"]


def test_several_gold_items_share_the_top_grade():
    s = RankingSample.from_dict(record(relevance={"a": 1, "b": 1}))
    assert s.gold_ids == ["a", "b"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"candidates": [{"id": "a", "text": "A"}, {"id": "a", "text": "B"}]}, "duplicate candidate ids ['a']"),
        ({"candidates": [{"id": "a", "text": "A"}, {"id": "b", "text": "  "}]}, "empty text for candidate ids ['b']"),
        ({"relevance": {"a": 0}}, "no gold candidate"),
        ({"relevance": {"zz": 1}}, "not candidates: ['zz']"),
        ({"scenario": "chat"}, "scenario 'chat'"),
        ({"candidates": []}, "'candidates' is empty"),
        ({"query": 3}, "field 'query' must be a string"),
        ({"extra": 1}, "unknown field(s) ['extra']"),
    ],
)
def test_contract_violations_name_the_field(overrides, message):
    with pytest.raises(SampleError, match=None) as info:
        RankingSample.from_dict(record(**overrides))
    assert message in str(info.value)


def test_missing_field():
    rec = record()
    del rec["group"]
    with pytest.raises(SampleError, match=r"missing field\(s\) \['group'\]"):
        RankingSample.from_dict(rec)
