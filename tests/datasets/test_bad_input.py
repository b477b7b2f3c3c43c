"""Bad input gets a clear error naming the file and line or sample, and leaves no partial output."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from components.config import PrepareConfig, TaskConfig
from components.datasets import UnknownTaskError
from components.io import DataError
from components.preparation import prepare

GOOD = {
    "sample_id": "u:1", "task": "mine", "scenario": "custom", "query": "q",
    "candidates": [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}],
    "relevance": {"a": 1}, "group": "g1",
}


def jsonl_cfg(path: Path, **extra) -> PrepareConfig:
    return PrepareConfig(data_root=str(path.parent), tasks={"mine": TaskConfig(source="jsonl", path=path.name, test_groups=1, **extra)})


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def assert_no_output(out: Path):
    assert not out.exists() or not any(p for p in out.rglob("*") if p.is_file())


def second(rec):
    return json.dumps(dict(GOOD, sample_id="u:2", group="g2", **rec))


@pytest.mark.parametrize(
    "line2, expected",
    [
        ('{"sample_id": "u:2", "task": "mine"', "data.jsonl:2: invalid JSON"),
        ('["not", "an", "object"]', "data.jsonl:2: expected a JSON object, got list"),
        (second({"relevance": {"a": 0}}), "data.jsonl:2: field 'relevance': no gold candidate"),
        (second({"candidates": [{"id": "a", "text": "A"}, {"id": "a", "text": "B"}]}), "data.jsonl:2: field 'candidates': duplicate ids ['a']"),
        (second({"candidates": [{"id": "a", "text": "A"}, {"id": "b", "text": ""}]}), "data.jsonl:2: field 'candidates[1]'.text is blank"),
    ],
)
def test_bad_jsonl_names_file_and_line(tmp_path, line2, expected):
    src = write_lines(tmp_path / "data.jsonl", [json.dumps(GOOD), line2])
    out = tmp_path / "out"
    with pytest.raises(DataError) as info:
        prepare(jsonl_cfg(src), out=out)
    assert expected in str(info.value)
    assert_no_output(out)


def test_non_utf8_byte(tmp_path):
    src = tmp_path / "data.jsonl"
    src.write_bytes(json.dumps(GOOD).encode() + b"\n" + json.dumps(dict(GOOD, query="caf\xe9"), ensure_ascii=False).encode("latin-1") + b"\n")
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"data.jsonl:2: byte 0xe9 .* not valid UTF-8"):
        prepare(jsonl_cfg(src), out=out)
    assert_no_output(out)


def test_truncated_json_file(tmp_path, data_root):
    folder = tmp_path / "trec"
    folder.mkdir()
    for name in ("dl19_bm25_top100.json", "dl19_qrels.json"):  # one year per folder for the trec-dl source
        shutil.copy(data_root / "trec-dl" / name, folder / name)
    run = folder / "dl19_bm25_top100.json"
    run.write_bytes(run.read_bytes()[:5000])
    cfg = PrepareConfig(tasks={"passage-5": TaskConfig(source="trec-dl", path=str(folder), n_candidates=5)})
    with pytest.raises(DataError, match=r"dl19_bm25_top100.json:\d+: invalid JSON"):
        prepare(cfg, out=tmp_path / "out")
    assert_no_output(tmp_path / "out")


def test_csv_with_missing_column(tmp_path, data_root):
    folder = tmp_path / "rb"
    shutil.copytree(data_root / "routerbench", folder)
    csv = folder / "winograde_test.csv"
    lines = csv.read_text().splitlines(keepends=True)
    header = lines[0].split(",")
    header[header.index("prompt")] = "question"
    csv.write_text(",".join(header) + "".join(lines[1:]))
    cfg = PrepareConfig(tasks={"router-cost": TaskConfig(source="routerbench", path=str(folder), weights=(0.2, 0.8))})
    with pytest.raises(DataError, match=r"winograde_test.csv:1: missing column\(s\) \['prompt'\]"):
        prepare(cfg, out=tmp_path / "out")
    assert_no_output(tmp_path / "out")


def test_unknown_task_name(params, tmp_path):
    with pytest.raises(UnknownTaskError, match=r"unknown task\(s\) \['rec-books'\]; configured tasks: \['rec-movie'"):
        prepare(params.prepare, tasks=["rec-books"], out=tmp_path / "out")
    assert_no_output(tmp_path / "out")


def test_failed_prepare_keeps_previous_outputs(tmp_path):
    src = write_lines(tmp_path / "data.jsonl", [json.dumps(GOOD), second({})])
    out = tmp_path / "out"
    prepare(jsonl_cfg(src), out=out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    write_lines(src, [json.dumps(GOOD), "{broken"])
    with pytest.raises(DataError):
        prepare(jsonl_cfg(src), out=out)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_cli_reports_error_and_exits_nonzero(tmp_path):
    result = CliRunner().invoke(app, ["prepare", "--tasks", "nope", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "unknown task(s) ['nope']" in result.output


def test_user_jsonl_prepares_and_validates(tmp_path, params):
    from components.validation import validate

    root = Path(__file__).resolve().parents[2]
    cfg = PrepareConfig(data_root=str(root), tasks={"custom-qa": TaskConfig(source="jsonl", path="docs/examples/custom-qa.jsonl", test_groups=2)})
    card = prepare(cfg, out=tmp_path / "samples")
    assert card["custom-qa"]["test"]["samples"] == 2 and card["custom-qa"]["train"]["samples"] == 2
    summary = validate(tmp_path / "samples", params.validate, cfg, report_dir=tmp_path / "report")
    assert {s["split"] for s in summary} == {"train", "test"} and all(s["failed"] == 0 for s in summary)
