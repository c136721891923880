"""No import circles inside xsactor.

The module graph is built from the source with :mod:`ast`: every ``import`` counts, those in
``if TYPE_CHECKING:`` blocks and inside functions included (a circle hidden behind either is
still a circle in the design). An import names a module, or a package's ``__init__`` when the
imported name is not a submodule.
"""

from __future__ import annotations

import ast
from pathlib import Path

import xsactor

ROOT = Path(xsactor.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in ROOT.rglob("*.py")}


def _targets(modules: dict[str, Path], name: str, node: ast.AST) -> list[str]:
    """The xsactor modules an import statement in module ``name`` depends on."""
    is_package = modules[name].name == "__init__.py"
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in modules]
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        base = name.split(".")
        if not is_package:
            base.pop()
        base = base[:len(base) - node.level + 1]
        source = ".".join([*base, *(node.module.split(".") if node.module else [])])
    else:
        source = node.module or ""
    out = []
    for alias in node.names:
        sub = f"{source}.{alias.name}"
        if sub in modules:
            out.append(sub)
        elif source in modules:
            out.append(source)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                edges.update(t for t in _targets(modules, name, node) if t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (as a closed list of modules), or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        stack.append(name)
        for target in sorted(graph.get(name, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target):], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state:
            found = visit(name)
            if found:
                return found
    return None


def test_the_finder_sees_a_circle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_type_checking_imports() -> None:
    graph = import_graph()
    # daemon/__init__ imports these only under TYPE_CHECKING
    assert {"xsactor.daemon.server", "xsactor.daemon.quota"} <= graph["xsactor.daemon"]
    assert "xsactor.protocol.ops" in graph["xsactor.daemon.connection"]


def test_no_import_circles_inside_xsactor() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or ())
