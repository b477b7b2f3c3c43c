"""Checkpoints and processes (`training/checkpoints.py`): an interrupted run resumes to the same step count; two CPU processes under accelerate."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from components import training
from tests.training.helpers import config, read_health


ROOT = Path(__file__).resolve().parents[2]


def test_interrupted_run_resumes_to_the_same_step_count(prepared, tmp_path):
    full = config(prepared, tmp_path / "a", max_steps=4, save_steps=2)
    first = config(prepared, tmp_path / "b", max_steps=2, save_steps=2)
    training.train(first)  # "interrupted" after its checkpoint at step 2
    resumed = training.train(config(prepared, tmp_path / "b", max_steps=4, save_steps=2), resume=True)
    assert resumed["steps"] == 4 == training.train(full)["steps"]
    steps = [row["step"] for row in read_health(config(prepared, tmp_path / "b"))]
    assert steps == [1, 2, 3, 4]


@pytest.mark.slow  # two processes under accelerate launch
def test_two_process_cpu_accelerate_run(prepared, tmp_path):
    samples, _ = prepared
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(Path(sys.executable).parent / "accelerate"), "launch", "--config_file",
           str(ROOT / "configs/accelerate/cpu-2proc.yaml"), "-m", "cli", "train", "--params", str(ROOT / "params.yaml"),
           "--algo", "grpo", "--model", "random:tiny", "--samples", str(samples), "-t", "passage-5",
           "--max-train-samples", "2", "--max-steps", "2", "--batch-size", "2", "--num-generations", "2",
           "--output-dir", str(out), "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["steps"] == 2
