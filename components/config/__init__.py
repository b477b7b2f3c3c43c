"""Typed configuration read from `params.yaml` (the one configuration file).

One dataclass per section (and sub-section), each field with its default and a
one-line help (`setting`); the defaults are defined once, in the dataclasses,
and params.yaml overrides them. `load_params` merges a profile and dotted
overrides, then checks every section: unknown keys, wrong types and values out
of range are collected across the whole file and reported in one
`ConfigError`, each line naming its key path. `explain` lists every key with
its type, default, current value and help (`r1ranker config --explain`).

- `checks`: ConfigError, the type checks, `setting` and `check`.
- `sections`: prepare, validate, evaluate and register (prompts:
  `components.prompts.PromptConfig`; train: `components.training.TrainConfig`).
- `params`: `load_params`, profiles, overrides, the `Params` record; `load_yaml` (a key twice is an error).
- `limits`: size, depth and alias-expansion bounds on YAML and on a flow's overrides.
- `explain`: the key-by-key listing.
"""

from components.config.checks import ConfigError, check, setting, type_problems
from components.config.explain import explain
from components.config.params import (
    KNOWN_SECTIONS,
    Params,
    apply_overrides,
    build_sections,
    deep_merge,
    load_params,
    load_yaml,
    parse_override,
    section_problems,
)
from components.config.sections import (
    EVALUATE_REFERENCES,
    EvaluateConfig,
    PrepareConfig,
    RegisterConfig,
    TaskConfig,
    ValidateConfig,
)

__all__ = [
    "EVALUATE_REFERENCES", "KNOWN_SECTIONS", "ConfigError", "EvaluateConfig", "Params", "PrepareConfig",
    "RegisterConfig", "TaskConfig", "ValidateConfig", "apply_overrides", "build_sections", "check", "deep_merge",
    "explain", "load_params", "load_yaml", "parse_override", "section_problems", "setting", "type_problems",
]
