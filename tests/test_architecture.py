"""The shape of the code: no import cycles in cases/ and diagnostics/, diagnostics never imports
cases (cases uses diagnostics, never back), and cases/backends/ never imports the rest of cases.

The import graph is read from the source with ``ast``: every ``import`` and ``from ... import``
statement counts, inside functions too (a function-level import hides a cycle from Python's
import machinery, not from a reader). ``from x import y`` is an edge to the module ``x.y`` when
that is a module, else to ``x``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cases", "diagnostics")


# ----------------------------------------------------------------- the graph
def modules_of(root: Path, packages) -> dict:
    """{dotted module name: source path} of every .py file under the packages."""
    found = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def import_targets(tree: ast.AST, module: str, is_package: bool, mods) -> set:
    """The modules of ``mods`` that the import statements of ``tree`` (anywhere in it) load."""
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = resolve_relative(node, module, is_package)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.add(sub if sub in mods else base)   # a module, or a name defined in base
    return {t for t in targets if t in mods and t != module}


def resolve_relative(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    parts = parts if is_package else parts[:-1]
    parts = parts[:len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def import_graph(root: Path, packages=PACKAGES) -> dict:
    """{module: the modules of the packages it imports}."""
    mods = modules_of(root, packages)
    return {name: import_targets(ast.parse(path.read_text(), str(path)), name,
                                 path.name == "__init__.py", mods)
            for name, path in mods.items()}


def find_cycle(graph: dict) -> list | None:
    """One import cycle as [a, b, ..., a], or None."""
    state, stack = {}, []
    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None
    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def edges_into(graph: dict, source_pkg: str, target_pkg: str) -> list:
    """["a -> b", ...]: the imports from one package into the other."""
    def inside(mod, pkg):
        return mod == pkg or mod.startswith(pkg + ".")
    return sorted(f"{a} -> {b}" for a, targets in graph.items() if inside(a, source_pkg)
                  for b in targets if inside(b, target_pkg))


# ----------------------------------------------------------------- the project
def test_cases_and_diagnostics_have_no_import_cycle():
    cycle = find_cycle(import_graph(ROOT))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_diagnostics_never_imports_cases():
    edges = edges_into(import_graph(ROOT), "diagnostics", "cases")
    assert not edges, "diagnostics imports cases (cases uses diagnostics, never back): " + \
        "; ".join(edges)


def test_the_backends_never_import_the_rest_of_cases():
    """cases/backends/ is the training math: the cases, the runner and the report build on it,
    so no package-level cycle runs through it (cases -> cases.backends -> cases)."""
    graph = import_graph(ROOT)
    edges = [e for e in edges_into(graph, "cases.backends", "cases")
             if not e.split(" -> ")[1].startswith("cases.backends")]
    assert not edges, "cases.backends imports the rest of cases: " + "; ".join(edges)


def test_the_graph_sees_the_project_imports_it_must():
    """A builder that found no edges would pass the two tests above on any code."""
    graph = import_graph(ROOT)
    assert "cases.config" in graph["cases.runner"]
    assert "cases.backends.numpy_train" in graph["cases.runner"]   # a function-level import
    assert "cases.backends.schedule" in graph["cases.backends.numpy_train"]
    assert "cases.runner" in graph["cases.batched"]        # the edge the backends once held


# ----------------------------------------------------------------- the builder itself
def write_package(root: Path, files: dict) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
    write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg import b\n",
        "pkg/b.py": "def f():\n    from pkg.c import g\n    return g\n",
        "pkg/c.py": "import pkg.a\n\ndef g():\n    return 1\n",
    })
    cycle = find_cycle(import_graph(tmp_path, ("pkg",)))
    assert cycle == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]


def test_a_relative_import_and_a_name_import_resolve_to_their_modules(tmp_path):
    write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/sub/__init__.py": "",
        "pkg/sub/x.py": "from ..y import helper\nfrom . import z\n",
        "pkg/y.py": "def helper():\n    pass\n",
        "pkg/sub/z.py": "",
    })
    graph = import_graph(tmp_path, ("pkg",))
    assert graph["pkg.sub.x"] == {"pkg.y", "pkg.sub.z"}
    assert find_cycle(graph) is None


def test_edges_from_one_package_into_another_are_named(tmp_path):
    write_package(tmp_path, {
        "lib/__init__.py": "",
        "lib/core.py": "def f():\n    from app.main import run\n",
        "app/__init__.py": "",
        "app/main.py": "from lib import core\n\ndef run():\n    pass\n",
    })
    graph = import_graph(tmp_path, ("lib", "app"))
    assert edges_into(graph, "lib", "app") == ["lib.core -> app.main"]
    assert find_cycle(graph) == ["app.main", "lib.core", "app.main"]
