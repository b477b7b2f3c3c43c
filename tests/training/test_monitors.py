"""What a run reports and when it stops (`training/monitors.py`): the reward curve, the held-out check, the wall-clock budget."""

from pathlib import Path

from components import training
from components.training import ValidationSettings
from tests.training.helpers import config, read_health


def test_reward_curve_rolling_mean_is_trailing_and_skips_steps_without_the_metric():
    from components.views import rolling_mean

    nan = float("nan")
    assert rolling_mean([1.0, 3.0, nan, 5.0], 2) == [1.0, 2.0, 3.0, 5.0]
    assert rolling_mean([0.5, 0.7], 1) == [0.5, 0.7]
    out = rolling_mean([nan, nan, 2.0], 2)
    assert out[0] != out[0] and out[1] != out[1] and out[2] == 2.0


def test_held_out_check_is_logged_at_the_first_every_nth_and_last_step(prepared, tmp_path):
    from components.views import write_curves

    cfg = config(prepared, tmp_path, max_steps=3, max_train_samples=None,
                 validation=ValidationSettings(groups=2, every=2, max_rows=5))
    summary = training.train(cfg)
    health = read_health(cfg)
    assert [h["step"] for h in health if "val/greedy_mean" in h] == [1, 3]
    h = health[0]
    assert 0.0 <= h["val/uniform_mean"] <= 1.2 and "val/greedy_over_uniform/passage-5" in h
    # the keep side: a hit rate, and a uniform keep's chance of the best (one gold in 2..20 candidates)
    assert 0.0 <= h["val/keep_best/passage-5"] <= 1.0 and 0.0 <= h["val/keep_best_mean"] <= 1.0
    assert 0.05 <= h["val/keep_chance_mean"] <= 0.5
    assert summary["validation_rows"] == 5 and summary["validation_seconds"] > 0
    assert write_curves(Path(cfg.output_dir)).exists() and (Path(cfg.output_dir) / "reward_curve.png").stat().st_size


def test_wall_clock_budget_stops_training_with_a_final_model(prepared, tmp_path):
    cfg = config(prepared, tmp_path, max_steps=50, max_seconds=1e-3)
    summary = training.train(cfg)
    assert summary["steps"] == 1 and summary["budget_spent"]
    assert (Path(summary["final"]) / "config.json").exists() and (Path(cfg.output_dir) / "checkpoint-1").exists()
    assert read_health(cfg)[0]["tokens_per_second"] > 0
