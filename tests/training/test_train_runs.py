"""Trust nothing on disk, training runs: run.json says which run owns an output folder and whether it finished.

--resume continues only that run (its own checkpoint, the same settings), a fresh run into a used folder needs
--overwrite (which deletes the earlier run), a crashed run's folder is refused by evaluation and registration, and a
model with a NaN weight is refused by evaluation. Each refusal exits 1 with a one-line error and writes nothing."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from components import training
from cli import app
from components.params import load_params
from components.io import DataError
from components.prompts import PromptConfig
from components.training import LoraSettings, TrainingDiverged
from components.training.runs import RunConflict, check_trained, compat_differences
from tests.tiny_training import config, samples, scratch, tiny_train  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def listing(folder: Path) -> dict[str, str]:
    """Every file under `folder` and a hash of its bytes: equal before and after, nothing was written or deleted."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_record(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())


def checkpoint_id(ckpt: Path) -> str | None:
    return torch.load(ckpt / "trainer_state.pt", weights_only=True)["run_id"]


def final_id(out: Path) -> str | None:
    return json.loads((out / "final" / "ranker_config.json").read_text()).get("run_id")


def error_line(output: str) -> str:
    assert "Traceback" not in output, output
    return next(line for line in output.splitlines() if line.startswith("error:"))


def refused(result, scratch: Path) -> str:
    """The one-line error of a refused command that opened no MLflow run."""
    assert result.exit_code == 1, result.output
    assert not (scratch / "mlflow.db").exists() and not (scratch / "mlruns").exists()
    return error_line(result.output)


# ---------------------------------------------------------------- every run is recorded


def test_a_run_records_its_id_in_run_json_every_checkpoint_and_final(samples, tmp_path):
    out = tmp_path / "run"
    training.train(config(samples, out))
    record = run_record(out)
    assert re.fullmatch(r"[0-9a-f]{32}", record["run_id"]) and record["finished"] is True
    assert record["compat"] == {"algo": "expected-reward", "ranker": "iranker", "mode": "score", "model": "random:tiny",
                                "scorers": record["compat"]["scorers"], "lora.enabled": False}
    assert record["compat"]["scorers"]["passage"] == "query-likelihood"
    assert [checkpoint_id(out / f"checkpoint-{n}") for n in (1, 2)] == [record["run_id"]] * 2
    assert final_id(out) == record["run_id"]
    check_trained(out / "final")  # finished, and its own: accepted


# ---------------------------------------------------------------- a fresh run into a used folder


def test_a_fresh_run_into_a_used_folder_is_refused_and_deletes_nothing(samples, scratch):
    out = scratch / "run"
    training.train(config(samples, out))
    before = listing(out)
    error = refused(runner.invoke(app, tiny_train(samples, out)), scratch)
    assert error == (f"error: {out}: holds an earlier training run (run.json, final, summary.json, checkpoint-1, "
                     "checkpoint-2); pass --overwrite to delete it and train afresh, --resume to continue it, or "
                     "choose another --output-dir"), error
    assert listing(out) == before
    both = refused(runner.invoke(app, tiny_train(samples, out, "--resume", "--overwrite")), scratch)
    assert "--resume continues the run in the output folder and --overwrite deletes it: pass one" in both
    assert listing(out) == before


def test_overwrite_and_the_pipeline_stage_delete_the_earlier_run_first(samples, scratch):
    out = scratch / "run"
    training.train(config(samples, out, max_steps=3))
    earlier = run_record(out)["run_id"]
    (out / "curves.csv").write_text("step\n1\n")  # what the stage derives from health.jsonl

    result = runner.invoke(app, tiny_train(samples, out, "--overwrite"))  # tiny: one step
    assert result.exit_code == 0 and "trained 1 steps" in result.output, result.output
    record = run_record(out)
    assert record["run_id"] != earlier and record["finished"] is True
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1"]  # the earlier run's 2 and 3 are gone
    assert checkpoint_id(out / "checkpoint-1") == record["run_id"] == final_id(out)
    assert [json.loads(line)["step"] for line in (out / "health.jsonl").read_text().splitlines()] == [1]
    assert (out / "curves.csv").read_text() != "step\n1\n"

    # the pipeline's stage reruns by design (r1ranker run, stage, dvc, the flows): it replaces the run too
    stage = runner.invoke(app, ["stage", "train", "--params", str(ROOT / "params.yaml"), "--profile", "tiny",
                                "--set", f"train.samples={samples}", "--set", f"train.output_dir={out}",
                                "--set", "train.autocast='off'"])
    assert stage.exit_code == 0, stage.output
    assert run_record(out)["run_id"] not in (earlier, record["run_id"]) and run_record(out)["finished"] is True


# ---------------------------------------------------------------- --resume continues only the same run


