"""The pointer scorer's trained part: a linear head over hidden states, saved beside the model."""

from __future__ import annotations

from pathlib import Path

from components.io import DataError

HEAD_FILE = "score_head.safetensors"


class ScoreHead:
    """A linear map from a hidden state to a score, zero-initialised: every candidate starts tied."""

    def __init__(self, hidden_size: int, device=None):
        import torch

        self.linear = torch.nn.Linear(hidden_size, 1, device=device)
        torch.nn.init.zeros_(self.linear.weight)
        torch.nn.init.zeros_(self.linear.bias)

    def __call__(self, h):
        return self.linear(h.float()).squeeze(-1)

    def parameters(self):
        return self.linear.parameters()

    def save(self, folder: Path) -> Path:
        from safetensors.torch import save_file

        path = Path(folder) / HEAD_FILE
        save_file({k: v.detach().cpu().contiguous() for k, v in self.linear.state_dict().items()}, str(path))
        return path

    @classmethod
    def load(cls, folder: Path, hidden_size: int, device=None) -> "ScoreHead":
        """The head saved in `folder`, or a zero head when there is none (an untrained model)."""
        head = cls(hidden_size, device)
        path = Path(folder) / HEAD_FILE if folder else None
        if path is not None and path.exists():
            from safetensors.torch import load_file

            state = load_file(str(path), device=str(device or "cpu"))
            bad = next((k for k, v in state.items() if not v.isfinite().all()), None)
            if bad is not None:  # as for the model's weights: a NaN head never ranks
                raise DataError(f"{path}: tensor {bad!r} of the score head is not finite; this model cannot rank")
            head.linear.load_state_dict(state)
        return head
