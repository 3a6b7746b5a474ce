"""The engine's packages are layers: every import points down (or within a layer), and no module-level
import cycle exists. Read from the source with ``ast``; nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LAYERS: tuple[tuple[str, ...], ...] = (
    ("approvals.cli",),
    ("approvals.devstack",),
    ("api", "worker"),
    (
        "approvals.service",
        "approvals.processes",
        "approvals.settings",
        "approvals.logging",
        "approvals.db",
        "approvals.temporal",
        "approvals.migrate",
    ),
    ("approvals.audit",),
    ("approvals.operations",),
    ("workflows",),
    ("activities",),
    ("approvals.storage",),
    ("schemas", "approvals.calendars"),
)
"""Top to bottom; a module belongs to the layer of the longest prefix naming it (``approvals.calendars`` is the
built-in calendar, data that ``schemas.calendar`` reads)."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def engine_modules() -> dict[str, Path]:
    """Every module of the engine, but the ``approvals`` package itself: an empty namespace of layers."""
    files = [ROOT / "worker.py"]
    for package in ("approvals", "api", "activities", "workflows", "schemas"):
        files += (ROOT / package).rglob("*.py")
    return {module_name(path): path for path in files if path != ROOT / "approvals" / "__init__.py"}


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return None if best is None else best[0]


def imports(module: str, path: Path, known: set[str], *, module_level_only: bool) -> set[str]:
    """Engine modules ``module`` imports (``from a import b`` counts ``a.b`` when that is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from approvals import db` imports the module approvals.db; `from a.b import name`, a.b
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module and not module.startswith(name + "."):  # a package's own __init__
                found.add(name)
    return found


def test_every_engine_module_has_a_layer() -> None:
    assert [module for module in engine_modules() if layer_of(module) is None] == []


def test_imports_point_down_or_within_a_layer() -> None:
    modules = engine_modules()
    upward = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, path in modules.items()
        for target in sorted(imports(module, path, set(modules), module_level_only=False))
        if (layer_of(target) or 0) < (layer_of(module) or 0)
    ]
    assert upward == []


def test_no_module_level_import_cycle() -> None:
    modules = engine_modules()
    graph = {module: imports(module, path, set(modules), module_level_only=True) for module, path in modules.items()}
    cycles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "visiting"
        for target in sorted(graph[module]):
            if state.get(target) == "visiting":
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []
