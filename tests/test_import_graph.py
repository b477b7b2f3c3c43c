"""The house's floors, read from the source: no import cycle inside `components/`, and the library never imports
its orchestration (`flows/`) or its command line (`cli/`). Imports inside functions count: a cycle hidden in a
function is still a cycle a newcomer has to untangle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400


def modules(package: str = "components") -> dict[str, Path]:
    """Dotted module name -> file, for every module of `package` (a package is its `__init__.py`)."""
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imported(module: str, path: Path) -> set[str]:
    """Every module name an import statement of `path` names, at any depth of the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package, one level up per extra dot
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    return names


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: {t for t in imported(m, p) if t in mods and t != m} for m, p in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(tmp_path):
    """The checker itself: a two-module cycle whose back edge is inside a function is reported."""
    (tmp_path / "a.py").write_text("import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from a import x\n")
    edges = {m: {t for t in imported(m, tmp_path / f"{m}.py") if t in ("a", "b") and t != m} for m in ("a", "b")}
    assert cycles(edges) == [["a", "b"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_components_have_no_import_cycle():
    found = cycles(graph())
    assert not found, "import cycles among components/ modules (imports inside functions count):\n" + "\n".join(
        " <-> ".join(c) for c in found)


def test_components_never_import_flows_or_the_command_line():
    upward = sorted((m, t) for m, p in modules().items() for t in imported(m, p)
                    if t.split(".")[0] in ("flows", "cli"))
    assert not upward, f"components/ imports the floors above it: {upward}"


def test_config_is_the_ground_floor():
    """`components.config` imports nothing of the project but `logs` and `schema`: every section builds on it."""
    mods = modules()
    above = sorted((m, t) for m in mods if m.startswith("components.config") for t in graph()[m]
                   if not t.startswith("components.config") and t not in ("components.logs", "components.schema"))
    assert not above, f"components.config reaches up: {above}"


def test_no_module_is_over_the_size_limit():
    long = {str(p.relative_to(ROOT)): n for pkg in ("components", "cli", "flows", "bench") for p in (ROOT / pkg).rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_no_private_name_is_imported_across_modules():
    """An underscore name is its module's own business; one another module needs is public (and documented)."""
    found = []
    for pkg in ("components", "cli", "flows", "bench"):
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("components", "cli", "flows", "bench"):
                    found += [f"{path.relative_to(ROOT)}: {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
    assert not found, "private names imported across modules:\n" + "\n".join(found)


# where a library import inside a function is the point: `from components import Reranker` stays light
LAZY_ON_PURPOSE = {"components/__init__.py"}
HEAVY = ("torch", "transformers", "mlflow", "prefect", "great_expectations", "fastapi", "matplotlib", "trl", "peft")


def heavy_at_import(module: str) -> bool:
    """Whether a project module imports a heavy library at its top level (then importing it late is the point)."""
    path = modules().get(module)
    tops = [n for n in ast.parse(path.read_text(encoding="utf-8")).body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = [a.name for n in tops if isinstance(n, ast.Import) for a in n.names] + \
            [n.module or "" for n in tops if isinstance(n, ast.ImportFrom)]
    return any(name.split(".")[0] in HEAVY for name in names)


def test_the_library_imports_its_own_modules_at_the_top():
    """Inside `components/`, a project import sits at the top of its module, where a reader sees the floors.
    Heavy libraries (torch, MLflow, transformers) are what functions import late, and most project modules
    import them late themselves, so their own imports cost nothing at import time; a project module that
    imports a heavy library at its top (`serving`: mlflow.pyfunc) is imported late like one."""
    late = []
    for path in sorted((ROOT / "components").rglob("*.py")):
        where = str(path.relative_to(ROOT))
        if where in LAZY_ON_PURPOSE:
            continue
        for fn in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                late += [f"{where}:{node.lineno} {node.module}" for node in ast.walk(fn)
                         if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("components")
                         and not heavy_at_import(node.module)]
    assert not late, "project imports inside functions:\n" + "\n".join(sorted(set(late)))
