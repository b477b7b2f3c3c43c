"""The exact expected-reward trainer (fast or score IRanker): one forward pass per prompt, no sampling.

The phases are methods of `ExpectedRewardTrainer`: `setup` (model, rows and their
rewards, pointer head, optimizer, resume, KL reference), `pool_logits` (the
policy's logits over each pool), `step` (one optimizer step), `held_out` (the
held-out check) and `train` (the loop: logging, monitor, wall-clock budget,
checkpoints, final model). Why the gradient is exact and what the held-out check
shows: the package docstring (`components.training`).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import random
import time
from pathlib import Path
from typing import Any

from components.io import write_json
from components.scorers import ScoreHead, get_scorer, scorer_name
from components.tracking import log_training_metrics
from components.training.checkpoints import save_checkpoint, restore_checkpoint
from components.training.config import TrainConfig, TrainingConfigError, autocast_dtype, check_fits_context
from components.training.data import exclusion_table, split_train, validation_rows, build_rows
from components.training.monitors import HealthMonitor, diverged, first_non_finite
from components.training.policy import load_policy, objective_loss, save_final
from components.training.runs import finish_run, start_run
from components.rankers.backend import ANSWER_OPEN, TransformersBackend

log = logging.getLogger(__name__)


class ExpectedRewardTrainer:
    """Exact expected-reward policy gradient over an elimination pool (fast or score IRanker).

    The policy over a pool is a softmax over one logit per remaining candidate: in fast mode the
    next-token logits of the labels after `<answer>`, in score mode -s / score_tau over the candidates'
    scorer scores (the gradient flows through the likelihood scores into LoRA; the pointer's into its head, and
    into LoRA only with `pointer_trains_lora`).
    """

    def __init__(self, cfg: TrainConfig, resume: bool = False, progress=None, overwrite: bool = False):
        self.cfg, self.resume, self.progress, self.overwrite = cfg, resume, progress, overwrite
        self.out = Path(cfg.output_dir)
        self.score_mode = cfg.ranking_mode == "score"
        self.global_step = 0  # optimizer steps taken, a resumed run's included
        self.tokens_seen = 0  # prompt tokens through the model (policy and reference), for tokens/s
        self.val_seconds = 0.0  # spent on held-out checks: in the wall-clock budget, not in the training throughput
        self.ref_cache: dict[int, Any] = {}  # row index -> reference log-probs over its labels
        self.started = 0.0  # perf_counter at the start of the loop
        self.budget_spent = False

    # ---------------------------------------------------------------- setup

    def setup(self) -> None:
        """The run (checked on resume), model, rows and their rewards, the pointer head, optimizer and resume state,
        then the KL reference."""
        import torch

        cfg = self.cfg
        check_fits_context(cfg)
        samples, held = split_train(cfg)  # one read of the train split for both sides
        self.run = start_run(cfg, self.resume, self.overwrite)  # before the model loads: a wrong folder fails fast
        self.by_id = {s.sample_id: s for s in [*samples, *held]}
        torch.manual_seed(cfg.seed)
        self.model, self.tok = load_policy(cfg)
        self._setup_rows(samples, held)
        self.head = self._setup_head()
        if self.val_rows:
            log.info("held-out check: %d prompts from %d train-split samples kept out of training, every %d steps",
                     len(self.val_rows), len({r["sample_id"] for r in self.val_rows}), cfg.validation.every)
        self._setup_optimizer()
        self.device = next(self.model.parameters()).device
        self.tok.padding_side = "left"
        self._setup_reference()

    def _setup_rows(self, samples, held) -> None:
        """Training and held-out rows, each row's reward per label, and (fast mode) the labels' tokens."""
        cfg = self.cfg
        self.rows = build_rows(samples, cfg, self.tok)
        if not self.rows:
            raise TrainingConfigError("no training prompts: the train split is empty")
        self.rewards = exclusion_table(self.rows, cfg)
        self.items = self._items(self.rows)
        self.item_weights = self._item_weights(self.items)
        self.backend = TransformersBackend(self.model, self.tok)
        self.label_tokens = self._tokens_of(self.rows)
        self.val_rows = validation_rows(held, cfg, self.tok)
        self.val_rewards = exclusion_table(self.val_rows, cfg)
        self.val_tokens = self._tokens_of(self.val_rows)

    def _items(self, rows) -> list[list[int]]:
        """What a batch draws, as row indices: each row alone, except in score mode with a context-free scorer,
        where a sample's rows (its elimination pools) come together and one scoring pass serves all of them."""
        if not self.score_mode:
            return [[i] for i in range(len(rows))]
        items: list[list[int]] = []
        by_sample: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            if get_scorer(scorer_name(self.by_id[row["sample_id"]], self.cfg.scorers)).context_free:
                if row["sample_id"] not in by_sample:
                    by_sample[row["sample_id"]] = []
                    items.append(by_sample[row["sample_id"]])
                by_sample[row["sample_id"]].append(i)
            else:
                items.append([i])
        return items

    def _item_weights(self, items) -> list[float] | None:
        """Each item's draw weight (`draw_weight_for`); None when all are 1, so batches are the plain seeded draw."""
        weights = [self.cfg.draw_weight(self.rows[it[0]]["task"], self.by_id[self.rows[it[0]]["sample_id"]].scenario)
                   for it in items]
        if all(w == 1.0 for w in weights):
            return None
        share: dict[str, float] = {}
        total = sum(weights)
        for it, w in zip(items, weights):
            share[self.rows[it[0]]["task"]] = share.get(self.rows[it[0]]["task"], 0.0) + w / total
        log.info("draw weights: each task's expected share of batch items: %s",
                 ", ".join(f"{t} {v:.1%}" for t, v in sorted(share.items())))
        return weights

    def _draw(self, rng: random.Random) -> list[int]:
        """The items of one batch, without repeats: uniform, or by draw weight (Efraimidis-Spirakis keys u^(1/w),
        the largest k), so an item of weight 8 is about 8 times as likely to be in a batch as one of weight 1."""
        k = min(self.cfg.batch_size, len(self.items))
        if self.item_weights is None:
            return rng.sample(range(len(self.items)), k)
        keys = [rng.random() ** (1.0 / w) for w in self.item_weights]
        return sorted(range(len(keys)), key=keys.__getitem__, reverse=True)[:k]

    def _tokens_of(self, some_rows) -> list:
        """Fast mode: each row's label tokens; score mode reads candidates instead."""
        return [None if self.score_mode else [self.backend.label_token(lab) for lab in r["labels"]] for r in some_rows]

    def _setup_head(self) -> ScoreHead | None:
        """A zero-initialised score head to train when a training or held-out sample is scored by the pointer."""
        if not self.score_mode:
            return None
        if any(get_scorer(scorer_name(s, self.cfg.scorers)).has_head for s in self.by_id.values()):
            return ScoreHead(self.model.config.hidden_size, next(self.model.parameters()).device)
        return None

    def _setup_optimizer(self) -> None:
        """AdamW over the trainable weights and the head; on resume, the last checkpoint's state and step."""
        import torch

        cfg, model, head = self.cfg, self.model, self.head
        # every weight the optimizer updates, by name: each step checks that they stay finite
        self.trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad] + \
            ([(f"head.{n}", p) for n, p in head.linear.named_parameters()] if head else [])
        self.optimizer = torch.optim.AdamW([p for _, p in self.trainable], lr=cfg.learning_rate)
        self.monitor = HealthMonitor(cfg.monitor, self.out / "health.jsonl")  # start_run deleted an earlier run's
        if self.run.checkpoint is not None:
            self.global_step = restore_checkpoint(self.run.checkpoint, self.run.state, model, self.optimizer, head)
            self.run.state = None  # restored: the optimizer holds its own copy

    def _setup_reference(self) -> None:
        # the KL reference is the initial model: LoRA's disabled adapter, else a frozen copy taken now
        self.lora = hasattr(self.model, "disable_adapter")
        self.ref_model = None if self.lora or self.cfg.beta == 0 else copy.deepcopy(self.model).eval()
        self.amp = autocast_dtype(self.cfg, self.device)
        if self.amp is not None:
            log.info("forward passes under %s autocast (autocast=%s)", self.amp, self.cfg.autocast)

    # ---------------------------------------------------------------- logits

    def _autocast(self):
        import torch

        return torch.autocast(self.device.type, dtype=self.amp or torch.float32, enabled=self.amp is not None)

    def label_logits(self, batch_rows, adapter_on: bool = True):
        """Fast mode: the next-token logits after `<answer>`, [batch, vocab] in fp32."""
        with self._autocast():
            enc = self.tok([r["prompt"] + ANSWER_OPEN for r in batch_rows], return_tensors="pt", padding=True,
                           add_special_tokens=False).to(self.device)
            self.tokens_seen += int(enc["attention_mask"].sum())
            if adapter_on:
                return self.model(**enc, logits_to_keep=1).logits[:, -1, :].float()  # [batch, vocab]
            if self.lora:
                with self.model.disable_adapter():
                    return self.model(**enc, logits_to_keep=1).logits[:, -1, :].float()
            return self.ref_model(**enc, logits_to_keep=1).logits[:, -1, :].float()

    def score_logits(self, batch_rows, adapter_on: bool = True) -> list:
        """-s / score_tau per row, over its candidates in the row's order.

        A context-free scorer gives a candidate the same score in every pool, so the rows of one sample are
        scored once, over the union of their candidates, and each row takes its own candidates' scores.
        """
        cfg, model = self.cfg, self.model
        pools = [(self.by_id[r["sample_id"]], r["candidate_ids"]) for r in batch_rows]
        scorers = [get_scorer(scorer_name(smp, cfg.scorers)) for smp, _ in pools]
        use_head = self.head if adapter_on else None
        out: list = [None] * len(pools)
        with self._autocast(), \
                (model.disable_adapter() if not adapter_on and self.lora else contextlib.nullcontext()):
            net = model if adapter_on or self.lora else self.ref_model
            pointer = [b for b, sc in enumerate(scorers) if sc.has_head]
            if pointer:
                pointer_head = use_head or ScoreHead(model.config.hidden_size, self.device)  # the base: every score 0
                scores, n = scorers[pointer[0]].batch_scores(net, pointer_head, self.tok, [pools[b] for b in pointer],
                                                             cfg.prompt, grad_features=cfg.pointer_trains_lora)
                self.tokens_seen += n
                for b, sc in zip(pointer, scores):
                    out[b] = sc
            unions: dict[str, list[str]] = {}  # sample id -> the candidates of its rows in this batch
            for b, (smp, ids) in enumerate(pools):
                if out[b] is None:
                    union = unions.setdefault(smp.sample_id, [])
                    union.extend(c for c in ids if c not in union)
            scored: dict[str, tuple] = {}
            for b, (sc, (smp, ids)) in enumerate(zip(scorers, pools)):
                if out[b] is None:
                    if smp.sample_id not in scored:
                        union = unions[smp.sample_id]
                        full, n, reused = sc.scores(net, None, self.tok, smp, union, cfg.prompt)
                        self.tokens_seen += n - reused
                        scored[smp.sample_id] = (full, {c: k for k, c in enumerate(union)})
                    full, where = scored[smp.sample_id]
                    out[b] = full[[where[c] for c in ids]]
        return [-o.float() / cfg.score_tau for o in out]

    def pool_logits(self, batch_rows, batch_tokens, adapter_on: bool = True) -> list:
        """One logit per remaining candidate of each row: the policy is their softmax."""
        import torch

        if self.score_mode:
            return self.score_logits(batch_rows, adapter_on)
        logits = self.label_logits(batch_rows, adapter_on)
        return [logits[b, torch.tensor(t, device=self.device)] for b, t in enumerate(batch_tokens)]

    def _cache_reference(self, idx: list[int]) -> None:
        """The reference log-probs of the rows in `idx` not seen yet: the reference is frozen, so once per row."""
        import torch

        missing = [i for i in idx if i not in self.ref_cache]
        if missing:
            with torch.no_grad():
                ref_logits = self.pool_logits([self.rows[i] for i in missing], [self.label_tokens[i] for i in missing],
                                              adapter_on=False)
            for b, i in enumerate(missing):
                self.ref_cache[i] = torch.log_softmax(ref_logits[b], dim=-1)

    # ---------------------------------------------------------------- step, held-out check, loop

    def step(self) -> dict[str, float]:
        """One optimizer step on the batch of (seed, step); its metrics (the held-out check's not included)."""
        import torch

        cfg, rows, rewards = self.cfg, self.rows, self.rewards
        # the batch depends on (seed, step) only, so a resumed run continues with the same data
        rng = random.Random(f"{cfg.seed}:{self.global_step}")
        picked = self._draw(rng)
        idx = [i for k in picked for i in self.items[k]]
        # every drawn item weighs the same; a sample's pools share its weight
        weight = {i: 1.0 / (len(picked) * len(self.items[k])) for k in picked for i in self.items[k]}
        batch = [rows[i] for i in idx]
        logits = self.pool_logits(batch, [self.label_tokens[i] for i in idx])
        if cfg.beta > 0:  # the reference is frozen: each row's label distribution is computed once
            self._cache_reference(idx)
        loss = torch.zeros((), device=self.device)
        exp_rewards, greedy, kls, ties = [], [], [], 0
        uniform, by_task, greedy_by_task = [], {}, {}  # a uniform pick's expected reward: the chance level of each batch
        for b, i in enumerate(idx):
            r = torch.tensor(rewards[i], device=self.device)
            logp = torch.log_softmax(logits[b], dim=-1)  # [labels]: pi over the remaining candidates
            expected = (logp.exp() * r).sum()
            term = objective_loss(logp, r, cfg.loss_objective, cfg.target_tau)
            if cfg.beta > 0:
                kl = (logp.exp() * (logp - self.ref_cache[i])).sum()
                term = term + cfg.beta * kl
                kls.append(float(kl.detach()))
            loss = loss + term * weight[i]
            exp_rewards.append(float(expected.detach()))
            # the evaluated ranker eliminates the argmax label: the reward it would get here. Soft-target aims pi
            # at a spread-out target, so its sampled reward can stay flat while the greedy choice improves
            greedy.append(rewards[i][int(logp.detach().argmax())])  # the python float: r is float32
            uniform.append(float(r.mean()))
            by_task.setdefault(rows[i]["task"], []).append(exp_rewards[-1] - uniform[-1])
            greedy_by_task.setdefault(rows[i]["task"], []).append(greedy[-1] - uniform[-1])
            ties += bool((r == r[0]).all())
        if not torch.isfinite(loss):  # a NaN model never ships: stop before the update, the checkpoint and final/
            raise diverged(self.global_step + 1, f"the loss is not finite ({float(loss.detach())})", self.out)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        bad = first_non_finite(self.trainable)
        if bad is not None:
            raise diverged(self.global_step + 1, f"the trainable weight {bad!r} is not finite after the update", self.out)
        self.global_step += 1
        step, started, val_seconds = self.global_step, self.started, self.val_seconds
        return {"loss": float(loss.detach()), "reward/expected_mean": sum(exp_rewards) / len(exp_rewards),
                "reward/expected_std": float(torch.tensor(exp_rewards).std()) if len(exp_rewards) > 1 else 0.0,
                "reward/greedy_mean": sum(greedy) / len(greedy),
                "reward/uniform_mean": sum(uniform) / len(uniform),
                **{f"reward/over_uniform/{t}": sum(v) / len(v) for t, v in sorted(by_task.items())},
                **{f"reward/greedy_over_uniform/{t}": sum(v) / len(v) for t, v in sorted(greedy_by_task.items())},
                "health/no_signal_frac": ties / len(idx), "health/invalid_rate": 0.0, "health/no_answer_rate": 0.0,
                "health/kl": sum(kls) / len(kls) if kls else 0.0,
                "seconds_per_step": (time.perf_counter() - started - val_seconds) / step,
                "tokens_per_second": self.tokens_seen / max(time.perf_counter() - started - val_seconds, 1e-9)}

    def held_out(self) -> dict[str, float]:
        """The argmax label's reward on the held-out prompts, and a uniform pick's, overall and per task; and how often
        the candidate the policy would keep (the lowest elimination logit: the top score) is the pool's best one.

        The elimination side saturates: in most pools any non-gold elimination earns the full reward, before training
        and after. The keep side is what the last elimination, and MRR, turn on (and what keep-target trains)."""
        import torch

        cfg, val_rows = self.cfg, self.val_rows
        t0, tokens_before = time.perf_counter(), self.tokens_seen
        gains: dict[str, list[float]] = {}
        greedy, uniform = [], []
        kept_best: dict[str, list[float]] = {}
        keep_chance = []  # a uniform keep's chance of the best: the share of the pool tied at the lowest reward
        self.model.eval()
        with torch.no_grad():
            for start in range(0, len(val_rows), cfg.batch_size):
                end = start + cfg.batch_size
                logits = self.pool_logits(val_rows[start:end], self.val_tokens[start:end])
                for b, i in enumerate(range(start, min(end, len(val_rows)))):
                    r = self.val_rewards[i]
                    pick = int(logits[b].argmax())
                    greedy.append(r[pick])
                    uniform.append(sum(r) / len(r))
                    gains.setdefault(val_rows[i]["task"], []).append(greedy[-1] - uniform[-1])
                    best = min(r)  # the candidate whose elimination earns least
                    kept = int(logits[b].argmin())
                    kept_best.setdefault(val_rows[i]["task"], []).append(float(r[kept] == best))
                    keep_chance.append(sum(v == best for v in r) / len(r))
        self.model.train()
        self.tokens_seen, self.val_seconds = tokens_before, self.val_seconds + time.perf_counter() - t0
        return {"val/greedy_mean": sum(greedy) / len(greedy), "val/uniform_mean": sum(uniform) / len(uniform),
                **{f"val/greedy_over_uniform/{t}": sum(v) / len(v) for t, v in sorted(gains.items())},
                "val/keep_best_mean": sum(sum(v) for v in kept_best.values()) / len(greedy),
                "val/keep_chance_mean": sum(keep_chance) / len(keep_chance),
                **{f"val/keep_best/{t}": sum(v) / len(v) for t, v in sorted(kept_best.items())}}

    def _over_budget(self) -> bool:
        cfg = self.cfg
        return bool(cfg.max_seconds and time.perf_counter() - self.started >= cfg.max_seconds)

    def train(self) -> dict[str, Any]:
        """Steps until max_steps, an early stop or the wall-clock budget; then the final model and summary.json."""
        cfg = self.cfg
        self.started = time.perf_counter()
        while self.global_step < cfg.max_steps:
            metrics = self.step()
            step = self.global_step
            last = step == cfg.max_steps or self._over_budget()
            if self.val_rows and ((step - 1) % cfg.validation.every == 0 or last):
                metrics.update(self.held_out())
            log_training_metrics(metrics, step)
            stop = self.monitor.update(step, metrics)
            if self._over_budget() and not stop:
                log.info("step %d: wall-clock budget of %.0fs spent; stopping", step, cfg.max_seconds)
                stop, self.budget_spent = True, True
            if self.progress:
                self.progress(step, cfg.max_steps, metrics)
            if step % cfg.save_steps == 0 or step == cfg.max_steps or stop:
                save_checkpoint(self.model, self.optimizer, step, self.out, self.head, self.run.record.run_id)
            if stop:
                break
        return self._finish()

    def _finish(self) -> dict[str, Any]:
        step = self.global_step
        final = save_final(self.model, self.tok, self.cfg, self.out / "final",
                           {"steps": step, "run_id": self.run.record.run_id}, self.head)
        summary = {"steps": step, "final": str(final), "stopped_early": self.monitor.stop_reason,
                   "rows": len(self.rows), "seconds": time.perf_counter() - self.started,
                   "budget_spent": self.budget_spent, "validation_seconds": self.val_seconds,
                   "validation_rows": len(self.val_rows)}
        write_json(self.out / "summary.json", summary)
        finish_run(self.out, self.run.record)
        return summary


def train_expected_reward(cfg: TrainConfig, resume: bool = False, progress=None,
                          overwrite: bool = False) -> dict[str, Any]:
    """Train with `ExpectedRewardTrainer` (setup, then the loop); the summary also written to summary.json.

    `resume`: only the run the output folder's run.json names; `overwrite`: a fresh run deletes the folder's earlier
    run first (`components.training.runs`)."""
    trainer = ExpectedRewardTrainer(cfg, resume, progress, overwrite)
    trainer.setup()
    return trainer.train()
