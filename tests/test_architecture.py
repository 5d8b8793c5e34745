"""The package's import graph has no cycle, including imports made inside functions.

A cycle is what made annotate and report hard to change apart (each needed the other's types);
the shared records now live in :mod:`disclosure_nlp.records`, below both. This test reads the
source with :mod:`ast`, so a lazy import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "disclosure_nlp"


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module name (dotted, relative to the package) → modules of the package it imports."""
    modules = {
        ".".join(path.relative_to(package).with_suffix("").parts).removesuffix(".__init__").removesuffix("__init__"): path
        for path in package.rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        base = name.split(".") if name else []
        here = base if is_package else base[:-1]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    anchor = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                    prefix = anchor + (node.module.split(".") if node.module else [])
                elif node.module and node.module.split(".")[0] == package.name:
                    prefix = node.module.split(".")[1:]
                else:
                    continue
                targets.append(".".join(prefix))
                targets += [".".join(prefix + [alias.name]) for alias in node.names]
            elif isinstance(node, ast.Import):
                targets += [".".join(a.name.split(".")[1:]) for a in node.names if a.name.split(".")[0] == package.name]
            # The package's own __init__ ("") runs before any of its modules, whatever they import.
            deps.update(t for t in targets if t in modules and t not in (name, ""))
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
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


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph(PACKAGE)
    assert {"annotate", "analysis.report", "records"} <= set(graph)
    assert "records" in graph["analysis.report"] and "annotate" not in graph["analysis.report"]
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_planted_cycle(tmp_path: Path) -> None:
    package = tmp_path / "disclosure_nlp"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import thing\n")
    (package / "b.py").write_text("def f():\n    from .sub.c import other\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "c.py").write_text("import disclosure_nlp.a\n")
    (package / "d.py").write_text("from . import a\n")
    graph = import_graph(package)
    assert graph["d"] == {"a"}
    assert cycles(graph) == [["a", "b", "sub.c"]]
