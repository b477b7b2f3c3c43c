"""YAML text read safely: a key given twice, a text too long, nested too deep or expanding too far is an error."""

from __future__ import annotations

from typing import Any

import yaml

from components.config.checks import ConfigError
from components.config.limits import MAX_OVERRIDE_CHARS, MAX_YAML_CHARS, BoundedComposer, LimitError, check_length
from components.logs import shown


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A YAML mapping names the same key twice (`yaml.safe_load` would silently keep the last value)."""

    def __init__(self, key: Any, line: int, first_line: int):
        super().__init__(problem=f"duplicate key {shown(key)} (first on line {first_line})")
        self.key, self.line, self.first_line = key, line, first_line

    def __str__(self) -> str:
        return f"line {self.line}: duplicate key {shown(self.key)} (first on line {self.first_line})"


class UniqueKeyLoader(BoundedComposer, yaml.SafeLoader):
    """`yaml.SafeLoader` whose mappings refuse a key given twice (a `<<` merge may still be overridden), and which
    refuses a document nested too deep or expanding (aliases) too far (`limits.BoundedComposer`)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                seen = first.get(key)
            except TypeError:  # an unhashable key: the base constructor reports it
                continue
            if seen is not None:
                raise DuplicateKeyError(key, key_node.start_mark.line + 1, seen)
            first[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, limit: int = MAX_YAML_CHARS, what: str = "the YAML text") -> Any:
    """YAML as `yaml.safe_load` reads it, except that a mapping with the same key twice raises `DuplicateKeyError`,
    and a text over `limit` characters, nested too deep or expanding too far raises `LimitError`."""
    check_length(text, limit, what)
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader)


def parse_override(text: str) -> tuple[str, Any]:
    """`key.path=value` from the command line; the value is read as YAML (numbers, lists, null)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {shown(text)}: expected key.path=value, e.g. train.max_steps=2")
    try:
        return key.strip(), load_yaml(value, MAX_OVERRIDE_CHARS, "the value")
    except LimitError as err:
        raise ConfigError(f"override {shown(key.strip())}: {err.problem}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"override {shown(text)}: invalid YAML value: {err}") from err
    except ValueError as err:  # a scalar Python cannot hold, e.g. an integer of 5000 digits
        raise ConfigError(f"override {shown(key.strip())}: invalid value: {str(err)[:120]}") from err
