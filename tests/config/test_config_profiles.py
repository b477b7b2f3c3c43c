"""Profiles and overrides over params.yaml: what every flow and `r1ranker stage` resolves."""

from __future__ import annotations

import pytest

from components.config import ConfigError, parse_override
from components.params import apply_overrides, deep_merge, load_params
from tests.conftest import ROOT


def test_profile_merges_mappings_and_replaces_lists():
    base = load_params(ROOT / "params.yaml")
    tiny = load_params(ROOT / "params.yaml", "tiny")
    assert tiny.section("train")["model"] == "random:tiny"
    assert tiny.section("train")["algo"] == base.section("train")["algo"]  # untouched keys survive the merge
    assert tiny.section("evaluate")["tasks"] == ["passage-5"]  # lists are replaced, not appended
    assert tiny.prepare.select == ("passage-5",)
    assert set(tiny.prepare.tasks) == set(base.prepare.tasks)
    assert "profiles" not in tiny.resolved and tiny.profile == "tiny"


def test_unknown_profile_names_the_defined_ones():
    with pytest.raises(ConfigError, match=r"unknown profile 'nightly'.*'demo'.*'tiny'"):
        load_params(ROOT / "params.yaml", "nightly")


def test_overrides_set_nested_keys_and_reject_unknown_sections():
    params = load_params(ROOT / "params.yaml", "tiny", {"train.max_steps": 3, "register.alpha": 0.01})
    assert params.section("train")["max_steps"] == 3 and params.section("register")["alpha"] == 0.01
    with pytest.raises(ConfigError, match="unknown section 'trian'"):
        load_params(ROOT / "params.yaml", None, {"trian.max_steps": 3})


def test_select_must_name_configured_tasks():
    with pytest.raises(ConfigError, match=r"prepare.select names unknown task\(s\) \['passage-11'\]"):
        load_params(ROOT / "params.yaml", None, {"prepare.select": ["passage-11"]})


def test_parse_override_reads_yaml_values():
    assert parse_override("train.max_steps=2") == ("train.max_steps", 2)
    assert parse_override("evaluate.tasks=[a, b]") == ("evaluate.tasks", ["a", "b"])
    assert parse_override("train.lora.top_layers=null") == ("train.lora.top_layers", None)
    with pytest.raises(ConfigError, match="expected key.path=value"):
        parse_override("train.max_steps")


def test_deep_merge_and_apply_overrides_do_not_mutate_inputs():
    base = {"a": {"b": 1, "c": [1, 2]}}
    merged = deep_merge(base, {"a": {"c": [3]}})
    assert merged == {"a": {"b": 1, "c": [3]}} and base == {"a": {"b": 1, "c": [1, 2]}}
    assert apply_overrides({"train": {"x": 1}}, {"train.y.z": 2}) == {"train": {"x": 1, "y": {"z": 2}}}


def test_wrong_types_are_all_reported_with_file_and_key_path(tmp_path):
    """A typed value that is wrong ("fast" as a learning rate) names file and key, never a raw TypeError."""
    from typer.testing import CliRunner

    from cli import app

    text = (ROOT / "params.yaml").read_text()
    for key, bad in (("  learning_rate:", '  learning_rate: "fast"'), ("  history_len:", "  history_len: [20]"),
                     ("  max_prompt_tokens:", "  max_prompt_tokens: 1024.5")):
        lines = text.splitlines()
        i = next(n for n, line in enumerate(lines) if line.startswith(key))
        lines[i] = bad
        text = "\n".join(lines) + "\n"
    path = tmp_path / "params.yaml"
    path.write_text(text)
    overrides = {"prepare.tasks.rec-movie.test_groups": "many", "train.lora.r": True, "register.alpha": "0.05"}
    with pytest.raises(ConfigError) as info:
        load_params(path, None, overrides)
    message = str(info.value)
    assert message.startswith(f"{path}: 6 problem(s)")
    for line in ("train.learning_rate: expected float, got str 'fast'", "prepare.history_len: expected int, got list",
                 "prompts.max_prompt_tokens: expected int, got float 1024.5",
                 "prepare.tasks.rec-movie.test_groups: expected int", "train.lora.r: expected int, got bool True",
                 "register.alpha: expected float, got str '0.05'"):
        assert line in message
    result = CliRunner().invoke(app, ["config", "--params", str(path)])
    assert result.exit_code == 1 and "train.learning_rate: expected float" in result.output
    assert "Traceback" not in result.output


