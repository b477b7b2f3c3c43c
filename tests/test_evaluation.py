"""`r1ranker evaluate`: files, honest rates, comparisons, and bad input without partial output."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def evaluate(*args):
    return runner.invoke(app, ["evaluate", "--params", str(ROOT / "params.yaml"), *args])


@pytest.fixture(scope="module")
def bm25_run(prepared, tmp_path_factory):
    samples, _ = prepared
    out = tmp_path_factory.mktemp("eval") / "bm25"
    result = evaluate("--ranker", "bm25", "--samples", str(samples), "-t", "passage-5,router-cost", "--limit", "30", "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def test_writes_metrics_rankings_and_plot(bm25_run):
    metrics = json.loads((bm25_run / "metrics.json").read_text())
    assert set(metrics["tasks"]) == {"passage-5", "router-cost"}
    p5 = metrics["tasks"]["passage-5"]
    assert p5["n"] == 30 and p5["n_skipped"] == 0
    for name in ("mrr", "ndcg@1", "ndcg@3", "ndcg@5", "ndcg@10", "hit@1", "hit@3", "hit@5"):
        m = p5["metrics"][name]
        assert m["ci95"][0] <= m["mean"] <= m["ci95"][1]
    assert {"invalid_rate", "no_answer_rate", "repaired_ranking_rate"} <= set(p5["parse"])
    assert {"llm_calls_per_sample", "tokens_in_per_sample", "latency_p50", "latency_p95"} <= set(p5["cost"])
    assert set(metrics["tasks"]["router-cost"]["metrics"]["routing"]) >= {"perf", "cost", "score"}
    lines = (bm25_run / "rankings.jsonl").read_text().splitlines()
    assert len(lines) == 60 and {"task", "sample_id", "order", "steps"} <= set(json.loads(lines[0]))
    assert (bm25_run / "mrr_by_task.png").read_bytes()[:4] == b"\x89PNG"


def test_llm_run_with_traces_and_compare(prepared, bm25_run, tmp_path):
    samples, _ = prepared
    out = tmp_path / "tiny"
    result = evaluate("--ranker", "iranker", "--model", "random:tiny", "--mode", "reasoning", "--max-new-tokens", "4",
                      "--samples", str(samples), "-t", "passage-5", "--limit", "4", "--out", str(out),
                      "--compare", str(bm25_run / "metrics.json"))
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    from components.prompts import PROMPT_VERSION

    assert metrics["system"]["dtype"] == "float32" and metrics["system"]["prompt_version"] == PROMPT_VERSION
    p5 = metrics["tasks"]["passage-5"]
    assert p5["cost"]["llm_calls_per_sample"] == 4.0
    assert 0.0 <= p5["parse"]["invalid_rate"] + p5["parse"]["no_answer_rate"] <= 1.0
    assert sum(p5["parse"]["status_counts"].values()) == 16
    cmp = metrics["compare"]["tasks"]["passage-5"]
    assert cmp["n"] == 4 and 0.0 <= cmp["p_value"] <= 1.0 and cmp["same_suite"] is False
    trace = json.loads((out / "rankings.jsonl").read_text().splitlines()[0])
    assert len(trace["steps"]) == 4 and {"prompt_hash", "completion", "status", "tokens_in", "seconds"} <= set(trace["steps"][0])


def test_skips_are_stated_in_the_report(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    rows = [
        {"sample_id": "one", "task": "mine", "scenario": "custom", "query": "q", "candidates": [{"id": "a", "text": "A"}], "relevance": {"a": 1}, "group": "g1"},
        {"sample_id": "long", "task": "mine", "scenario": "custom", "query": "q",
         "candidates": [{"id": str(i), "text": "word " * 80} for i in range(20)], "relevance": {"0": 1}, "group": "g2"},
        {"sample_id": "ok", "task": "mine", "scenario": "custom", "query": "q",
         "candidates": [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}], "relevance": {"b": 1}, "group": "g3"},
    ]
    (folder / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    params = tmp_path / "params.yaml"
    params.write_text((ROOT / "params.yaml").read_text().replace("max_prompt_tokens: 1024", "max_prompt_tokens: 300"))
    out = tmp_path / "out"
    result = runner.invoke(app, ["evaluate", "--params", str(params), "--model", "random:tiny", "--samples", str(folder),
                                 "--out", str(out), "--mode", "fast"])
    assert result.exit_code == 0, result.output
    rep = json.loads((out / "metrics.json").read_text())["tasks"]["mine"]
    assert rep["n"] == 1 and rep["n_skipped"] == 2
    assert rep["skipped_reasons"] == {"fewer than 2 candidates": 1, "prompt too long": 1}
    # score mode scores each candidate on its own: the long list fits, a query longer than the budget does not
    rows[1]["query"] = "word " * 400
    (folder / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = runner.invoke(app, ["evaluate", "--params", str(params), "--model", "random:tiny", "--samples", str(folder),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    rep = json.loads((out / "metrics.json").read_text())["tasks"]["mine"]
    assert rep["n"] == 1 and rep["skipped_reasons"] == {"fewer than 2 candidates": 1, "prompt too long": 1}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ranker", "gbdt"], "unknown ranker 'gbdt'"),
        (["-t", "rec-books"], "unknown task(s) ['rec-books']"),
        (["--mode", "slow", "--ranker", "iranker"], "unknown mode 'slow'"),
        (["--scorer", "rec=popularity"], "unknown scorer 'popularity'; valid scorers"),
        (["--scorer", "pointer"], "expected SCENARIO=NAME or TASK=NAME"),
    ],
)
def test_bad_options_fail_before_writing(prepared, tmp_path, args, message):
    samples, _ = prepared
    out = tmp_path / "out"
    result = evaluate("--samples", str(samples), "--out", str(out), "--model", "random:tiny", *args)
    assert result.exit_code == 1 and message in result.output
    assert not out.exists()


def test_broken_jsonl_line_fails_cleanly(prepared, tmp_path):
    samples, _ = prepared
    folder = tmp_path / "s"
    shutil.copytree(samples / "passage-5", folder / "passage-5")
    with open(folder / "passage-5" / "test.jsonl", "a") as fh:
        fh.write('{"sample_id": "x", \n')
    out = tmp_path / "out"
    result = evaluate("--ranker", "bm25", "--samples", str(folder), "--out", str(out))
    n = len((samples / "passage-5" / "test.jsonl").read_text().splitlines())
    assert result.exit_code == 1 and f"test.jsonl:{n + 1}: invalid JSON" in result.output
    assert not out.exists()


def test_failed_run_leaves_previous_output_untouched(bm25_run, prepared, tmp_path):
    samples, _ = prepared
    copy = tmp_path / "prev"
    shutil.copytree(bm25_run, copy)
    before = (copy / "metrics.json").read_bytes()
    result = evaluate("--ranker", "bm25", "--samples", str(samples), "--out", str(copy), "--compare", str(tmp_path / "missing.json"))
    assert result.exit_code == 1 and "missing.json: file not found" in result.output
    assert (copy / "metrics.json").read_bytes() == before


def test_first_answer_share_shows_a_label_bias():
    from components.evaluation import _rates
    from components.schema import Ranking, RankingStep

    def ranking(first):
        return Ranking("s", ("a", "b"), (RankingStep("h", first, [first], "ok", 10, 0, 0.1),))

    rates = _rates([ranking("B"), ranking("B"), ranking("C")])
    assert rates["first_answer_top"] == {"label": "B", "share": 2 / 3}
    assert "first_answer_top" not in _rates([Ranking("s", ("a", "b"), ())])  # baselines have no steps


@pytest.fixture(scope="module")
def score_folder(tmp_path_factory):
    """A model folder that records it was trained in score mode with a pointer for passages."""
    from components.models import load_model

    folder = tmp_path_factory.mktemp("trained")
    model, tok = load_model("random:tiny", device="cpu")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    (folder / "ranker_config.json").write_text(json.dumps(
        {"ranker": "iranker", "mode": "score", "scorers": {"passage": "pointer"}}))
    return folder


def test_a_trained_model_is_evaluated_in_its_own_mode_and_scorers(prepared, score_folder, tmp_path):
    samples, _ = prepared
    out = tmp_path / "own"
    result = evaluate("--model", str(score_folder), "--samples", str(samples), "-t", "passage-5", "--limit", "2",
                      "--out", str(out))
    assert result.exit_code == 0, result.output
    system = json.loads((out / "metrics.json").read_text())["system"]
    assert system["mode"] == "score" and system["scorers"]["passage"] == "pointer"
    for args, saved in ((["--mode", "fast"], "mode 'score'"), (["--scorer", "passage=query-likelihood"], "'passage': 'pointer'")):
        result = evaluate("--model", str(score_folder), "--samples", str(samples), "-t", "passage-5", "--limit", "2",
                          "--out", str(tmp_path / "bad"), *args)
        assert result.exit_code == 1 and saved in result.output, result.output
        assert not (tmp_path / "bad").exists()
