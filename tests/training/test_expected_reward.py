"""The exact expected-reward trainer (`training/expected_reward.py`, `policy.py`): fast and score mode move the parameters they should, objectives, autocast."""

import json
from pathlib import Path

import pytest
import torch

from components import training
from components.training import LoraSettings
from tests.training.helpers import HEALTH_KEYS, changed, config, initial_weights, read_health


@pytest.mark.parametrize("objective", ["expected", "soft-target"])
def test_expected_reward_two_steps_change_parameters_and_log_health(prepared, tmp_path, objective):
    cfg = config(prepared, tmp_path, objective=objective, mode="fast")
    before = initial_weights(cfg)
    summary = training.train(cfg)
    assert summary["steps"] == 2
    assert changed(before, summary["final"]), "no trainable parameter moved"
    health = read_health(cfg)
    assert len(health) == 2 and HEALTH_KEYS <= set(health[0]) and "reward/expected_mean" in health[0]
    h = health[0]  # the argmax label's reward lies between the batch's worst and best, as a mean of picks
    assert 0.0 <= h["reward/greedy_mean"] <= 1.2 and any(k.startswith("reward/greedy_over_uniform/") for k in h)
    meta = json.loads((Path(summary["final"]) / "ranker_config.json").read_text())
    assert meta["ranker"] == "iranker" and meta["mode"] == "fast" and len(meta["template_hash"]) == 12


def test_expected_reward_under_bf16_autocast_keeps_fp32_weights(prepared, tmp_path):
    cfg = config(prepared, tmp_path, autocast="bf16")
    assert training.autocast_dtype(cfg, torch.device("cpu")) == torch.bfloat16
    assert training.autocast_dtype(config(prepared, tmp_path), torch.device("cpu")) is None  # auto: random models stay fp32
    before = initial_weights(cfg)
    summary = training.train(cfg)
    assert summary["steps"] == 2 and changed(before, summary["final"])
    from transformers import AutoModelForCausalLM

    saved = AutoModelForCausalLM.from_pretrained(summary["final"])
    assert next(saved.parameters()).dtype == torch.float32  # autocast computes in bf16, the weights stay fp32
    assert all(h["reward/expected_mean"] == h["reward/expected_mean"] for h in read_health(cfg))  # no NaN


def test_soft_target_gradient_survives_a_one_label_policy():
    """The base model names one label almost always; there the expected reward's gradient vanishes, soft-target's not."""
    rewards = torch.tensor([0.0, 1.0, 0.5])  # the policy sits on the worst elimination
    grads = {}
    for objective in training.OBJECTIVES:
        logits = torch.tensor([12.0, 0.0, 0.0], requires_grad=True)
        training.objective_loss(torch.log_softmax(logits, -1), rewards, objective, tau=0.25).backward()
        grads[objective] = logits.grad.norm().item()
    assert grads["expected"] < 1e-4 and grads["soft-target"] > 0.5
    # soft-target is at its optimum exactly when pi = softmax(r / tau)
    logits = (rewards / 0.25).clone().requires_grad_(True)
    training.objective_loss(torch.log_softmax(logits, -1), rewards, "soft-target", tau=0.25).backward()
    assert logits.grad.abs().max().item() < 1e-6


def test_keep_target_is_the_listwise_loss_of_the_gold_item_and_lifts_it_to_the_top():
    """keep-target fits softmax(s) to the candidate whose elimination costs most: -log softmax(s)[gold] for 0/1 rewards."""
    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0])  # eliminating candidate 1 (the gold item) earns nothing
    scores = torch.tensor([-1.0, -2.0, -1.5, -3.0], requires_grad=True)
    loss = training.objective_loss(torch.log_softmax(-scores, -1), rewards, "keep-target", tau=1e-3)
    assert loss.item() == pytest.approx(-torch.log_softmax(scores.detach(), -1)[1].item(), abs=1e-4)
    loss.backward()
    assert scores.grad[1] < 0 and (scores.grad[[0, 2, 3]] > 0).all()  # descent raises the gold score, lowers the rest
    # soft-target's gradient on the gold score is its elimination probability: small once another candidate is lowest
    soft = scores.detach().clone().requires_grad_(True)
    training.objective_loss(torch.log_softmax(-soft, -1), rewards, "soft-target", tau=1e-3).backward()
    assert abs(soft.grad[1].item()) < abs(scores.grad[1].item()) / 3


@pytest.mark.parametrize("objective", ["soft-target", "keep-target"])
def test_score_mode_two_steps_change_lora_and_head_and_save_them(prepared, tmp_path, objective):
    from safetensors.torch import load_file

    from components.scorers import HEAD_FILE

    cfg = config(prepared, tmp_path, tasks=("passage-5", "rec-movie", "router-performance"), max_train_samples=2,
                 lora=LoraSettings(r=4, alpha=8, top_layers=1), objective=objective)
    assert cfg.mode == "score"
    before = initial_weights(cfg)
    summary = training.train(cfg)
    moved = changed(before, summary["final"])
    assert moved and all(".layers.1." in k for k in moved), moved  # LoRA on the top layer only, merged
    head = load_file(str(Path(summary["final"]) / HEAD_FILE))
    assert head["weight"].abs().sum() > 0  # zero-initialised, trained
    meta = json.loads((Path(summary["final"]) / "ranker_config.json").read_text())
    assert meta["mode"] == "score" and meta["head"] and meta["scorers"]["router"] == "pointer"
    h = read_health(cfg)[0]
    assert 0.0 <= h["reward/greedy_mean"] <= 1.2 and any(k.startswith("reward/greedy_over_uniform/") for k in h)


def test_score_mode_scores_a_context_free_sample_once_for_all_of_its_pools(prepared, tmp_path):
    from components.training.expected_reward import ExpectedRewardTrainer

    cfg = config(prepared, tmp_path, tasks=("passage-5", "rec-movie", "router-performance"), max_train_samples=2,
                 max_pool_size=4)
    trainer = ExpectedRewardTrainer(cfg)
    trainer.setup()
    rows, items = trainer.rows, trainer.items
    assert sorted(i for item in items for i in item) == list(range(len(rows)))  # every row in exactly one item
    for item in items:
        tasks = {rows[i]["task"] for i in item}
        assert len({rows[i]["sample_id"] for i in item}) == 1
        assert len(item) == (1 if tasks == {"router-performance"} else 3)  # pools 4, 3, 2 together; the pointer alone
    grouped = next(item for item in items if len(item) == 3)
    trainer.model.eval()
    with torch.no_grad():
        together = trainer.score_logits([rows[i] for i in grouped])
        alone = [trainer.score_logits([rows[i]])[0] for i in grouped]
    for a, b in zip(together, alone):
        assert torch.allclose(a, b, atol=1e-4)


def test_score_mode_pointer_trains_only_its_head_unless_asked(prepared, tmp_path):
    from safetensors.torch import load_file

    from components.scorers import HEAD_FILE

    lora = LoraSettings(r=4, alpha=8, top_layers=1)
    for flows_into_lora in (False, True):
        cfg = config(prepared, tmp_path / str(flows_into_lora), tasks=("router-performance",), max_train_samples=2,
                     lora=lora, pointer_trains_lora=flows_into_lora)
        before = initial_weights(cfg)
        summary = training.train(cfg)
        assert load_file(str(Path(summary["final"]) / HEAD_FILE))["weight"].abs().sum() > 0
        # zero head: the first step's LoRA gradient is zero either way; the second moves LoRA only when asked
        assert bool(changed(before, summary["final"])) == flows_into_lora
