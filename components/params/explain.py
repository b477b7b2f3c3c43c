"""Every configuration key with its type, default, current value and help: `r1ranker config --explain`."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from components.config.checks import type_name
from components.params.load import SECTIONS, Params


def _rows(obj: Any, where: str) -> list[dict[str, Any]]:
    cls = type(obj)
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        value = getattr(obj, f.name)
        key = f"{where}.{f.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            rows += _rows(value, key)
            continue
        if isinstance(value, dict) and value and all(dataclasses.is_dataclass(v) for v in value.values()):
            for name, sub in value.items():  # prepare.tasks: one block per configured task
                rows += _rows(sub, f"{key}.{name}")
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        rows.append({"key": key, "type": type_name(hints[f.name]), "required": f.default is dataclasses.MISSING
                     and f.default_factory is dataclasses.MISSING, "default": _plain(default),
                     "value": _plain(value), "help": f.metadata.get("help", "")})
    return rows


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def explain(params: Params) -> list[dict[str, Any]]:
    """One row per key of every section: key path, type, default, the value this run uses, help."""
    rows = []
    for section in SECTIONS:
        # train's prompt and rewards come from the prompts and rewards sections: listed there, not twice
        rows += [r for r in _rows(getattr(params, section), section)
                 if not r["key"].startswith(("train.prompt.", "train.rewards"))]
    return rows
