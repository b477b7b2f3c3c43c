"""A model's fingerprint covers what decides how it ranks (weights, score head, config.json, tokenizer files):
an evaluation no longer matches a folder whose config or tokenizer changed, and serving refuses a packaged folder
that differs from the one registered."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from components.evaluation import evaluate_report, load_eval_samples
from components.models import folder_fingerprint, model_fingerprint
from components.rankers import LLMRankerConfig, build_ranker
from components.serving import ModelTampered, check_packaged, save_weights

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return save_weights("random:tiny", tmp_path_factory.mktemp("tiny") / "model")


def edited(folder: Path, dst: Path, name: str) -> Path:
    shutil.copytree(folder, dst)
    path = dst / name
    d = json.loads(path.read_text())
    if name == "config.json":
        d["rope_theta"] = float(d.get("rope_theta", 10000.0)) * 2
    else:
        d.setdefault("added_tokens", []).append({"id": 99999, "content": "<x>", "single_word": False, "lstrip": False,
                                                 "rstrip": False, "normalized": False, "special": True})
    path.write_text(json.dumps(d))
    return dst


@pytest.mark.parametrize("name", ["config.json", "tokenizer.json"])
def test_config_and_tokenizer_are_part_of_the_fingerprint(folder, tmp_path, name):
    assert model_fingerprint(str(folder)) == folder_fingerprint(folder)
    assert folder_fingerprint(edited(folder, tmp_path / "m", name)) != folder_fingerprint(folder)
    with pytest.raises(ModelTampered, match="differs from the one registered"):
        check_packaged(tmp_path / "m", folder_fingerprint(folder))
    check_packaged(folder, folder_fingerprint(folder))  # the registered folder itself loads


def test_a_registered_model_without_a_fingerprint_is_refused(folder):
    with pytest.raises(ModelTampered, match="register it again"):
        check_packaged(folder, None)


def test_register_refuses_an_evaluation_whose_model_config_changed_afterwards(folder, prepared, tmp_path, monkeypatch):
    samples, _ = prepared
    model = tmp_path / "model"
    shutil.copytree(folder, model)
    by_task = load_eval_samples(samples, ["passage-5"], "test", 6)
    ranker = build_ranker("iranker", model=str(model), config=LLMRankerConfig(mode="fast"))
    evaluate_report(ranker, by_task, tmp_path / "eval", {"label": "tiny", "samples": str(samples)}, show_progress=False)
    config = json.loads((model / "config.json").read_text())
    config["rope_theta"] = float(config.get("rope_theta", 10000.0)) * 2
    (model / "config.json").write_text(json.dumps(config))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = runner.invoke(app, ["register", "--model", str(model), "--eval", str(tmp_path / "eval"), "--mode", "fast",
                                 "--name", "tampered", "--params", str(ROOT / "params.yaml")])
    assert result.exit_code == 1, result.output
    assert "is an evaluation of another model than" in " ".join(result.output.split())
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()


def _context(folder: Path, **change):
    """What MLflow hands `RankerModel.load_context`: the registered model config and the packaged folder."""
    import dataclasses
    from types import SimpleNamespace

    from components.models import load_tokenizer
    from components.prompts import PromptConfig
    from components.rankers import RankerSpec
    from components.serving import ranker_config

    thash = RankerSpec(ranker="iranker", mode="fast").hash_with(load_tokenizer(str(folder)))
    cfg = ranker_config("iranker", "fast", thash, dataclasses.asdict(PromptConfig()),
                        fingerprint=folder_fingerprint(folder))
    return SimpleNamespace(model_config={**cfg, **change}, artifacts={"model": str(folder)})


@pytest.mark.parametrize("ranker", ["iranker", "iterative"])  # registered before each ranker had one name: same
def test_serving_reads_the_registered_ranker_spec_once(folder, ranker):
    from components.serving import RankerModel

    model = RankerModel()
    model.load_context(_context(folder, ranker=ranker))
    assert model.ranker.name == "iranker" and model.ranker.config.mode == "fast"


@pytest.mark.parametrize("change, error", [
    ({"prompt": {"no_such_key": 1}}, "registered model config.*no_such_key"),
    ({"mode": 3}, "registered model config.*mode: expected a string"),
    ({"template_hash": "000000000000"}, "another prompt than it was evaluated with"),
])
def test_serving_refuses_a_registered_config_it_cannot_stand_behind(folder, change, error):
    from mlflow.exceptions import MlflowException

    from components.io import DataError
    from components.serving import RankerModel

    with pytest.raises((DataError, MlflowException), match=error):
        RankerModel().load_context(_context(folder, **change))
