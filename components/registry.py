"""Registration and champion/challenger promotion in the MLflow model registry.

`register` logs a `RankerModel` with its evaluation (`evaluation/metrics.json`)
in one run and creates a version of `iranker` / `dranker` with alias
`challenger`. `promote` compares the challenger's evaluation with the current
champion's on the frozen suite and moves `champion` only when:

- both evaluations cover the same tasks with the same sample ids (hash per
  task) and nothing was skipped: otherwise the challenger is refused as
  incomplete, and nothing changes;
- the challenger's mean MRR over tasks is higher, with a paired permutation
  test on per-sample MRR (all tasks pooled) at p < alpha;
- no task's MRR drops by more than `tolerance`;
- and, first version included, the challenger is not significantly worse (paired,
  p < alpha) than the untrained base model on any task, when the base's evaluation
  was registered with it (`base-evaluation/metrics.json`).

`register` checks what it registers before any MLflow work: the evaluation must
record the identity of that very model (weights fingerprint, template hash,
ranker, mode, scorers; `rankers.model_identity`), else `EvaluationMismatch`
names both. Ranker, mode and scorers come from a trained model's saved config;
an untrained model is registered as its evaluation ranked it.

The first version becomes champion when there is none (and the base rule holds). The decision, its
numbers and its reason are written to the challenger version's tags and
description *before* the alias moves; moving the alias is the last and only
state change, a single registry call, so an interrupted promotion leaves the
old champion in place and a rerun completes it. Rerunning is idempotent.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from components.audit import check_consistent, file_sha256, verify_evaluation
from components.io import loads
from components.promotion import EVAL_ARTIFACT, Decision, PromotionConfig, PromotionRefused, check_complete, decide
from components.report import EvalReport
from components.tracking import with_retries
from components.models import folder_fingerprint, load_tokenizer
from components.prompts import PromptConfig, ranker_name, role_of
from components.rankers import LLMRankerConfig, LLM_RANKERS, RankerSpec, model_identity

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"
BASE_ARTIFACT = "base-evaluation/metrics.json"  # the untrained model on the same suite (the base rule)
IDENTITY_KEYS = ("weights", "template_hash", "ranker", "mode", "scorers")
EVAL_SHA_TAG, BASE_SHA_TAG = "evaluation_sha256", "base_evaluation_sha256"  # set at register, checked at promote


class EvaluationMismatch(PromotionRefused):
    """The evaluation given to `register` is of another model, prompt, ranker, mode or scorer."""


def registry_client():
    from mlflow import MlflowClient

    return MlflowClient()


def version_by_alias(client, name: str, alias: str):
    from mlflow.exceptions import MlflowException

    try:
        return with_retries(lambda: client.get_model_version_by_alias(name, alias), f"read alias {alias} of {name}")
    except MlflowException as err:
        if "RESOURCE_DOES_NOT_EXIST" in str(err.error_code) or "not found" in str(err).lower():
            return None
        raise


def stored_evaluation(version, artifact: str = EVAL_ARTIFACT, legacy_ok: bool = False) -> EvalReport | None:
    """The evaluation logged with a model version (None when there is none); a malformed one names the artifact.

    It must be the file register recomputed (its sha256 is the version's tag). `legacy_ok` accepts a version
    registered before that seal existed (a champion of an older release), consistency-checked only; the
    decision then says so.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = with_retries(lambda: mlflow.artifacts.download_artifacts(
                run_id=version.run_id, artifact_path=artifact, dst_path=tmp), f"download {artifact} of v{version.version}")
        except (MlflowException, OSError):
            return None  # no evaluation logged with this version (connection failures raise TrackingError)
        who = f"{artifact} of v{version.version}"
        expected = (version.tags or {}).get(EVAL_SHA_TAG if artifact == EVAL_ARTIFACT else BASE_SHA_TAG)
        if expected is None and legacy_ok:
            log.warning("%s predates sealed evaluations: compared as stored (consistency checked)", who)
        elif expected is None:
            raise PromotionRefused(f"{who} carries no hash (registered before evaluations were recomputed and "
                                   "sealed at register): register that model again")
        elif file_sha256(Path(path)) != expected:
            raise PromotionRefused(f"{who} changed in the artifact store after registration (sha256 differs from the "
                                   "version's tag); refused")
        report = EvalReport.from_dict(loads(Path(path).read_text()), who)
        check_consistent(report, who)
        return report


@dataclass(frozen=True)
class RegistrationPlan:
    """What `register` will log, settled and checked before any MLflow work."""

    ranker: str
    mode: str
    scorers: dict | None
    prompt: PromptConfig
    identity: dict


def _load_report(folder: Path | None, who: str, samples_dir: Path | None = None) -> EvalReport | None:
    """The evaluation in `folder`, recomputed from its rankings and samples (`audit.verify_evaluation`) first."""
    if folder is None:
        return None
    path = Path(folder) / "metrics.json"
    if not path.exists():
        raise PromotionRefused(f"{who} has no evaluation ({path} is missing); run `r1ranker evaluate --out {folder}` first")
    return verify_evaluation(Path(folder), samples_dir, f"{who}'s evaluation")


def evaluated_identity(report: EvalReport) -> dict:
    """The identity an evaluation recorded ({} for none); a ranker named by its former name reads as its name."""
    recorded = dict(report.identity or {})
    if isinstance(recorded.get("ranker"), str):
        recorded["ranker"] = ranker_name(recorded["ranker"])
    return recorded


def check_evaluation_of(report: EvalReport, identity: dict, model_spec: str, eval_dir: Path) -> None:
    """Refuse an evaluation that is not of the model being registered, naming both."""
    recorded = evaluated_identity(report)
    if not recorded:
        raise EvaluationMismatch(f"{eval_dir}/metrics.json records no model identity (written before identities were "
                                 f"recorded, or by a baseline): evaluate {model_spec} again and register that")
    diff = {k: (recorded.get(k), identity.get(k)) for k in IDENTITY_KEYS if recorded.get(k) != identity.get(k)}
    if diff:
        parts = "; ".join(f"{k}: evaluated {a!r}, registering {b!r}" for k, (a, b) in diff.items())
        raise EvaluationMismatch(f"{eval_dir}/metrics.json is an evaluation of another model than {model_spec} ({parts}); "
                                 f"evaluate this model and register it with that evaluation")


def plan_registration(model_spec: str, ranker: str | None, mode: str | None, eval_dir: Path, prompt: PromptConfig,
                      scorers: dict | None = None, base_eval_dir: Path | None = None,
                      samples_dir: Path | None = None) -> RegistrationPlan:
    """Settle ranker, mode, scorers and prompt, and check the evaluation is of exactly this model.

    A trained folder records how it ranks (`ranker_config.json`): those values are used, and an argument
    that contradicts them raises `SavedConfigMismatch`. An untrained model is registered as its evaluation
    ranked it (an argument that contradicts the evaluation is an `EvaluationMismatch`).
    """
    report = _load_report(Path(eval_dir), f"model {model_spec}", samples_dir)
    check_complete(report, None, f"model {model_spec}")
    recorded = evaluated_identity(report)
    saved = RankerSpec.load(model_spec)
    if saved is not None:  # served with the ranker, mode, scorers and prompt it was trained and evaluated with
        saved.reconcile(model_spec, mode, scorers, ranker)
        ranker, mode, scorers = saved.ranker, saved.mode, saved.scorers
        prompt = saved.prompt or prompt
    else:  # as the evaluation ranked it, when that was an LLM ranker (else the identity check names the difference)
        evaluated = recorded if recorded.get("ranker") in LLM_RANKERS else {}
        ranker = ranker or evaluated.get("ranker") or "iranker"
        mode = mode or evaluated.get("mode") or "score"
        scorers = scorers or evaluated.get("scorers")
    ranker = role_of(ranker)  # only LLM rankers are registered: a ValueError names the valid ones
    config = LLMRankerConfig(mode=mode, prompt=prompt, scorers=scorers or {})
    identity = model_identity(model_spec, ranker, config, load_tokenizer(model_spec))
    check_evaluation_of(report, identity, model_spec, Path(eval_dir))
    base_report = _load_report(base_eval_dir, "the untrained base", samples_dir)
    if base_report is not None:
        check_complete(base_report, report, "the untrained base", "the model")
    return RegistrationPlan(ranker, mode, identity["scorers"], config.prompt, identity)


def register(name: str, model_spec: str, ranker: str | None, mode: str | None, eval_dir: Path, prompt: PromptConfig,
             tags: dict[str, str] | None = None, scorers: dict | None = None, base_eval_dir: Path | None = None,
             samples_dir: Path | None = None, plan: RegistrationPlan | None = None) -> str:
    """Log the model with its evaluation (and the base's) in the active run; create a version aliased `challenger`.

    Everything is checked first (`plan_registration`): a model is registered only with an evaluation of itself.
    """

    import mlflow
    import torch

    import components
    from components.serving import RankerModel, input_example, ranker_config, save_weights, signature

    # a caller that already planned (the CLI, to name the model before its MLflow run) passes it: not recomputed twice
    plan = plan or plan_registration(model_spec, ranker, mode, eval_dir, prompt, scorers, base_eval_dir, samples_dir)
    eval_dir = Path(eval_dir)
    # what promotion will read back is exactly what was recomputed here: the version carries its hashes
    sealed = {EVAL_SHA_TAG: file_sha256(eval_dir / "metrics.json")}
    if base_eval_dir is not None:
        sealed[BASE_SHA_TAG] = file_sha256(Path(base_eval_dir) / "metrics.json")
    thash = plan.identity["template_hash"]
    with tempfile.TemporaryDirectory() as tmp:
        weights = save_weights(model_spec, Path(tmp) / "weights")
        fingerprint = folder_fingerprint(weights)  # what serving verifies before it loads (weights, head, config, tokenizer)
        model_config = ranker_config(plan.ranker, plan.mode, thash, dataclasses.asdict(plan.prompt), scorers=plan.scorers,
                                     fingerprint=fingerprint)
        import transformers

        info = with_retries(lambda: mlflow.pyfunc.log_model(
            name="model", python_model=RankerModel(), artifacts={"model": str(weights)}, model_config=model_config,
            signature=signature(), input_example=input_example(),
            code_paths=[str(Path(components.__file__).parent)],
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"transformers=={transformers.__version__}",
                              f"mlflow=={mlflow.__version__}", "rapidfuzz", "ranx", "numpy", "pandas", "pyyaml"],
        ), "log the model", keep=str(eval_dir))
    with_retries(lambda: mlflow.log_artifacts(str(eval_dir), "evaluation"), "upload the evaluation", keep=str(eval_dir))
    if base_eval_dir is not None:
        with_retries(lambda: mlflow.log_artifact(str(Path(base_eval_dir) / "metrics.json"), BASE_ARTIFACT.rsplit("/", 1)[0]),
                     "upload the base evaluation", keep=str(base_eval_dir))
    client = registry_client()
    version = with_retries(lambda: mlflow.register_model(info.model_uri, name, tags={
        "template_hash": thash, "ranker": plan.ranker, "mode": plan.mode, "source": model_spec,
        "weights": plan.identity["weights"], **(tags or {}), **sealed, "fingerprint": fingerprint}), "register the model")
    with_retries(lambda: client.set_registered_model_alias(name, CHALLENGER, version.version), "set the challenger alias")
    log.info("registered %s version %s as %s", name, version.version, CHALLENGER)
    return str(version.version)