def test_config_checks_the_values_each_stage_checks(tmp_path):
    from typer.testing import CliRunner

    from cli import app

    result = CliRunner().invoke(app, ["config", "--params", str(ROOT / "params.yaml"), "--set", "train.score_tau=0"])
    assert result.exit_code == 1 and "score_tau must be > 0" in result.output


def test_every_mistake_of_a_file_is_reported_at_once(tmp_path):
    """An unknown key, a wrong type and values out of range in four sections: one error lists them all."""
    overrides = {"train.max_stpes": 3, "evaluate.limit": "ten", "prompts.max_prompt_tokens": 10,
                 "register.alpha": 2.0, "evaluate.references": ["bm26"]}
    with pytest.raises(ConfigError) as info:
        load_params(ROOT / "params.yaml", None, overrides)
    message = str(info.value)
    # a section with a key or type problem is not built, so its values wait (evaluate's references here)
    assert "4 problem(s)" in message and "bm26" not in message
    for line in ("train: unknown key(s) ['max_stpes']", "evaluate.limit: expected int, got str 'ten'",
                 "prompts.max_prompt_tokens must be >= 64, got 10", "register.alpha must be in (0, 1), got 2.0"):
        assert line in message, line
    overrides = {"prompts.max_prompt_tokens": 10, "register.alpha": 2.0, "evaluate.references": ["bm26"],
                 "train.score_tau": 0.0, "train.learning_rate": -1.0, "prepare.tasks.passage-5.samples_per_query": 0}
    with pytest.raises(ConfigError) as info:
        load_params(ROOT / "params.yaml", None, overrides)
    message = str(info.value)
    assert message.startswith(f"{ROOT / 'params.yaml'}: 6 problem(s)")
    for line in ("prompts.max_prompt_tokens must be >= 64, got 10", "register.alpha must be in (0, 1), got 2.0",
                 "evaluate.references: unknown ['bm26']", "train.score_tau must be > 0, got 0.0",
                 "train.learning_rate must be > 0, got -1.0", "prepare.tasks.passage-5.samples_per_query must be >= 1"):
        assert line in message, line


def test_typed_sections_carry_the_files_values_over_one_set_of_defaults():
    from components.config import EvaluateConfig, RegisterConfig
    from components.prompts import PromptConfig
    from components.training import TrainConfig

    params = load_params(ROOT / "params.yaml", "demo")
    assert params.evaluate.limit == 16 and params.evaluate.references == ["random", "bm25", "base"]
    assert params.register.alpha == RegisterConfig().alpha and params.train.max_steps == 24
    assert params.train.prompt == params.prompts and params.prompts.stable_labels is True
    # params.yaml restates the train defaults it documents; they agree with the dataclass (one definition)
    raw_train = load_params(ROOT / "params.yaml").section("train")
    defaults = TrainConfig(prompt=PromptConfig())
    for key in ("learning_rate", "beta", "mode", "score_tau", "target_tau", "algo", "model"):
        assert raw_train[key] == getattr(defaults, key), key
    assert raw_train["objective"] == defaults.loss_objective and raw_train["lora"]["top_layers"] == defaults.lora.top_layers
    assert EvaluateConfig().batch_size == 8


def test_explain_lists_every_key_with_type_default_value_and_help():
    from components.params import explain

    rows = {r["key"]: r for r in explain(load_params(ROOT / "params.yaml", "demo"))}
    lr = rows["train.learning_rate"]
    assert lr["type"] == "float" and lr["value"] == 3e-4 and lr["help"]
    assert rows["train.max_steps"]["value"] == 24 and rows["train.max_steps"]["default"] != 24  # the profile's value
    assert rows["prepare.tasks.rec-movie.train_windows"]["value"] == 4
    assert rows["train.lora.r"]["value"] == 16 and rows["evaluate.limit"]["value"] == 16
    assert not [k for k, r in rows.items() if not r["help"]], "every key carries a help line"
    assert not [k for k in rows if k.startswith("train.prompt.")]  # listed once, under prompts
