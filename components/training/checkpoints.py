"""Trainer checkpoints of the expected-reward trainer: `<output>/checkpoint-<step>/trainer_state.pt`.

A checkpoint keeps the trainable weights (the LoRA adapters, or the whole model
without LoRA), the pointer head, the optimizer state and the step; GRPO's
checkpoints are TRL's own, found by the same `checkpoint-*` names. Resuming reads
it with `weights_only=True`: tensors and plain values, never a pickled object.
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
    import pickle

    import torch

    from components.io import DataError

    path = Path(ckpt) / "trainer_state.pt"
    try:  # tensors and plain values only: a pickled object in the file is refused, never run
        state = torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError as err:
        raise DataError(f"{path}: missing; delete {ckpt} or train without --resume") from err
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        lines = str(err).splitlines()
        why = next((line.strip() for line in lines if "Unsupported" in line), lines[0] if lines else type(err).__name__)
        raise DataError(f"{path}: not a checkpoint this trainer wrote, refused without running it ({why}); "
                        f"delete {ckpt} or train without --resume") from err
    if not isinstance(state, dict) or not {"model", "optimizer", "step"} <= set(state):
        raise DataError(f"{path}: not a trainer checkpoint (expected model, optimizer and step); "
                        f"delete {ckpt} or train without --resume")
    model.load_state_dict(state["model"], strict=False)
    if head is not None and "head" in state:
        head.linear.load_state_dict(state["head"])
    optimizer.load_state_dict(state["optimizer"])
    step = state["step"]
    log.info("resumed from %s (step %d)", ckpt, step)
    return step
