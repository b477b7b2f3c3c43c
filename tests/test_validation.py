"""The Great Expectations gate: real prepared files pass; each broken contract is named."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from components.cli import app
from components.validation import ValidationFailed, validate


def test_real_prepared_samples_pass(prepared, params, tmp_path):
    out, _ = prepared
    summary = validate(out, params.validate, params.prepare, report_dir=tmp_path)
    assert len(summary) == 18 and all(s["failed"] == 0 for s in summary)
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


def test_missing_gold_is_named(prepared, params, tmp_path):
    def edit(rows):
        for r in rows[:3]:
            r["relevance"] = {}
    folder, rows = corrupt(prepared, tmp_path, "passage-5", "test", edit)
    line = expect_failure(folder, params, tmp_path, "gold_present")
    assert line.startswith("passage-5/test: expect_column_values_to_be_in_set(gold_present) failed for 3 sample(s)")
    assert rows[0]["sample_id"] in line


def test_candidate_count_duplicates_and_overlap(prepared, params, tmp_path):
    out, _ = prepared

    def edit(rows):
        rows[0]["candidates"] = rows[0]["candidates"][:-1]
        rows[1]["candidates"][1]["id"] = rows[1]["candidates"][0]["id"]
        rows[2]["candidates"][1]["text"] = rows[2]["candidates"][0]["text"].upper()
        rows[3]["sample_id"] = rows[4]["sample_id"]

    folder, rows = corrupt(prepared, tmp_path, "rec-movie", "test", edit)
    # move one train group into test too
    train_path = folder / "rec-movie" / "train.jsonl"
    first_train = json.loads(train_path.read_text().splitlines()[0])
    with open(folder / "rec-movie" / "test.jsonl", "a") as fh:
        fh.write(json.dumps(dict(first_train, sample_id="dup-group")) + "\n")
    for needle, sid in [
        ("n_candidates", rows[0]["sample_id"]),
        ("candidate_ids_unique", rows[1]["sample_id"]),
        ("candidate_texts_distinct", rows[2]["sample_id"]),
        ("expect_column_values_to_be_unique(sample_id)", rows[4]["sample_id"]),
        ("group_in_other_split", "dup-group"),
    ]:
        assert sid in expect_failure(folder, params, tmp_path, needle)


def test_lists_at_most_ten_ids(prepared, params, tmp_path):
    def edit(rows):
        for r in rows:
            r["query"] = ""
    folder, _ = corrupt(prepared, tmp_path, "router-cost", "test", edit)
    line = expect_failure(folder, params, tmp_path, "query_chars")
    assert "failed for 200 sample(s)" in line
    assert len(line.split(": ", 2)[-1].split(", ")) == 10


def test_cli_exits_nonzero_and_prints_each_failure(prepared, tmp_path):
    def edit(rows):
        rows[0]["meta"]["routing"].popitem()
    folder, rows = corrupt(prepared, tmp_path, "router-balance", "train", edit)
    result = CliRunner().invoke(app, ["validate", "--samples", str(folder), "--report", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "router-balance/train: expect_column_values_to_be_in_set(routing_meta_complete)" in result.output
    assert rows[0]["sample_id"] in result.output


def test_unreadable_line_is_a_failure_not_a_crash(tmp_path, params):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "test.jsonl").write_text("[1, 2]\n")
    with pytest.raises(ValidationFailed, match=r"test.jsonl:1: expected a JSON object"):
        validate(folder, params.validate, params.prepare, report_dir=tmp_path / "r")
