"""params.yaml read once: profiles and overrides merged, every section typed, every problem reported at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.config.checks import ConfigError, build_section, task_name_problem, type_problems
from components.config.limits import MAX_YAML_CHARS, LimitError, value_problem
from components.config.sections import EvaluateConfig, PrepareConfig, RegisterConfig, ValidateConfig
from components.config.yaml_text import DuplicateKeyError, load_yaml
from components.datasets import SOURCES
from components.logs import shown
from components.prompts import PromptConfig
from components.training import TrainConfig, build_train_config

# The one registry of params.yaml's typed sections, in the file's order; everything else is derived from it.
SECTIONS: dict[str, type] = {
    "prepare": PrepareConfig, "validate": ValidateConfig, "prompts": PromptConfig,
    "evaluate": EvaluateConfig, "train": TrainConfig, "register": RegisterConfig,
}
NOT_IN_FILE = {"train": ("prompt", "rewards")}  # train's prompt and rewards come from the prompts and rewards sections
# every top-level key, in params.yaml's order: the typed sections with rewards (per ranker, reward name ->
# {weight, options}) after prompts, then profiles
KNOWN_SECTIONS = (*tuple(SECTIONS)[:3], "rewards", *tuple(SECTIONS)[3:], "profiles")


def section_problems(raw: dict[str, Any]) -> list[str]:
    """Type problems of every section that has a dataclass, all at once (key path in each line)."""
    problems = []
    for name, cls in SECTIONS.items():
        section = raw.get(name)
        if section is None:
            continue
        if not isinstance(section, dict):
            problems.append(f"{name}: expected a mapping of keys, got {type(section).__name__}")
            continue
        problems += type_problems(cls, section, name, NOT_IN_FILE.get(name, ()))
    if raw.get("rewards") is not None and not isinstance(raw["rewards"], dict):  # its names: rewards.build_rewards
        problems.append(f"rewards: expected a mapping of keys, got {type(raw['rewards']).__name__}")
    train = raw.get("train")
    train_tasks = train.get("tasks") if isinstance(train, dict) else None
    if isinstance(train_tasks, (list, tuple)):  # <samples>/<task>/train.jsonl: a path, as prepare's task keys are
        problems += [f"train.tasks[{i}]: {p}" for i, t in enumerate(train_tasks) if (p := task_name_problem(t))][:10]
    return problems


def build_sections(raw: dict[str, Any], explicit_train: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Every section's dataclass built from `raw`, and every problem of every section (types, then values).

    `explicit_train`: train keys set on the command line rather than in the file (the GRPO rule for
    `objective` and `mode`: the file's configure the expected-reward trainer, an explicit one must fit).
    """
    problems = section_problems(raw)
    bad = {p.split(".")[0].split(":")[0] for p in problems}
    built: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        if name in bad or name == "train":  # train is built below, over the prompts and rewards sections
            continue
        try:
            built[name] = build_section(cls, raw.get(name), name)
        except ConfigError as err:
            problems += [_under(name, line) for line in str(err).splitlines()]
    prepare = built.get("prepare")
    if prepare is not None:  # registry names are checked at load, not when the stage that uses them runs
        problems += [f"prepare.tasks.{name}.source: unknown source {shown(task.source)}; valid sources: {sorted(SOURCES)}"
                     for name, task in prepare.tasks.items() if task.source not in SOURCES]
    if not {"train", "rewards"} & bad:  # with the default prompt when the prompts section has its own problems
        try:
            built["train"] = build_train_config(raw.get("train"), built.get("prompts", PromptConfig()), raw.get("rewards"),
                                                **(explicit_train or {}))
        except ConfigError as err:
            problems += [_under("train", line) for line in str(err).splitlines()]
    return built, problems


def _under(section: str, line: str) -> str:
    """A problem line with its section's key path in front (values checks name the key without it)."""
    return line if line.startswith((f"{section}.", f"{section}:", "rewards")) else f"{section}.{line}"


