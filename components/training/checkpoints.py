"""Trainer checkpoints of the expected-reward trainer: `<output>/checkpoint-<step>/trainer_state.pt`.

A checkpoint keeps the trainable weights (the LoRA adapters, or the whole model
without LoRA), the pointer head, the optimizer state and the step; GRPO's
checkpoints are TRL's own, found by the same `checkpoint-*` names.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def _checkpoints(out: Path) -> list[Path]:
    return sorted(Path(out).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))


def _save_checkpoint(model, optimizer, step: int, out: Path, head=None) -> None:
    import torch

    from components.io import atomic_dir

    trainable = {k: v for k, v in model.state_dict().items() if "lora" in k or not hasattr(model, "disable_adapter")}
    state = {"model": trainable, "optimizer": optimizer.state_dict(), "step": step}
    if head is not None:
        state["head"] = head.linear.state_dict()
    with atomic_dir(Path(out) / f"checkpoint-{step}") as tmp:
        torch.save(state, tmp / "trainer_state.pt")


def _load_checkpoint(ckpt: Path, model, optimizer, head=None) -> int:
    """Restore a `_save_checkpoint` folder into the model, the pointer head and the optimizer; its step."""
    import torch

    state = torch.load(ckpt / "trainer_state.pt", weights_only=False)
    model.load_state_dict(state["model"], strict=False)
    if head is not None and "head" in state:
        head.linear.load_state_dict(state["head"])
    optimizer.load_state_dict(state["optimizer"])
    step = state["step"]
    log.info("resumed from %s (step %d)", ckpt, step)
    return step
