"""The `data` flow: pull the raw data (DVC), prepare samples, validate them (Great
Expectations), and build every prompt once. A validation failure fails the flow,
and with it the pipeline, before any training."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from components.params import Params
from components.pipeline import prepare_stage, prompts_stage, validate_stage
from flows.common import markdown_table, publish, resolve_config, run_logger, retry_on

# the code whose change invalidates the prepare cache (its key): not the dataset registry, `datasets.SOURCES`
PREPARE_CODE = ("components/datasets", "components/preparation.py", "components/schema.py", "components/io.py")


class DataPullFailed(RuntimeError):
    """`dvc pull` failed; transient (a store briefly away) until the retries run out."""


@task(name="pull-data", retries=2, retry_delay_seconds=[10, 30], retry_condition_fn=retry_on(DataPullFailed))
def pull_data(root: str = ".") -> str:
    from components.data_setup import dvc_pull

    ok, output = dvc_pull(Path(root))
    if not ok:
        raise DataPullFailed(f"dvc pull data.dvc failed: {output[-500:]}")
    return output.splitlines()[-1] if output else "up to date"


def _source_hash() -> str:
    h = hashlib.sha256()
    for root in PREPARE_CODE:
        path = Path(root)
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            if f.exists():
                h.update(f.as_posix().encode())
                h.update(f.read_bytes())
    return h.hexdigest()


def prepare_cache_key(context, parameters: dict[str, Any]) -> str | None:
    """Cached on the prepare params, the data version and the loaders' source, while the outputs exist."""
    params: Params = parameters["params"]
    out = Path(params.prepare.out)
    tasks = params.prepare.select or tuple(params.prepare.tasks)
    files = [out / "datacard.json", *(out / t / f"{s}.jsonl" for t in tasks for s in ("train", "test"))]
    if not all(f.exists() for f in files):
        return None  # outputs missing (cleaned, or another profile): run
    dvc_file = Path("data.dvc")
    h = hashlib.sha256()
    h.update(str(Path.cwd().resolve()).encode())
    h.update(json.dumps(params.resolved.get("prepare"), sort_keys=True, default=str).encode())
    h.update(dvc_file.read_bytes() if dvc_file.exists() else b"no data.dvc")
    h.update(_source_hash().encode())
    h.update(b"".join(f.read_bytes() for f in files[:1]))  # the datacard: outputs changed by hand miss the cache
    return f"prepare-{h.hexdigest()}"


@task(name="prepare", cache_key_fn=prepare_cache_key, persist_result=True)
def prepare(params: Params) -> dict[str, Any]:
    return prepare_stage(params)


@task(name="validate")  # never retried: a failed expectation is a finding, not a glitch
def validate(params: Params) -> dict[str, Any]:
    from components.validation import ValidationFailed

    try:
        return validate_stage(params)
    except ValidationFailed as err:
        logger = run_logger()
        logger.error("validation failed: %d expectation(s); report %s/report.html", len(err.failures), err.report)
        for line in err.failures:
            logger.error("  %s", line)
        raise


@task(name="build-prompts")
def build_prompts(params: Params) -> dict[str, Any]:
    return prompts_stage(params)


@flow(name="data", log_prints=True)
def data_flow(config: str = "params.yaml", profile: str | None = None, overrides: dict[str, Any] | None = None,
              pull: bool = True) -> dict[str, Any]:
    """Pull data, prepare samples, validate them, build prompts.

    Args:
        config: path to params.yaml, relative to the project folder.
        profile: a profile in params.yaml (`demo`, `tiny`) merged over the sections.
        overrides: dotted keys, e.g. {"prepare.seed": 7}.
        pull: run `dvc pull` first (off when data/ is managed elsewhere).
    """
    params = resolve_config(config, profile, overrides)
    logger = run_logger()
    if pull:
        try:
            logger.info("dvc pull: %s", pull_data())
        except DataPullFailed as err:
            if not any(Path(params.prepare.data_root).glob("*")):
                raise
            logger.warning("%s; continuing with the local %s as it is", err, params.prepare.data_root)
    card = prepare(params)
    create_table_artifact(
        key="datacard", description="Prepared samples per task",
        table=[{"task": t, "train": c["train"], "test": c["test"]} for t, c in card["tasks"].items()])
    checked = validate(params)
    prompts = build_prompts(params)
    publish("prompts", markdown_table(
        ["group", "samples", "median tokens", "max tokens", "samples cut"],
        [[g, v["samples"], v["prompt_tokens_median"], v["prompt_tokens_max"], v["samples_cut"]]
         for g, v in prompts["groups"].items()]) + f"\n\ntemplate hash `{prompts['template_hash']}`, "
        f"budget {prompts['max_prompt_tokens']} tokens, model `{prompts['model']}`", "Prompts training and evaluation use")
    return {"prepare": card, "validate": checked, "prompts": prompts}
