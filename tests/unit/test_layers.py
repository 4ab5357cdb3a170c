"""The floors of docs/architecture.md, read from the code: every import of every module of
``service/`` and ``model_export/`` (lazy ones inside functions included; ``TYPE_CHECKING``
ones left out, they never run) goes to the same floor or one below, and none forms a loop."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# floor of each part of service/ (docs/architecture.md, "The floors")
FLOORS = {
    "service": 0,
    "service.errors": 0,
    "service.settings": 0,
    "service.audit": 0,
    "service.vision": 1,
    "service.inference": 1,
    "service.gallery": 1,
    "service.models": 1,
    "service.recognition": 2,
    "service.api": 3,
    "service.app": 4,
    "service.startup": 4,
    "service.cli": 4,
    "service.__main__": 4,
    "service.evaluation": 4,
    "service.bench": 4,
}
# within floor 1: what each part may import besides itself and floor 0
BESIDE = {
    "service.gallery": set(),
    "service.inference": set(),
    "service.vision": {"service.inference"},
    "service.models": {"service.vision", "service.inference"},
}
# parts of floor 4 that stay off the HTTP floor
OFF_HTTP = {"service.evaluation", "service.bench"}
# entry points living beside what they command: their own package and floor 0 only
COMMANDS = {"service.gallery.cli", "service.models.cli"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in [*ROOT.glob("service/**/*.py"), *ROOT.glob("model_export/**/*.py")]:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _type_checking_only(tree: ast.Module) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            ids.update(id(n) for n in ast.walk(node))
    return ids


def _imports(module: str) -> Iterator[tuple[str, int]]:
    """(imported name, line) of every import that runs, at module level or in a function."""
    tree = ast.parse(MODULES[module].read_text())
    skip = _type_checking_only(tree)
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            yield base, node.lineno
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        targets = {_resolve(name) for name, _ in _imports(module)}
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def _part(module: str) -> str:
    """The entry of FLOORS a service module belongs to (the longest prefix)."""
    best = ""
    for part in FLOORS:
        if (module == part or module.startswith(part + ".")) and len(part) > len(best):
            best = part
    assert best, f"{module} has no floor in FLOORS: add it (and to docs/architecture.md)"
    return best


def test_no_import_loop() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert loops == []


def _violations() -> Iterator[str]:
    for module in MODULES:
        if not module.startswith("service"):
            continue
        mine = _part(module)
        for name, line in _imports(module):
            target = _resolve(name)
            where = f"{MODULES[module].relative_to(ROOT)}:{line} imports {name}"
            top = name.split(".")[0]
            if top in ("fastapi", "starlette") and mine not in ("service.api", "service.app"):
                yield f"{where}: HTTP outside service/api and service/app.py"
            if target is None or not target.startswith("service"):
                continue
            theirs = _part(target)
            if theirs in (mine, "service") or FLOORS[theirs] == 0:
                continue
            if module in COMMANDS:
                yield f"{where}: a command beside its package imports another part"
            elif FLOORS[theirs] > FLOORS[mine]:
                yield f"{where}: up from floor {FLOORS[mine]} to {FLOORS[theirs]}"
            elif FLOORS[mine] == FLOORS[theirs] == 1 and theirs not in BESIDE[mine]:
                yield f"{where}: across floor 1 ({mine} may not import {theirs})"
            elif mine in OFF_HTTP and FLOORS[theirs] == 3:
                yield f"{where}: {mine} stays off the HTTP floor"


def test_every_import_goes_to_the_same_floor_or_below() -> None:
    assert list(_violations()) == []


def test_the_export_stage_never_imports_the_service() -> None:
    found = [
        f"{MODULES[m].relative_to(ROOT)}:{line} imports {name}"
        for m in MODULES
        if m.startswith("model_export")
        for name, line in _imports(m)
        if name == "service" or name.startswith("service.")
    ]
    assert found == []


def _outside_functions(node: ast.AST) -> Iterator[ast.AST]:
    """``node`` and what it holds, not descending into function bodies."""
    yield node
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _outside_functions(child)


@pytest.mark.parametrize("heavy", ["torch"])
def test_heavy_libraries_are_imported_only_inside_functions(heavy: str) -> None:
    """The service runs without PyTorch: only the optional paths import it, when they run."""
    at_import_time = []
    for module, path in MODULES.items():
        if not module.startswith("service"):
            continue
        tree = ast.parse(path.read_text())
        skip = _type_checking_only(tree)
        for node in _outside_functions(tree):
            if id(node) in skip:
                continue
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == heavy or n.startswith(heavy + ".") for n in names):
                at_import_time.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert at_import_time == []
