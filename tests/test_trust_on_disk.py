"""Trust nothing on disk: a diverged run ships no model, config values are finite, checkpoints hold only tensors,
and a key given twice in YAML or JSON is an error rather than a silent last-one-wins."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from components import training
from cli import app
from components.config import ConfigError, load_yaml, parse_override
from components.params import load_params
from components.io import DataError, load_json, read_jsonl, read_samples
from components.prompts import PromptConfig
from components.training import LoraSettings, TrainingConfigError, TrainingDiverged
from tests.tiny_training import config, samples, scratch, tiny_train  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


# ---------------------------------------------------------------- 1. a NaN model never ships


def test_a_diverging_run_stops_at_the_first_nan_step_and_writes_no_final(samples, scratch):
    out = scratch / "run"
    result = runner.invoke(app, tiny_train(samples, out, "--max-steps", "6", "--learning-rate", "1e12"))
    assert result.exit_code == 1, result.output
    assert re.search(r"error: step 2: the loss is not finite \(nan\); training stopped, no final/ written; "
                     r"lower train\.learning_rate", result.output), result.output
    assert "Traceback" not in result.output and "trained" not in result.output
    assert not (out / "final").exists() and not (out / "summary.json").exists()
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1"]  # none of the diverged step
    assert [json.loads(line)["step"] for line in (out / "health.jsonl").read_text().splitlines()] == [1]


def test_a_diverging_run_keeps_an_earlier_final_and_says_whose_it_is(samples, tmp_path):
    out = tmp_path / "run"
    good = training.train(config(samples, out, max_steps=1))
    config_before = (Path(good["final"]) / "ranker_config.json").read_text()
    with pytest.raises(TrainingDiverged, match=r"^step 2: the loss is not finite \(nan\); training stopped, no final/ "
                                               rf"written \(the {re.escape(str(out / 'final'))} there is an earlier "
                                               r"run's\); lower train\.learning_rate$"):
        training.train(config(samples, out, max_steps=4, learning_rate=1e12))
    assert (out / "final" / "ranker_config.json").read_text() == config_before  # untouched, not overwritten


def poison_optimizer(monkeypatch) -> None:
    """Every AdamW step leaves its first weight NaN: a finite loss whose update goes non-finite."""
    step = torch.optim.AdamW.step

    def poisoned(self, *args, **kwargs):
        result = step(self, *args, **kwargs)
        with torch.no_grad():
            self.param_groups[0]["params"][0].view(-1)[0] = float("nan")
        return result

    monkeypatch.setattr(torch.optim.AdamW, "step", poisoned)


def test_a_non_finite_weight_after_an_update_stops_before_its_checkpoint(samples, tmp_path, monkeypatch):
    """A finite loss whose update leaves a NaN weight (an overflowing optimizer state, say) stops the run too."""
    poison_optimizer(monkeypatch)
    cfg = config(samples, tmp_path / "run", mode="fast")
    with pytest.raises(TrainingDiverged, match=r"^step 1: the trainable weight '[\w.]+' is not finite after the "
                                               r"update; training stopped, no final/ written; lower train"):
        training.train(cfg)
    assert not (tmp_path / "run" / "final").exists() and not list((tmp_path / "run").glob("checkpoint-*"))


def test_first_non_finite_names_the_tensor():
    from components.training.monitors import first_non_finite

    ok, bad = torch.zeros(3), torch.tensor([0.0, float("inf")])
    assert first_non_finite([("a", ok), ("b", ok)]) is None and first_non_finite([]) is None
    assert first_non_finite([("a", ok), ("b", bad), ("c", bad * float("nan"))]) == "b"


# ---------------------------------------------------------------- 2. no NaN or infinity in the config


@pytest.mark.parametrize("key, value, shown", [
    ("train.score_tau", ".nan", "nan"), ("train.learning_rate", ".nan", "nan"), ("register.tolerance", ".inf", "inf"),
    ("train.max_seconds", "-.inf", "-inf"), ("train.lora.dropout", ".nan", "nan"), ("register.alpha", ".NaN", "nan"),
])
def test_nan_and_infinity_are_config_errors_naming_the_key(key, value, shown):
    result = runner.invoke(app, ["config", "--params", str(ROOT / "params.yaml"), "--set", f"{key}={value}"])
    assert result.exit_code == 1
    assert f"{key}: must be a finite number, got {shown}" in result.output, result.output
    with pytest.raises(ConfigError, match=re.escape(f"{key}: must be a finite number, got {shown}")):
        load_params(ROOT / "params.yaml", "tiny", dict([parse_override(f"{key}={value}")]))


def test_a_nan_learning_rate_flag_fails_before_any_training(scratch):
    result = runner.invoke(app, ["train", "--params", str(ROOT / "params.yaml"), "--profile", "tiny",
                                 "--learning-rate", "nan", "--output-dir", str(scratch / "run")])
    assert result.exit_code == 1 and "train.learning_rate: must be a finite number, got nan" in result.output
    assert not (scratch / "run").exists() and not (scratch / "mlflow.db").exists()


def test_train_config_and_reward_weights_built_in_code_refuse_non_finite_values(tmp_path):
    with pytest.raises(TrainingConfigError, match=r"learning_rate: must be a finite number, got inf"):
        config(tmp_path, tmp_path / "run", learning_rate=float("inf"))
    with pytest.raises(TrainingConfigError, match=r"reward 'format_reward': weight must be a finite number, got nan"):
        config(tmp_path, tmp_path / "run", algo="grpo", num_generations=2,
               rewards={"format_reward": {"weight": float("nan")}})


# ---------------------------------------------------------------- 3. checkpoints hold tensors, never code


class Payload:
    """Unpickling this object opens (creates) the marker file: what a planted checkpoint could run instead."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_a_pickled_object_in_a_checkpoint_is_refused_not_run(samples, scratch):
    out, marker = scratch / "run", scratch / "pwned"
    ckpt = out / "checkpoint-1"
    ckpt.mkdir(parents=True)
    torch.save({"model": {}, "optimizer": Payload(marker), "step": 1}, ckpt / "trainer_state.pt")
    probe = scratch / "probe.pt"  # the payload is live: an unrestricted load runs it
    torch.save(Payload(scratch / "probe-ran"), probe)
    torch.load(probe, weights_only=False)
    assert (scratch / "probe-ran").exists()

    result = runner.invoke(app, tiny_train(samples, out, "--max-steps", "2", "--resume"))
    assert result.exit_code == 1, result.output
    assert not marker.exists()
    error = next(line for line in result.output.splitlines() if line.startswith("error:"))
    assert f"{ckpt / 'trainer_state.pt'}: not a checkpoint this trainer wrote, refused without running it" in error
    assert f"delete {ckpt} or train without --resume" in error
    assert "Traceback" not in result.output and "weights_only" not in result.output
    assert not (out / "final").exists() and not (out / "checkpoint-2").exists()