def test_resume_refuses_a_stale_checkpoint_of_an_earlier_run(samples, scratch, tmp_path_factory):
    """Run A reached checkpoint-2; run B started afresh in the same folder. A checkpoint of A numbered above B's
    (an older layout, or one copied back) is the latest by name, and is refused rather than resumed."""
    out, keep = scratch / "run", tmp_path_factory.mktemp("keep")
    training.train(config(samples, out))
    run_a = run_record(out)["run_id"]
    shutil.copytree(out / "checkpoint-2", keep / "checkpoint-2")
    training.train(config(samples, out, max_steps=1))  # run B, started afresh: A's checkpoints go
    run_b = run_record(out)["run_id"]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1"] and run_a != run_b
    shutil.copytree(keep / "checkpoint-2", out / "checkpoint-40")
    before = listing(out)

    error = refused(runner.invoke(app, tiny_train(samples, out, "--resume", "--max-steps", "41")), scratch)
    assert error == (f"error: {out / 'checkpoint-40'}: written by run {run_a}, but {out / 'run.json'} names run "
                     f"{run_b} (a later run started in this folder); a stale checkpoint is never resumed: train afresh "
                     "with --overwrite"), error
    assert listing(out) == before  # run.json still says finished, no checkpoint-41, final/ untouched


def test_resume_refuses_other_settings_naming_each_before_any_model_loads(samples, scratch, monkeypatch):
    out = scratch / "run"
    training.train(config(samples, out, max_steps=1))  # score mode
    run_id = run_record(out)["run_id"]
    before = listing(out)
    error = refused(runner.invoke(app, tiny_train(samples, out, "--resume", "--max-steps", "2", "--mode", "fast")),
                    scratch)
    assert error == (f"error: {out}: cannot resume run {run_id} with other settings: mode: checkpoint run 'score', "
                     "this run 'fast'; resume with its settings, or train afresh with --overwrite"), error
    assert listing(out) == before

    from components.training import expected_reward

    monkeypatch.setattr(expected_reward, "load_policy", lambda cfg: pytest.fail("a model was loaded"))
    other = config(samples, out, max_steps=2, model="random:tiny", lora=LoraSettings(enabled=True, r=4))
    with pytest.raises(RunConflict, match=r"lora\.enabled: checkpoint run False, this run True; lora\.r: checkpoint "
                                          r"run not set, this run 4"):
        training.train(other, resume=True)
    assert listing(out) == before


def test_compat_differences_name_each_key():
    assert compat_differences({"mode": "score", "algo": "grpo"}, {"mode": "fast", "algo": "grpo", "lora.r": 4}) == [
        "lora.r: checkpoint run not set, this run 4", "mode: checkpoint run 'score', this run 'fast'"]


def test_a_checkpoint_without_a_run_id_is_refused_with_how_to_proceed(samples, scratch):
    """A folder an older version trained: checkpoints without a run id and no run.json."""
    out = scratch / "run"
    training.train(config(samples, out, max_steps=1))
    ckpt = out / "checkpoint-1"
    state = torch.load(ckpt / "trainer_state.pt", weights_only=True)
    del state["run_id"]
    torch.save(state, ckpt / "trainer_state.pt")
    (out / "run.json").unlink()
    before = listing(out)
    error = refused(runner.invoke(app, tiny_train(samples, out, "--resume", "--max-steps", "2")), scratch)
    assert error == (f"error: {ckpt}: written before training runs had ids, so it cannot be matched to this run's "
                     "settings; train afresh with --overwrite (deletes it), or move it away"), error
    assert listing(out) == before

    empty = scratch / "empty"
    error = refused(runner.invoke(app, tiny_train(samples, empty, "--resume")), scratch)
    assert error == (f"error: {empty / 'run.json'}: missing, so there is no run to resume; train without --resume "
                     "(with --overwrite if the folder holds an earlier run)"), error
    assert not empty.exists()


def test_train_then_resume_the_same_run_continues_it_and_reopens_run_json(samples, scratch):
    out = scratch / "run"
    training.train(config(samples, out))
    run_id = run_record(out)["run_id"]
    seen = []
    summary = training.train(config(samples, out, max_steps=3), resume=True,
                             progress=lambda step, total, metrics: seen.append(run_record(out)["finished"]))
    assert summary["steps"] == 3 and seen == [False]  # unfinished while it runs: a crash now leaves it so
    assert run_record(out)["run_id"] == run_id and run_record(out)["finished"] is True
    assert checkpoint_id(out / "checkpoint-3") == run_id == final_id(out)
    assert [json.loads(line)["step"] for line in (out / "health.jsonl").read_text().splitlines()] == [1, 2, 3]

    result = runner.invoke(app, tiny_train(samples, out, "--resume", "--max-steps", "4"))  # the CLI, same run
    assert result.exit_code == 0 and "trained 4 steps" in result.output, result.output
    assert run_record(out)["run_id"] == run_id == final_id(out) and run_record(out)["finished"] is True


# ---------------------------------------------------------------- an unfinished run's final/ is not used


