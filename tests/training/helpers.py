"""What the training tests share: a tiny-model `TrainConfig` over prepared passage-5, weight snapshots and the health log."""

import json
from pathlib import Path

import torch

from components.prompts import PromptConfig
from components.training import LoraSettings, MonitorSettings, TrainConfig

HEALTH_KEYS = {"health/no_signal_frac", "health/invalid_rate", "health/no_answer_rate", "health/kl"}


def config(prepared, tmp_path, **kw):
    samples, _ = prepared
    base = dict(model="random:tiny", samples=str(samples), tasks=("passage-5",), output_dir=str(tmp_path / "run"),
                max_train_samples=4, max_steps=2, batch_size=4, save_steps=1, learning_rate=1e-2,
                prompt=PromptConfig(max_prompt_tokens=512), lora=LoraSettings(enabled=False),
                monitor=MonitorSettings(stop_early=False))
    base.update(kw)
    return TrainConfig(**base)


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def changed(before, folder):
    from transformers import AutoModelForCausalLM

    after = AutoModelForCausalLM.from_pretrained(folder).state_dict()
    return [k for k in before if k in after and not torch.equal(before[k], after[k])]


def initial_weights(cfg):
    from components.models import load_model

    model, _ = load_model(cfg.model, device="cpu", seed=cfg.seed)
    return snapshot(model)


def read_health(cfg):
    return [json.loads(line) for line in (Path(cfg.output_dir) / "health.jsonl").read_text().splitlines()]
