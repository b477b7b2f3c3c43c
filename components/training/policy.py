"""The policy: loading it with LoRA on the chosen layers, its loss, and the saved final model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.rankers.spec import RankerSpec
from components.training.config import LoraSettings, TrainConfig
from components.io import atomic_dir
from components.models import load_model


def load_policy(cfg: TrainConfig):
    """(model, tokenizer), with LoRA adapters when enabled."""
    model, tok = load_model(cfg.model, device=cfg.device, seed=cfg.seed, for_training=True)
    model.train()
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if cfg.lora.enabled:
        model = apply_lora(model, cfg.lora)
    return model, tok


def lora_config(settings: LoraSettings, n_layers: int):
    from peft import LoraConfig

    layers = None
    if settings.top_layers:
        layers = list(range(max(0, n_layers - settings.top_layers), n_layers))
    return LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                      target_modules=list(settings.target_modules), layers_to_transform=layers, task_type="CAUSAL_LM")


def apply_lora(model, settings: LoraSettings):
    from peft import get_peft_model

    return get_peft_model(model, lora_config(settings, model.config.num_hidden_layers))


def save_final(model, tok, cfg: TrainConfig, out: Path, extra: dict[str, Any], head=None) -> Path:
    """Weights (LoRA merged), tokenizer, the score head (pointer) and the model's `RankerSpec` (ranker_config.json).

    The spec records how the model ranks (ranker, mode, scorers, prompt, template hash): evaluation, registration
    and serving read it once, and a flag that contradicts it is an error.
    """
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    spec = RankerSpec(ranker=cfg.ranker, mode=cfg.ranking_mode, template_hash=cfg.template_hash_of(tok), prompt=cfg.prompt,
                      extra={"algo": cfg.algo, "base_model": cfg.model, **extra},
                      **({"scorers": cfg.scorers, "score_tau": cfg.score_tau, "head": head is not None}
                         if cfg.ranking_mode == "score" else {}))
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if head is not None:
            head.save(tmp)
        spec.save(tmp)
    return out


def objective_loss(logp, rewards, objective: str = "expected", tau: float = 0.25):
    """One prompt's loss from pi's log-probs over the remaining labels and each label's reward.

    expected:    -sum_a pi(a) r(a); logit gradient pi_a (E_pi[r] - r_a), ~0 wherever pi is one-hot
    soft-target: -sum_a q(a) log pi(a) with q = softmax(r / tau); logit gradient pi - q, zero only at pi = q
    keep-target: the same fit for the candidate to keep: keep(a) = softmax(-logits) (score mode: softmax(s / score_tau))
                 against softmax(-r / tau), which sits on the candidate whose elimination costs most (the gold item).
                 Binary rewards make it -log softmax(s)[gold]: the listwise loss of the last elimination from the pool.
                 Its gradient lifts the gold score until it tops the pool; soft-target's stops once the gold item is
                 no longer the one to eliminate, and spends itself evening out the negatives.
    """
    import torch

    if objective == "keep-target":  # log_softmax(-logp) == log_softmax(-logits): logp is logits minus a constant
        return -(torch.softmax(-rewards / tau, dim=-1) * torch.log_softmax(-logp, dim=-1)).sum()
    if objective == "soft-target":
        return -(torch.softmax(rewards / tau, dim=-1) * logp).sum()
    return -(logp.exp() * rewards).sum()
