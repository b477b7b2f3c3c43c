"""The Great Expectations gate: real prepared files pass; each broken contract is named."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from cli import app
from components.validation import ValidationFailed, validate


def test_real_prepared_samples_pass(prepared, params, tmp_path):
    out, _ = prepared
    summary = validate(out, params.validate, params.prepare, report_dir=tmp_path)
    assert len(summary) == 20 and all(s["failed"] == 0 for s in summary)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["success"] is True
    assert (tmp_path / "report.html").exists()


def corrupt(prepared, tmp_path, task, split, edit):
    out, _ = prepared
    folder = tmp_path / "samples"
    shutil.copytree(out / task, folder / task)
    path = folder / task / f"{split}.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    edit(rows)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder, rows


def expect_failure(folder, params, tmp_path, needle):
    with pytest.raises(ValidationFailed) as info:
        validate(folder, params.validate, params.prepare, report_dir=tmp_path / "report")
    lines = [line for line in info.value.failures if needle in line]
    assert lines, info.value.failures
    return lines[0]


def expect_contract_failure(folder, params, tmp_path) -> str:
    with pytest.raises(ValidationFailed) as info:
        validate(folder, params.validate, params.prepare, report_dir=tmp_path / "report")
    assert len(info.value.failures) == 1 and "break the contract" in info.value.failures[0]
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["success"] is False and "break the contract" in report["error"]
    return info.value.failures[0]


def test_missing_gold_names_every_line(prepared, params, tmp_path):
    def edit(rows):
        for r in rows[:3]:
            r["relevance"] = {}
    folder, rows = corrupt(prepared, tmp_path, "passage-5", "test", edit)
    message = expect_contract_failure(folder, params, tmp_path)
    assert "3 bad record(s)" in message
    for line in (1, 2, 3):
        assert f"passage-5/test.jsonl:{line}: field 'relevance': no gold candidate" in message


def test_duplicate_ids_break_the_contract_before_the_suites(prepared, params, tmp_path):
    def edit(rows):
        rows[1]["candidates"][1]["id"] = rows[1]["candidates"][0]["id"]
        rows[3]["sample_id"] = rows[4]["sample_id"]
    folder, rows = corrupt(prepared, tmp_path, "rec-movie", "test", edit)
    message = expect_contract_failure(folder, params, tmp_path)
    assert "rec-movie/test.jsonl:2: field 'candidates': duplicate ids" in message
    assert f"rec-movie/test.jsonl:5: field 'sample_id': {rows[4]['sample_id']!r} is used again (first on line 4)" in message


def test_candidate_count_distinct_texts_and_overlap(prepared, params, tmp_path):
    def edit(rows):
        rows[0]["candidates"] = rows[0]["candidates"][:-1]
        rows[2]["candidates"][1]["text"] = rows[2]["candidates"][0]["text"].upper()

    folder, rows = corrupt(prepared, tmp_path, "rec-movie", "test", edit)
    # move one train group into test too
    train_path = folder / "rec-movie" / "train.jsonl"
    first_train = json.loads(train_path.read_text().splitlines()[0])
    with open(folder / "rec-movie" / "test.jsonl", "a") as fh:
        fh.write(json.dumps(dict(first_train, sample_id="dup-group")) + "\n")
    for needle, sid in [
        ("n_candidates", rows[0]["sample_id"]),
        ("candidate_texts_distinct", rows[2]["sample_id"]),
        ("group_in_other_split", "dup-group"),
    ]:
        assert sid in expect_failure(folder, params, tmp_path, needle)


def test_lists_at_most_ten_ids(prepared, params, tmp_path):
    def edit(rows):
        for r in rows:
            r["query"] = r["query"] + " " * 20000
    folder, _ = corrupt(prepared, tmp_path, "router-cost", "test", edit)
    line = expect_failure(folder, params, tmp_path, "query_chars")
    assert "failed for 200 sample(s)" in line
    assert len(line.split(": ", 2)[-1].split(", ")) == 10


def test_cli_exits_nonzero_and_prints_each_failure(prepared, tmp_path):
    def edit(rows):
        rows[0]["meta"]["routing"].popitem()
        rows[1]["meta"].pop("routing")  # optional in the contract, required of a prepared router task
    folder, rows = corrupt(prepared, tmp_path, "router-balance", "train", edit)
    result = CliRunner().invoke(app, ["validate", "--samples", str(folder), "--report", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "router-balance/train.jsonl:1: field 'meta.routing': no entry for candidate" in result.output
    # once the contract holds, the suite names the prepared router sample that lacks routing meta
    rows[0]["meta"]["routing"] = json.loads((tmp_path / "samples" / "router-balance" / "test.jsonl").read_text()
                                            .splitlines()[0])["meta"]["routing"]
    (folder / "router-balance" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(app, ["validate", "--samples", str(folder), "--report", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "router-balance/train: expect_column_values_to_be_in_set(routing_meta_complete)" in result.output
    assert rows[1]["sample_id"] in result.output


def test_unreadable_line_is_a_failure_not_a_crash(tmp_path, params):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "test.jsonl").write_text("[1, 2]\n")
    with pytest.raises(ValidationFailed, match=r"test.jsonl:1: expected a JSON object"):
        validate(folder, params.validate, params.prepare, report_dir=tmp_path / "r")