LOCK_TAG = "promotion.lock"  # a registered-model tag "<token> <expiry epoch>": one promote of a model at a time
LOCK_SECONDS = 30.0  # a promote holds it for seconds (two small downloads, a permutation test, a few tags)


def _lock_holder(client, name: str) -> tuple[str, float] | None:
    value = with_retries(lambda: client.get_registered_model(name), f"read {name}").tags.get(LOCK_TAG)
    try:
        token, expiry = value.split()
        return token, float(expiry)
    except (AttributeError, ValueError):
        return None  # no lock, or not one this code wrote: treated as free


def _lost_insert_race(err: Exception) -> bool:
    """A tag write refused because a concurrent write inserted the same key first (a SQL store's upsert race)."""
    return "unique constraint" in str(err).lower()


@contextmanager
def promotion_lock(client, name: str, wait_seconds: float = 2 * LOCK_SECONDS, hold_seconds: float = LOCK_SECONDS):
    """Hold the model's promotion lock: write a token, read it back after a pause, retry while another holds it.

    MLflow has no compare-and-set on aliases; two promotes writing the tag at once both read back the later
    token, so exactly one goes on. A lock whose holder died expires after `hold_seconds`.
    """
    from mlflow.exceptions import MlflowException

    token = uuid.uuid4().hex
    deadline = time.monotonic() + wait_seconds
    while True:
        held = _lock_holder(client, name)
        if held is not None and held[0] != token and held[1] >= time.time():
            log.info("waiting for the promotion lock of %s (expires in %.0f s)", name, held[1] - time.time())
        if held is None or held[1] < time.time():
            value = f"{token} {time.time() + hold_seconds:.0f}"
            try:
                with_retries(lambda: client.set_registered_model_tag(name, LOCK_TAG, value), "take the promotion lock")
            except MlflowException as err:
                if not _lost_insert_race(err):
                    raise
                # another promote inserted the tag at the same instant; reading back says which of us holds it
            time.sleep(0.3)  # let a concurrent writer's tag land before reading back
            held = _lock_holder(client, name)
            if held is not None and held[0] == token:
                break
        if time.monotonic() > deadline:
            raise PromotionRefused(f"another promote of {name!r} holds the lock (registered model tag {LOCK_TAG}); "
                                   "try again when it ends")
        time.sleep(0.2 + random.random() * 0.4)
    try:
        yield
    finally:
        try:  # best effort: a lock left by a dead server or process expires on its own
            held = _lock_holder(client, name)
            if held is not None and held[0] == token:
                with_retries(lambda: client.delete_registered_model_tag(name, LOCK_TAG), "release the promotion lock")
        except Exception as err:  # noqa: BLE001 - never mask the error that ended the promotion
            log.warning("could not release the promotion lock of %s (it expires in %.0f s): %s", name, hold_seconds, err)


