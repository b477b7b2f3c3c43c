"""The ground floor of the configuration: what every params.yaml section is built with. It imports no section.

One dataclass per section (and sub-section), each field with its default and a
one-line help (`setting`); the defaults are defined once, in the dataclasses,
and params.yaml overrides them. Unknown keys, wrong types and values out of
range are collected across the whole file and reported in one `ConfigError`,
each line naming its key path. The file is assembled one floor up, in
`components.params` (`load_params`, `Params`, `explain`).

- `checks`: ConfigError, the type checks, the one unknown-key check, `setting` and `check`.
- `sections`: prepare, validate, evaluate and register (prompts:
  `components.prompts.PromptConfig`; train: `components.training.TrainConfig`).
- `yaml_text`: `load_yaml` (a key twice is an error) and `parse_override`.
- `limits`: size, depth and alias-expansion bounds on YAML and on a flow's overrides.
"""

from components.config.checks import ConfigError, check, setting, type_problems, unknown_keys
from components.config.yaml_text import load_yaml, parse_override
from components.config.sections import (
    EVALUATE_REFERENCES,
    EvaluateConfig,
    PrepareConfig,
    RegisterConfig,
    TaskConfig,
    ValidateConfig,
)

__all__ = [
    "EVALUATE_REFERENCES", "ConfigError", "EvaluateConfig", "PrepareConfig", "RegisterConfig", "TaskConfig",
    "ValidateConfig", "check", "load_yaml", "parse_override", "setting", "type_problems", "unknown_keys",
]
