"""The run record: which training run an output folder belongs to, and whether it finished.

Every training run writes `<output_dir>/run.json` as it starts (the expected-reward
trainer before it loads a model; GRPO once TRL's trainer is built, so that one
process of a distributed run writes it and the others read it): a run id (uuid4
hex), its start time, `finished` (true only once final/ and summary.json are
written; a resume sets it false again) and the compat block, the settings a
checkpoint's weights and optimizer state depend on (algo, ranker, mode, scorers,
LoRA shape, base model). The run id goes into every checkpoint and into final/'s
ranker_config.json, so nothing on disk is trusted by its name:

- `--resume` continues only the run run.json names: the latest checkpoint must
  carry its id, and the configuration's compat block must equal the recorded one.
  The highest `checkpoint-*` of an older run in the same folder, or a score-mode
  checkpoint resumed in fast mode, is refused, each difference named.
- a fresh run into a folder that holds an earlier run is refused by the entry
  points (`check_start`) unless overwrite, which deletes that run first.
- evaluation and registration refuse a final/ whose run.json says unfinished or
  names another run (`check_trained`): it is a crashed run's predecessor, or a
  model from before the last resume. A folder without run.json (a model that did
  not come from this trainer) is accepted.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from components.io import DataError, load_json, write_json
from components.rankers.spec import RankerSpec
from components.training.checkpoints import list_checkpoints, read_checkpoint
from components.training.config import TrainConfig

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
RUN_ID_FILE = "run_id"  # GRPO: TRL writes its checkpoints, so the run id goes beside them in this file
# what marks a folder as holding a run (any checkpoint-* too), and what else a run leaves that overwrite deletes
RUN_MARKERS = (RUN_FILE, "final", "summary.json")
RUN_SERIES = ("health.jsonl", "curves.csv", "reward_curve.png")


class RunConflict(DataError):
    """The output folder holds another run than the one asked for, or a checkpoint that cannot be matched to it."""


@dataclass
class RunRecord:
    """`<output_dir>/run.json`: which run owns the folder, its start, whether it finished, and its compat block."""

    run_id: str
    started: str
    finished: bool
    compat: dict[str, Any]
    finished_at: str | None = None

    def write(self, out: Path) -> None:
        Path(out).mkdir(parents=True, exist_ok=True)
        write_json(Path(out) / RUN_FILE, dataclasses.asdict(self))

    @classmethod
    def read(cls, out: Path) -> "RunRecord | None":
        """The folder's run record; None when it has no run.json (a folder that did not come from this trainer)."""
        path = Path(out) / RUN_FILE
        if not path.exists():
            return None
        raw = load_json(path)
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(raw, dict) or set(raw) != names or not isinstance(raw["run_id"], str) \
                or not isinstance(raw["finished"], bool) or not isinstance(raw["compat"], dict):
            raise DataError(f"{path}: not a run record (expected exactly {sorted(names)}, run_id a string, finished "
                            f"true or false, compat an object); delete {Path(out)} or train into another --output-dir")
        return cls(**raw)


@dataclass
class RunStart:
    """The run a trainer continues or begins: its record, and on resume the checkpoint to restore (if any).

    `state` is the expected-reward checkpoint's trainer_state.pt, read once by the resume check."""

    record: RunRecord
    checkpoint: Path | None = None
    state: dict[str, Any] | None = None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def compat_of(cfg: TrainConfig) -> dict[str, Any]:
    """What a checkpoint's weights and optimizer state depend on: a resume must match it key by key.

    Flat keys, so a difference is named as `lora.r`; values as JSON reads them back (lists, not tuples)."""
    lora = cfg.lora
    compat = {"algo": cfg.algo, "ranker": cfg.ranker, "mode": cfg.ranking_mode, "model": cfg.model,
              "scorers": dict(cfg.scorers), "lora.enabled": lora.enabled}
    if lora.enabled:  # the adapters' shape and placement: another one cannot load the saved adapter weights
        compat.update({"lora.r": lora.r, "lora.alpha": lora.alpha, "lora.top_layers": lora.top_layers,
                       "lora.target_modules": list(lora.target_modules)})
    return json.loads(json.dumps(compat))