def promote(name: str, cfg: PromotionConfig = PromotionConfig()) -> Decision:
    """Compare `challenger` with `champion` and move `champion` when the rules above allow (one promote at a time)."""
    client = registry_client()
    challenger = version_by_alias(client, name, CHALLENGER)
    if challenger is None:
        raise PromotionRefused(f"model {name!r} has no version aliased {CHALLENGER!r}; run `r1ranker register` first")
    with promotion_lock(client, name):
        challenger = version_by_alias(client, name, CHALLENGER)  # as it is now that the lock is ours
        champion = version_by_alias(client, name, CHAMPION)
        if champion is not None and champion.version == challenger.version:
            return Decision(True, f"v{challenger.version} is already the champion", str(challenger.version),
                            str(champion.version))
        ch_report = stored_evaluation(challenger)
        base_report = stored_evaluation(challenger, BASE_ARTIFACT)
        cp_report = stored_evaluation(champion, legacy_ok=True) if champion is not None else None
        if champion is not None and cp_report is None:
            raise PromotionRefused(f"champion v{champion.version} has no evaluation to compare against")
        decision = decide(ch_report, cp_report, cfg, str(challenger.version),
                          str(champion.version) if champion else None, base=base_report)
        if champion is not None and EVAL_SHA_TAG not in (champion.tags or {}):  # said, never silent
            decision = dataclasses.replace(decision, reason=f"{decision.reason}; champion v{champion.version}'s "
                                           "evaluation predates sealed evaluations (compared as stored)")
        for key, value in decision.tags().items():
            with_retries(lambda k=key, v=value: client.set_model_version_tag(name, challenger.version, k, v),
                         "tag the decision")
        verdict = "PROMOTED" if decision.promote else "NOT PROMOTED"
        with_retries(lambda: client.update_model_version(name, challenger.version,
                                                         description=f"{verdict}: {decision.reason}"),
                     "describe the decision")
        if decision.promote:
            now = version_by_alias(client, name, CHAMPION)  # compare before set: the alias is decided on as it was read
            if (now and now.version) != (champion and champion.version):
                raise PromotionRefused(f"@{CHAMPION} of {name!r} moved from v{champion and champion.version} to "
                                       f"v{now and now.version} while deciding (outside the promotion lock); "
                                       "run promote again")
            with_retries(lambda: client.set_registered_model_alias(name, CHAMPION, challenger.version),
                         "move the champion alias")
    return decision
