"""One sample contract: `validate` and `evaluate` read samples with the same reader and give the same verdict.

Every case is a folder of contract JSONL that breaks the contract in one way. Both commands must exit 1
with the file, line and field in the message, print no traceback, and write no output.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

GOOD = {
    "sample_id": "s1", "task": "mine", "scenario": "custom", "query": "red fruit",
    "candidates": [{"id": "a", "text": "an apple is red"}, {"id": "b", "text": "a banana is yellow"}],
    "relevance": {"a": 1}, "group": "g1",
}


def good(i: int, **changes) -> dict:
    return {**GOOD, "sample_id": f"s{i}", "group": f"g{i}", **changes}


def write(folder: Path, name: str, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def cli(*args: str):
    return runner.invoke(app, [*args, "--params", str(ROOT / "params.yaml")])


def verdicts(folder: Path, tmp_path: Path):
    """(validate result, evaluate result, evaluate's output folder)."""
    report, out = tmp_path / "report", tmp_path / "eval-out"
    checked = cli("validate", "--samples", str(folder), "--report", str(report))
    ranked = cli("evaluate", "--ranker", "bm25", "--samples", str(folder), "--out", str(out))
    return checked, ranked, out


def assert_refused(result, *expected: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # a handled error, not a crash
    assert "Traceback" not in result.output
    for text in expected:
        assert text in result.output, result.output


CASES = {
    "extra top-level field": (good(2, extra=1), "field(s) ['extra']"),
    "integer candidate id": (good(2, candidates=[{"id": 1, "text": "x"}, {"id": "b", "text": "y"}]),
                             "field 'candidates[0]'.id must be a string"),
    "unknown scenario": (good(2, scenario="web"), "field 'scenario': 'web' is not one of"),
    "relevance names a missing candidate": (good(2, relevance={"a": 2, "zz": 1}),
                                            "field 'relevance' names ids that are not candidates: ['zz']"),
    "infinite grade": (good(2, relevance={"a": math.inf}), "field 'relevance.a': grade inf"),
    "nan grade": (good(2, relevance={"a": 1, "b": math.nan}), "field 'relevance.b': grade nan"),
    "negative grade": (good(2, relevance={"a": 1, "b": -2}), "field 'relevance.b': grade -2"),
    "whitespace query": (good(2, query=" \t "), "field 'query' is blank"),
    "blank candidate text": (good(2, candidates=[{"id": "a", "text": "x"}, {"id": "b", "text": "\n"}]),
                             "field 'candidates[1]'.text is blank"),
    "duplicate candidate id": (good(2, candidates=[{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]),
                               "field 'candidates': duplicate ids ['a']"),
    "too many candidates": (good(2, candidates=[{"id": f"c{i}", "text": f"t {i}"} for i in range(10_001)],
                                 relevance={"c0": 1}), "10001 candidates, the limit is 10000"),
    "qrels disagree with relevance": (good(2, meta={"qrels": {"a": 3, "zz": 1}}),
                                      "field 'meta.qrels' disagrees with 'relevance' on candidate(s) ['a']"),
    "bad relevant grade": (good(2, meta={"relevant_grade": 0}), "field 'meta.relevant_grade' must be a finite number > 0"),
    "incomplete routing meta": (good(2, scenario="router", meta={"routing": {"a": {"perf": 1, "cost": 0, "score": 1}}}),
                                "field 'meta.routing': no entry for candidate 'b'"),
    "sample id used twice in a file": (good(1), "field 'sample_id': 's1' is used again (first on line 1)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_validate_and_evaluate_refuse_the_same_record(tmp_path, case):
    record, message = CASES[case]
    folder = tmp_path / "samples"
    write(folder, "data.jsonl", [json.dumps(good(1)), json.dumps(record, allow_nan=True)])
    checked, ranked, out = verdicts(folder, tmp_path)
    for result in (checked, ranked):
        assert_refused(result, "data.jsonl:2: ", message)
    assert not out.exists()


def test_every_bad_record_of_a_file_is_reported_in_one_run(tmp_path):
    folder = tmp_path / "samples"
    write(folder, "data.jsonl", [json.dumps(good(1, query=" ")), "{broken", json.dumps(good(3, scenario="x"))])
    checked, ranked, _ = verdicts(folder, tmp_path)
    for result in (checked, ranked):
        assert_refused(result, "3 bad record(s)", "data.jsonl:1: field 'query'", "data.jsonl:2: invalid JSON",
                       "data.jsonl:3: field 'scenario'")


def test_the_same_sample_id_in_two_files_is_refused(tmp_path):
    """Results are kept by id: one sample's ranking would hold the other's candidate ids."""
    folder = tmp_path / "samples"
    write(folder, "a.jsonl", [json.dumps(good(1))])
    write(folder, "b.jsonl", [json.dumps(good(1, candidates=[{"id": "x", "text": "x"}, {"id": "y", "text": "y"}],
                                              relevance={"x": 1}))])
    checked, ranked, out = verdicts(folder, tmp_path)
    for result in (checked, ranked):
        assert_refused(result, "b.jsonl: field 'sample_id': 's1' is also in", "a.jsonl")
    assert not out.exists()


@pytest.mark.parametrize("content", ["", "\n  \n\n"])
def test_an_empty_or_blank_file_is_an_error(tmp_path, content):
    folder = tmp_path / "samples"
    folder.mkdir()
    (folder / "data.jsonl").write_text(content)
    checked, ranked, _ = verdicts(folder, tmp_path)
    for result in (checked, ranked):
        assert_refused(result, "data.jsonl: no samples (the file is empty or blank)")


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    folder = tmp_path / "samples"
    folder.mkdir()
    (folder / "data.jsonl").write_bytes(b"\xef\xbb\xbf" + (json.dumps(good(1)) + "\n").encode())
    checked, ranked, out = verdicts(folder, tmp_path)
    assert checked.exit_code == 0, checked.output
    assert ranked.exit_code == 0, ranked.output
    assert json.loads((out / "metrics.json").read_text())["tasks"]["mine"]["n"] == 1


def test_a_router_sample_without_routing_meta_reports_mrr_and_no_utility(tmp_path):
    """meta.routing is optional: routing utility is computed where it exists and reported absent elsewhere."""
    routing = {"a": {"perf": 1.0, "cost": 0.1, "score": 1.0}, "b": {"perf": 0.0, "cost": 0.2, "score": 0.0}}
    folder = tmp_path / "samples"
    write(folder, "data.jsonl", [json.dumps(good(1, scenario="router", meta={"routing": routing})),
                                 json.dumps(good(2, scenario="router"))])
    checked, ranked, out = verdicts(folder, tmp_path)
    assert checked.exit_code == 0, checked.output
    assert ranked.exit_code == 0, ranked.output
    metrics = json.loads((out / "metrics.json").read_text())["tasks"]["mine"]["metrics"]
    assert 0 < metrics["mrr"]["mean"] <= 1
    assert metrics["routing"]["n"] == 1 and metrics["routing"]["routing_absent"] == 1
    assert metrics["routing"]["oracle_perf"] == 1.0


# ---------------------------------------------------------------- property: mutations never crash a reader


def _mutations():
    text_paths = [("query",), ("sample_id",), ("candidates", 0, "text"), ("candidates", 1, "id")]
    return st.one_of(
        st.tuples(st.just("drop"), st.sampled_from(sorted(GOOD))),
        st.tuples(st.just("retype"), st.sampled_from(sorted(GOOD)),
                  st.one_of(st.integers(), st.none(), st.booleans(), st.lists(st.integers(), max_size=2), st.text(max_size=3))),
        st.tuples(st.just("duplicate"), st.just(None)),
        st.tuples(st.just("nonfinite"), st.sampled_from(["a", "b"]), st.sampled_from([math.inf, -math.inf, math.nan])),
        st.tuples(st.just("blank"), st.sampled_from(text_paths), st.sampled_from(["", " ", "\t\n"])),
    )


def _mutate(record: dict, mutation) -> list[dict]:
    kind = mutation[0]
    rec = json.loads(json.dumps(record))
    if kind == "drop":
        rec.pop(mutation[1])
    elif kind == "retype":
        rec[mutation[1]] = mutation[2]
    elif kind == "duplicate":
        return [rec, dict(rec)]
    elif kind == "nonfinite":
        rec["relevance"][mutation[1]] = mutation[2]
    elif kind == "blank":
        target = rec
        *path, last = mutation[1]
        for key in path:
            target = target[key]
        target[last] = mutation[2]
    return [rec]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=_mutations())
def test_mutated_contract_files_never_crash_a_reader_or_leave_output(tmp_path_factory, mutation):
    tmp_path = tmp_path_factory.mktemp("mutation")
    folder = tmp_path / "samples"
    records = [good(1)] + _mutate(good(2), mutation)
    write(folder, "data.jsonl", [json.dumps(r, allow_nan=True) for r in records])
    checked, ranked, out = verdicts(folder, tmp_path)
    for result in (checked, ranked):
        assert result.exit_code in (0, 1), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert "Traceback" not in result.output
    assert checked.exit_code == ranked.exit_code, (checked.output, ranked.output)  # one contract, one verdict
    if ranked.exit_code:
        assert not out.exists()
        assert "data.jsonl:" in ranked.output