def test_a_genuine_checkpoint_resumes_under_weights_only(samples, tmp_path, monkeypatch):
    loads = []
    original = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(k.get("weights_only")) or original(*a, **k))
    out = tmp_path / "run"
    head_cfg = dict(scorers={"passage": "pointer"}, lora=LoraSettings(enabled=True, r=2, top_layers=1))
    training.train(config(samples, out, max_steps=1, **head_cfg))
    resumed = training.train(config(samples, out, max_steps=2, **head_cfg), resume=True)
    assert resumed["steps"] == 2 and loads == [True]


# ---------------------------------------------------------------- 4. a key twice is an error


def test_a_key_twice_in_params_yaml_names_the_file_line_and_key(tmp_path):
    text = (ROOT / "params.yaml").read_text()
    first = next(n for n, line in enumerate(text.splitlines(), start=1) if line.startswith("  learning_rate:"))
    path = tmp_path / "params.yaml"
    path.write_text(text.replace("  learning_rate:", "  learning_rate: 1.0e+12\n  learning_rate:", 1))
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:{first + 1}: duplicate key 'learning_rate' "
                                          rf"\(first on line {first}\); a key may appear only once in a mapping$"):
        load_params(path)
    result = runner.invoke(app, ["config", "--params", str(path)])
    assert result.exit_code == 1 and f"{path}:{first + 1}: duplicate key 'learning_rate'" in result.output
    assert "1000000000000" not in result.output  # nothing printed from the file


def test_a_key_twice_in_a_profile_is_an_error(tmp_path):
    text = (ROOT / "params.yaml").read_text()
    path = tmp_path / "params.yaml"
    path.write_text(text.replace("      max_steps: 1\n", "      max_steps: 1\n      max_steps: 500\n", 1))
    assert "max_steps: 500" in path.read_text()
    with pytest.raises(ConfigError, match=r"duplicate key 'max_steps'"):
        load_params(path, "tiny")


def test_yaml_loader_keeps_merges_and_rejects_duplicate_override_values():
    assert load_yaml("a: &x {k: 1, j: 2}\nb:\n  <<: *x\n  k: 3\n") == {"a": {"k": 1, "j": 2}, "b": {"k": 3, "j": 2}}
    with pytest.raises(ConfigError, match=r"override 'train.scorers=\{rec: pointer, rec: x\}'.*duplicate key 'rec'"):
        parse_override("train.scorers={rec: pointer, rec: x}")


def test_a_key_twice_in_a_json_file_names_the_file_and_key(tmp_path):
    path = tmp_path / "qrels.json"
    path.write_text('{"q1": {"d1": 1}, "q2": {"d1": 0, "d1": 3}}')
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: duplicate key 'd1' in one object; a key may "
                                        r"appear only once$"):
        load_json(path)
    path.write_text('{"q1": {"d1": 1}, "q2": {"d1": 0, "d2": 3}}')
    assert load_json(path) == {"q1": {"d1": 1}, "q2": {"d1": 0, "d2": 3}}


def test_a_key_twice_in_a_sample_or_jsonl_record_names_the_line(tmp_path):
    good = {"sample_id": "s1", "task": "passage-5", "scenario": "passage", "query": "q", "group": "g",
            "candidates": [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}], "relevance": {"a": 1.0}, "meta": {}}
    path = tmp_path / "train.jsonl"
    line = json.dumps(good)
    twice = line.replace('"query": "q"', '"query": "q", "query": "other"')
    path.write_text(line.replace('"s1"', '"s0"') + "\n" + twice + "\n")
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:2: duplicate key 'query' in one object"):
        read_samples(path)
    path.write_text('{"step": 1}\n{"step": 2, "step": 3}\n')
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}:2: duplicate key 'step' in one object"):
        read_jsonl(path)


@pytest.mark.slow  # TRL GRPO with generation
def test_grpo_stops_at_a_non_finite_weight_before_its_checkpoint(samples, tmp_path, monkeypatch):
    poison_optimizer(monkeypatch)
    cfg = config(samples, tmp_path / "run", algo="grpo", num_generations=2, batch_size=2, max_completion_length=8,
                 max_train_samples=1, prompt=PromptConfig(max_prompt_tokens=512, reasoning=False))
    with pytest.raises(TrainingDiverged, match=r"^step 1: the trainable weight '[\w.]+' is not finite after the "
                                               r"update; training stopped, no final/ written; lower train"):
        training.train(cfg)
    assert not (tmp_path / "run" / "final").exists() and not list((tmp_path / "run").glob("checkpoint-*"))