@dataclass(frozen=True)
class Params:
    """params.yaml with a profile and overrides merged in: one typed dataclass per section."""

    prepare: PrepareConfig
    validate: ValidateConfig
    path: Path | None = None
    profile: str | None = None
    resolved: dict[str, Any] = field(default_factory=dict)  # the merged mapping, as logged and materialised
    prompts: PromptConfig = field(default_factory=PromptConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    register: RegisterConfig = field(default_factory=RegisterConfig)
    train: TrainConfig | None = None
    rewards: dict[str, Any] = field(default_factory=dict)  # per ranker: reward name -> {weight, options}

    def section(self, name: str) -> dict[str, Any]:
        """A section as params.yaml (merged) gives it; missing sections are empty."""
        return dict(self.resolved.get(name) or {})


MAX_PROBLEMS = 50  # lines in one error; the count says how many there were


def deep_merge(base: Any, overlay: Any) -> Any:
    """Mappings merge key by key; anything else (lists included) is replaced by the overlay."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        out = dict(base)
        for key, value in overlay.items():
            out[key] = deep_merge(base.get(key), value) if key in base else value
        return out
    return overlay


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """`{"train.max_steps": 2}` sets one nested key; the section must exist in KNOWN_SECTIONS."""
    out = raw
    for dotted, value in (overrides or {}).items():
        keys = str(dotted).split(".")
        if keys[0] not in KNOWN_SECTIONS:
            raise ConfigError(f"override {shown(dotted)}: unknown section {shown(keys[0], 40)}; valid: {list(KNOWN_SECTIONS)}")
        if not all(keys):
            raise ConfigError(f"override {shown(dotted)}: an empty key in the dotted path; expected e.g. train.max_steps")
        problem = value_problem(value)  # a flow run's overrides are Python values that never went through the YAML bounds
        if problem:
            raise ConfigError(f"override {shown(dotted)}: the value is {problem}")
        nested: Any = value
        for key in reversed(keys):
            nested = {key: nested}
        out = deep_merge(out, nested)
    return out


def load_params(path: str | Path = "params.yaml", profile: str | None = None,
                overrides: dict[str, Any] | None = None) -> Params:
    """Read params.yaml, merge the named profile (`profiles.<name>`) and dotted overrides over it, and type-check."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as fh:
            text = fh.read(MAX_YAML_CHARS + 1)  # never more than the limit into memory
        raw = load_yaml(text, what="the file")
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: not found; run from the project root or pass --params") from err
    except (IsADirectoryError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not a UTF-8 text file ({type(err).__name__}); pass a params.yaml with --params") from err
    except DuplicateKeyError as err:
        raise ConfigError(f"{path}:{err.line}: duplicate key {shown(err.key)} (first on line {err.first_line}); "
                          "a key may appear only once in a mapping") from err
    except LimitError as err:
        raise ConfigError(f"{path}" + (f":{err.line}" if err.line else "") + f": {err.problem}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from err
    except ValueError as err:  # a scalar Python cannot hold, e.g. an integer of 5000 digits
        raise ConfigError(f"{path}: invalid value: {str(err)[:120]}") from err
    if raw is None:  # an empty file (or only comments) is a mistake, not "all defaults"
        raise ConfigError(f"{path}: empty; expected a mapping of sections ({', '.join(KNOWN_SECTIONS)})")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(KNOWN_SECTIONS), key=str)
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {shown(unknown, 160)}; valid: {list(KNOWN_SECTIONS)}")
    profiles = raw.pop("profiles", None) or {}
    if not isinstance(profiles, dict):
        raise ConfigError(f"{path}: profiles: expected a mapping of profile names, got {type(profiles).__name__}")
    if profile:
        if profile not in profiles:
            raise ConfigError(f"{path}: unknown profile {shown(profile, 60)}; defined: {shown(sorted(profiles, key=str), 160)}")
        if not isinstance(profiles[profile] or {}, dict):
            raise ConfigError(f"{path}: profiles.{profile}: expected a mapping of sections, "
                              f"got {type(profiles[profile]).__name__}")
        extra_sections = sorted(set(profiles[profile] or {}) - set(KNOWN_SECTIONS) - {"profiles"}, key=str)
        if extra_sections:
            raise ConfigError(f"{path}: profile {shown(profile, 60)} has unknown section(s) {shown(extra_sections, 160)}")
        raw = deep_merge(raw, profiles[profile] or {})
    raw = apply_overrides(raw, overrides)
    explicit = {k.split(".", 1)[1]: v for k, v in (overrides or {}).items() if k in ("train.objective", "train.mode")}
    built, problems = build_sections(raw, explicit)
    if problems:
        where = f"{path}" + (f" (profile {profile})" if profile else "")
        more = [f"... and {len(problems) - MAX_PROBLEMS} more"] if len(problems) > MAX_PROBLEMS else []
        raise ConfigError(f"{where}: {len(problems)} problem(s):\n" + "\n".join(f"  {p}" for p in problems[:MAX_PROBLEMS] + more))
    return Params(path=path, profile=profile, resolved=raw, rewards=dict(raw.get("rewards") or {}), **built)
