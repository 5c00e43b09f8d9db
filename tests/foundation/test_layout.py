"""The floor plan holds: imports point down, read from the source with ``ast``.

- nothing under ``shared/`` but ``shared/host/`` imports ``functions``;
- ``shared/providers/`` reaches nothing that touches the database, however indirectly, and
  imports nothing of the gateway (the conversation it translates is its own);
- ``shared/money.py`` and ``shared/errors.py`` import nothing of the project.

A forbidden edge fails with the file and line that makes it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from shared import config

ROOT = config.PROJECT_ROOT
DATABASE = ("shared.db", "psycopg", "psycopg_pool")


@dataclass(frozen=True)
class Edge:
    source: str  # module that imports
    target: str  # module imported
    where: str  # file:line


def _module(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_lines(tree: ast.Module) -> set[int]:
    """Lines of imports that run only for the type checker."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def edges(path: Path, root: Path = ROOT) -> list[Edge]:
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped = _type_checking_lines(tree)
    source = _module(path, root)
    found = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skipped:
            continue
        where = f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [Edge(source, alias.name, where) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(Edge(source, node.module, where))
            found += [Edge(source, f"{node.module}.{alias.name}", where) for alias in node.names]
    return found


def _graph() -> dict[str, list[Edge]]:
    graph: dict[str, list[Edge]] = {}
    for folder in ("shared", "functions"):
        for path in (ROOT / folder).rglob("*.py"):
            graph[_module(path, ROOT)] = edges(path)
    return graph


def _is(target: str, prefix: str) -> bool:
    return target == prefix or target.startswith(prefix + ".")


def _with_packages(target: str) -> list[str]:
    parts = target.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)]


def test_only_the_host_imports_the_endpoints():
    bad = [
        edge.where
        for module, found in _graph().items()
        if _is(module, "shared") and not _is(module, "shared.host")
        for edge in found
        if _is(edge.target, "functions")
    ]
    assert bad == [], f"imports of functions/ outside shared/host/: {bad}"


def test_providers_reach_nothing_that_touches_the_database():
    graph = _graph()
    for start in [module for module in graph if _is(module, "shared.providers")]:
        path, seen, todo = {start: "it"}, {start}, [start]
        while todo:
            module = todo.pop()
            for edge in graph.get(module, []):
                if any(_is(edge.target, db) for db in DATABASE):
                    chain = f"{edge.where} ({module} imports {edge.target}) via {path[module]}"
                    raise AssertionError(f"{start} reaches the database: {chain}")
                for target in _with_packages(edge.target):  # importing a.b.c runs a.b too
                    if target in graph and target not in seen:
                        seen.add(target)
                        path[target] = edge.where
                        todo.append(target)


def test_providers_import_nothing_of_the_gateway():
    bad = [
        edge.where
        for module, found in _graph().items()
        if _is(module, "shared.providers")
        for edge in found
        if _is(edge.target, "shared.gateway") or _is(edge.target, "shared.compat")
    ]
    assert bad == [], f"providers importing the gateway: {bad}"


def test_money_and_errors_import_nothing_of_the_project():
    graph = _graph()
    for module in ("shared.money", "shared.errors"):
        bad = [
            edge.where
            for edge in graph[module]
            if _is(edge.target, "shared") or _is(edge.target, "functions")
        ]
        assert bad == [], f"{module} imports the project: {bad}"


def test_a_forbidden_edge_is_found_with_its_file_and_line(tmp_path):
    (tmp_path / "shared").mkdir()
    sample = tmp_path / "shared" / "probe.py"
    sample.write_text(
        '"""probe"""\n\nfrom typing import TYPE_CHECKING\n\nimport functions.health\n'
        "if TYPE_CHECKING:\n    import shared.db\n"
    )
    assert edges(sample, tmp_path) == [
        Edge("shared.probe", "typing", "shared/probe.py:3"),
        Edge("shared.probe", "typing.TYPE_CHECKING", "shared/probe.py:3"),
        Edge("shared.probe", "functions.health", "shared/probe.py:5"),
    ]


def test_no_test_imports_another_test_module_or_the_conftest():
    """What tests share lives in tests/support/."""
    bad = [
        edge.where
        for path in (ROOT / "tests").rglob("*.py")
        for edge in edges(path)
        if _is(edge.target, "tests")
        and (edge.target.rsplit(".", 1)[-1].startswith("test_") or ".conftest" in f".{edge.target}")
    ]
    assert bad == [], f"tests importing test modules or conftest: {bad}"
