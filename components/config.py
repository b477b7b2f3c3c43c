"""Typed configuration read from `params.yaml` (the one configuration file).

One dataclass per concern; `__post_init__` checks invariants and says how to
fix them; unknown keys are an error, never silently ignored. Sections that
later stages own are kept as plain mappings until their dataclass exists.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """params.yaml (or an override) is invalid; the message says how to fix it."""


def _build(cls: type, raw: Any, where: str) -> Any:
    """Instantiate a config dataclass from a mapping, rejecting unknown keys."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(names)}")
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
    try:
        prepare = _build(PrepareConfig, raw.get("prepare"), "prepare")
        validate = _build(ValidateConfig, raw.get("validate"), "validate")
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err
    extra = {k: v for k, v in raw.items() if k not in ("prepare", "validate")}
    return Params(prepare=prepare, validate=validate, extra=extra, path=path, profile=profile, resolved=raw)
