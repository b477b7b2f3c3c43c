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
        ({"candidates": [{"id": "a", "text": "A"}, {"id": "a", "text": "B"}]}, "duplicate ids ['a']"),
        ({"candidates": [{"id": "a", "text": "A"}, {"id": "b", "text": "  "}]}, "field 'candidates[1]'.text is blank"),
        ({"candidates": [{"id": 1, "text": "A"}, {"id": "b", "text": "B"}]}, "'candidates[0]'.id must be a string"),
        ({"relevance": {"a": 0}}, "no gold candidate"),
        ({"relevance": {"zz": 1}}, "not candidates: ['zz']"),
        ({"scenario": "chat"}, "field 'scenario': 'chat' is not one of"),
        ({"query": "  \t"}, "field 'query' is blank"),
        ({"sample_id": ""}, "field 'sample_id' is blank"),
        ({"relevance": {"a": float("inf")}}, "field 'relevance.a': grade inf is not a finite number >= 0"),
        ({"relevance": {"a": float("nan")}}, "field 'relevance.a': grade nan is not"),
        ({"relevance": {"a": -1, "b": 1}}, "field 'relevance.a': grade -1 is not"),
        ({"relevance": {"a": True}}, "field 'relevance.a': grade True is not"),
        ({"candidates": [{"id": str(i), "text": "t"} for i in range(10_001)], "relevance": {"0": 1}},
         "10001 candidates, the limit is 10000"),
        ({"meta": {"qrels": {"a": "3"}}}, "field 'meta.qrels.a': grade '3' is not a finite number >= 0"),
        ({"meta": {"qrels": {}}}, "field 'meta.qrels' must be a non-empty object"),
        ({"meta": {"routing": {"a": {"perf": 1, "cost": 0, "score": 1}}}}, "field 'meta.routing': no entry for candidate 'b'"),
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


def test_every_violation_of_a_record_is_listed():
    with pytest.raises(SampleError) as info:
        RankingSample.from_dict(record(query=" ", scenario="chat", relevance={"a": float("nan")}))
    assert len(info.value.problems) == 3


def test_samples_built_in_code_meet_the_same_contract():
    from components.schema import Candidate

    with pytest.raises(SampleError, match="sample 's': field 'query' is blank"):
        RankingSample("s", "t", "custom", " ", (Candidate("a", "A"),), {"a": 1}, "g")