def test_a_crashed_run_leaves_finished_false_and_evaluate_and_register_refuse_its_folder(samples, scratch):
    out = scratch / "run"
    training.train(config(samples, out, max_steps=1))
    with pytest.raises(TrainingDiverged):  # run B crashes; run A's final/ is still there
        training.train(config(samples, out, max_steps=4, learning_rate=1e12))
    record = run_record(out)
    assert record["finished"] is False and final_id(out) != record["run_id"]
    final = out / "final"
    message = (f"{final}: run {record['run_id']} did not finish ({out / 'run.json'}: finished false); this final/ is "
               f"an earlier run's model; finish the run (`r1ranker train --resume --output-dir {out}`) or train "
               "again (--overwrite)")
    before = listing(out)

    error = refused(runner.invoke(app, ["evaluate", "--params", str(ROOT / "params.yaml"), "--model", str(final),
                                        "--samples", str(samples), "-t", "passage-5", "--limit", "2",
                                        "--out", str(scratch / "eval")]), scratch)
    assert error == f"error: {message}", error
    assert not (scratch / "eval").exists()
    error = refused(runner.invoke(app, ["register", "--params", str(ROOT / "params.yaml"), "--model", str(final),
                                        "--eval", str(scratch / "eval")]), scratch)
    assert error == f"error: {message}", error

    from components.pipeline import trained_model

    params = load_params(ROOT / "params.yaml", "tiny", {"train.output_dir": str(out)})
    with pytest.raises(DataError, match=f"^{re.escape(message)}$"):
        trained_model(params)  # what the evaluate and register stages read
    assert listing(out) == before


def test_a_final_of_another_run_is_refused_and_a_folder_without_run_json_accepted(samples, tmp_path):
    out = tmp_path / "run"
    training.train(config(samples, out, max_steps=1))
    record = run_record(out)
    (out / "run.json").write_text(json.dumps({**record, "run_id": "f" * 32}))
    with pytest.raises(DataError, match=rf"^{re.escape(str(out / 'final'))}: written by run {record['run_id']}, but "
                                        rf"{re.escape(str(out / 'run.json'))} names run f{{32}}; finish the run"):
        check_trained(out / "final")
    moved = tmp_path / "elsewhere" / "model"
    shutil.copytree(out / "final", moved)
    check_trained(moved)  # no run.json beside it: not (or no longer) in a training run's folder


# ---------------------------------------------------------------- a NaN model never ranks


def test_a_model_with_a_nan_weight_is_refused_by_evaluation(samples, scratch):
    from components.models import load_model

    model, tok = load_model("random:tiny", device="cpu")
    bad = "model.layers.1.mlp.down_proj.weight"
    with torch.no_grad():
        model.get_parameter(bad).view(-1)[3] = float("nan")
    folder = scratch / "nan-model"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)

    error = refused(runner.invoke(app, ["evaluate", "--params", str(ROOT / "params.yaml"), "--model", str(folder),
                                        "--samples", str(samples), "-t", "passage-5", "--limit", "2",
                                        "--out", str(scratch / "eval")]), scratch)
    assert error == (f"error: {folder}: weight {bad!r} holds NaN or infinite values; this model cannot rank. Retrain "
                     "it (training stops at a non-finite step) or load another model"), error
    assert not (scratch / "eval").exists()


@pytest.mark.slow  # TRL GRPO with generation
def test_grpo_checkpoints_carry_the_run_id_and_resume_only_their_run(samples, tmp_path):
    out = tmp_path / "run"
    grpo = dict(algo="grpo", num_generations=2, batch_size=2, max_completion_length=8, max_train_samples=1,
                prompt=PromptConfig(max_prompt_tokens=512, reasoning=False))
    training.train(config(samples, out, **grpo))
    run_id = run_record(out)["run_id"]
    assert run_record(out)["finished"] is True and final_id(out) == run_id
    assert (out / "checkpoint-2" / "run_id").read_text().strip() == run_id
    assert training.train(config(samples, out, max_steps=3, **grpo), resume=True)["steps"] == 3
    assert run_record(out)["run_id"] == run_id == final_id(out) and run_record(out)["finished"] is True
    (out / "checkpoint-3" / "run_id").write_text("0" * 32)
    with pytest.raises(RunConflict, match=rf"checkpoint-3: written by run 0{{32}}, but .* names run {run_id}"):
        training.train(config(samples, out, max_steps=4, **grpo), resume=True)


def test_a_score_head_with_a_nan_is_refused(tmp_path):
    from safetensors.torch import save_file

    from components.io import DataError
    from components.scorers import HEAD_FILE, ScoreHead

    head = ScoreHead(8)
    state = {k: v.clone() for k, v in head.linear.state_dict().items()}
    state["weight"].view(-1)[0] = float("inf")
    save_file(state, str(tmp_path / HEAD_FILE))
    with pytest.raises(DataError, match="tensor 'weight' of the score head is not finite"):
        ScoreHead.load(tmp_path, 8)
