"""The subpackages keep to the roles docs/ARCHITECTURE.md gives them.

The layout is only worth having if it holds: a model trained and evaluated without the readers,
the analyses or the command line loaded, and readers and writers that never need torch. These
tests read the import graph with :mod:`ast` (lazy imports inside functions count too), so a new
import that breaks a rule fails here with the module that made it.
"""

from __future__ import annotations

import ast

from .test_architecture import PACKAGE, import_graph

# What model/ may take from io/: writing its own folder atomically, nothing that reads transcripts.
MODEL_MAY_USE_FROM_IO = {"io", "io.safe_files", "io.outputs", "io.values", "io.row_writers"}
HEAVY = {"torch", "transformers", "onnxruntime", "ray"}


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_graph_sees_the_subpackages() -> None:
    """Guards the tests below against passing on an empty graph."""
    graph = import_graph(PACKAGE)
    assert "io.safe_files" in graph["model.training"]
    assert "model.classifier" in graph["analysis.corpus"]


def test_model_needs_no_readers_analysis_cli_or_integrations() -> None:
    graph = import_graph(PACKAGE)
    broken = sorted(
        f"{name} imports {dep}"
        for name, deps in graph.items() if _in(name, "model")
        for dep in deps
        if any(_in(dep, top) for top in ("analysis", "pipeline", "cli", "integrations", "annotate"))
        or (_in(dep, "io") and dep not in MODEL_MAY_USE_FROM_IO)
    )
    assert broken == []


def test_io_needs_neither_the_model_nor_torch() -> None:
    graph = import_graph(PACKAGE)
    broken = sorted(
        f"{name} imports {dep}"
        for name, deps in graph.items() if _in(name, "io")
        for dep in deps if not _in(dep, "io") and dep not in ("errors", "layers")
    )
    for path in (PACKAGE / "io").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            broken += [f"io/{path.name} imports {n}" for n in names if n.split(".")[0] in HEAVY]
    assert broken == []


def test_only_the_command_line_imports_the_command_line() -> None:
    graph = import_graph(PACKAGE)
    broken = sorted(f"{name} imports {dep}" for name, deps in graph.items() if not _in(name, "cli")
                    for dep in deps if _in(dep, "cli"))
    assert broken == []
