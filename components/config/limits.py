"""Bounds on configuration input: a params.yaml, a `--set` value or a flow run's `overrides` that is too big,
too deep or (YAML aliases) expands too far is refused before anything walks, prints or logs it.

A YAML alias is a reference, so loading a "billion laughs" document is itself fast; the blow-up comes later,
from whatever expands it (an error message's repr, `json.dumps` into a log, MLflow's config artifact). The
composer therefore counts every node as if its aliases were expanded and stops at `MAX_EXPANDED`, and a
flow's overrides (Python values, maybe sharing objects) are measured the same way.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_YAML_CHARS = 1_000_000  # params.yaml is about 6 kB
MAX_OVERRIDE_CHARS = 64_000  # one `--set key=value`
MAX_DEPTH = 32  # params.yaml nests four levels deep
MAX_EXPANDED = 4_000_000  # one per node plus each scalar's characters, with every alias expanded


class LimitError(yaml.YAMLError):
    """A YAML document breaks a bound; `line` is where (1-based), when known."""

    def __init__(self, problem: str, line: int | None = None):
        super().__init__(problem)
        self.problem, self.line = problem, line

    def __str__(self) -> str:
        return f"line {self.line}: {self.problem}" if self.line else self.problem


def check_length(text: str, limit: int, what: str) -> None:
    """Refuse a YAML text over `limit` characters before the parser sees it."""
    if len(text) > limit:
        raise LimitError(f"{what} is longer than {limit:,} characters")


class BoundedComposer:
    """Mixed in before `yaml.SafeLoader`: nesting past MAX_DEPTH, a recursive alias, or a document that
    would be larger than MAX_EXPANDED with its aliases expanded raises `LimitError` naming the line."""

    def compose_document(self):
        self._depth, self._expanded = 0, 0
        self._sizes: dict[str, int] = {}  # anchor -> expanded size of its node
        self._open: set[str] = set()  # anchors whose node is still being composed
        return super().compose_document()

    def _grow(self, size: int, line: int) -> None:
        self._expanded += size
        if self._expanded > MAX_EXPANDED:
            raise LimitError(f"the document expands (aliases included) past {MAX_EXPANDED:,} characters; "
                             "a YAML alias may not multiply the document", line)

    def compose_node(self, parent, index):
        event = self.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise LimitError(f"alias *{event.anchor[:40]} is used inside its own anchor (a recursive alias)", line)
            node = super().compose_node(parent, index)
            self._grow(self._sizes.get(event.anchor, 1), line)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise LimitError(f"nested deeper than {MAX_DEPTH} levels", line)
        start = self._expanded
        self._grow(1 + len(getattr(event, "value", None) or ""), line)
        if event.anchor is not None:
            self._open.add(event.anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open.discard(event.anchor)
        if event.anchor is not None:
            self._sizes[event.anchor] = self._expanded - start
        return node


class _TooBig(Exception):
    pass


def value_problem(value: Any) -> str | None:
    """Why a Python value (a flow's override) is too deep or too large to accept; None when it is fine.

    Shared objects count once per use, as `json.dumps` would write them; each container is measured once.

    >>> value_problem({"a": [1, "two"]}) is None
    True
    >>> loop = []; loop.append(loop); value_problem(loop)
    'nested deeper than 32 levels'
    """
    sizes: dict[int, int] = {}

    def size(item: Any, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise _TooBig(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, str):
            return 1 + len(item)
        if not isinstance(item, (dict, list, tuple, set)):
            return 1
        if id(item) in sizes:
            return sizes[id(item)]
        total = 1
        for child in (x for pair in item.items() for x in pair) if isinstance(item, dict) else item:
            total += size(child, depth + 1)
            if total > MAX_EXPANDED:
                raise _TooBig(f"larger than {MAX_EXPANDED:,} characters (shared values counted at each use)")
        sizes[id(item)] = total
        return total

    try:
        size(value, 1)
    except _TooBig as err:
        return str(err)
    return None
