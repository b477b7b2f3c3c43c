"""What the training-on-disk tests share: passage-5 prepared once, a scratch working folder, the tiny profile's
`r1ranker train` arguments and its run settings as a `TrainConfig`."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.params import load_params
from components.prompts import PromptConfig
from components.training import LoraSettings, MonitorSettings, TrainConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def samples(tmp_path_factory, data_root) -> Path:
    """passage-5 prepared once (what the tiny profile trains on), without preparing the other eight tasks."""
    from components.preparation import prepare

    out = tmp_path_factory.mktemp("samples")
    prepare(load_params(ROOT / "params.yaml", "tiny").prepare, out=out, data_root=data_root)
    return out


@pytest.fixture
def scratch(tmp_path, monkeypatch) -> Path:
    """Run the CLI from an empty folder: its MLflow store and any relative output land there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def tiny_train(samples: Path, out: Path, *args: str) -> list[str]:
    return ["train", "--params", str(ROOT / "params.yaml"), "--profile", "tiny", "--samples", str(samples),
            "--output-dir", str(out), "--set", "train.autocast='off'", *args]


def config(samples: Path, out: Path, **kw) -> TrainConfig:
    """The tiny profile's run settings (model, mode, scorers, LoRA off): a CLI `--resume` matches its compat block."""
    base = dict(model="random:tiny", samples=str(samples), tasks=("passage-5",), output_dir=str(out),
                max_train_samples=4, max_steps=2, batch_size=2, save_steps=1, learning_rate=1e-2, autocast="off",
                prompt=PromptConfig(max_prompt_tokens=512), lora=LoraSettings(enabled=False),
                monitor=MonitorSettings(stop_early=False))
    return TrainConfig(**{**base, **kw})
