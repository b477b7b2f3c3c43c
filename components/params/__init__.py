"""params.yaml assembled: the sections' dataclasses (from `config`, `prompts`, `training`) merged into one `Params`.

This sits above every section, so the sections never import it. `SECTIONS` (`load`) is the one registry of
typed sections; `KNOWN_SECTIONS`, the unknown-key check, the type checks and `explain` derive from it.

- `load`: `load_params`, profiles, overrides, the `Params` record.
- `explain`: the key-by-key listing (`r1ranker config --explain`).
"""

from components.params.explain import explain
from components.params.load import (
    KNOWN_SECTIONS,
    SECTIONS,
    Params,
    apply_overrides,
    build_sections,
    deep_merge,
    load_params,
    section_problems,
)

__all__ = ["KNOWN_SECTIONS", "SECTIONS", "Params", "apply_overrides", "build_sections", "deep_merge", "explain",
           "load_params", "section_problems"]
