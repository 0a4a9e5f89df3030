"""No module imports itself in a circle: checked over the source, including the imports that
hide from import-linter and from Python at import time (inside functions, under TYPE_CHECKING).
"""

from __future__ import annotations

import ast
from pathlib import Path

import shipyard

ROOT = Path(shipyard.__file__).parent

# Cycles that exist today outside flows, each owned by its area; a new cycle anywhere fails.
# An entry may shrink (a cycle partly fixed) but nothing else in the package is excused.
KNOWN_CYCLES = (
    frozenset({"shipyard.features.models", "shipyard.features.sources"}),
    frozenset({"shipyard.features._store_ops", "shipyard.features.api"}),
)


def module_names(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__.py``)."""
    names: dict[str, Path] = {}
    for file in root.rglob("*.py"):
        parts = [root.name, *file.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = file
    return names


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its source."""
    names = module_names(root)

    def known(name: str) -> str | None:
        while name and name not in names:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, file in names.items():
        package = module if file.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.Import):
                targets.update(known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                for alias in node.names:  # `from pkg import mod` imports the submodule
                    full = f"{base}.{alias.name}"
                    targets.add(full if full in names else known(base))
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
    return found


def test_the_cycle_finder_sees_type_only_and_function_local_imports(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import B\n")
    (package / "b.py").write_text("def f():\n    from . import c\n")
    (package / "c.py").write_text("import pkg.a\n")
    (package / "d.py").write_text("from pkg import a\n")

    assert cycles(import_graph(package)) == [frozenset({"pkg.a", "pkg.b", "pkg.c"})]


def test_shipyard_flows_has_no_import_cycle() -> None:
    graph = import_graph()
    flows = {m: {t for t in targets if t.startswith("shipyard.flows")} for m, targets in graph.items()}
    flows = {m: t for m, t in flows.items() if m.startswith("shipyard.flows")}

    assert len(flows) > 20
    assert cycles(flows) == []


def test_no_new_import_cycle_anywhere_in_shipyard() -> None:
    found = cycles(import_graph())

    new = [sorted(c) for c in found if not any(c <= known for known in KNOWN_CYCLES)]
    assert new == [], f"import cycles: {new}"
