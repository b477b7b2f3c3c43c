"""Typed configuration read from `params.yaml` (the one configuration file).

One dataclass per concern; `__post_init__` checks invariants and says how to
fix them; unknown keys are an error, never silently ignored. Sections that
later stages own are kept as plain mappings until their dataclass exists.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """params.yaml (or an override) is invalid; the message says how to fix it."""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _value_problems(tp: Any, value: Any, where: str) -> list[str]:
    """Why `value` (read from YAML) is not of the annotated type `tp`; empty when it is."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return []
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return []
        options = [a for a in args if a is not type(None)]
        found = [_value_problems(a, value, where) for a in options]
        if any(not f for f in found):
            return []
        if len(options) == 1:
            return found[0]
        return [f"{where}: expected {' or '.join(map(_type_name, args))}, got {value!r}"]
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return []
        if not isinstance(value, dict):
            return [f"{where}: expected a mapping, got {type(value).__name__} {value!r}"]
        return type_problems(tp, value, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return [f"{where}: expected a list, got {type(value).__name__} {value!r}"]
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                return [f"{where}: expected a list of {len(args)} values, got {len(value)}"]
            return [p for i, (a, v) in enumerate(zip(args, value)) for p in _value_problems(a, v, f"{where}[{i}]")]
        item = args[0] if args else Any
        return [p for i, v in enumerate(value) for p in _value_problems(item, v, f"{where}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: expected a mapping, got {type(value).__name__} {value!r}"]
        item = args[1] if len(args) == 2 else Any
        return [p for k, v in value.items() for p in _value_problems(item, v, f"{where}.{k}")]
    plain = {bool: (bool,), int: (int,), float: (int, float), str: (str,), Path: (str, Path)}
    if tp in plain:
        ok = isinstance(value, plain[tp]) and (tp is bool or not isinstance(value, bool))
        return [] if ok else [f"{where}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}"]
    return []


def type_problems(cls: type, raw: dict[str, Any], where: str, not_keys: tuple[str, ...] = ()) -> list[str]:
    """Every unknown key and every value of the wrong type in `raw` for the config dataclass `cls`."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name not in not_keys]
    problems = []
    unknown = sorted(set(raw) - set(names), key=str)
    if unknown:
        problems.append(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(names)}")
    for key, value in raw.items():
        if key in names:
            problems += _value_problems(hints[key], value, f"{where}.{key}")
    return problems


def _build(cls: type, raw: Any, where: str) -> Any:
    """Instantiate a config dataclass from a mapping, rejecting unknown keys."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    problems = type_problems(cls, raw, where)
    if problems:
        raise ConfigError("; ".join(problems))
    try:
        return cls(**raw)
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from err


@dataclass(frozen=True)
class TaskConfig:
    """How one task's samples are built and split (see docs/data-format.md)."""

    source: str
    path: str = ""  # relative to the data root, or absolute; the source's default when empty
    test_groups: int = 200  # users/queries held out for test (rec, passage, custom single file)
    max_train: int | None = None
    max_test: int | None = None
    samples_per_query: int = 4  # passage: samples drawn per query
    train_windows: int = 1  # rec: samples per train user (the last item + earlier next-item windows); test keeps 1
    n_candidates: int | None = None  # passage: 5/7/9; rec: defaults to prepare.rec_candidates
    weights: tuple[float, float] = (1.0, 0.0)  # router: (a, b) in s = a*perf - b*cost_norm

    def __post_init__(self) -> None:
        if self.test_groups < 0:
            raise ConfigError(f"test_groups must be >= 0, got {self.test_groups}")
        for name in ("max_train", "max_test"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1 or null (no cap), got {value}")
        if self.samples_per_query < 1:
            raise ConfigError(f"samples_per_query must be >= 1, got {self.samples_per_query}")
        if self.train_windows < 1:
            raise ConfigError(f"train_windows must be >= 1 (1: one sample per user), got {self.train_windows}")
        if self.n_candidates is not None and self.n_candidates < 2:
            raise ConfigError(f"n_candidates must be >= 2, got {self.n_candidates}")
        if len(self.weights) != 2:
            raise ConfigError(f"weights must be [a, b], got {self.weights}")
        object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))


@dataclass(frozen=True)
class PrepareConfig:
    seed: int = 42
    data_root: str = "data"
    out: str = "artifacts/samples"
    history_len: int = 20
    rec_candidates: int = 20
    tasks: dict[str, TaskConfig] = field(default_factory=dict)
    select: tuple[str, ...] = ()  # prepare only these tasks (profiles use it); empty: all of `tasks`

    def __post_init__(self) -> None:
        if self.history_len < 1:
            raise ConfigError(f"prepare.history_len must be >= 1, got {self.history_len}")
        if self.rec_candidates < 2:
            raise ConfigError(f"prepare.rec_candidates must be >= 2, got {self.rec_candidates}")
        unknown = sorted(set(self.select) - set(self.tasks or {}))
        if unknown:
            raise ConfigError(f"prepare.select names unknown task(s) {unknown}; configured: {sorted(self.tasks or {})}")
        object.__setattr__(self, "select", tuple(self.select))
        tasks = {}
        for name, raw in (self.tasks or {}).items():
            tasks[name] = raw if isinstance(raw, TaskConfig) else _build(TaskConfig, raw, f"prepare.tasks.{name}")
        object.__setattr__(self, "tasks", tasks)


@dataclass(frozen=True)
class ValidateConfig:
    samples: str = "artifacts/samples"
    report: str = "artifacts/validation"
    query_chars: tuple[int, int] = (1, 20000)
    candidate_chars: tuple[int, int] = (1, 5000)
    max_listed_ids: int = 10

    def __post_init__(self) -> None:
        for name in ("query_chars", "candidate_chars"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ConfigError(f"validate.{name} must be [min, max] with 0 <= min <= max, got {[lo, hi]}")
            object.__setattr__(self, name, (int(lo), int(hi)))


@dataclass(frozen=True)
class EvaluateConfig:
    """The `evaluate` stage: the trained model (and references) on the frozen suite."""

    tasks: list[str] | None = None  # None: the train tasks
    limit: int | None = None  # first N test samples per task
    batch_size: int = 8
    references: list[str] = field(default_factory=list)  # also evaluated: random, bm25, dense, base
    out: str = "artifacts/eval"


@dataclass(frozen=True)
class RegisterConfig:
    """The `register` stage: MLflow registry, champion/challenger aliases."""

    name: str | None = None  # registered model name; None: iranker or dranker after the trained ranker
    alpha: float = 0.05  # paired test level for promotion
    tolerance: float = 0.02  # largest allowed MRR drop on any single task
    out: str = "artifacts/registry"


def section_problems(raw: dict[str, Any]) -> list[str]:
    """Type problems of every section that has a dataclass, all at once (key path in each line)."""
    from components.prompts import PromptConfig
    from components.training import TrainConfig

    typed: dict[str, tuple[type, tuple[str, ...]]] = {
        "prepare": (PrepareConfig, ()), "validate": (ValidateConfig, ()), "prompts": (PromptConfig, ()),
        "evaluate": (EvaluateConfig, ()), "register": (RegisterConfig, ()),
        "train": (TrainConfig, ("prompt", "rewards")),  # those two come from the prompts and rewards sections
    }
    problems = []
    for name, (cls, not_keys) in typed.items():
        section = raw.get(name)
        if section is None:
            continue
        if not isinstance(section, dict):
            problems.append(f"{name}: expected a mapping of keys, got {type(section).__name__}")
            continue
        problems += type_problems(cls, section, name, not_keys)
    if raw.get("rewards") is not None and not isinstance(raw["rewards"], dict):  # its names: rewards.build_rewards
        problems.append(f"rewards: expected a mapping of keys, got {type(raw['rewards']).__name__}")
    return problems


@dataclass(frozen=True)
class Params:
    prepare: PrepareConfig
    validate: ValidateConfig
    extra: dict[str, Any]  # sections owned by stages that have no dataclass yet
    path: Path | None = None
    profile: str | None = None
    resolved: dict[str, Any] = field(default_factory=dict)  # the merged mapping, as logged and materialised

    def section(self, name: str) -> dict[str, Any]:
        """A plain section (`train`, `evaluate`, ...) as a mapping; missing sections are empty."""
        return dict(self.extra.get(name) or {})


KNOWN_SECTIONS = ("prepare", "validate", "prompts", "rewards", "evaluate", "train", "register", "profiles")


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
            raise ConfigError(f"override {dotted!r}: unknown section {keys[0]!r}; valid: {list(KNOWN_SECTIONS)}")
        nested: Any = value
        for key in reversed(keys):
            nested = {key: nested}
        out = deep_merge(out, nested)
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """`key.path=value` from the command line; the value is read as YAML (numbers, lists, null)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r}: expected key.path=value, e.g. train.max_steps=2")
    return key.strip(), yaml.safe_load(value)


def load_params(path: str | Path = "params.yaml", profile: str | None = None,
                overrides: dict[str, Any] | None = None) -> Params:
    """Read params.yaml, merge the named profile (`profiles.<name>`) and dotted overrides over it, and type-check."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: not found; run from the project root or pass --params") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    unknown = sorted(set(raw) - set(KNOWN_SECTIONS))
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {unknown}; valid: {list(KNOWN_SECTIONS)}")
    profiles = raw.pop("profiles", None) or {}
    if profile:
        if profile not in profiles:
            raise ConfigError(f"{path}: unknown profile {profile!r}; defined: {sorted(profiles)}")
        extra_sections = sorted(set(profiles[profile] or {}) - set(KNOWN_SECTIONS) - {"profiles"})
        if extra_sections:
            raise ConfigError(f"{path}: profile {profile!r} has unknown section(s) {extra_sections}")
        raw = deep_merge(raw, profiles[profile] or {})
    raw = apply_overrides(raw, overrides)
    problems = section_problems(raw)
    if problems:
        where = f"{path}" + (f" (profile {profile})" if profile else "")
        raise ConfigError(f"{where}: {len(problems)} problem(s):\n" + "\n".join(f"  {p}" for p in problems))
    try:
        prepare = _build(PrepareConfig, raw.get("prepare"), "prepare")
        validate = _build(ValidateConfig, raw.get("validate"), "validate")
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err
    extra = {k: v for k, v in raw.items() if k not in ("prepare", "validate")}
    return Params(prepare=prepare, validate=validate, extra=extra, path=path, profile=profile, resolved=raw)
