"""Configuration checking: the one error type, type checks of YAML values against dataclass annotations,
and the helpers every section uses (`setting` for a field with help, `check` to report every problem at once)."""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import field
from pathlib import Path
from typing import Any

from components.logs import shown


class ConfigError(ValueError):
    """params.yaml (or an override) is invalid; the message says how to fix it."""


def type_name(tp: Any) -> str:
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
        return [f"{where}: expected {' or '.join(map(type_name, args))}, got {shown(value)}"]
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return []
        if not isinstance(value, dict):
            return [f"{where}: expected a mapping, got {type(value).__name__} {shown(value)}"]
        return type_problems(tp, value, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return [f"{where}: expected a list, got {type(value).__name__} {shown(value)}"]
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                return [f"{where}: expected a list of {len(args)} values, got {len(value)}"]
            return [p for i, (a, v) in enumerate(zip(args, value)) for p in _value_problems(a, v, f"{where}[{i}]")]
        item = args[0] if args else Any
        return _first_problems(((v, f"{where}[{i}]") for i, v in enumerate(value)), item, where)
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: expected a mapping, got {type(value).__name__} {shown(value)}"]
        item = args[1] if len(args) == 2 else Any
        return _first_problems(((v, f"{where}.{key_text(k)}") for k, v in value.items()), item, where)
    plain = {bool: (bool,), int: (int,), float: (int, float), str: (str,), Path: (str, Path)}
    if tp in plain:
        ok = isinstance(value, plain[tp]) and (tp is bool or not isinstance(value, bool))
        if not ok:
            return [f"{where}: expected {type_name(tp)}, got {type(value).__name__} {shown(value)}"]
        if tp is float and isinstance(value, float) and not math.isfinite(value):  # YAML's .nan and .inf are floats; no setting means them
            return [f"{where}: must be a finite number, got {value}"]
        return []
    return []


MAX_ITEM_PROBLEMS = 10  # per list or mapping: a long list of wrong values is reported by its first few


def _first_problems(items: Any, tp: Any, where: str) -> list[str]:
    """The problems of a collection's items against `tp`, stopping after MAX_ITEM_PROBLEMS."""
    out: list[str] = []
    for value, at in items:
        out += _value_problems(tp, value, at)
        if len(out) >= MAX_ITEM_PROBLEMS:
            return out[:MAX_ITEM_PROBLEMS] + [f"{where}: further items not checked after {MAX_ITEM_PROBLEMS} problems"]
    return out


def key_text(key: Any) -> str:
    """A mapping key as a key path shows it: cut to 40 characters (a key, too, comes from the file)."""
    text = str(key)
    return text if len(text) <= 40 else text[:37] + "..."


TASK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def task_name_problem(name: Any) -> str | None:
    """Why `name` cannot name a task; None when it can. A task name becomes a folder (`<prepare.out>/<task>/`),
    so it must be one plain path component: never `..`, a slash or an absolute path.

    >>> task_name_problem("passage-5") is None, task_name_problem("../evil")
    (True, "task name '../evil' is not a plain folder name: use letters, digits, '.', '_' and '-', starting with a letter or digit, without '..'")
    """
    if isinstance(name, str) and TASK_NAME.fullmatch(name) and ".." not in name:
        return None
    return (f"task name {shown(name, 60)} is not a plain folder name: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit, without '..'")


def unknown_keys(cls: type, raw: Any, where: str, not_keys: tuple[str, ...] = ()) -> str | None:
    """The one unknown-key check of every config dataclass (and sub-section): the keys of `raw` that are not
    fields of `cls`, as a problem line naming `where` and the valid keys; None when there are none."""
    names = [f.name for f in dataclasses.fields(cls) if f.name not in not_keys]
    unknown = sorted(set(raw) - set(names), key=str)
    return f"{where}: unknown key(s) {shown(unknown, 160)}; valid keys: {sorted(names)}" if unknown else None


def type_problems(cls: type, raw: dict[str, Any], where: str, not_keys: tuple[str, ...] = ()) -> list[str]:
    """Every unknown key and every value of the wrong type in `raw` for the config dataclass `cls`."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name not in not_keys]
    problem = unknown_keys(cls, raw, where, not_keys)
    problems = [problem] if problem else []
    for key, value in raw.items():
        if key in names:
            problems += _value_problems(hints[key], value, f"{where}.{key}")
    return problems


def build_section(cls: type, raw: Any, where: str) -> Any:
    """Instantiate a config dataclass from a mapping, rejecting unknown keys."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    problems = type_problems(cls, raw, where)
    if problems:
        raise ConfigError("\n".join(problems))
    try:
        return cls(**raw)
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from err


def setting(default: Any = dataclasses.MISSING, help: str = "", *, factory: Any = dataclasses.MISSING) -> Any:
    """A config field with its default and a one-line help (`r1ranker config --explain` prints it)."""
    return field(default=default, default_factory=factory, metadata={"help": help})


def check(where: str, problems: list[str], error: type[ConfigError] = ConfigError) -> None:
    """Raise one ConfigError listing every problem of a section (a `__post_init__` collects them all first)."""
    if problems:
        raise error("\n".join(f"{where}.{p}" if where else p for p in problems))
