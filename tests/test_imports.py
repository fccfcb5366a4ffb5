"""``src/driftline`` has no import cycles, counting imports inside functions too.

A function-level import hides a cycle from the interpreter, not from the design: the two
modules still need each other. The graph is read from the source with :mod:`ast`; an
edge ``a -> b`` means module ``a`` imports something of module ``b`` (``from driftline.x
import y``, with ``y`` a submodule, is an edge to ``driftline.x.y``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "driftline"
ROOT = Path(__file__).parents[1] / "src" / PACKAGE


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of a (possibly relative) ``from`` import's module."""
    if level == 0:
        return target or ""
    base = module.split(".")
    if not is_package:
        base.pop()
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``module`` imports, at any depth of its source."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node.level, node.module)
            # ``from x import y``: an edge to x.y when y is a submodule, else to x.
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        for name in names:
            # ``import driftline.a.b`` (or a name outside the package's modules): the edge
            # goes to the deepest module of the package it names.
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path ``[a, b, ..., a]``, or None."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> Iterator[list[str]]:
        color[node] = grey
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if color.get(nxt, black) == grey:
                yield [*stack[stack.index(nxt) :], nxt]
            elif color.get(nxt) == white:
                yield from visit(nxt)
        stack.pop()
        color[node] = black

    for start in sorted(graph):
        if color[start] == white:
            for cycle in visit(start):
                return cycle
    return None


def test_the_graph_sees_function_level_and_submodule_imports(tmp_path: Path) -> None:
    # The checker itself: a cycle through a lazy import and ``from pkg import submodule``.
    source = "def f():\n    from driftline.service import app\n"
    known = {"driftline", "driftline.cli", "driftline.service", "driftline.service.app"}
    path = tmp_path / "cli.py"
    path.write_text(source)
    assert imports_of("driftline.cli", path, known) == {"driftline.service.app"}
    relative = tmp_path / "__init__.py"
    relative.write_text("from .app import x\nfrom . import app\n")
    assert imports_of("driftline.service", relative, known) == {"driftline.service.app"}
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_package_has_no_import_cycles() -> None:
    graph = import_graph()
    assert len(graph) > 20 and "driftline.service.app" in graph
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_only_the_entry_point_imports_the_command_line() -> None:
    importers = sorted(m for m, deps in import_graph().items() if "driftline.cli" in deps)
    assert importers == ["driftline.__main__"]