def compat_differences(recorded: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Each key whose value differs, as `key: checkpoint run X, this run Y`.

    >>> compat_differences({"mode": "score", "algo": "expected-reward"}, {"mode": "fast", "algo": "expected-reward"})
    ["mode: checkpoint run 'score', this run 'fast'"]
    """
    def show(settings: dict[str, Any], key: str) -> str:
        return repr(settings[key]) if key in settings else "not set"  # e.g. LoRA's shape when it was off

    keys = sorted(set(recorded) | set(now))
    return [f"{key}: checkpoint run {show(recorded, key)}, this run {show(now, key)}" for key in keys
            if key not in recorded or key not in now or recorded[key] != now[key]]


def previous_run(out: Path) -> list[str]:
    """What an earlier run left in `out` (run.json, checkpoint-*, final/, summary.json); empty when nothing."""
    out = Path(out)
    found = [name for name in RUN_MARKERS if (out / name).exists()]
    return found + [p.name for p in list_checkpoints(out)]


def clear_run(out: Path) -> None:
    """Delete an earlier run's checkpoints, final/, summary.json, run.json, health series and curves."""
    out = Path(out)
    for path in [*list_checkpoints(out), *(out / name for name in (*RUN_MARKERS, *RUN_SERIES))]:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    log.info("cleared the previous run in %s", out)


def checkpoint_run_id(ckpt: Path, algo: str, mmap: bool = False) -> tuple[str | None, dict[str, Any] | None]:
    """The run id a checkpoint carries (None for one from before run ids), and the expected-reward trainer's state."""
    if algo == "grpo":
        path = Path(ckpt) / RUN_ID_FILE
        return (path.read_text(encoding="utf-8").strip() or None if path.exists() else None), None
    state = read_checkpoint(ckpt, mmap=mmap)
    run_id = state.get("run_id")
    return (run_id if isinstance(run_id, str) else None), state


def check_resume(cfg: TrainConfig, mmap: bool = False) -> RunStart:
    """The run `--resume` continues, checked against the folder: raises RunConflict naming what does not match.

    The compat block first (a setting changed by hand is the likeliest cause, and each is named), then the
    latest checkpoint's run id against run.json's. `mmap`: the checkpoint's tensors are mapped, not read (a check
    before the trainer reads it for real)."""
    out = Path(cfg.output_dir)
    ckpts = list_checkpoints(out)
    record = RunRecord.read(out)
    if record is not None:
        diffs = compat_differences(record.compat, compat_of(cfg))
        if diffs:
            raise RunConflict(f"{out}: cannot resume run {record.run_id} with other settings: {'; '.join(diffs)}; "
                              "resume with its settings, or train afresh with --overwrite")
    latest, run_id, state = (ckpts[-1] if ckpts else None), None, None
    if latest is not None:
        run_id, state = checkpoint_run_id(latest, cfg.algo, mmap)
        if run_id is None:
            raise RunConflict(f"{latest}: written before training runs had ids, so it cannot be matched to this "
                              f"run's settings; train afresh with --overwrite (deletes it), or move it away")
    if record is None:
        raise RunConflict(f"{out / RUN_FILE}: missing, so there is no run to resume"
                          + (f" ({latest} cannot be matched to one)" if latest else "")
                          + "; train without --resume (with --overwrite if the folder holds an earlier run)")
    if latest is not None and run_id != record.run_id:
        raise RunConflict(f"{latest}: written by run {run_id}, but {out / RUN_FILE} names run {record.run_id} "
                          "(a later run started in this folder); a stale checkpoint is never resumed: train afresh "
                          "with --overwrite")
    return RunStart(record, latest, state)


def check_start(cfg: TrainConfig, resume: bool, overwrite: bool) -> None:
    """What an entry point checks before it opens a tracking run or loads a model; raises RunConflict.

    resume: `check_resume`. A fresh run: the folder must hold no earlier run unless `overwrite` (which the trainer
    then clears)."""
    out = Path(cfg.output_dir)
    if resume:
        check_resume(cfg, mmap=True)
        return
    found = previous_run(out)
    if found and not overwrite:
        shown = ", ".join(found[:6]) + (f" and {len(found) - 6} more" if len(found) > 6 else "")
        raise RunConflict(f"{out}: holds an earlier training run ({shown}); pass --overwrite to delete it and train "
                          "afresh, --resume to continue it, or choose another --output-dir")


def start_run(cfg: TrainConfig, resume: bool = False, overwrite: bool = False) -> RunStart:
    """The trainer's first step, before any model loads: the run it continues (checked) or a new one, recorded.

    A fresh run with `overwrite` deletes the earlier run first. Without it (a library call: the entry points refuse
    such a folder, `check_start`) the earlier run's checkpoints and health series go, since they can never be resumed
    once run.json names this run; its final/ and summary.json stay until this run replaces them, and readers refuse
    them (`check_trained`: another run's id)."""
    out = Path(cfg.output_dir)
    if resume:
        start = check_resume(cfg)
        start.record.finished, start.record.finished_at = False, None
        start.record.write(out)
        log.info("resuming run %s from %s", start.record.run_id, start.checkpoint or "its start (no checkpoint)")
        return start
    if overwrite:
        clear_run(out)
    else:
        for ckpt in list_checkpoints(out):
            shutil.rmtree(ckpt)
        (out / "health.jsonl").unlink(missing_ok=True)
    record = RunRecord(run_id=uuid.uuid4().hex, started=_now(), finished=False, compat=compat_of(cfg))
    record.write(out)
    log.info("training run %s in %s", record.run_id, out)
    return RunStart(record)


def finish_run(out: Path, record: RunRecord) -> None:
    """Mark the run finished: called only after final/ and summary.json are written."""
    record.finished, record.finished_at = True, _now()
    record.write(out)


def check_trained(final: Path) -> None:
    """Refuse a trained model folder whose sibling run.json says its run did not finish, or names another run.

    A folder without a sibling run.json did not come from this trainer (or was moved out of its run): accepted."""
    final = Path(final)
    out = final.parent
    record = RunRecord.read(out)
    if record is None:
        return
    saved = RankerSpec.load(final)  # a malformed ranker_config.json is a DataError naming the file
    run_id = saved.run_id if saved is not None else None
    how = f"finish the run (`r1ranker train --resume --output-dir {out}`) or train again (--overwrite)"
    if not record.finished:
        whose = "an earlier run's model" if run_id != record.run_id else "its model from before the last resume"
        raise DataError(f"{final}: run {record.run_id} did not finish ({out / RUN_FILE}: finished false); this "
                        f"final/ is {whose}; {how}")
    if run_id != record.run_id:
        raise DataError(f"{final}: written by run {run_id or '(no run id)'}, but {out / RUN_FILE} names run "
                        f"{record.run_id}; {how}")
