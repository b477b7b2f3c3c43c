"""The `train` section (`training/config.py`): a bad setting fails before any model loads."""

import pytest

from components import training
from components.prompts import PromptConfig
from components.training import TrainingConfigError, ValidationSettings
from tests.training.helpers import config


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"rewards": {"bleu_reward": {}}}, "unknown reward 'bleu_reward'"),
        ({"validation": ValidationSettings(groups=2, every=0)}, "validation needs groups >= 0, every >= 1"),
        ({"validation": ValidationSettings(groups=2), "algo": "grpo", "num_generations": 2},
         "scored by the expected-reward trainer"),
        ({"autocast": "fp8"}, "autocast must be one of"),
        ({"max_pool_size": 1}, "max_pool_size applies to iranker elimination steps and must be >= 2"),
        ({"max_pool_for": {"recc": 20}}, "max_pool_for: 'recc' is neither a scenario"),
        ({"max_pool_for": {"rec": 1}}, "max_pool_for.rec applies to iranker elimination steps and must be >= 2"),
        ({"draw_weight_for": {"passages": 8}}, "draw_weight_for: 'passages' is neither a scenario"),
        ({"draw_weight_for": {"passage": 0}}, "draw_weight_for.passage must be a number > 0, got 0"),
        ({"draw_weight_for": {"passage": 2}, "algo": "grpo", "num_generations": 2}, "draw_weight_for applies to"),
        ({"objective": "max-margin"}, "objective must be one of"),
        ({"mode": "letters"}, "mode must be one of"),
        ({"scorers": {"rec": "popularity"}}, "unknown scorer 'popularity'; valid scorers"),
        ({"score_tau": 0}, "score_tau must be > 0"),
        ({"objective": "soft-target", "algo": "grpo"}, "needs algo=expected-reward"),
        ({"objective": "keep-target", "mode": "fast"}, "keep-target' needs mode=score"),
        ({"algo": "grpo", "batch_size": 6, "num_generations": 4}, "must be a multiple of num_generations"),
        ({"prompt": PromptConfig(max_prompt_tokens=4090), "algo": "grpo", "num_generations": 2, "max_completion_length": 64},
         "exceeds the context of random:tiny"),
    ],
)
def test_bad_config_fails_before_any_model_loads(prepared, tmp_path, monkeypatch, overrides, message):
    monkeypatch.setattr("components.models.load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    with pytest.raises(TrainingConfigError, match=message):
        training.train(config(prepared, tmp_path, **overrides))


def test_params_objective_does_not_block_grpo_but_an_explicit_one_does():
    raw = {"objective": "soft-target", "algo": "expected-reward"}
    assert training.build_train_config(raw, PromptConfig(), None).objective == "soft-target"
    assert training.build_train_config(raw, PromptConfig(), None, algo="grpo").objective == "expected"
    with pytest.raises(TrainingConfigError, match="needs algo=expected-reward"):
        training.build_train_config(raw, PromptConfig(), None, algo="grpo", objective="soft-target")


def test_unknown_config_key_is_an_error():
    with pytest.raises(TrainingConfigError, match=r"unknown key\(s\) \['epochs'\]"):
        training.build_train_config({"epochs": 3}, PromptConfig(), None)
