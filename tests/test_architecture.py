"""The shape of the code: dependencies point one way, from entry points down to schemas, with no cycles.

The import graph is read from the source with ``ast`` (nothing is imported), so a test fails the moment
someone adds an upward import or a cycle, before it shows up as an import error at run time.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LAYERS: tuple[tuple[str, ...], ...] = (
    ("approvals.cli",),  # entry points: every command, the demo
    ("approvals.devstack",),  # the embedded dev stack, the disposable test stack, embedded PostgreSQL
    ("api", "api.console", "worker"),  # the HTTP API and its web console
    (  # the core
        "approvals.service",
        "approvals.admission",
        "approvals.errors",
        "approvals.calendar_publishing",
        "approvals.definitions",
        "approvals.handover",
        "approvals.units",
        "approvals.processes",
        "approvals.settings",
        "approvals.logging",
        "approvals.db",
        "approvals.temporal",
        "approvals.migrate",
        "approvals.metrics",
        "approvals.tracing",
        "approvals.reports",
    ),
    ("approvals.audit",),
    ("approvals.operations", "approvals.event_wording", "approvals.event_folding"),  # the registry, its wording, folds
    ("workflows",),
    ("activities",),
    ("approvals.storage",),  # all SQL, read and write
    ("schemas", "approvals.calendars"),  # the contract, and the official holiday schedules it reads
)
"""Top to bottom: a module may import from its own layer and the layers below it, never from one above."""

PACKAGES = ("approvals", "api", "activities", "schemas", "workflows")
MAX_LINES = 700


def source_files() -> Iterator[Path]:
    yield ROOT / "worker.py"
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in source_files()}


def resolve(name: str) -> str | None:
    """The project module an import names (``from a.b import c`` names ``a.b.c`` when that is a module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


class _Imports(ast.NodeVisitor):
    """The project modules a file imports, at module level or deferred inside a function: a deferred import
    is still an arrow between two modules, and one that closes a cycle only hides it from the interpreter."""

    def __init__(self) -> None:
        self.found: set[str] = set()

    def visit_Import(self, node: ast.Import) -> None:
        self._add([alias.name for alias in node.names])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        assert node.level == 0, "relative imports hide the layer they reach into; use absolute ones"
        if node.module:  # `from a import b` depends on the module a.b when there is one, else on a
            self._add([self._from(node.module, alias.name) for alias in node.names])

    @staticmethod
    def _from(module: str, name: str) -> str:
        return f"{module}.{name}" if f"{module}.{name}" in MODULES else module

    def _add(self, names: list[str]) -> None:
        self.found |= {module for module in map(resolve, names) if module}


def imports(path: Path) -> set[str]:
    visitor = _Imports()
    visitor.visit(ast.parse(path.read_text(), filename=str(path)))
    return visitor.found - {module_name(path)}


def layer_of(module: str) -> int:
    matches = [
        (len(prefix), index)
        for index, layer in enumerate(LAYERS)
        for prefix in layer
        if module == prefix or module.startswith(prefix + ".")
    ]
    assert matches, f"{module} is in no layer of tests/test_architecture.py: add it where it belongs"
    return max(matches)[1]


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        if module not in PACKAGES:
            layer_of(module)


def test_no_import_points_up_a_layer() -> None:
    upward = [
        f"{module} (layer {layer_of(module)}) imports {imported} (layer {layer_of(imported)})"
        for module, path in MODULES.items()
        if module not in PACKAGES
        for imported in sorted(imports(path))
        if imported not in PACKAGES and layer_of(imported) < layer_of(module)
    ]
    assert upward == []


def test_no_import_cycle() -> None:
    graph = {module: imports(path) for module, path in MODULES.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == 1:
                cycles.append(path[path.index(imported) :] + [imported])
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_no_source_file_is_longer_than_700_lines() -> None:
    long = {module: n for module, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}
