"""RL training with a tiny random model on CPU: parameters move, monitors log, resume, DDP, config errors."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from components import training
from components.prompts import PromptConfig
from components.training import LoraSettings, MonitorSettings, TrainConfig, TrainingConfigError, ValidationSettings

ROOT = Path(__file__).resolve().parents[2]
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


@pytest.mark.parametrize("objective", ["expected", "soft-target"])
def test_expected_reward_two_steps_change_parameters_and_log_health(prepared, tmp_path, objective):
    cfg = config(prepared, tmp_path, objective=objective, mode="fast")
    before = initial_weights(cfg)
    summary = training.train(cfg)
    assert summary["steps"] == 2
    assert changed(before, summary["final"]), "no trainable parameter moved"
    health = read_health(cfg)
    assert len(health) == 2 and HEALTH_KEYS <= set(health[0]) and "reward/expected_mean" in health[0]
    h = health[0]  # the argmax label's reward lies between the batch's worst and best, as a mean of picks
    assert 0.0 <= h["reward/greedy_mean"] <= 1.2 and any(k.startswith("reward/greedy_over_uniform/") for k in h)
    meta = json.loads((Path(summary["final"]) / "ranker_config.json").read_text())
    assert meta["ranker"] == "iranker" and meta["mode"] == "fast" and len(meta["template_hash"]) == 12


def test_expected_reward_under_bf16_autocast_keeps_fp32_weights(prepared, tmp_path):
    cfg = config(prepared, tmp_path, autocast="bf16")
    assert training.autocast_dtype(cfg, torch.device("cpu")) == torch.bfloat16
    assert training.autocast_dtype(config(prepared, tmp_path), torch.device("cpu")) is None  # auto: random models stay fp32
    before = initial_weights(cfg)
    summary = training.train(cfg)
    assert summary["steps"] == 2 and changed(before, summary["final"])
    from transformers import AutoModelForCausalLM

    saved = AutoModelForCausalLM.from_pretrained(summary["final"])
    assert next(saved.parameters()).dtype == torch.float32  # autocast computes in bf16, the weights stay fp32
    assert all(h["reward/expected_mean"] == h["reward/expected_mean"] for h in read_health(cfg))  # no NaN


def test_soft_target_gradient_survives_a_one_label_policy():
    """The base model names one label almost always; there the expected reward's gradient vanishes, soft-target's not."""
    rewards = torch.tensor([0.0, 1.0, 0.5])  # the policy sits on the worst elimination
    grads = {}
    for objective in training.OBJECTIVES:
        logits = torch.tensor([12.0, 0.0, 0.0], requires_grad=True)
        training.objective_loss(torch.log_softmax(logits, -1), rewards, objective, tau=0.25).backward()
        grads[objective] = logits.grad.norm().item()
    assert grads["expected"] < 1e-4 and grads["soft-target"] > 0.5
    # soft-target is at its optimum exactly when pi = softmax(r / tau)
    logits = (rewards / 0.25).clone().requires_grad_(True)
    training.objective_loss(torch.log_softmax(logits, -1), rewards, "soft-target", tau=0.25).backward()
    assert logits.grad.abs().max().item() < 1e-6


def test_keep_target_is_the_listwise_loss_of_the_gold_item_and_lifts_it_to_the_top():
    """keep-target fits softmax(s) to the candidate whose elimination costs most: -log softmax(s)[gold] for 0/1 rewards."""
    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0])  # eliminating candidate 1 (the gold item) earns nothing
    scores = torch.tensor([-1.0, -2.0, -1.5, -3.0], requires_grad=True)
    loss = training.objective_loss(torch.log_softmax(-scores, -1), rewards, "keep-target", tau=1e-3)
    assert loss.item() == pytest.approx(-torch.log_softmax(scores.detach(), -1)[1].item(), abs=1e-4)
    loss.backward()
    assert scores.grad[1] < 0 and (scores.grad[[0, 2, 3]] > 0).all()  # descent raises the gold score, lowers the rest
    # soft-target's gradient on the gold score is its elimination probability: small once another candidate is lowest
    soft = scores.detach().clone().requires_grad_(True)
    training.objective_loss(torch.log_softmax(-soft, -1), rewards, "soft-target", tau=1e-3).backward()
    assert abs(soft.grad[1].item()) < abs(scores.grad[1].item()) / 3


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


def test_interrupted_run_resumes_to_the_same_step_count(prepared, tmp_path):
    full = config(prepared, tmp_path / "a", max_steps=4, save_steps=2)
    first = config(prepared, tmp_path / "b", max_steps=2, save_steps=2)
    training.train(first)  # "interrupted" after its checkpoint at step 2
    resumed = training.train(config(prepared, tmp_path / "b", max_steps=4, save_steps=2), resume=True)
    assert resumed["steps"] == 4 == training.train(full)["steps"]
    steps = [row["step"] for row in read_health(config(prepared, tmp_path / "b"))]
    assert steps == [1, 2, 3, 4]


@pytest.mark.slow  # prepares and trains on every task
def test_training_reads_only_the_train_split(prepared, tmp_path, monkeypatch):
    samples, _ = prepared
    read = []
    original = training.data.read_sample_folder
    monkeypatch.setattr(training.data, "read_sample_folder",
                        lambda folder, files: read.extend(Path(f).name for f in files) or original(folder, files))
    cfg = config(prepared, tmp_path, tasks=("passage-5", "rec-movie"), max_train_samples=None)
    from components.io import read_samples
    from components.models import load_tokenizer

    train = training.load_train_samples(cfg)
    rows = training.build_rows(train, cfg, load_tokenizer("random:tiny"))
    test = [s for t in cfg.tasks for s in read_samples(samples / t / "test.jsonl")]
    assert read == ["train.jsonl"] * 2
    assert rows and not {r["sample_id"] for r in rows} & {s.sample_id for s in test}
    # rec train users give several windows (ids task:user:wK): none of them is a test user's
    group = {s.sample_id: (s.task, s.group) for s in train}
    assert any(":w" in r["sample_id"] for r in rows)
    assert not {group[r["sample_id"]] for r in rows} & {(s.task, s.group) for s in test}


@pytest.mark.parametrize("objective", ["soft-target", "keep-target"])
def test_score_mode_two_steps_change_lora_and_head_and_save_them(prepared, tmp_path, objective):
    from safetensors.torch import load_file

    from components.scorers import HEAD_FILE

    cfg = config(prepared, tmp_path, tasks=("passage-5", "rec-movie", "router-performance"), max_train_samples=2,
                 lora=LoraSettings(r=4, alpha=8, top_layers=1), objective=objective)
    assert cfg.mode == "score"
    before = initial_weights(cfg)
    summary = training.train(cfg)
    moved = changed(before, summary["final"])
    assert moved and all(".layers.1." in k for k in moved), moved  # LoRA on the top layer only, merged
    head = load_file(str(Path(summary["final"]) / HEAD_FILE))
    assert head["weight"].abs().sum() > 0  # zero-initialised, trained
    meta = json.loads((Path(summary["final"]) / "ranker_config.json").read_text())
    assert meta["mode"] == "score" and meta["head"] and meta["scorers"]["router"] == "pointer"
    h = read_health(cfg)[0]
    assert 0.0 <= h["reward/greedy_mean"] <= 1.2 and any(k.startswith("reward/greedy_over_uniform/") for k in h)


def test_score_mode_scores_a_context_free_sample_once_for_all_of_its_pools(prepared, tmp_path):
    from components.training.expected_reward import ExpectedRewardTrainer

    cfg = config(prepared, tmp_path, tasks=("passage-5", "rec-movie", "router-performance"), max_train_samples=2,
                 max_pool_size=4)
    trainer = ExpectedRewardTrainer(cfg)
    trainer.setup()
    rows, items = trainer.rows, trainer.items
    assert sorted(i for item in items for i in item) == list(range(len(rows)))  # every row in exactly one item
    for item in items:
        tasks = {rows[i]["task"] for i in item}
        assert len({rows[i]["sample_id"] for i in item}) == 1
        assert len(item) == (1 if tasks == {"router-performance"} else 3)  # pools 4, 3, 2 together; the pointer alone
    grouped = next(item for item in items if len(item) == 3)
    trainer.model.eval()
    with torch.no_grad():
        together = trainer.score_logits([rows[i] for i in grouped])
        alone = [trainer.score_logits([rows[i]])[0] for i in grouped]
    for a, b in zip(together, alone):
        assert torch.allclose(a, b, atol=1e-4)


def test_score_mode_pointer_trains_only_its_head_unless_asked(prepared, tmp_path):
    from safetensors.torch import load_file

    from components.scorers import HEAD_FILE

    lora = LoraSettings(r=4, alpha=8, top_layers=1)
    for flows_into_lora in (False, True):
        cfg = config(prepared, tmp_path / str(flows_into_lora), tasks=("router-performance",), max_train_samples=2,
                     lora=lora, pointer_trains_lora=flows_into_lora)
        before = initial_weights(cfg)
        summary = training.train(cfg)
        assert load_file(str(Path(summary["final"]) / HEAD_FILE))["weight"].abs().sum() > 0
        # zero head: the first step's LoRA gradient is zero either way; the second moves LoRA only when asked
        assert bool(changed(before, summary["final"])) == flows_into_lora


def test_max_pool_size_keeps_only_the_small_elimination_steps(prepared, tmp_path):
    from components.models import load_tokenizer

    tok = load_tokenizer("random:tiny")
    every = config(prepared, tmp_path, tasks=("rec-movie",), max_train_samples=3)
    small = dataclasses.replace(every, max_pool_size=4)
    pools = lambda cfg: sorted(len(r["labels"]) for r in training.build_rows(training.load_train_samples(cfg), cfg, tok))
    # 20 candidates: 19 steps (pools 20..2) per sample; with the cap, the 3 steps of pools 4, 3 and 2
    assert pools(every) == sorted(list(range(2, 21)) * 3)
    assert pools(small) == [2, 2, 2, 3, 3, 3, 4, 4, 4]


def test_max_pool_for_caps_each_scenario_or_task_on_its_own(prepared, tmp_path):
    from components.models import load_tokenizer

    tok = load_tokenizer("random:tiny")
    base = config(prepared, tmp_path, tasks=("passage-5", "rec-movie"), max_train_samples=2, max_pool_size=3)
    rows = lambda cfg: training.build_rows(training.load_train_samples(cfg), cfg, tok)
    biggest = lambda cfg: {t: max(len(r["labels"]) for r in rows(cfg) if r["task"] == t) for t in cfg.tasks}
    assert biggest(base) == {"passage-5": 3, "rec-movie": 3}
    # the scenario's entry lifts rec to its full 20-candidate pools; a task's own entry wins over its scenario's
    assert biggest(dataclasses.replace(base, max_pool_for={"rec": None})) == {"passage-5": 3, "rec-movie": 20}
    both = dataclasses.replace(base, max_pool_for={"rec": None, "rec-movie": 4, "passage": 5})
    assert biggest(both) == {"passage-5": 5, "rec-movie": 4}


def test_draw_weight_for_sets_each_tasks_share_of_batch_items(prepared, tmp_path):
    import random

    from components.training.expected_reward import ExpectedRewardTrainer

    cfg = config(prepared, tmp_path, tasks=("passage-5", "rec-movie"), max_train_samples=4, max_pool_size=3,
                 batch_size=1, draw_weight_for={"passage": 2, "passage-5": 8})
    trainer = ExpectedRewardTrainer(cfg)
    trainer.setup()
    task_of = lambda k: trainer.rows[trainer.items[k][0]]["task"]
    assert sorted(task_of(k) for k in range(len(trainer.items))) == ["passage-5"] * 4 + ["rec-movie"] * 4
    # the task's own entry (8) wins over its scenario's (2): 4 * 8 of 4 * 8 + 4 * 1 weight is passage-5's
    assert sorted(set(trainer.item_weights)) == [1.0, 8.0]
    rng = random.Random(0)
    draws = [task_of(k) for _ in range(4000) for k in trainer._draw(rng)]
    assert draws.count("passage-5") / len(draws) == pytest.approx(32 / 36, abs=0.02)
    # a batch never repeats an item, weighted or not
    trainer.cfg = dataclasses.replace(cfg, batch_size=5)
    assert all(len(set(batch)) == 5 for batch in (trainer._draw(rng) for _ in range(200)))
    trainer.cfg = dataclasses.replace(cfg, batch_size=8)
    assert all(sorted(trainer._draw(rng)) == list(range(8)) for _ in range(5))
    # without weights the draw is the plain seeded sample, so earlier runs' batches are unchanged
    trainer.item_weights = None
    assert trainer._draw(random.Random("42:3")) == random.Random("42:3").sample(range(8), 8)


def test_validation_holds_out_whole_train_groups(prepared, tmp_path):
    samples, _ = prepared
    from components.io import read_samples

    cfg = config(prepared, tmp_path, tasks=("passage-5", "rec-movie"), max_train_samples=None,
                 validation=ValidationSettings(groups=3))
    train, held = training.load_train_samples(cfg), training.load_validation_samples(cfg)
    split = {t: read_samples(samples / t / "train.jsonl") for t in cfg.tasks}
    for task, rows in split.items():
        held_groups = {s.group for s in held if s.task == task}
        assert len(held_groups) == 3  # passage-5: 3 of its queries with all their samples; rec-movie: 3 users
        assert {s.sample_id for s in held if s.task == task} == {s.sample_id for s in rows if s.group in held_groups}
        assert not held_groups & {s.group for s in train if s.task == task}
        assert len([s for s in train if s.task == task]) + len([s for s in held if s.task == task]) == len(rows)
    test_ids = {s.sample_id for t in cfg.tasks for s in read_samples(samples / t / "test.jsonl")}
    assert not {s.sample_id for s in held} & test_ids
    # validation off: the training subset is the one earlier runs drew
    plain = dataclasses.replace(cfg, validation=ValidationSettings())
    assert training.load_validation_samples(plain) == [] and len(training.load_train_samples(plain)) == len(train) + len(held)


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


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"rewards": {"bleu_reward": {}}}, "unknown reward 'bleu_reward'"),
        ({"validation": ValidationSettings(groups=2, every=0)}, "validation needs groups >= 0, every >= 1"),
        ({"validation": ValidationSettings(groups=2), "algo": "grpo", "num_generations": 2},
         "scored by the expected-reward trainer"),
        ({"autocast": "fp8"}, "autocast must be one of"),
        ({"max_pool_size": 1}, "max_pool_size applies to iranker elimination steps and must be >= 2"),
        ({"max_pool_for": {"recc": 20}}, "max_pool_for: 'recc' is neither a scenario"),
        ({"max_pool_for": {"rec": 1}}, "max_pool_for.rec applies to iranker elimination steps and must be >= 2"),
        ({"draw_weight_for": {"passages": 8}}, "draw_weight_for: 'passages' is neither a scenario"),
        ({"draw_weight_for": {"passage": 0}}, "draw_weight_for.passage must be a number > 0, got 0"),
        ({"draw_weight_for": {"passage": 2}, "algo": "grpo", "num_generations": 2}, "draw_weight_for applies to"),
        ({"objective": "max-margin"}, "objective must be one of"),
        ({"mode": "letters"}, "mode must be one of"),
        ({"scorers": {"rec": "popularity"}}, "unknown scorer 'popularity'; valid scorers"),
        ({"score_tau": 0}, "score_tau must be > 0"),
        ({"objective": "soft-target", "algo": "grpo"}, "needs algo=expected-reward"),
        ({"objective": "keep-target", "mode": "fast"}, "keep-target' needs mode=score"),
        ({"algo": "grpo", "batch_size": 6, "num_generations": 4}, "must be a multiple of num_generations"),
        ({"prompt": PromptConfig(max_prompt_tokens=4090), "algo": "grpo", "num_generations": 2, "max_completion_length": 64},
         "exceeds the context of random:tiny"),
    ],
)
def test_bad_config_fails_before_any_model_loads(prepared, tmp_path, monkeypatch, overrides, message):
    monkeypatch.setattr("components.models.load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    with pytest.raises(TrainingConfigError, match=message):
        training.train(config(prepared, tmp_path, **overrides))


def test_params_objective_does_not_block_grpo_but_an_explicit_one_does():
    raw = {"objective": "soft-target", "algo": "expected-reward"}
    assert training.build_train_config(raw, PromptConfig(), None).objective == "soft-target"
    assert training.build_train_config(raw, PromptConfig(), None, algo="grpo").objective == "expected"
    with pytest.raises(TrainingConfigError, match="needs algo=expected-reward"):
        training.build_train_config(raw, PromptConfig(), None, algo="grpo", objective="soft-target")


def test_wall_clock_budget_stops_training_with_a_final_model(prepared, tmp_path):
    cfg = config(prepared, tmp_path, max_steps=50, max_seconds=1e-3)
    summary = training.train(cfg)
    assert summary["steps"] == 1 and summary["budget_spent"]
    assert (Path(summary["final"]) / "config.json").exists() and (Path(cfg.output_dir) / "checkpoint-1").exists()
    assert read_health(cfg)[0]["tokens_per_second"] > 0


def test_unknown_config_key_is_an_error():
    with pytest.raises(TrainingConfigError, match=r"unknown key\(s\) \['epochs'\]"):
        training.build_train_config({"epochs": 3}, PromptConfig(), None)


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
