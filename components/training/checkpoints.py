"""Trainer checkpoints of the expected-reward trainer: `<output>/checkpoint-<step>/trainer_state.pt`.

A checkpoint keeps the trainable weights (the LoRA adapters, or the whole model
without LoRA), the pointer head, the optimizer state, the step and the id of the
run that wrote it (`components.training.runs`); GRPO's checkpoints are TRL's own,
found by the same `checkpoint-*` names. Resuming reads it with `weights_only=True`:
tensors and plain values, never a pickled object. It is read once, before the
model loads (`read_checkpoint`, so a checkpoint of another run is refused early),
and restored after (`restore_checkpoint`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from components.io import DataError, atomic_dir

log = logging.getLogger(__name__)


def list_checkpoints(out: Path) -> list[Path]:
    """The `checkpoint-<step>` folders of `out`, by step (other names that start so are not checkpoints)."""
    found = [p for p in Path(out).glob("checkpoint-*") if p.is_dir() and p.name.split("-", 1)[1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-", 1)[1]))


def save_checkpoint(model, optimizer, step: int, out: Path, head=None, run_id: str | None = None) -> None:
    import torch

    trainable = {k: v for k, v in model.state_dict().items() if "lora" in k or not hasattr(model, "disable_adapter")}
    state = {"model": trainable, "optimizer": optimizer.state_dict(), "step": step, "run_id": run_id}
    if head is not None:
        state["head"] = head.linear.state_dict()
    with atomic_dir(Path(out) / f"checkpoint-{step}") as tmp:
        torch.save(state, tmp / "trainer_state.pt")


def read_checkpoint(ckpt: Path, mmap: bool = False) -> dict[str, Any]:
    """A `save_checkpoint` folder's state, loaded with weights_only (`mmap`: tensors mapped, not read, for a check).

    Raises DataError naming the file for a missing file, a pickled object or anything else this trainer did not write.
    """
    import pickle

    import torch

    path = Path(ckpt) / "trainer_state.pt"
    try:  # tensors and plain values only: a pickled object in the file is refused, never run
        state = torch.load(path, weights_only=True, map_location="cpu", mmap=mmap)
    except FileNotFoundError as err:
        raise DataError(f"{path}: missing; delete {ckpt} or train without --resume") from err
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as err:
        lines = str(err).splitlines()
        why = next((line.strip() for line in lines if "Unsupported" in line), lines[0] if lines else type(err).__name__)
        raise DataError(f"{path}: not a checkpoint this trainer wrote, refused without running it ({why}); "
                        f"delete {ckpt} or train without --resume") from err
    if not isinstance(state, dict) or not {"model", "optimizer", "step"} <= set(state):
        raise DataError(f"{path}: not a trainer checkpoint (expected model, optimizer and step); "
                        f"delete {ckpt} or train without --resume")
    return state


def restore_checkpoint(ckpt: Path, state: dict[str, Any], model, optimizer, head=None) -> int:
    """Restore a `read_checkpoint` state into the model, the pointer head and the optimizer; its step."""
    model.load_state_dict(state["model"], strict=False)
    if head is not None and "head" in state:
        head.linear.load_state_dict(state["head"])
    optimizer.load_state_dict(state["optimizer"])
    step = state["step"]
    log.info("resumed from %s (step %d)", ckpt, step)
    return step
