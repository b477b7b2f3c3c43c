"""TRL GRPO (`training/grpo.py`): a formatted tiny model trains two steps."""

import dataclasses

import pytest
import torch

from components import training
from components.prompts import PromptConfig
from tests.training.helpers import HEALTH_KEYS, changed, config, read_health, snapshot


@pytest.fixture(scope="module", params=["iranker", "dranker"])
def formatted_tiny(request, prepared, tmp_path_factory):
    """The tiny random model after a few SFT steps on `<answer>...</answer>` completions with random labels.

    A random model never writes the answer format, so every completion would get the same reward, GRPO's
    advantages would all be 0 and nothing could move; this one samples varied, parseable answers.
    """
    import random

    from components.models import load_model

    model, tok = load_model("random:tiny", device="cpu", seed=0)
    cfg = config(prepared, tmp_path_factory.mktemp("sft"), max_train_samples=2, prompt=PromptConfig(max_prompt_tokens=512, reasoning=False))
    cfg = dataclasses.replace(cfg, ranker=request.param, algo="grpo")
    rows = training.build_rows(training.load_train_samples(cfg), cfg, tok)[:8]
    rng = random.Random(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(120):
        row = rng.choice(rows)
        labels = row["labels"][:]
        rng.shuffle(labels)
        answer = labels[0] if request.param == "iranker" else " > ".join(labels)
        prompt_ids = tok(row["prompt"], add_special_tokens=False)["input_ids"]
        target_ids = tok(f"<answer>{answer}</answer><|im_end|>", add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt_ids + target_ids])
        labels_t = torch.tensor([[-100] * len(prompt_ids) + target_ids])
        loss = model(input_ids=ids, labels=labels_t).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    folder = tmp_path_factory.mktemp("formatted-tiny")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return request.param, str(folder)


@pytest.mark.slow  # SFT of the tiny model, then TRL GRPO with generation
def test_grpo_two_steps_change_parameters_and_log_health(prepared, tmp_path, formatted_tiny):
    ranker, formatted_tiny = formatted_tiny
    cfg = config(prepared, tmp_path, ranker=ranker, algo="grpo", num_generations=4, max_completion_length=24, batch_size=8,
                 max_train_samples=2, save_steps=10, model=formatted_tiny, temperature=1.0,
                 prompt=PromptConfig(max_prompt_tokens=512, reasoning=False))
    from transformers import AutoModelForCausalLM

    before = snapshot(AutoModelForCausalLM.from_pretrained(formatted_tiny))
    summary = training.train(cfg)
    assert summary["steps"] == 2
    assert changed(before, summary["final"])
    health = read_health(cfg)
    assert health and HEALTH_KEYS <= set(health[-1])
    assert all(0.0 <= row["health/no_signal_frac"] <= 1.0 for row in health)
    assert {"health/completion_chars", "health/think_chars"} <= set(health[-1])
    assert any(k.startswith("rewards/format_reward") for k in health[-1])
